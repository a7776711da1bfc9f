#include "sim/planner/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "engine/core/errors.hpp"
#include "engine/mesh/device_mesh.hpp"
#include "sim/planner/simulation.hpp"

namespace twinspeed::planner {

namespace {

using i64 = std::int64_t;

// What one simulated step measured.
struct Measurement {
  i64 step_time_ns = 0;
  int critical_rank = 0;
  StepBreakdown breakdown;
  std::vector<RankMemory> ranks;
  std::shared_ptr<sim::SimCluster> cluster;

  bool same_memory(const Measurement& other) const {
    if (ranks.size() != other.ranks.size()) return false;
    for (std::size_t i = 0; i < ranks.size(); ++i) {
      const comm::MemoryStats &a = ranks[i].stats, &b = other.ranks[i].stats;
      if (a.total_peak_bytes != b.total_peak_bytes || a.peak_bytes != b.peak_bytes || a.at_peak_bytes != b.at_peak_bytes) {
        return false;
      }
    }
    return true;
  }
};

// Everything a run needs that does not change with the number of micro-batches.
struct Setup {
  nlohmann::json config_json;
  LoadOptions options;
  Config config;
  Parallelism parallelism;
  std::string seq_source;
  std::string recompute_source;
  std::string partition_method;
};

DType dtype_of(const Config& config) {
  if (config.bf16().enabled) return DType::bf16;
  if (config.fp16().enabled) return DType::f16;
  return DType::f32;
}

// DeepSpeed's PipelineModule takes partition_method as an argument ("parameters" by default);
// twinspeed reads pipeline.partition, whose DeepSpeed default "best" means that.
std::string partition_method_of(const Config& config) {
  const std::string& p = config.pipeline().partition;
  return p.empty() || p == "best" ? "parameters" : p;
}

// The user's JSON as a plan loads it. The global batch is what a plan keeps fixed: with
// train_batch_size in the file or a global batch given, the accumulation follows from it, the
// micro-batch and the data-parallel degree.
nlohmann::json plan_json(const PlanRequest& request) {
  nlohmann::json json = request.config.is_null() ? default_plan_config() : request.config;
  const bool global_batch = request.options.global_batch ||
                            (json.is_object() && json.contains("train_batch_size") && json["train_batch_size"].is_number());
  if (json.is_object() && global_batch && !request.options.gradient_accumulation) {
    json.erase("gradient_accumulation_steps");
  }
  return json;
}

LoadOptions plan_options(const PlanRequest& request) {
  LoadOptions o = request.options;
  o.world = request.world;
  return o;
}

Setup make_setup(const PlanRequest& request) {
  if (request.model == nullptr) throw Error("make_plan: no model");
  Setup s{.config_json = plan_json(request),
          .options = plan_options(request),
          .config = Config::from_json(plan_json(request), plan_options(request))};
  const Config& c = s.config;
  const MeshShape& mesh = c.mesh();
  Parallelism& p = s.parallelism;
  p.world = mesh.world();
  p.tp = mesh.tp;
  p.pp = mesh.pp;
  p.dp = mesh.dp;
  p.sp = mesh.sp;
  p.tp_sp = request.tp_sp.value_or(mesh.tp > 1);
  p.zero_stage = c.zero().stage;
  p.micro_batch = c.batch().train_micro_batch_size_per_gpu;
  p.grad_accum = c.batch().gradient_accumulation_steps;
  p.global_batch = c.batch().train_batch_size;
  p.dtype = dtype_of(c);
  if (request.seq_len) {
    p.seq = *request.seq_len;
    s.seq_source = "--seq";
  } else {
    DefaultSeqLen seq = default_seq_length(*request.model);
    p.seq = seq.value;
    s.seq_source = std::move(seq.source);
  }
  if (request.recompute) {
    p.recompute = *request.recompute;
    s.recompute_source = "--recompute";
  } else if (mesh.pp > 1 && c.pipeline().activation_checkpoint_interval > 0) {
    p.recompute = RecomputeMode::full;
    s.recompute_source = fmt::format("pipeline.activation_checkpoint_interval {}",
                                     c.pipeline().activation_checkpoint_interval);
  } else {
    s.recompute_source = "default";
  }
  p.attention = request.attention;
  if (c.hybrid_engine().enabled) {
    throw NotImplemented("hybrid_engine.enabled routes to the HybridEngine, which twinspeed does not implement yet");
  }
  s.partition_method = partition_method_of(c);
  return s;
}

// The step of a run whose accumulation is `micro_batches` per rank (the setup's config at another
// global batch when it differs).
Measurement measure(const PlanRequest& request, const Setup& setup, i64 micro_batches) {
  const Parallelism& p = setup.parallelism;
  std::optional<Config> other;
  if (micro_batches != p.grad_accum) {
    LoadOptions o = setup.options;
    o.global_batch = p.micro_batch * p.dp * micro_batches;
    o.micro_batch = p.micro_batch;
    o.gradient_accumulation = micro_batches;
    other = Config::from_json(setup.config_json, o);
  }
  const Config& config = other ? *other : setup.config;
  // Memory without a limit: the plan compares the peak with the capacity afterwards.
  sim::ClusterSpec unbounded = request.cluster;
  unbounded.device.capacity_bytes = 0;
  const SimulateResult run = run_simulation({.config = &config,
                                             .model = request.model,
                                             .cluster = unbounded,
                                             .steps = 1,
                                             .seq_len = p.seq,
                                             .fidelity = sim::Fidelity::shape,
                                             .recompute = p.recompute,
                                             .tp_sp = p.tp_sp,
                                             .attention = p.attention,
                                             .partition_method = setup.partition_method,
                                             .make_model = make_shape_rank_model,
                                             .all_ranks = request.all_ranks});
  Measurement m;
  m.step_time_ns = run.steps.at(0).step_time_ns;
  m.cluster = run.cluster;
  const i64 begin = run.setup_time_ns, end = begin + m.step_time_ns;
  const DeviceMesh mesh(config.mesh());
  i64 least_idle = -1;
  for (int rank : run.simulated_ranks) {
    const std::vector<TraceEvent> events = run.cluster->tracer(rank).events();
    StepBreakdown b = break_down_step(events, begin, end);
    if (least_idle < 0 || b[StepPart::bubble] < least_idle) {
      least_idle = b[StepPart::bubble];
      m.critical_rank = rank;
      m.breakdown = b;
    }
    m.ranks.push_back({.rank = rank, .stage = mesh.coord_of(rank).pp, .stats = run.memory.at(static_cast<std::size_t>(rank)),
                       .host = run.host_memory.at(static_cast<std::size_t>(rank))});
  }
  return m;
}

// v0 + k * (v1 - v0), part by part.
StepBreakdown extrapolate(const StepBreakdown& b0, const StepBreakdown& b1, i64 k) {
  StepBreakdown out;
  for (std::size_t i = 0; i < kStepPartCount; ++i) out.ns[i] = b0.ns[i] + k * (b1.ns[i] - b0.ns[i]);
  return out;
}

bool linear(const Measurement& a, const Measurement& b, const Measurement& c) {
  if (a.critical_rank != b.critical_rank || b.critical_rank != c.critical_rank) return false;
  if (b.step_time_ns - a.step_time_ns != c.step_time_ns - b.step_time_ns) return false;
  for (std::size_t i = 0; i < kStepPartCount; ++i) {
    if (b.breakdown.ns[i] - a.breakdown.ns[i] != c.breakdown.ns[i] - b.breakdown.ns[i]) return false;
  }
  return a.same_memory(b) && b.same_memory(c);
}

// The step at the setup's accumulation, extrapolated from three short runs when that is exact
// (header); the number of micro-batches actually simulated, and whether it extrapolated.
std::tuple<Measurement, i64, bool> measure_step(const PlanRequest& request, const Setup& setup) {
  const i64 a = setup.parallelism.grad_accum;
  const auto pp = static_cast<i64>(setup.parallelism.pp);
  // The pipeline is usually steady once every stage holds a micro-batch (A0 = pp + 1); when not
  // yet, once the last stage's first backward is two fills behind (A0 = 2 pp + 2).
  for (const i64 a0 : {pp + 1, 2 * pp + 2}) {
    if (!request.extrapolate || request.keep_cluster || a <= 3 * (a0 + 2)) break;
    Measurement m0 = measure(request, setup, a0);
    Measurement m1 = measure(request, setup, a0 + 1);
    Measurement m2 = measure(request, setup, a0 + 2);
    if (linear(m0, m1, m2)) {
      Measurement out = m0;
      out.step_time_ns = m0.step_time_ns + (a - a0) * (m1.step_time_ns - m0.step_time_ns);
      out.breakdown = extrapolate(m0.breakdown, m1.breakdown, a - a0);
      return {std::move(out), a0 + 2, true};
    }
  }
  return {measure(request, setup, a), a, false};
}

// The first allocation of a rank's memory trace that took the total past capacity.
std::optional<Overflow> find_overflow(const sim::SimCluster* cluster, const RankMemory& rank, i64 capacity) {
  if (capacity <= 0 || rank.stats.total_peak_bytes <= capacity) return std::nullopt;
  Overflow o{.rank = rank.rank, .tag = MemoryTag::params, .request_bytes = 0,
             .over_bytes = rank.stats.total_peak_bytes - capacity};
  if (cluster == nullptr) return o;
  std::array<i64, kMemoryTagCount> current{};
  i64 total = 0;
  for (const MemoryCounterSample& s : cluster->tracer(rank.rank).memory_samples()) {
    i64& tag = current[static_cast<std::size_t>(s.tag)];
    const i64 delta = s.bytes - tag;
    tag = s.bytes;
    total += delta;
    if (total > capacity && delta > 0) {
      o.tag = s.tag;
      o.request_bytes = delta;
      return o;
    }
  }
  return o;
}

double peak_tflops(const sim::DeviceSpec& device, DType dtype) {
  switch (dtype) {
    case DType::bf16: return device.matmul_peak_tflops.bf16;
    case DType::f16: return device.matmul_peak_tflops.fp16;
    default: return device.matmul_peak_tflops.fp32;
  }
}

std::string peak_source(const sim::DeviceSpec& device, DType dtype) {
  if (dtype == DType::f32) {
    return fmt::format("{} dense FP32 peak without TF32 (PyTorch runs fp32 matmuls without TF32 by default)",
                       device.name);
  }
  return fmt::format("{} dense {} matmul peak", device.name, dtype_name(dtype));
}

// One-knob variations of a plan that does not fit (header of NearestFit), each a request.
struct Candidate {
  std::string knob, value, flag;
  PlanRequest request;
};

std::vector<Candidate> candidates(const PlanRequest& base, const Parallelism& p, int devices_per_node,
                                  std::int64_t layers) {
  std::vector<Candidate> out;
  auto add = [&](std::string knob, std::string value, std::string flag, const std::function<void(PlanRequest&)>& edit) {
    PlanRequest r = base;
    r.nearest_fits = false;
    r.keep_cluster = false;
    // Every candidate keeps the global batch; its accumulation follows.
    r.options.global_batch = p.global_batch;
    r.options.gradient_accumulation.reset();
    r.options.micro_batch = p.micro_batch;
    r.options.zero_stage = p.zero_stage;
    r.options.tp = p.tp;
    r.options.pp = p.pp;
    r.recompute = p.recompute;
    edit(r);
    out.push_back({std::move(knob), std::move(value), std::move(flag), std::move(r)});
  };
  for (int stage = p.zero_stage + 1; stage <= 3; ++stage) {
    if (p.pp > 1 && stage >= 2) break;  // ZeRO-2/3 are incompatible with pipeline parallelism
    add("zero_stage", std::to_string(stage), fmt::format("--zero {}", stage),
        [stage](PlanRequest& r) { r.options.zero_stage = stage; });
  }
  for (i64 mb = p.micro_batch / 2; mb >= 1; mb /= 2) {
    add("micro_batch", std::to_string(mb), fmt::format("--micro-batch {}", mb),
        [mb](PlanRequest& r) { r.options.micro_batch = mb; });
  }
  for (RecomputeMode mode : {RecomputeMode::selective, RecomputeMode::full}) {
    if (static_cast<int>(mode) <= static_cast<int>(p.recompute)) continue;
    add("recompute", std::string(recompute_name(mode)), fmt::format("--recompute {}", recompute_name(mode)),
        [mode](PlanRequest& r) { r.recompute = mode; });
  }
  for (int tp = p.tp * 2; tp <= devices_per_node && p.world % (tp * p.pp * p.sp) == 0; tp *= 2) {
    add("tp", std::to_string(tp), fmt::format("--tp {}", tp), [tp](PlanRequest& r) { r.options.tp = tp; });
  }
  if (p.zero_stage <= 1) {
    for (int pp = p.pp * 2; pp <= layers && p.world % (p.tp * pp * p.sp) == 0; pp *= 2) {
      add("pp", std::to_string(pp), fmt::format("--pp {}", pp), [pp](PlanRequest& r) { r.options.pp = pp; });
    }
  }
  return out;
}

std::vector<NearestFit> search_nearest_fits(const PlanRequest& request, const Parallelism& p) {
  std::vector<NearestFit> best;  // one per knob
  for (Candidate& c : candidates(request, p, request.cluster.devices_per_node, request.model->num_layers)) {
    PlanResult plan;
    try {
      plan = make_plan(c.request);
    } catch (const ConfigError&) {
      continue;  // the change does not split the model, the mesh or the batch
    } catch (const NotImplemented&) {
      continue;
    }
    if (!plan.fits) continue;
    auto same = std::find_if(best.begin(), best.end(), [&](const NearestFit& f) { return f.knob == c.knob; });
    NearestFit fit{.knob = c.knob, .value = c.value, .flag = c.flag, .parallelism = plan.parallelism,
                   .step_time_ns = plan.step_time_ns, .peak_bytes = plan.peak.total_peak_bytes, .mfu = plan.mfu};
    if (same == best.end()) {
      best.push_back(std::move(fit));
    } else if (fit.step_time_ns < same->step_time_ns) {
      *same = std::move(fit);
    }
  }
  std::stable_sort(best.begin(), best.end(),
                   [](const NearestFit& a, const NearestFit& b) { return a.step_time_ns < b.step_time_ns; });
  if (best.size() > 3) best.resize(3);
  return best;
}

}  // namespace

nlohmann::json default_plan_config() {
  return {{"train_micro_batch_size_per_gpu", 1},
          {"bf16", {{"enabled", true}}},
          {"zero_optimization", {{"stage", 1}}},
          {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 1e-4}}}}}};
}

