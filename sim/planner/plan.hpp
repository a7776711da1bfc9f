#pragma once
// The capacity plan behind `twinspeed plan` (docs/CLI.md "plan"): does a model fit on a cluster
// with a DeepSpeed config, how fast is a step, and what one change would make it fit. The answer
// comes from running twinspeed's own engine (ZeRO, precision, buckets, the pipeline's 1F1B
// schedule) in shape-only simulation with symmetric ranks collapsed, not from separate formulas.
//
//   PlanRequest request{.model = &model, .cluster = cluster, .world = 16, .config = json, ...};
//   PlanResult plan = make_plan(request);
//
// How the run is made fast (docs/ARCHITECTURE.md "Capacity planning"):
//   - one simulated rank per pipeline stage (symmetric-rank collapse), one optimizer step;
//   - steady-state extrapolation: a step of A micro-batches per rank is linear in A once the
//     pipeline (or the accumulation loop) is in its steady state. With A large, the step is run at
//     A0, A0 + 1 and A0 + 2 micro-batches (A0 = pp + 1, else 2 pp + 2); when the differences agree on the
//     step time, on every part of the breakdown and on the critical rank, and memory is identical,
//     the step at A is the run at A0 plus (A - A0) differences. Otherwise it is run at A.
// Memory is measured without a capacity limit, then compared with the device's usable capacity,
// so a plan that does not fit still says by how much and what the peak is made of.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/comm/device.hpp"
#include "engine/config/config.hpp"
#include "engine/model/spec/layer_spec.hpp"
#include "engine/model/spec/model_config.hpp"
#include "sim/cluster.hpp"
#include "sim/cost/hardware.hpp"
#include "sim/planner/step_breakdown.hpp"

namespace twinspeed::planner {

struct PlanRequest {
  const ModelConfig* model = nullptr;
  sim::ClusterSpec cluster;
  int world = 1;
  // The user's DeepSpeed JSON; null: default_plan_config().
  nlohmann::json config;
  std::string config_source = "default";
  // Flags over the config (Config::overrides lists them): tp, pp, sp, micro_batch, global_batch,
  // zero_stage, precision. world is set from `world`.
  LoadOptions options;
  std::optional<bool> tp_sp;               // Megatron sequence parallelism; default: on when tp > 1
  std::optional<std::int64_t> seq_len;     // default: the model's default_seq_length()
  std::optional<RecomputeMode> recompute;  // default: none (or full for activation_checkpoint_interval)
  AttentionKernel attention = AttentionKernel::standard;  // what the model's attention saves
  bool all_ranks = false;                  // simulate every rank (no collapse)
  bool extrapolate = true;                 // steady-state extrapolation (see above)
  bool nearest_fits = true;                // when it does not fit, search one-knob changes that do
  bool keep_cluster = false;               // keep the simulated cluster for a trace (no extrapolation then)
};

// The DeepSpeed config a plan uses when the user gives none: bf16, ZeRO 1, micro-batch 1,
// AdamW (DeepSpeed's defaults elsewhere).
nlohmann::json default_plan_config();

struct Parallelism {
  int world = 1, tp = 1, pp = 1, dp = 1, sp = 1;
  bool tp_sp = false;
  int zero_stage = 0;
  std::int64_t micro_batch = 1, grad_accum = 1, global_batch = 1, seq = 1;
  RecomputeMode recompute = RecomputeMode::none;
  AttentionKernel attention = AttentionKernel::standard;
  DType dtype = DType::bf16;
  bool operator==(const Parallelism&) const = default;
};

std::string_view recompute_name(RecomputeMode mode);  // "none", "selective", "full"
// The inverse of recompute_name, for the CLI's --recompute (which CLI11 has already checked):
// anything but "selective" and "full" is none.
RecomputeMode parse_recompute(std::string_view name);
std::string_view attention_name(AttentionKernel kernel);  // "standard", "flash"

// Memory of one simulated rank (it stands for the ranks of its pipeline stage unless all_ranks).
struct RankMemory {
  int rank = 0;
  int stage = 0;
  comm::MemoryStats stats;  // measured without a capacity limit
  comm::MemoryStats host;   // its node's host memory (ZeRO-Offload), every rank of the node
};

// The first allocation that took a rank past the device's capacity.
struct Overflow {
  int rank = 0;
  MemoryTag tag = MemoryTag::params;
  std::int64_t request_bytes = 0;  // the allocation that crossed
  std::int64_t over_bytes = 0;     // the rank's peak minus the capacity
};

struct PlanFlops {
  double model_per_step = 0.0;     // Megatron's model FLOPs (GQA, SwiGLU), recompute excluded
  double hardware_per_step = 0.0;  // with the recompute's FLOPs
};

// One-knob change that makes a plan fit.
struct NearestFit {
  std::string knob;   // "zero_stage", "micro_batch", "recompute", "tp", "pp"
  std::string value;  // the new value, as the flag takes it
  std::string flag;   // "--zero 3"
  Parallelism parallelism;
  std::int64_t step_time_ns = 0;
  std::int64_t peak_bytes = 0;
  double mfu = 0.0;
};

struct PlanResult {
  Parallelism parallelism;
  std::string seq_source;
  std::string recompute_source;
  std::vector<ConfigOverride> overrides;
  std::vector<ConfigWarning> warnings;
  std::int64_t total_params = 0;  // the model's, whole (tp 1)

