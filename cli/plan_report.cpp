#include "cli/plan_report.hpp"

#include <fmt/format.h>

#include <cstdio>

#include "engine/core/memory_tag.hpp"
#include "engine/model/spec/layer_spec.hpp"
#include "engine/zero/deepspeed_estimators.hpp"

namespace twinspeed::cli {

namespace {

using i64 = std::int64_t;
using nlohmann::ordered_json;
using planner::StepPart;

const char* step_part_label(StepPart part) {
  switch (part) {
    case StepPart::forward: return "forward compute";
    case StepPart::backward: return "backward compute";
    case StepPart::recompute: return "recompute";
    case StepPart::optimizer: return "optimizer";
    case StepPart::comm_dp: return "exposed comm dp";
    case StepPart::comm_tp: return "exposed comm tp";
    case StepPart::comm_pp: return "exposed comm pp";
    case StepPart::comm_sp: return "exposed comm sp";
    case StepPart::bubble: return "bubble (idle)";
    case StepPart::host: return "host";
  }
  return "?";
}

std::string billions(i64 n) { return fmt::format("{:.2f}B", static_cast<double>(n) / 1e9); }

// Engine-owned model states: what ZeRO partitions (DeepSpeed's estimators count these).
i64 model_state_bytes(const comm::MemoryStats& m) {
  return m.at_peak(MemoryTag::params) + m.at_peak(MemoryTag::grads) + m.at_peak(MemoryTag::master_params) +
         m.at_peak(MemoryTag::optimizer_states);
}

const planner::RankMemory& peak_rank(const planner::PlanResult& plan) {
  for (const planner::RankMemory& r : plan.ranks) {
    if (r.rank == plan.peak_rank) return r;
  }
  return plan.ranks.front();
}

// Per pipeline stage, its simulated rank with the largest peak (the first of equals).
std::vector<planner::RankMemory> stage_peaks(const planner::PlanResult& plan) {
  std::vector<planner::RankMemory> out(static_cast<std::size_t>(plan.parallelism.pp));
  std::vector<bool> seen(out.size(), false);
  for (const planner::RankMemory& r : plan.ranks) {
    const auto s = static_cast<std::size_t>(r.stage);
    if (!seen[s] || r.stats.total_peak_bytes > out[s].stats.total_peak_bytes) out[s] = r;
    seen[s] = true;
  }
  return out;
}

// The ranks a simulated rank stands for: its whole pipeline stage when ranks were collapsed.
int represented(const planner::PlanResult& plan) {
  const planner::Parallelism& p = plan.parallelism;
  return plan.simulated_ranks == p.world ? 1 : p.world / p.pp;
}

struct EstimatorRow {
  int stage = 0;
  std::optional<i64> deepspeed_gpu_bytes;  // nullopt: n/a
  std::string deepspeed_options;
};

// DeepSpeed's estimators for the plan's stage, on GPU without offload (what the plan runs).
EstimatorRow estimator_row(const PlanReport& rep) {
  const planner::Parallelism& p = rep.plan->parallelism;
  EstimatorRow row{.stage = p.zero_stage};
  const DeepSpeedModelParams params =
      deepspeed_model_params(build_layer_specs(*rep.model, {.micro_batch = 1, .seq_len = p.seq}));
  const int per_node = rep.cluster->devices_per_node;
  const DeepSpeedEstimatorSetup setup{.gpus_per_node = std::min(p.world, per_node),
                                      .nodes = (p.world + per_node - 1) / per_node};
  if (p.zero_stage == 2) {
    row.deepspeed_gpu_bytes = deepspeed_zero2_estimate(params.total_params, setup, false).gpu_bytes;
    row.deepspeed_options = "estimate_zero2_model_states_mem_needs, offload_optimizer=none";
  } else if (p.zero_stage == 3) {
    row.deepspeed_gpu_bytes =
        deepspeed_zero3_estimate(params.total_params, params.largest_layer_params, setup,
                                 {.cpu_offload = false, .cpu_offload_params = false, .zero_init = true})
            .mem.gpu_bytes;
    row.deepspeed_options = "estimate_zero3_model_states_mem_needs, offload_param=none, offload_optimizer=none, "
                            "zero_init=1";
  }
  return row;
}

ordered_json tag_object(const comm::MemoryStats& m, bool own_peaks) {
  ordered_json o = ordered_json::object();
  for (MemoryTag tag : kAllMemoryTags) o[std::string(memory_tag_name(tag))] = own_peaks ? m.peak(tag) : m.at_peak(tag);
  return o;
}

ordered_json parallelism_json(const planner::Parallelism& p) {
  return {{"world", p.world},
          {"tp", p.tp},
          {"pp", p.pp},
          {"dp", p.dp},
          {"sp", p.sp},
          {"tp_sp", p.tp_sp},
          {"zero_stage", p.zero_stage},
          {"micro_batch", p.micro_batch},
          {"grad_accum", p.grad_accum},
          {"global_batch", p.global_batch},
          {"seq", p.seq},
          {"recompute", std::string(planner::recompute_name(p.recompute))},
          {"attention", std::string(planner::attention_name(p.attention))},
          {"dtype", std::string(dtype_name(p.dtype))}};
}

void print_header(const PlanReport& rep) {
  const planner::PlanResult& plan = *rep.plan;
  const planner::Parallelism& p = plan.parallelism;
  const ModelConfig& m = *rep.model;
  const sim::ClusterSpec& c = *rep.cluster;
  std::printf("twinspeed plan: %s on %d x %s (%s, %d node%s x %d), config %s\n", rep.model_name.c_str(), p.world,
              c.device.name.c_str(), c.name.c_str(), c.nodes, c.nodes == 1 ? "" : "s", c.devices_per_node,
              rep.config_path.c_str());
  std::printf("model     %s: %lld layers, hidden %lld, %lld heads (%lld kv), vocab %lld; %s parameters\n",
              m.model_type.c_str(), static_cast<long long>(m.num_layers), static_cast<long long>(m.hidden_size),
              static_cast<long long>(m.num_heads), static_cast<long long>(m.num_kv_heads),
              static_cast<long long>(m.vocab_size), billions(plan.total_params).c_str());
  std::printf("mesh      %d ranks = pp %d x dp %d x sp %d x tp %d%s; ZeRO-%d %s\n", p.world, p.pp, p.dp, p.sp, p.tp,
              p.tp > 1 ? (p.tp_sp ? " (Megatron sequence parallelism on)" : " (Megatron sequence parallelism off)") : "",
              p.zero_stage, std::string(dtype_name(p.dtype)).c_str());
  std::printf("batch     micro-batch %lld x accumulation %lld x dp %d = global batch %lld; seq %lld (%s)\n",
              static_cast<long long>(p.micro_batch), static_cast<long long>(p.grad_accum), p.dp,
              static_cast<long long>(p.global_batch), static_cast<long long>(p.seq), plan.seq_source.c_str());
  std::printf("recompute %s (%s); attention %s%s\n", std::string(planner::recompute_name(p.recompute)).c_str(),
              plan.recompute_source.c_str(), std::string(planner::attention_name(p.attention)).c_str(),
              p.attention == AttentionKernel::flash ? " (--attention: log-sum-exp saved, scores recomputed)"
                                                    : " (saves the s x s scores; --attention flash for fused kernels)");
  for (const ConfigOverride& o : plan.overrides) {
    const std::string before = o.file_value.is_null() ? std::string("(not in file)") : o.file_value.dump();
    std::printf("override  %s: %s -> %s\n", o.path.c_str(), before.c_str(), o.flag_value.dump().c_str());
  }
}

void print_fit(const PlanReport& rep) {
  const planner::PlanResult& plan = *rep.plan;
  const planner::RankMemory& worst = peak_rank(plan);
  const i64 cap = plan.capacity_bytes;
  if (plan.fits) {
    std::printf("\nFITS: the largest peak is %s on rank %d (stage %d)%s\n", format_bytes(plan.peak.total_peak_bytes).c_str(),
                worst.rank, worst.stage,
                cap > 0 ? fmt::format(", {:.1f}% of {} usable", 100.0 * static_cast<double>(plan.peak.total_peak_bytes) /
                                                                    static_cast<double>(cap),
                                      format_bytes(cap))
                              .c_str()
                        : " (the device has no capacity limit)");
    return;
  }
  const planner::Overflow& o = *plan.overflow;
  std::printf("\nDOES NOT FIT: rank %d (stage %d) peaks at %s of %s usable, over by %s; the allocation that crossed "
              "the capacity: %s, %s\n",
              o.rank, worst.stage, format_bytes(plan.peak.total_peak_bytes).c_str(), format_bytes(cap).c_str(),
              format_bytes(o.over_bytes).c_str(), std::string(memory_tag_name(o.tag)).c_str(),
              format_bytes(o.request_bytes).c_str());
}

void print_memory(const PlanReport& rep) {
  const planner::PlanResult& plan = *rep.plan;
  const int n = represented(plan);
  std::printf("\nmemory of rank %d at its peak%s (live: bytes held at the peak, summing to it; own peak: the tag's "
              "highest)\n",
              plan.peak_rank, n > 1 ? fmt::format(", standing for the {} ranks of its stage", n).c_str() : "");
  std::printf("%-18s %14s %14s\n", "TAG", "LIVE AT PEAK", "OWN PEAK");
  for (MemoryTag tag : kAllMemoryTags) {
    std::printf("%-18s %14s %14s\n", std::string(memory_tag_name(tag)).c_str(),
                format_bytes(plan.peak.at_peak(tag)).c_str(), format_bytes(plan.peak.peak(tag)).c_str());
  }
  std::printf("%-18s %14s\n", "peak", format_bytes(plan.peak.total_peak_bytes).c_str());
  if (plan.host_peak.total_peak_bytes > 0) {
    // ZeRO-Offload: what the CPU side of the peak rank's node holds for all of its ranks.
    std::printf("\nhost memory of rank %d's node (ZeRO-Offload, all ranks of the node), live at its peak\n",
                plan.peak_rank);
    for (MemoryTag tag : kAllMemoryTags) {
      if (plan.host_peak.peak(tag) == 0) continue;
      std::printf("%-18s %14s\n", std::string(memory_tag_name(tag)).c_str(),
                  format_bytes(plan.host_peak.at_peak(tag)).c_str());
    }
    std::printf("%-18s %14s of %s\n", "peak", format_bytes(plan.host_peak.total_peak_bytes).c_str(),
                plan.host_capacity_bytes > 0 ? format_bytes(plan.host_capacity_bytes).c_str() : "unbounded");
  }
  if (plan.parallelism.pp > 1) {
    std::printf("\npeak per pipeline stage: its rank with the largest peak, bytes live at that peak\n%-6s %6s %11s",
                "STAGE", "RANK", "PEAK");
    for (MemoryTag tag : kAllMemoryTags) std::printf(" %11.11s", std::string(memory_tag_name(tag)).c_str());
    std::printf("\n");
    for (const planner::RankMemory& r : stage_peaks(plan)) {
      std::printf("%-6d %6d %11s", r.stage, r.rank, format_bytes(r.stats.total_peak_bytes).c_str());
      for (MemoryTag tag : kAllMemoryTags) std::printf(" %11s", format_bytes(r.stats.at_peak(tag)).c_str());
      std::printf("\n");
    }
  }
}

void print_time(const PlanReport& rep) {
  const planner::PlanResult& plan = *rep.plan;
  const planner::Parallelism& p = plan.parallelism;
  int stage = 0;
  for (const planner::RankMemory& r : plan.ranks) {
    if (r.rank == plan.critical_rank) stage = r.stage;
  }
  std::printf("\nstep time %s on the critical rank %d (stage %d: the least idle)\n",
              seconds_text(plan.step_time_ns).c_str(), plan.critical_rank, stage);
  std::printf("%-18s %14s %8s\n", "PART", "TIME", "SHARE");
  for (StepPart part : planner::kAllStepParts) {
    const i64 ns = plan.breakdown[part];
    std::printf("%-18s %14s %7.1f%%\n", step_part_label(part), seconds_text(ns).c_str(),
                plan.step_time_ns > 0 ? 100.0 * static_cast<double>(ns) / static_cast<double>(plan.step_time_ns) : 0.0);
  }
  std::printf("%-18s %14s %7.1f%%\n", "total", seconds_text(plan.breakdown.total()).c_str(), 100.0);
  std::printf("\nthroughput %.0f tokens/s; %.1f TFLOP/s per GPU (model FLOPs: Megatron's formula with GQA and SwiGLU, "
              "recompute excluded)\n",
              plan.tokens_per_s, plan.tflops_per_gpu);
  std::printf("MFU %.1f%% of %.1f TFLOP/s (%s); HFU %.1f%% (with recompute)\n", 100.0 * plan.mfu, plan.peak_tflops,
              plan.peak_source.c_str(), 100.0 * plan.hfu);
  std::printf("simulated %d of %d ranks%s; %lld micro-batch%s per rank%s; no contention between concurrent "
              "transfers\n",
              plan.simulated_ranks, p.world, plan.simulated_ranks < p.world ? " (one per class of symmetric ranks)" : "",
              static_cast<long long>(plan.simulated_micro_batches), plan.simulated_micro_batches == 1 ? "" : "es",
              plan.extrapolated ? fmt::format(", extrapolated to {} (steady state)", p.grad_accum).c_str() : "");
}

void print_nearest_fits(const PlanReport& rep) {
  const planner::PlanResult& plan = *rep.plan;
  if (plan.fits) return;
  if (plan.nearest_fits.empty()) {
    std::printf("\nno single change of zero stage, micro-batch, recompute, tp or pp makes it fit\n");
    return;
  }
  std::printf("\nnearest configurations that fit (one change each, fastest first)\n");
  std::printf("  %-22s %14s %12s %7s\n", "CHANGE", "STEP TIME", "PEAK", "MFU");
  for (const planner::NearestFit& f : plan.nearest_fits) {
    std::printf("  %-22s %14s %12s %6.1f%%\n", f.flag.c_str(), seconds_text(f.step_time_ns).c_str(),
                format_bytes(f.peak_bytes).c_str(), 100.0 * f.mfu);
  }
}

void print_estimator(const PlanReport& rep) {
  const EstimatorRow row = estimator_row(rep);
  const i64 twinspeed_states = model_state_bytes(rep.plan->peak);
  std::printf("\nDeepSpeed's estimator for ZeRO-%d, model states per GPU: %s%s\n", row.stage,
              row.deepspeed_gpu_bytes ? format_bytes(*row.deepspeed_gpu_bytes).c_str() : "n/a",
              row.deepspeed_gpu_bytes ? fmt::format(" ({})", row.deepspeed_options).c_str()
                                      : " (DeepSpeed has estimators for ZeRO-2 and ZeRO-3 only)");
  std::printf("twinspeed, model states (params + grads + master + optimizer live at the peak): %s; whole peak %s\n",
              format_bytes(twinspeed_states).c_str(), format_bytes(rep.plan->peak.total_peak_bytes).c_str());
}

}  // namespace

void print_plan_report(const PlanReport& rep) {
  print_header(rep);
  print_fit(rep);
  print_memory(rep);
  print_time(rep);
  print_nearest_fits(rep);
  if (rep.estimator) print_estimator(rep);
  if (rep.trace_path) std::printf("\ntrace written to %s\n", rep.trace_path->c_str());
}

nlohmann::ordered_json plan_json(const PlanReport& rep) {
  const planner::PlanResult& plan = *rep.plan;
  const planner::Parallelism& p = plan.parallelism;
  ordered_json j;
  j["schema"] = "twinspeed.plan/1";
  j["model"] = {{"name", rep.model_name}, {"model_type", rep.model->model_type}, {"params", plan.total_params}};
  j["cluster"] = {{"name", rep.cluster->name},
                  {"device", rep.cluster->device.name},
                  {"nodes", rep.cluster->nodes},
                  {"devices_per_node", rep.cluster->devices_per_node}};
  j["config"] = rep.config_path;
  j["fits"] = plan.fits;
  if (plan.overflow) {
    j["overflow"] = {{"rank", plan.overflow->rank},
                     {"tag", std::string(memory_tag_name(plan.overflow->tag))},
                     {"request_bytes", plan.overflow->request_bytes},
                     {"over_bytes", plan.overflow->over_bytes}};
  } else {
    j["overflow"] = nullptr;
  }
  j["step_time_s"] = static_cast<double>(plan.step_time_ns) * 1e-9;
  j["tokens_per_s"] = plan.tokens_per_s;
  j["tflops_per_gpu"] = plan.tflops_per_gpu;
  j["mfu"] = plan.mfu;
  j["hfu"] = plan.hfu;
  j["peak_tflops"] = plan.peak_tflops;
  j["peak_source"] = plan.peak_source;
  j["model_flops_per_step"] = plan.flops.model_per_step;
  j["hardware_flops_per_step"] = plan.flops.hardware_per_step;
  ordered_json per_rank = ordered_json::array();
  for (const planner::RankMemory& r : plan.ranks) {
    per_rank.push_back({{"rank", r.rank},
                        {"stage", r.stage},
                        {"peak_bytes", r.stats.total_peak_bytes},
                        {"breakdown", tag_object(r.stats, false)},
                        {"tag_peaks", tag_object(r.stats, true)}});
  }
  j["memory"] = {{"capacity_bytes", plan.capacity_bytes},
                 {"peak_bytes", plan.peak.total_peak_bytes},
                 {"peak_rank", plan.peak_rank},
                 {"breakdown", tag_object(plan.peak, false)},
                 {"tag_peaks", tag_object(plan.peak, true)},
                 {"ranks_per_simulated_rank", represented(plan)},
                 {"per_rank", per_rank}};
  if (plan.host_peak.total_peak_bytes > 0) {
    // ZeRO-Offload only (absent otherwise): the peak rank's node's host memory, all its ranks.
    j["memory"]["host_per_node"] = {{"capacity_bytes", plan.host_capacity_bytes},
                                    {"peak_bytes", plan.host_peak.total_peak_bytes},
                                    {"breakdown", tag_object(plan.host_peak, false)}};
  }
  ordered_json breakdown = ordered_json::object();
  for (StepPart part : planner::kAllStepParts) {
    breakdown[fmt::format("{}_ns", planner::step_part_name(part))] = plan.breakdown[part];
  }
  j["time"] = {{"step_time_ns", plan.step_time_ns}, {"critical_rank", plan.critical_rank}, {"breakdown", breakdown}};
  j["parallelism"] = parallelism_json(p);
  j["seq_source"] = plan.seq_source;
  j["recompute_source"] = plan.recompute_source;
  ordered_json overrides = ordered_json::array();
  for (const ConfigOverride& o : plan.overrides) {
    overrides.push_back({{"path", o.path}, {"file_value", o.file_value}, {"flag_value", o.flag_value}});
  }
  j["overrides"] = overrides;
  ordered_json fits = ordered_json::array();
  for (const planner::NearestFit& f : plan.nearest_fits) {
    fits.push_back({{"knob", f.knob},
                    {"value", f.value},
                    {"flag", f.flag},
                    {"step_time_s", static_cast<double>(f.step_time_ns) * 1e-9},
                    {"peak_bytes", f.peak_bytes},
                    {"mfu", f.mfu},
                    {"parallelism", parallelism_json(f.parallelism)}});
  }
  j["nearest_fits"] = fits;
  if (rep.estimator) {
    const EstimatorRow row = estimator_row(rep);
    j["estimator"] = {{"name", "deepspeed"},
                      {"zero_stage", row.stage},
                      {"deepspeed_gpu_bytes", row.deepspeed_gpu_bytes ? ordered_json(*row.deepspeed_gpu_bytes)
                                                                      : ordered_json("n/a")},
                      {"deepspeed_options", row.deepspeed_options},
                      {"twinspeed_model_state_bytes", model_state_bytes(plan.peak)},
                      {"twinspeed_peak_bytes", plan.peak.total_peak_bytes}};
  }
  j["simulation"] = {{"simulated_ranks", plan.simulated_ranks},
                     {"simulated_micro_batches", plan.simulated_micro_batches},
                     {"extrapolated", plan.extrapolated}};
  if (rep.trace_path) j["trace"] = *rep.trace_path;
  ordered_json warnings = ordered_json::array();
  for (const ReportWarning& w : rep.warnings) {
    warnings.push_back({{"path", w.path}, {"message", w.message}, {"note", w.note}});
  }
  j["warnings"] = warnings;
  return j;
}

}  // namespace twinspeed::cli