std::string_view recompute_name(RecomputeMode mode) {
  switch (mode) {
    case RecomputeMode::none: return "none";
    case RecomputeMode::selective: return "selective";
    case RecomputeMode::full: return "full";
  }
  return "?";
}

RecomputeMode parse_recompute(std::string_view name) {
  if (name == "full") return RecomputeMode::full;
  if (name == "selective") return RecomputeMode::selective;
  return RecomputeMode::none;
}

std::string_view attention_name(AttentionKernel kernel) {
  return kernel == AttentionKernel::flash ? "flash" : "standard";
}

PlanFlops step_flops(const ModelConfig& model, std::int64_t seq_len, std::int64_t global_batch, RecomputeMode recompute,
                     AttentionKernel attention) {
  const auto layers =
      build_layer_specs(model, {.micro_batch = 1, .seq_len = seq_len, .tp = 1, .sp = 1, .attention = attention});
  double model_flops = 0.0, hardware = 0.0;
  for (const LayerSpec& l : layers) {
    const auto forward = static_cast<double>(l.forward_flops);
    model_flops += 3.0 * forward;
    hardware += forward + static_cast<double>(l.backward_flops) +
                static_cast<double>(l.recompute_flops[static_cast<int>(recompute)]);
  }
  const auto batch = static_cast<double>(global_batch);
  return {.model_per_step = model_flops * batch, .hardware_per_step = hardware * batch};
}

