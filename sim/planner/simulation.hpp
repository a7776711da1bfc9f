#pragma once
// The run behind `twinspeed simulate` (docs/CLI.md "simulate"), without LibTorch: one Engine per
// simulated rank on a sim::SimCluster of the cluster preset's devices, K optimizer steps, and what
// the report needs (per-step loss, LR, loss scale, skipped steps and virtual step time; per-rank
// memory with the bytes live at the peak). The numeric model (LibTorch) comes in through a
// RankModelFactory built in simulate_numeric.cpp, so only that file compiles LibTorch.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/comm/device.hpp"
#include "engine/config/config.hpp"
#include "engine/model/layer_runner.hpp"
#include "engine/model/spec/spec_layer_runner.hpp"
#include "sim/cluster.hpp"
#include "sim/cost/hardware.hpp"

namespace twinspeed::planner {

// One rank's model: its layer runner and its micro-batches.
struct RankModel {
  std::shared_ptr<LayerRunner> runner;
  // inputs and labels of this rank's micro-batch number `micro_step` (0, 1, ...)
  std::function<std::pair<Activation, Activation>(std::int64_t micro_step)> batch;
};

struct RankModelRequest {
  const ModelConfig* model = nullptr;
  SpecRunnerOptions spec;  // per-rank sizes: micro-batch, seq_len, tp, sp, dtype
  int rank = 0;
  int dp_rank = 0;   // which data-parallel replica: selects the rank's share of the data
  int dp_size = 1;
  std::uint64_t seed = 0;
};

using RankModelFactory = std::function<RankModel(const RankModelRequest&)>;

// Shape fidelity: a SpecLayerRunner and [B, s] shape batches.
RankModel make_shape_rank_model(const RankModelRequest& request);

struct SimulateRequest {
  const Config* config = nullptr;  // loaded at `world`
  const ModelConfig* model = nullptr;
  sim::ClusterSpec cluster;
  int steps = 1;
  std::int64_t seq_len = 1;
  sim::Fidelity fidelity = sim::Fidelity::shape;
  std::uint64_t seed = 0;
  RecomputeMode recompute = RecomputeMode::none;
  bool tp_sp = false;  // Megatron sequence parallelism inside tensor parallelism
  // Flash attention is a shape-only model (the numeric model zoo runs standard attention):
  // numeric fidelity refuses it.
  AttentionKernel attention = AttentionKernel::standard;
  // pp > 1: how the PipelineModule splits the model's layers (DeepSpeed's partition_method).
  std::string partition_method = "parameters";
  RankModelFactory make_model;  // make_shape_rank_model for shape fidelity
  // Called on rank 0 after each optimizer step (progress).
  std::function<void(std::int64_t step)> on_step;
  // Shape fidelity simulates one rank per class of symmetric ranks (symmetric_representatives,
  // engine/mesh/device_mesh.hpp) unless this is set or the cluster's topology tells the ranks of a
  // class apart; numeric fidelity always simulates every rank.
  bool all_ranks = false;
  // Real backends: train_rank first checks, through the backend's store, that every rank was given
  // the same run (check_same_run, engine/runtime/run_check.hpp), waiting this long for the others.
  // Unset in the simulator, whose ranks share this one request.
  std::optional<std::chrono::milliseconds> run_check_timeout;
};

struct StepReport {
  std::int64_t step = 0;              // 1-based optimizer step
  std::optional<double> loss;         // mean over data-parallel ranks of each rank's mean micro-batch loss
  double lr = 0.0;                    // the LR the step used
  double loss_scale = 1.0;            // after the step
  bool skipped = false;               // the step was skipped (overflow)
  std::int64_t skipped_steps = 0;     // skipped so far
  std::int64_t step_time_ns = 0;      // virtual time from the previous step's end on the slowest rank
};

struct SimulateResult {
  std::vector<StepReport> steps;
  std::vector<comm::MemoryStats> memory;  // per rank (a represented rank's are its representative's)
  // per rank: its node's host memory (Backend::host(); ZeRO-Offload's states), every rank of the node
  std::vector<comm::MemoryStats> host_memory;
  // The ranks that ran, ascending (every rank unless symmetric ranks were collapsed): those whose
  // traces exist (cluster->tracer(r) of another rank is its representative's).
  std::vector<int> simulated_ranks;
  // Why a collapse that was asked for (shape fidelity, all_ranks false) did not happen; empty when
  // it happened or was not asked for.
  std::string collapse_refused;
  std::int64_t total_params = 0;          // the model's parameters held by one tp rank
  std::int64_t setup_time_ns = 0;         // virtual time of the engine's set-up (parameter broadcast)
  std::int64_t total_time_ns = 0;         // virtual time at the end of the last step
  DType compute_dtype = DType::f32;
  std::shared_ptr<sim::SimCluster> cluster;  // for the trace
};

// The element type the config trains in: bf16, fp16 or fp32.
DType config_compute_dtype(const Config& config);

// What one rank saw, step by step.
struct RankTimeline {
  std::vector<double> mean_loss;  // mean over the step's micro-batches
  std::vector<double> lr;
  std::vector<double> loss_scale;
  std::vector<std::int64_t> skipped_steps;
  std::vector<std::int64_t> end_ns;  // clock_ns() after the step
  std::int64_t setup_end_ns = 0;
};

// One rank's training run, on any backend: the Engine (the PipelineEngine when pp > 1) over the
// rank's model from request.make_model for request.steps optimizer steps, timed by clock_ns
// (the simulator's compute-stream clock; a real backend's wall clock). run_simulation runs it on
// every simulated rank; a real backend runs it once per process. Uses the request's config,
// model, steps, seq_len, seed, recompute, tp_sp, attention, partition_method, make_model, on_step,
// run_check_timeout (then ConfigError on every rank when the ranks' runs differ: run_description).
RankTimeline train_rank(const SimulateRequest& request, const std::shared_ptr<comm::Backend>& backend,
                        const std::function<std::int64_t()>& clock_ns);

// What makes a rank train what it trains, for the start-up check: the resolved DeepSpeed config
// (overrides applied), the model's architecture (not its name or path), steps, seq_len, seed,
// recompute, tp_sp, attention, partition_method and fidelity.
nlohmann::json run_description(const SimulateRequest& request);

// Runs the simulation. Throws what the engine or the simulator throws (ConfigError,
// NotImplemented, OutOfMemory, CommError).
SimulateResult run_simulation(const SimulateRequest& request);

// Host bytes a numeric run of the whole cluster needs, estimated: per rank the ZeRO bytes
// (engine/core/zero_memory.hpp) plus the saved activations of one micro-batch, times world.
std::int64_t estimate_numeric_host_bytes(const Config& config, const ModelConfig& model, std::int64_t seq_len,
                                         RecomputeMode recompute);

// MemTotal of /proc/meminfo in bytes; nullopt when it cannot be read.
std::optional<std::int64_t> host_memory_bytes();

}  // namespace twinspeed::planner
