// The capacity plan (sim/planner/plan.hpp) on shape-only runs of gpt-bench: its figures against the
// simulation it comes from and against closed forms, and the invariants the issue lists.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cmath>

#include "engine/core/errors.hpp"
#include "engine/model/spec/model_config.hpp"
#include "sim/planner/plan.hpp"
#include "sim/planner/simulation.hpp"
#include "sim/preset_costs.hpp"
#include "sim/presets/presets.hpp"

namespace twinspeed::planner {
namespace {

const ModelConfig& gpt_bench() {
  static const ModelConfig model = load_model_preset("gpt-bench");
  return model;
}

PlanRequest request(int world, LoadOptions options = {}) {
  PlanRequest r{.model = &gpt_bench(),
                .cluster = sim::cluster_for_world(sim::cluster_preset("dgx-h100"), world),
                .world = world,
                .options = options};
  r.seq_len = 128;
  return r;
}

TEST(StepFlops, GptIsMegatronsClosedFormAndRecomputeAddsTheBlocksForward) {
  const ModelConfig& m = gpt_bench();
  const double B = 16, s = 128, L = 6, h = 512, V = 8192;
  const PlanFlops f = step_flops(m, 128, 16, RecomputeMode::none);
  EXPECT_DOUBLE_EQ(f.model_per_step, 72 * B * s * L * h * h * (1 + s / (6 * h) + V / (12 * L * h)));
  EXPECT_DOUBLE_EQ(f.hardware_per_step, f.model_per_step);
  // Full recompute: Megatron's 96 BsLh^2 (1 + s/(6h) + V/(16Lh)).
  const PlanFlops full = step_flops(m, 128, 16, RecomputeMode::full);
  EXPECT_DOUBLE_EQ(full.model_per_step, f.model_per_step);
  EXPECT_DOUBLE_EQ(full.hardware_per_step, 96 * B * s * L * h * h * (1 + s / (6 * h) + V / (16 * L * h)));
}

TEST(StepFlops, LlamaCountsGroupedQueryAttentionAndSwiGlu) {
  const ModelConfig m = load_model_preset("llama3-8b");
  const double s = 4096, h = 4096, kv = 1024, f = 14336, V = 128256, L = 32;
  // Per token, forward: q and o 2*2h^2, k and v 2*2*h*kv, scores and context 2*2*s*h, SwiGLU 3*2*h*f; head 2hV.
  const double forward = L * (4 * h * h + 4 * h * kv + 4 * s * h + 6 * h * f) + 2 * h * V;
  EXPECT_DOUBLE_EQ(step_flops(m, 4096, 1, RecomputeMode::none).model_per_step, 3 * forward * s);
  // Selective recompute repeats the attention core only.
  EXPECT_DOUBLE_EQ(step_flops(m, 4096, 1, RecomputeMode::selective).hardware_per_step,
                   3 * forward * s + L * 4 * s * h * s);
}

TEST(StepFlops, FlashAttentionKeepsModelFlopsAndAddsTheRecomputedScoresToHardwareFlops) {
  const ModelConfig m = load_model_preset("llama3-8b");
  const double s = 4096, h = 4096, L = 32;
  const PlanFlops standard = step_flops(m, 4096, 1, RecomputeMode::none);
  const PlanFlops flash = step_flops(m, 4096, 1, RecomputeMode::none, AttentionKernel::flash);
  EXPECT_DOUBLE_EQ(flash.model_per_step, standard.model_per_step);
  EXPECT_DOUBLE_EQ(flash.hardware_per_step, standard.hardware_per_step + L * 2 * s * s * h);
}

TEST(Plan, FlashAttentionHoldsFewerActivationBytesAndIsRefusedInNumericFidelity) {
  PlanRequest r = request(8, {.micro_batch = 2});
  r.seq_len = 256;
  const PlanResult standard = make_plan(r);
  r.attention = AttentionKernel::flash;
  const PlanResult flash = make_plan(r);
  EXPECT_EQ(flash.parallelism.attention, AttentionKernel::flash);
  // gpt-bench (8 heads, attention dropout) at s = 256, micro-batch 2, 6 blocks: 5as^2b saved
  // bytes per block become 4asb.
  const std::int64_t a = 8, s = 256, b = 2, blocks = 6;
  EXPECT_EQ(standard.peak.at_peak(MemoryTag::activations) -
                flash.peak.at_peak(MemoryTag::activations),
            blocks * (5 * a * s * s * b - 4 * a * s * b));
  EXPECT_GT(flash.step_time_ns, 0);

  const Config config = Config::from_json(default_plan_config(), {.world = 2});
  EXPECT_THROW(run_simulation({.config = &config, .model = &gpt_bench(), .cluster = r.cluster, .seq_len = 64,
                               .fidelity = sim::Fidelity::numeric, .attention = AttentionKernel::flash,
                               .make_model = make_shape_rank_model}),
               NotImplemented);
}

TEST(Plan, EqualsTheShapeSimulationItRuns) {
  PlanRequest r = request(8, {.zero_stage = 2, .micro_batch = 2, .gradient_accumulation = 2});
  const PlanResult plan = make_plan(r);
  const Config config = Config::from_json(default_plan_config(), {.world = 8, .zero_stage = 2, .micro_batch = 2,
                                                                  .gradient_accumulation = 2});
  sim::ClusterSpec unbounded = r.cluster;
  unbounded.device.capacity_bytes = 0;
  const SimulateResult sim = run_simulation({.config = &config, .model = &gpt_bench(), .cluster = unbounded,
                                             .steps = 1, .seq_len = 128, .make_model = make_shape_rank_model});
  EXPECT_EQ(plan.step_time_ns, sim.steps.at(0).step_time_ns);
  for (const RankMemory& m : plan.ranks) {
    EXPECT_EQ(m.stats.total_peak_bytes, sim.memory.at(static_cast<std::size_t>(m.rank)).total_peak_bytes);
    EXPECT_EQ(m.stats.at_peak_bytes, sim.memory.at(static_cast<std::size_t>(m.rank)).at_peak_bytes);
  }
  EXPECT_EQ(plan.parallelism.grad_accum, 2);
  EXPECT_EQ(plan.parallelism.global_batch, 2 * 2 * 8);
  EXPECT_TRUE(plan.fits);
  EXPECT_FALSE(plan.extrapolated);
  EXPECT_EQ(plan.breakdown.total(), plan.step_time_ns);
  EXPECT_GT(plan.breakdown[StepPart::forward], 0);
  EXPECT_GT(plan.breakdown[StepPart::backward], 0);
  EXPECT_GT(plan.breakdown[StepPart::optimizer], 0);
  EXPECT_DOUBLE_EQ(plan.tokens_per_s, 32.0 * 128 / (static_cast<double>(plan.step_time_ns) * 1e-9));
}

TEST(Plan, ADeviceTooSmallNamesTheRankTheTagAndTheExcessAndSuggestsOneKnobFits) {
  PlanRequest r = request(8, {.micro_batch = 8});
  const PlanResult roomy = make_plan(r);
  // A device a little smaller than the peak: activations are the largest live tag at stage 0's peak.
  r.cluster.device.capacity_bytes = roomy.peak.total_peak_bytes - (1 << 20);
  const PlanResult plan = make_plan(r);
  ASSERT_FALSE(plan.fits);
  ASSERT_TRUE(plan.overflow.has_value());
  EXPECT_EQ(plan.overflow->over_bytes, 1 << 20);
  EXPECT_EQ(plan.overflow->rank, plan.peak_rank);
  EXPECT_GT(plan.overflow->request_bytes, 0);
  ASSERT_FALSE(plan.nearest_fits.empty());
  EXPECT_LE(plan.nearest_fits.size(), 3u);
  for (std::size_t i = 0; i < plan.nearest_fits.size(); ++i) {
    const NearestFit& f = plan.nearest_fits[i];
    EXPECT_LE(f.peak_bytes, r.cluster.device.capacity_bytes) << f.flag;
    if (i > 0) {
      EXPECT_LE(plan.nearest_fits[i - 1].step_time_ns, f.step_time_ns);
    }
    for (std::size_t j = 0; j < i; ++j) EXPECT_NE(plan.nearest_fits[j].knob, f.knob);
    EXPECT_EQ(f.parallelism.global_batch, plan.parallelism.global_batch) << f.flag;
  }
}

TEST(Plan, IsDeterministic) {
  const PlanRequest r = request(16, {.pp = 2, .micro_batch = 2, .global_batch = 256});
  const PlanResult a = make_plan(r), b = make_plan(r);
  EXPECT_EQ(a.step_time_ns, b.step_time_ns);
  EXPECT_EQ(a.breakdown, b.breakdown);
  EXPECT_EQ(a.critical_rank, b.critical_rank);
  ASSERT_EQ(a.ranks.size(), b.ranks.size());
  for (std::size_t i = 0; i < a.ranks.size(); ++i) EXPECT_EQ(a.ranks[i].stats.at_peak_bytes, b.ranks[i].stats.at_peak_bytes);
}

TEST(Plan, InputsThatCannotBePlannedAreConfigErrors) {
  EXPECT_THROW(make_plan(request(8, {.tp = 3})), ConfigError);
  EXPECT_THROW(make_plan(request(8, {.micro_batch = 3, .global_batch = 16})), ConfigError);
  EXPECT_THROW(make_plan(request(8, {.precision = "fp8"})), ConfigError);
}

RC_GTEST_PROP(PlanProperty, ExtrapolatedStepEqualsTheFullRunForUpTo64MicroBatches, ()) {
  const int pp = *rc::gen::element(1, 2, 3);
  const int dp = *rc::gen::element(1, 2);
  const int zero = *rc::gen::inRange(0, pp > 1 ? 2 : 4);
  // Long enough for both attempts (A0 = pp + 1, then 2 pp + 2): the plan must extrapolate.
  const std::int64_t accumulation = *rc::gen::inRange<std::int64_t>(3 * (2 * pp + 4) + 1, 65);
  const auto recompute = *rc::gen::element(RecomputeMode::none, RecomputeMode::full);
  PlanRequest r = request(pp * dp, {.pp = pp, .zero_stage = zero, .micro_batch = 1,
                                    .global_batch = dp * accumulation});
  r.recompute = recompute;
  const PlanResult fast = make_plan(r);
  r.extrapolate = false;
  const PlanResult full = make_plan(r);
  RC_ASSERT(fast.extrapolated);
  RC_ASSERT(!full.extrapolated);
  RC_ASSERT(fast.step_time_ns == full.step_time_ns);
  RC_ASSERT(fast.breakdown == full.breakdown);
  RC_ASSERT(fast.critical_rank == full.critical_rank);
  RC_ASSERT(fast.peak.at_peak_bytes == full.peak.at_peak_bytes);
}

RC_GTEST_PROP(PlanProperty, BreakdownSumsToTheStepTimeAndMfuIsAtMostOne, ()) {
  const int tp = *rc::gen::element(1, 2, 4);
  const int pp = *rc::gen::element(1, 2);
  const int dp = *rc::gen::element(1, 2);
  const int zero = *rc::gen::inRange(0, pp > 1 ? 2 : 4);
  PlanRequest r = request(tp * pp * dp, {.tp = tp, .pp = pp, .zero_stage = zero,
                                         .micro_batch = *rc::gen::inRange<std::int64_t>(1, 4),
                                         .gradient_accumulation = *rc::gen::inRange<std::int64_t>(1, 6)});
  r.recompute = *rc::gen::element(RecomputeMode::none, RecomputeMode::selective, RecomputeMode::full);
  const PlanResult plan = make_plan(r);
  RC_ASSERT(plan.breakdown.total() == plan.step_time_ns);
  for (std::int64_t v : plan.breakdown.ns) RC_ASSERT(v >= 0);
  RC_ASSERT(plan.mfu > 0.0);
  RC_ASSERT(plan.mfu <= 1.0);
  RC_ASSERT(plan.hfu >= plan.mfu);
  RC_ASSERT(plan.hfu <= 1.0);
  std::int64_t live = 0;
  for (std::int64_t v : plan.peak.at_peak_bytes) live += v;
  RC_ASSERT(live == plan.peak.total_peak_bytes);
}

RC_GTEST_PROP(PlanProperty, PeakMemoryNeverDecreasesWithTheMicroBatch, ()) {
  const int zero = *rc::gen::inRange(0, 4);
  const auto recompute = *rc::gen::element(RecomputeMode::none, RecomputeMode::selective, RecomputeMode::full);
  const std::int64_t mb = *rc::gen::inRange<std::int64_t>(1, 8);
  PlanRequest small = request(4, {.zero_stage = zero, .micro_batch = mb});
  small.recompute = recompute;
  PlanRequest large = small;
  large.options.micro_batch = mb + *rc::gen::inRange<std::int64_t>(1, 8);
  RC_ASSERT(make_plan(small).peak.total_peak_bytes <= make_plan(large).peak.total_peak_bytes);
}

RC_GTEST_PROP(PlanProperty, MoreDataParallelRanksNeverIncreaseZero3ModelStateBytesPerRank, ()) {
  const int dp = *rc::gen::inRange(1, 16);
  const int more = dp + *rc::gen::inRange(1, 16);
  auto states = [](int world) {
    const PlanResult p = make_plan(request(world, {.zero_stage = 3, .micro_batch = 1}));
    return p.peak.peak(MemoryTag::master_params) + p.peak.peak(MemoryTag::optimizer_states);
  };
  RC_ASSERT(states(more) <= states(dp));
}

}  // namespace
}  // namespace twinspeed::planner
