// Symmetric-rank collapse against the run it stands for: planner::run_simulation of gpt-bench in
// shape fidelity, collapsed (one rank per class of symmetric_representatives) and with every rank,
// over generated meshes and engine settings. LibTorch-free.

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "engine/config/config.hpp"
#include "engine/core/trace_document.hpp"
#include "engine/model/spec/model_config.hpp"
#include "sim/planner/simulation.hpp"
#include "sim/presets/presets.hpp"

namespace twinspeed {
namespace {

struct Case {
  int pp = 1, dp = 1, sp = 1, tp = 1;
  int stage = 0;
  std::int64_t accumulation = 1;
  std::int64_t bucket = 500'000'000;
  bool overlap_comm = false;
  bool full_recompute = false;
  bool bf16 = false;
  bool offload = false;  // zero_optimization.offload_optimizer {device: cpu}
  int world() const { return pp * dp * sp * tp; }
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << "pp " << c.pp << " dp " << c.dp << " sp " << c.sp << " tp " << c.tp << " ZeRO-" << c.stage
            << " gas " << c.accumulation << " bucket " << c.bucket << " overlap_comm " << c.overlap_comm
            << (c.full_recompute ? " recompute full" : " recompute none") << (c.bf16 ? " bf16" : " fp32") << (c.offload ? " offload" : "");
}

// Meshes of at most 32 ranks that gpt-bench splits (8 heads: tp x sp divides them; 6 blocks).
rc::Gen<Case> cases() {
  return rc::gen::exec([] {
    Case c;
    c.pp = *rc::gen::inRange(1, 4);
    c.tp = *rc::gen::element(1, 2, 4);
    c.sp = *rc::gen::element(1, 2);
    c.dp = *rc::gen::inRange(1, 32 / (c.pp * c.tp * c.sp) + 1);
    c.stage = *rc::gen::inRange(0, c.pp > 1 ? 2 : 4);  // DeepSpeed refuses ZeRO-2/3 in a pipeline
    c.accumulation = *rc::gen::inRange<std::int64_t>(1, 4);
    c.bucket = *rc::gen::element<std::int64_t>(500'000'000, 2'000'000);  // one bucket, or about twelve
    c.overlap_comm = *rc::gen::arbitrary<bool>();
    c.full_recompute = *rc::gen::arbitrary<bool>();
    c.bf16 = *rc::gen::arbitrary<bool>();
    c.offload = c.stage > 0 && *rc::gen::arbitrary<bool>();
    return c;
  });
}

planner::SimulateResult simulate(const Case& c, const ModelConfig& model, bool all_ranks) {
  nlohmann::json json = {{"train_micro_batch_size_per_gpu", 1},
                         {"gradient_accumulation_steps", c.accumulation},
                         {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 1e-4}}}}},
                         {"zero_optimization", {{"stage", c.stage}, {"overlap_comm", c.overlap_comm},
                                                {"reduce_bucket_size", c.bucket}}}};
  if (c.bf16) json["bf16"] = {{"enabled", true}};
  if (c.offload) json["zero_optimization"]["offload_optimizer"] = {{"device", "cpu"}};
  const Config config = Config::from_json(json, {.world = c.world(), .tp = c.tp, .pp = c.pp, .sp = c.sp});
  return planner::run_simulation({.config = &config,
                                  .model = &model,
                                  .cluster = sim::cluster_preset("dgx-h100"),
                                  .steps = 2,
                                  .seq_len = 64,
                                  .fidelity = sim::Fidelity::shape,
                                  .recompute = c.full_recompute ? RecomputeMode::full : RecomputeMode::none,
                                  .make_model = planner::make_shape_rank_model,
                                  .all_ranks = all_ranks});
}

// A rank's events by lane, in the trace's canonical order, without flow ids. The order in which a
// rank's events were recorded is not part of its trace (a collective is recorded when its last
// participant issues it, and fewer participants issue in a collapsed run); flow ids number the
// run's transfers, of which a collapsed run has fewer.
std::vector<TraceEvent> canonical_events(const sim::SimCluster& cluster, int rank) {
  std::vector<TraceEvent> events = cluster.tracer(rank).events();
  for (TraceEvent& e : events) e.flow_out = e.flow_in = -1;
  std::sort(events.begin(), events.end(), [](const TraceEvent& a, const TraceEvent& b) {
    return a.lane != b.lane ? a.lane < b.lane : trace_event_before(a, b);
  });
  return events;
}

