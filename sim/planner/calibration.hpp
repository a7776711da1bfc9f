#pragma once
// The simulator against measured iteration times: vTrain's Megatron-DeepSpeed measurements on A100
// clusters (data/calibration/vtrain_ground_truth_*_a100.csv, VIA-Research/vTrain, MICRO'24). A row
// is one training configuration (GPT shape, batch, tp x dp x pp) and its measured iteration time;
// twinspeed predicts it by running its own engine in shape-only simulation (run_simulation) on a
// cluster preset. docs/CLUSTER.md "Calibration" says what was fitted on which rows.
//
// How a row becomes a run (the assumptions, stated once here):
//   - model: GPT-2 architecture (learned positions, GeLU MLP of 4h, LayerNorm, tied LM head),
//     n_embd = hidden, n_head = heads, n_layer = layers, n_positions = seq, vocab 50257 (vTrain's
//     default; Megatron pads it to a multiple of 128 tp, twinspeed to a multiple of tp), dropout
//     0.1 everywhere (vTrain's model);
//   - DeepSpeed config: train_batch_size = global batch, train_micro_batch_size_per_gpu = micro
//     batch (gradient accumulation = global / (micro x dp), as Megatron runs it even with pp = 1,
//     where vTrain's own predictor folds the batch into one micro-batch), tensor_parallel.autotp_size
//     = tp, pipeline.stages = pp, fp16 mixed precision (vTrain's model builds a half attention mask
//     and Megatron-DeepSpeed's GPT examples train in fp16), ZeRO stage 0, Adam, gradient clipping
//     1.0 (Megatron's default);
//   - activation checkpointing: full recompute of every transformer block (every vTrain validation
//     config, single- and multi-node, has use_checkpoint true);
//   - pipeline partition: by transformer blocks ("type:^block\." over twinspeed's layer names, as
//     Megatron-DeepSpeed's GPT pipe model partitions with type:transformer), 1F1B.
// The prediction is the virtual time of one optimizer step after set-up.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config/config.hpp"
#include "engine/model/spec/layer_spec.hpp"
#include "engine/model/spec/model_config.hpp"
#include "sim/cost/hardware.hpp"

namespace twinspeed::planner {

// One measured configuration. Sizes are per the whole job (global batch) or per GPU (micro batch).
struct VTrainRow {
  int line = 0;                           // 1-based line in its file, for messages
  std::optional<double> params_billion;   // the multi-node file's "Parameters (billion)"
  int gpus = 0;
  std::int64_t global_batch = 0;
  std::int64_t micro_batch = 0;
  std::int64_t hidden = 0;
  std::int64_t heads = 0;
  std::int64_t layers = 0;
  std::int64_t seq_len = 0;
  int tp = 1;
  int dp = 1;
  int pp = 1;
  double measured_ms = 0.0;  // measured iteration time

  std::int64_t micro_batches() const { return global_batch / (micro_batch * dp); }  // per pipeline, per step
};

// Parses a vTrain ground-truth CSV. Lines starting with '#' are comments, except that a comment
// line holding the column names (the single-node file writes its header as a comment) is the
// header; columns are found by name ("GPUs" or "# GPUs", "global batch", ..., "iteration time
// (ms)"; "Parameters (billion)" optional), so both files' layouts read. Throws Error naming
// source:line for a missing column, a malformed number or an inconsistent row (gpus != tp dp pp,
// global batch not a multiple of micro batch x dp).
std::vector<VTrainRow> parse_vtrain_csv(std::string_view text, const std::string& source);
std::vector<VTrainRow> read_vtrain_csv(const std::filesystem::path& file);

// The model and DeepSpeed config of a row (header comment).
ModelConfig vtrain_model(const VTrainRow& row);
Config vtrain_config(const VTrainRow& row);

struct PredictOptions {
  RecomputeMode recompute = RecomputeMode::full;
  std::string partition_method = "type:^block\\.";
};

// The predicted iteration time in milliseconds of row on cluster (grown to row.gpus devices).
// Throws what run_simulation throws (OutOfMemory when the row does not fit the device).
double predict_iteration_ms(const VTrainRow& row, const sim::ClusterSpec& cluster, const PredictOptions& options = {});

// Signed relative error of one prediction, in percent: 100 (predicted - measured) / measured.
double error_percent(double predicted_ms, double measured_ms);

struct ErrorSummary {
  std::size_t rows = 0;
  double mean_abs_percent = 0.0;     // mean of |error_percent| over the rows
  double mean_signed_percent = 0.0;  // > 0: the model is slow on average
  double worst_abs_percent = 0.0;    // the largest |error_percent|
  std::size_t worst_index = 0;       // its position in the rows given
};

// Throws std::invalid_argument when the spans differ in size or are empty.
ErrorSummary summarize_errors(std::span<const double> predicted_ms, std::span<const VTrainRow> rows);

}  // namespace twinspeed::planner