PlanResult make_plan(const PlanRequest& request) {
  const Setup setup = make_setup(request);
  const Parallelism& p = setup.parallelism;
  auto [m, simulated_micro_batches, extrapolated] = measure_step(request, setup);

  PlanResult out;
  out.parallelism = p;
  out.seq_source = setup.seq_source;
  out.recompute_source = setup.recompute_source;
  out.overrides = setup.config.overrides();
  out.warnings = setup.config.warnings();
  out.total_params = total_param_count(build_layer_specs(*request.model, {.micro_batch = 1, .seq_len = p.seq}));
  out.capacity_bytes = request.cluster.device.capacity_bytes;
  out.ranks = m.ranks;
  const auto worst = std::max_element(out.ranks.begin(), out.ranks.end(), [](const RankMemory& a, const RankMemory& b) {
    return a.stats.total_peak_bytes < b.stats.total_peak_bytes;
  });
  if (worst != out.ranks.end()) {
    out.peak_rank = worst->rank;
    out.peak = worst->stats;
    out.host_peak = worst->host;
  }
  out.host_capacity_bytes = request.cluster.host.memory_bytes;
  out.fits = out.capacity_bytes <= 0 || out.peak.total_peak_bytes <= out.capacity_bytes;
  const bool host_fits = out.host_capacity_bytes <= 0 || out.host_peak.total_peak_bytes <= out.host_capacity_bytes;
  if (!host_fits) {
    out.warnings.push_back({.path = "zero_optimization.offload_optimizer",
                            .message = fmt::format("the node's host memory peaks at {} bytes, over its {} bytes",
                                                   out.host_peak.total_peak_bytes, out.host_capacity_bytes)});
  }
  if (!out.fits) out.overflow = find_overflow(m.cluster.get(), *worst, out.capacity_bytes);

  out.step_time_ns = m.step_time_ns;
  out.critical_rank = m.critical_rank;
  out.breakdown = m.breakdown;
  const double step_s = static_cast<double>(m.step_time_ns) / 1e9;
  out.flops = step_flops(*request.model, p.seq, p.global_batch, p.recompute, p.attention);
  out.peak_tflops = peak_tflops(request.cluster.device, p.dtype);
  out.peak_source = peak_source(request.cluster.device, p.dtype);
  if (step_s > 0.0) {
    out.tokens_per_s = static_cast<double>(p.global_batch * p.seq) / step_s;
    out.tflops_per_gpu = out.flops.model_per_step / step_s / p.world / 1e12;
    if (out.peak_tflops > 0.0) {
      out.mfu = out.tflops_per_gpu / out.peak_tflops;
      out.hfu = out.flops.hardware_per_step / step_s / p.world / 1e12 / out.peak_tflops;
    }
  }
  out.simulated_micro_batches = simulated_micro_batches;
  out.extrapolated = extrapolated;
  out.simulated_ranks = static_cast<int>(m.ranks.size());
  if (request.keep_cluster) out.cluster = m.cluster;
  if (!out.fits && request.nearest_fits) out.nearest_fits = search_nearest_fits(request, p);
  return out;
}

}  // namespace twinspeed::planner