std::string describe(const TraceEvent& e) {
  std::ostringstream os;
  os << "rank " << e.rank << " lane " << e.lane << " '" << e.name << "' " << e.start_ns << " + " << e.duration_ns
     << " ns, op " << e.op << " group " << e.group << " seq " << e.seq << " bytes " << e.bytes << " step " << e.step
     << " micro-batch " << e.micro_batch << " stage " << e.stage << " " << e.instruction;
  return os.str();
}

// The first event where two traces differ, or "" when they are equal.
std::string first_difference(const std::vector<TraceEvent>& a, const std::vector<TraceEvent>& b) {
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i >= a.size() || i >= b.size() || !(a[i] == b[i])) {
      return "event " + std::to_string(i) + ": collapsed " + (i < a.size() ? describe(a[i]) : "(none)") +
             "; all ranks " + (i < b.size() ? describe(b[i]) : "(none)");
    }
  }
  return {};
}

RC_GTEST_PROP(CollapseProperty, ACollapsedShapeRunEqualsTheAllRanksRunInMemoryStepTimesAndRepresentativeTraces, ()) {
  static const ModelConfig model = load_model_preset("gpt-bench");
  const Case c = *cases();
  RC_LOG() << c << "\n";
  const planner::SimulateResult collapsed = simulate(c, model, false);
  const planner::SimulateResult every = simulate(c, model, true);
  const int world = c.world();
  RC_ASSERT(static_cast<int>(every.simulated_ranks.size()) == world);
  RC_ASSERT(collapsed.simulated_ranks.size() <= every.simulated_ranks.size());
  RC_CLASSIFY(static_cast<int>(collapsed.simulated_ranks.size()) < world, "collapsed");
  RC_CLASSIFY(!collapsed.collapse_refused.empty(), "refused by the topology");
  // Owners' gradient copies differ by rank there: the case that needed the symmetric copy cost.
  RC_CLASSIFY((c.stage == 1 || c.stage == 2) && c.dp * c.sp > 1, "ZeRO-1/2 over several data-parallel ranks");
  RC_CLASSIFY(c.offload, "optimizer offload");

  RC_ASSERT(collapsed.setup_time_ns == every.setup_time_ns);
  RC_ASSERT(collapsed.total_time_ns == every.total_time_ns);
  RC_ASSERT(collapsed.steps.size() == every.steps.size());
  for (std::size_t s = 0; s < every.steps.size(); ++s) {
    RC_ASSERT(collapsed.steps[s].step_time_ns == every.steps[s].step_time_ns);
  }
  RC_ASSERT(collapsed.memory.size() == every.memory.size());
  for (int r = 0; r < world; ++r) {
    const comm::MemoryStats& a = collapsed.memory[static_cast<std::size_t>(r)];
    const comm::MemoryStats& b = every.memory[static_cast<std::size_t>(r)];
    RC_ASSERT(a.total_peak_bytes == b.total_peak_bytes);
    RC_ASSERT(a.total_current_bytes == b.total_current_bytes);
    RC_ASSERT(a.current_bytes == b.current_bytes);
    RC_ASSERT(a.peak_bytes == b.peak_bytes);
    RC_ASSERT(a.at_peak_bytes == b.at_peak_bytes);
    // The node's host memory (offload): the same bytes held. The peak may be higher collapsed: a
    // representative's short-lived staging buffers count once per rank it stands for, as if the
    // node's ranks stepped at once (they do on real hardware); run one by one, they do not overlap.
    const comm::MemoryStats& ha = collapsed.host_memory[static_cast<std::size_t>(r)];
    const comm::MemoryStats& hb = every.host_memory[static_cast<std::size_t>(r)];
    RC_ASSERT(ha.current_bytes == hb.current_bytes);
    RC_ASSERT(ha.total_peak_bytes >= hb.total_peak_bytes);
  }
  for (int r : collapsed.simulated_ranks) {
    const std::string difference =
        first_difference(canonical_events(*collapsed.cluster, r), canonical_events(*every.cluster, r));
    if (!difference.empty()) RC_FAIL(difference);
    RC_ASSERT(collapsed.cluster->tracer(r).memory_samples() == every.cluster->tracer(r).memory_samples());
  }
}

}  // namespace
}  // namespace twinspeed