  // Memory.
  std::int64_t capacity_bytes = 0;      // the device's usable bytes (0 = unbounded)
  std::vector<RankMemory> ranks;        // simulated ranks, in rank order
  int peak_rank = 0;                    // the rank with the largest peak
  comm::MemoryStats peak;               // that rank's
  // ZeRO-Offload: the host memory of the peak rank's node (all its ranks); zero without offload.
  comm::MemoryStats host_peak;
  std::int64_t host_capacity_bytes = 0;  // per node (0 = unbounded)
  bool fits = true;                     // the device peak fits (host memory over capacity: a warning)
  std::optional<Overflow> overflow;     // when it does not fit

  // Time.
  std::int64_t step_time_ns = 0;
  int critical_rank = 0;          // the simulated rank with the least idle time
  StepBreakdown breakdown;        // of the critical rank; sums to step_time_ns
  double tokens_per_s = 0.0;
  PlanFlops flops;
  double tflops_per_gpu = 0.0;    // model FLOPs
  double peak_tflops = 0.0;       // the device's dense matmul peak for the dtype
  std::string peak_source;
  double mfu = 0.0;
  double hfu = 0.0;

  // How it was computed.
  std::int64_t simulated_micro_batches = 0;  // per rank, in the run the step comes from
  bool extrapolated = false;
  int simulated_ranks = 0;
  std::vector<NearestFit> nearest_fits;       // when it does not fit: up to three, fastest first
  std::shared_ptr<sim::SimCluster> cluster;   // with keep_cluster
};

// Model and hardware FLOPs of one optimizer step: from the layer specs at tp = sp = 1 (the one
// source of the formulas, engine/model/spec/layer_spec.hpp), times the global batch. Model FLOPs
// are 3x forward (Megatron: backward is twice forward); hardware FLOPs are forward + backward (with
// flash attention's recomputed scores) + the recompute mode's forward work.
PlanFlops step_flops(const ModelConfig& model, std::int64_t seq_len, std::int64_t global_batch, RecomputeMode recompute,
                     AttentionKernel attention = AttentionKernel::standard);

// Runs the plan. Throws ConfigError for inputs that cannot be planned (a degree that does not
// divide, a batch that does not split), NotImplemented for routes twinspeed does not run.
PlanResult make_plan(const PlanRequest& request);

}  // namespace twinspeed::planner
