// ZeRO stages 1-3 against ZeRO-0, on the LibTorch-free toy model (tests/zero/toy_runner.hpp).
//
// Bit-identical by construction (the same float operations in the same order on every element):
// fp32, one micro-step per step, prescale_gradients (every path divides by N before summing in
// rank order), no clipping (the norm's summation order differs between stages). Everything else
// is compared within a tolerance.

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <malloc.h>
#include <cmath>

#include "engine/core/errors.hpp"
#include "engine/core/zero_memory.hpp"
#include "engine/precision/loss_scaler.hpp"
#include "tests/zero/zero_harness.hpp"

namespace twinspeed::testing {
namespace {

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

rc::Gen<ToyModel> gen_model() {
  return rc::gen::apply(
      [](std::vector<std::int64_t> widths, bool gain, std::uint64_t seed) {
        return ToyModel{.widths = std::move(widths), .shared_gain = gain, .seed = seed};
      },
      rc::gen::container<std::vector<std::int64_t>>(
          *rc::gen::inRange<std::size_t>(2, 5), rc::gen::inRange<std::int64_t>(1, 7)),
      rc::gen::arbitrary<bool>(), rc::gen::inRange<std::uint64_t>(1, 1000));
}

// Communication settings of stages 1-3 that must not change the result.
nlohmann::json gen_zero_comm() {
  return {{"reduce_bucket_size", *rc::gen::inRange<std::int64_t>(1, 80)},
          {"overlap_comm", *rc::gen::arbitrary<bool>()},
          {"reduce_scatter", *rc::gen::arbitrary<bool>()},
          {"use_multi_rank_bucket_allreduce", *rc::gen::arbitrary<bool>()},
          {"stage3_prefetch_bucket_size", *rc::gen::inRange<std::int64_t>(0, 100)},
          {"stage3_param_persistence_threshold", *rc::gen::inRange<std::int64_t>(0, 20)},
          {"stage3_max_live_parameters", *rc::gen::inRange<std::int64_t>(0, 200)}};
}

RC_GTEST_PROP(ZeroProperty, StagesOneToThreeTrainBitIdenticallyToStageZeroInFp32WithPrescaling, ()) {
  RunSpec spec{.world = *rc::gen::inRange(1, 9), .stage = 0, .micro = *rc::gen::inRange<std::int64_t>(1, 4),
               .gas = 1, .steps = 2};
  spec.model = *gen_model();
  spec.config = {{"prescale_gradients", true}, {"gradient_clipping", 0.0}};
  const RunResult reference = run(spec);
  spec.stage = *rc::gen::inRange(1, 4);
  spec.zero = gen_zero_comm();
  const RunResult zero = run(spec);
  RC_ASSERT(zero.params == reference.params);
  RC_ASSERT(zero.losses == reference.losses);
}

RC_GTEST_PROP(ZeroProperty, StagesOneToThreeTrainLikeStageZeroWithAccumulationClippingAndPredivision, ()) {
  RunSpec spec{.world = *rc::gen::inRange(1, 9), .stage = 0, .micro = *rc::gen::inRange<std::int64_t>(1, 4),
               .gas = *rc::gen::inRange<std::int64_t>(1, 4), .steps = 2};
  spec.model = *gen_model();
  spec.precision = *rc::gen::element<std::string>("fp32", "bf16", "fp16");
  // SGD with momentum is linear in the gradients, so reduction-order differences stay small
  // (Adam normalises them: a gradient near zero could flip the sign of its update).
  spec.config = {{"gradient_clipping", *rc::gen::element(0.0, 0.05)},
                 {"gradient_predivide_factor", *rc::gen::element(1.0, 2.0)},
                 {"optimizer", {{"type", "SGD"}, {"params", {{"lr", 0.05}, {"momentum", 0.9}}}}}};
  const RunResult reference = run(spec);
  spec.stage = *rc::gen::inRange(1, 4);
  spec.zero = gen_zero_comm();
  // ZeRO-3 with gradient_predivide_factor == N averages to sum / N^2, as DeepSpeed does (tested in
  // Zero.StageThreeAveragesAsDeepSpeedsReduceScatterCoalesced): not stage 0's mean.
  RC_PRE(!(spec.stage == 3 && spec.config["gradient_predivide_factor"].get<double>() == spec.world));
  const RunResult zero = run(spec);
  const float tolerance = spec.precision == "fp32" ? 1e-5f : 3e-2f;
  RC_ASSERT(max_abs_diff(zero.params, reference.params) <= tolerance);
}

RC_GTEST_PROP(ZeroProperty, AccumulatingKMicroBatchesEqualsOneKTimesLargerBatchAtEveryStage, ()) {
  const auto k = *rc::gen::inRange<std::int64_t>(2, 4);
  RunSpec small{.world = *rc::gen::inRange(1, 5), .stage = *rc::gen::inRange(0, 4),
                .micro = *rc::gen::inRange<std::int64_t>(1, 3), .gas = k, .steps = 2};
  small.model = *gen_model();
  small.zero = gen_zero_comm();
  small.config = {{"optimizer", {{"type", "SGD"}, {"params", {{"lr", 0.05}, {"momentum", 0.9}}}}}};
  RunSpec large = small;
  large.micro = small.micro * k;
  large.gas = 1;
  RC_ASSERT(max_abs_diff(run(small).params, run(large).params) <= 1e-5f);
}

TEST(Zero, TheLossFallsAtEveryStageAndPrecision) {
  for (int stage = 0; stage <= 3; ++stage) {
    for (const char* precision : {"fp32", "bf16", "fp16"}) {
      RunSpec spec{.world = 4, .stage = stage, .micro = 4, .gas = 2, .steps = 30, .precision = precision};
      spec.model = {.widths = {3, 8, 8, 1}, .shared_gain = true, .seed = 3};
      spec.zero = {{"reduce_bucket_size", 20}, {"overlap_comm", true}, {"stage3_param_persistence_threshold", 4}};
      const RunResult r = run(spec);
      const double first = (r.losses[0] + r.losses[1]) / 2, last = (r.losses[58] + r.losses[59]) / 2;
      EXPECT_LT(last, 0.5 * first) << "stage " << stage << " " << precision;
    }
    if (stage == 0) continue;  // 16-bit master weights need ZeRO
    // bf16 master weights, gradients and optimizer states.
    RunSpec spec{.world = 4, .stage = stage, .micro = 4, .gas = 2, .steps = 30, .precision = "bf16"};
    spec.model = {.widths = {3, 8, 8, 1}, .shared_gain = true, .seed = 3};
    spec.config = {{"bf16", {{"enabled", true}, {"bf16_master_weights_and_grads", true}, {"bf16_optimizer_states", true}}}};
    const RunResult r = run(spec);
    EXPECT_LT((r.losses[58] + r.losses[59]) / 2, 0.5 * (r.losses[0] + r.losses[1]) / 2) << "stage " << stage << " bf16 master";
  }
}

TEST(Zero, MixedPrecisionWithSeveralParamGroupsTrainsLikeStageZero) {
  // Weights and biases in two groups with their own weight decay; the step's fp32 gradients are
  // one short-lived Buffer per group.
  for (const char* precision : {"bf16", "fp16"}) {
    RunSpec spec{.world = 2, .stage = 0, .micro = 2, .gas = 2, .steps = 3, .precision = precision};
    spec.model = {.widths = {3, 5, 1}, .shared_gain = false, .seed = 5};
    spec.param_groups = {{.parameters = {0, 2}, .lr = std::nullopt, .weight_decay = 0.1},
                         {.parameters = {1, 3}, .lr = std::nullopt, .weight_decay = 0.0}};
    spec.config = {{"optimizer", {{"type", "SGD"}, {"params", {{"lr", 0.05}, {"momentum", 0.9}}}}}};
    const RunResult reference = run(spec);
    for (int stage = 1; stage <= 3; ++stage) {
      spec.stage = stage;
      EXPECT_LE(max_abs_diff(run(spec).params, reference.params), 3e-2f) << precision << " stage " << stage;
    }
  }
}

// ---- Memory ------------------------------------------------------------------------------------

RC_GTEST_PROP(ZeroProperty, BytesPerTagEqualTheZeroFormulaPlusBuckets, ()) {
  RunSpec spec{.world = *rc::gen::inRange(1, 9), .stage = *rc::gen::inRange(0, 4), .micro = 1, .gas = 1, .steps = 1};
  spec.model = *gen_model();
  spec.precision = *rc::gen::element<std::string>("fp32", "bf16", "fp16");
  const std::int64_t bucket = *rc::gen::inRange<std::int64_t>(1, 80);
  const bool overlap = *rc::gen::arbitrary<bool>();
  spec.zero = {{"reduce_bucket_size", bucket}, {"overlap_comm", overlap}, {"stage3_param_persistence_threshold", 0}};
  const DType dtype = spec.precision == "fp32" ? DType::f32 : spec.precision == "bf16" ? DType::bf16 : DType::f16;
  // 16-bit master weights and bf16 optimizer states where the config asks (DeepSpeed allows them
  // with ZeRO only, bf16 states only with bf16 master weights).
  const bool master16 = spec.precision != "fp32" && spec.stage > 0 && *rc::gen::arbitrary<bool>();
  const bool states16 = spec.precision == "bf16" && master16 && *rc::gen::arbitrary<bool>();
  if (spec.precision == "bf16") {
    spec.config["bf16"] = {{"enabled", true}, {"bf16_master_weights_and_grads", master16},
                           {"bf16_optimizer_states", states16}};
  } else if (spec.precision == "fp16") {
    spec.config["fp16"] = {{"enabled", true}, {"initial_scale_power", 8}, {"fp16_master_weights_and_grads", master16}};
  }
  const RunResult r = run(spec);
  const ZeroRankBytes expected =
      zero_memory_per_rank(r.numels,
                           {.stage = spec.stage, .world = spec.world, .param_dtype = dtype, .grad_dtype = dtype,
                            .master_dtype = master16 ? dtype : DType::f32,
                            .optimizer_state_bytes_per_element = states16 ? 4 : 8},
                           0);
  std::int64_t total = 0;
  for (auto n : r.numels[0]) total += n;
  // Stages 1-2: one bucket, two with overlap_comm, capped at the model; stage 3: one bucket capped
  // at the padded gradients (ceil(n / N) * N per parameter).
  std::int64_t padded = 0;
  for (auto n : r.numels[0]) padded += (n + spec.world - 1) / spec.world * spec.world;
  const auto element = static_cast<std::int64_t>(dtype_size(dtype));
  const std::int64_t buckets = spec.stage == 1 || spec.stage == 2 ? (overlap ? 2 : 1) * std::min(bucket, total) * element
                               : spec.stage == 3                 ? std::min(bucket, padded) * element
                                                                 : 0;
  for (const auto& stats : {r.memory_after_init, r.memory_after_run}) {
    for (const auto& m : stats) {
      for (MemoryTag tag : {MemoryTag::params, MemoryTag::grads, MemoryTag::master_params}) {
        RC_ASSERT(m.current(tag) == expected.bytes(tag));
      }
      RC_ASSERT(m.current(MemoryTag::buckets) == buckets);
      RC_ASSERT(m.current(MemoryTag::temporaries) == 0);
    }
  }
  for (const auto& m : r.memory_after_run) RC_ASSERT(m.current(MemoryTag::optimizer_states) == expected.optimizer_states);
}

TEST(Zero, StageThreeReleasesGatheredParametersAfterEachLayerAndKeepsPersistentOnes) {
  RunSpec spec{.world = 4, .stage = 3, .micro = 2, .gas = 1, .steps = 2};
  spec.model = {.widths = {3, 6, 6, 1}, .shared_gain = false, .seed = 5};
  spec.zero = {{"stage3_prefetch_bucket_size", 0}, {"stage3_param_persistence_threshold", 0}};
  const RunResult none = run(spec);
  // Between steps only the shards remain (4-byte elements): ceil(18/4) + ceil(6/4) + ceil(36/4) +
  // ceil(6/4) + ceil(6/4) + ceil(1/4) = 5 + 2 + 9 + 2 + 2 + 1.
  EXPECT_EQ(none.memory_after_run[0].current(MemoryTag::params), 21 * 4);
  // The peak holds the shards plus the largest layer gathered whole (36 + 6 elements, padded to
  // 36 + 8) — and never two layers at once without prefetch.
  EXPECT_EQ(none.memory_after_run[0].peak(MemoryTag::params), (21 + 44) * 4);

  // Parameters under the threshold (the biases of 6, 6 and 1 elements and the last weight of 6)
  // stay gathered, padded to a multiple of 4.
  spec.zero["stage3_param_persistence_threshold"] = 7;
  const RunResult persistent = run(spec);
  EXPECT_EQ(persistent.memory_after_run[0].current(MemoryTag::params), (21 + 8 + 8 + 8 + 4) * 4);
  EXPECT_EQ(persistent.params, none.params);
}

TEST(Zero, StageThreeReleasesGatheredParametersToTheHostAllocator) {
  // Not only the Device's counter: the C allocator's bytes in use (glibc mallinfo2; the
  // simulator's device blocks below 32 MiB come from the C heap) at the start of each layer's
  // forward stay flat across three 512 x 512 layers (1 MiB gathered each) instead of growing by a
  // layer per layer. One rank, so that nothing else in the process allocates in between (the
  // allocator's figures are process-wide); fails when release keeps the memory.
  std::vector<std::int64_t> in_use;
  RunSpec spec{.world = 1, .stage = 3, .micro = 1, .gas = 1, .steps = 1};
  spec.model = {.widths = {512, 512, 512, 512}, .shared_gain = false, .seed = 2,
                .on_forward = [&](int, std::size_t) {
                  const struct mallinfo2 m = mallinfo2();
                  in_use.push_back(static_cast<std::int64_t>(m.uordblks + m.hblkhd));
                }};
  spec.zero = {{"stage3_prefetch_bucket_size", 0}, {"stage3_param_persistence_threshold", 0}};
  run(spec);
  ASSERT_EQ(in_use.size(), 3u);
  constexpr std::int64_t kLayerBytes = 512 * 512 * 4;
  EXPECT_LT(std::abs(in_use[1] - in_use[0]), kLayerBytes / 4) << in_use[0] << " -> " << in_use[1];
  EXPECT_LT(std::abs(in_use[2] - in_use[1]), kLayerBytes / 4) << in_use[1] << " -> " << in_use[2];
}

TEST(Zero, AModelThatDoesNotFitFailsWithOutOfMemoryAndFitsAtAHigherStage) {
  RunSpec spec{.world = 4, .stage = 0, .micro = 1, .gas = 1, .steps = 1};
  spec.model = {.widths = {64, 64, 64, 1}, .shared_gain = false, .seed = 1};
  spec.zero = {{"reduce_bucket_size", 1000}};
  // fp32 AdamW at stage 0: 16 bytes per parameter (8385 parameters: 134,160 bytes); stage 3 over
  // 4 ranks: a quarter of that plus, in backward, a layer gathered whole, its gradients and the
  // prefetched next layer (16,640 bytes each), and this test's own gathering. 120 kB per device.
  spec.capacity_bytes = 120'000;
  try {
    run(spec);
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer_states"), std::string::npos) << e.what();
    EXPECT_EQ(e.context().capacity_bytes, 120'000);
    EXPECT_NE(e.details().find("params"), std::string::npos) << e.details();
  }
  spec.stage = 3;
  try {
    run(spec);
  } catch (const OutOfMemory& e) {
    FAIL() << e.what();
  }
}

// ---- fp16 loss scaling ---------------------------------------------------------------------------

RC_GTEST_PROP(ZeroProperty, TheLossScaleFollowsDeepSpeedsDynamicScalerAndSkippedStepsChangeNothing, ()) {
  RunSpec spec{.world = *rc::gen::inRange(1, 5), .stage = *rc::gen::inRange(0, 4), .micro = 1,
               .gas = *rc::gen::inRange<std::int64_t>(1, 3), .steps = 8, .precision = "fp16"};
  spec.model = {.widths = {2, 3, 1}, .shared_gain = true, .seed = 2};
  spec.config = {{"fp16", {{"enabled", true}, {"initial_scale_power", 6}, {"loss_scale_window", 2},
                           {"hysteresis", *rc::gen::inRange(1, 3)}, {"min_loss_scale", 1}}},
                 {"scheduler", {{"type", "WarmupLR"}, {"params", {{"warmup_num_steps", 10}}}}}};
  // Overflow at random (rank, micro-step, parameter) of a random set of steps.
  std::vector<bool> overflow(static_cast<std::size_t>(spec.steps));
  for (int s = 0; s < spec.steps; ++s) {
    overflow[static_cast<std::size_t>(s)] = *rc::gen::arbitrary<bool>();
    if (!overflow[static_cast<std::size_t>(s)]) continue;
    const int rank = *rc::gen::inRange(0, spec.world);
    const std::int64_t micro = s * spec.gas + *rc::gen::inRange<std::int64_t>(0, spec.gas);
    const std::size_t layer = *rc::gen::inRange<std::size_t>(0, 2);
    spec.overflows.emplace_back(rank, micro, layer, *rc::gen::inRange<std::size_t>(0, layer == 0 ? 3 : 2));
  }
  // ZeRO's DynamicLossScaler; stage 0's FP16_Optimizer has no hysteresis and clamps at the minimum.
  DynamicLossScaler reference({.init_scale = 64, .scale_window = 2, .min_scale = 1,
                               .delayed_shift = spec.stage > 0 ? spec.config["fp16"]["hysteresis"].get<std::int64_t>() : 1,
                               .consecutive_hysteresis = false,
                               .raise_error_at_min_scale = spec.stage > 0});
  std::vector<bool> skipped;
  std::vector<double> scales;
  bool at_minimum = false;
  for (int s = 0; s < spec.steps && !at_minimum; ++s) {
    try {
      skipped.push_back(reference.update(overflow[static_cast<std::size_t>(s)]));
      scales.push_back(reference.scale());
    } catch (const LossScaleAtMinimum&) {
      at_minimum = true;
    }
  }
  if (at_minimum) {
    RC_ASSERT_THROWS_AS(run(spec), LossScaleAtMinimum);
    return;
  }
  const RunResult r = run(spec);
  RC_ASSERT(r.skipped == skipped);
  RC_ASSERT(r.loss_scales == scales);
  for (std::size_t s = 1; s < skipped.size(); ++s) {
    if (!skipped[s]) continue;
    // Parameters and learning rate as after the previous step.
    RC_ASSERT(r.params_per_step[s] == r.params_per_step[s - 1]);
    RC_ASSERT(r.lrs[s] == r.lrs[s - 1]);
  }
}

TEST(Zero, AnOverflowAtTheMinimumScaleIsDeepSpeedsErrorUnderZero) {
  RunSpec spec{.world = 2, .stage = 2, .micro = 1, .gas = 1, .steps = 2, .precision = "fp16"};
  spec.model = {.widths = {2, 3, 1}, .shared_gain = false, .seed = 2};
  spec.config = {{"fp16", {{"enabled", true}, {"initial_scale_power", 0}, {"hysteresis", 1}, {"min_loss_scale", 1}}}};
  spec.overflows = {{1, 1, 0, 0}};
  EXPECT_THROW(run(spec), LossScaleAtMinimum);
  spec.stage = 0;  // FP16_Optimizer clamps at the minimum instead
  EXPECT_NO_THROW(run(spec));
}

TEST(Zero, SkippedStepsAreCountedAndLeaveTheOptimizerStateAlone) {
  // An overflow at step 1 skips it (parameters as after step 0, the scale halved); step 2 trains.
  RunSpec spec{.world = 2, .stage = 1, .micro = 1, .gas = 1, .steps = 3, .precision = "fp16"};
  spec.model = {.widths = {2, 3, 1}, .shared_gain = false, .seed = 2};
  spec.config = {{"fp16", {{"enabled", true}, {"initial_scale_power", 8}, {"hysteresis", 1}}}};
  spec.overflows = {{0, 1, 1, 0}};
  const RunResult r = run(spec);
  EXPECT_EQ(r.skipped, (std::vector<bool>{false, true, false}));
  EXPECT_EQ(r.params_per_step[1], r.params_per_step[0]);
  EXPECT_NE(r.params_per_step[2], r.params_per_step[1]);
  EXPECT_EQ(r.loss_scales[1], r.loss_scales[0] / 2);
}

TEST(Zero, ASkippedStepLeavesTheOptimizerStateAsIfItNeverHappened) {
  // A skips its first step (overflow) and then trains on step 1's data; B trains on step 1's data
  // from the start, with the loss scale A has after halving. Adam's moments and step count, the
  // master weights and the parameters must then be exactly B's (scaling by a power of two is exact).
  for (int stage = 0; stage <= 3; ++stage) {
    RunSpec a{.world = 2, .stage = stage, .micro = 2, .gas = 1, .steps = 2, .precision = "fp16"};
    a.model = {.widths = {2, 4, 1}, .shared_gain = true, .seed = 4};
    a.config = {{"fp16", {{"enabled", true}, {"initial_scale_power", 8}, {"hysteresis", 1}}}};
    a.overflows = {{1, 0, 1, 0}};
    RunSpec b = a;
    b.steps = 1;
    b.first_data_step = 1;
    b.overflows.clear();
    b.config["fp16"]["initial_scale_power"] = 7;
    const RunResult ra = run(a), rb = run(b);
    EXPECT_EQ(ra.skipped, (std::vector<bool>{true, false})) << "stage " << stage;
    EXPECT_EQ(ra.params, rb.params) << "stage " << stage;
  }
}

// ---- DeepSpeed's values, derived by hand --------------------------------------------------------

TEST(Zero, StageOneReducesInFlatOrderThroughBucketsAsDeepSpeedDoes) {
  // widths {3, 5, 1}: gradients of 15, 5, 5 and 1 elements in flat order; reduce_bucket_size 10.
  // reduce_gradients (no overlap_comm) walks them in flat order: 15 > 10 is reduced alone; 5 and 5
  // fill a bucket (10 is not more than 10); 1 overflows it, so [5, 5] goes, then [1] at the end.
  RunSpec spec{.world = 2, .stage = 1, .micro = 1, .gas = 1, .steps = 1, .precision = "bf16"};
  spec.model = {.widths = {3, 5, 1}, .shared_gain = false, .seed = 1};
  spec.zero = {{"reduce_bucket_size", 10}, {"overlap_comm", false}};
  auto bucket_bytes = [](const RunResult& r) {
    std::vector<std::int64_t> bytes;  // bf16 all-reduces (the norm and overflow flag are fp32)
    for (const auto& e : r.events) {
      if (e.op == "all_reduce" && e.dtype == "bf16") bytes.push_back(e.bytes);
    }
    return bytes;
  };
  EXPECT_EQ(bucket_bytes(run(spec)), (std::vector<std::int64_t>{30, 20, 2}));
  // With overlap_comm the hooks reduce as gradients become ready (last layer first, within a layer
  // the last parameter first): 1 + 5 = 6, then 5, then 15 alone.
  spec.zero["overlap_comm"] = true;
  EXPECT_EQ(bucket_bytes(run(spec)), (std::vector<std::int64_t>{12, 10, 30}));
}

TEST(Zero, StageThreeAveragesAsDeepSpeedsReduceScatterCoalesced) {
  // Four ranks; the toy model's gradients differ per rank. gradient_predivide_factor == N gives
  // DeepSpeed's sum / N^2 (its post-multiplication is skipped when the factor equals N); the
  // default (1) gives the mean. Compare the first step's update of SGD (lr 1, no momentum), which is
  // minus the reduced gradient.
  RunSpec spec{.world = 4, .stage = 3, .micro = 1, .gas = 1, .steps = 1};
  spec.model = {.widths = {2, 3, 1}, .shared_gain = false, .seed = 6};
  spec.config = {{"optimizer", {{"type", "SGD"}, {"params", {{"lr", 1.0}}}}}, {"gradient_clipping", 0.0}};
  RunSpec before = spec;
  before.steps = 0;
  const std::vector<float> start = run(before).params;
  const std::vector<float> mean_step = run(spec).params;
  spec.config["gradient_predivide_factor"] = 4.0;
  const std::vector<float> quarter_step = run(spec).params;
  ASSERT_EQ(start.size(), mean_step.size());
  for (std::size_t i = 0; i < start.size(); ++i) {
    EXPECT_NEAR(quarter_step[i] - start[i], (mean_step[i] - start[i]) / 4.0f, 1e-6f) << i;
  }
}

TEST(Zero, StageThreeFp16DividesBeforeSummingSoLargeGradientsDoNotOverflow) {
  // Every rank's gradients are around 3e4 x the loss scale's share; summed before dividing they
  // would pass fp16's 65504 on 4 ranks. DeepSpeed divides first: no step is skipped.
  RunSpec spec{.world = 4, .stage = 3, .micro = 1, .gas = 1, .steps = 2, .precision = "fp16"};
  spec.model = {.widths = {2, 3, 1}, .shared_gain = false, .seed = 6};
  // A static loss scale that brings the largest gradients near 3e4.
  spec.config = {{"fp16", {{"enabled", true}, {"loss_scale", 8192}}}};
  const RunResult r = run(spec);
  EXPECT_EQ(r.skipped, (std::vector<bool>{false, false}));
  // The premise: at 4x that scale a single rank's own gradients already overflow, so a sum of four
  // ranks' before dividing would.
  RunSpec alone = spec;
  alone.world = 1;
  alone.steps = 1;
  alone.config["fp16"]["loss_scale"] = 4 * 8192;
  EXPECT_EQ(run(alone).skipped, (std::vector<bool>{true}));
}

TEST(Zero, TheReportedNormIsUnscaledWithTheScaleBeforeItsUpdate) {
  // loss_scale_window 1: the dynamic scale doubles from the second step on. DeepSpeed reports
  // scaled_norm / prev_scale, so the fp16 norm stays the fp32 one (not half of it).
  RunSpec fp32{.world = 2, .stage = 2, .micro = 2, .gas = 1, .steps = 2};
  fp32.model = {.widths = {2, 4, 1}, .shared_gain = false, .seed = 8};
  fp32.config = {{"gradient_clipping", 0.0}};
  RunSpec fp16 = fp32;
  fp16.precision = "fp16";
  fp16.config["fp16"] = {{"enabled", true}, {"initial_scale_power", 8}, {"loss_scale_window", 1}};
  const RunResult a = run(fp32), b = run(fp16);
  ASSERT_EQ(b.loss_scales, (std::vector<double>{256, 512}));
  for (std::size_t s = 0; s < 2; ++s) EXPECT_NEAR(b.grad_norms[s], a.grad_norms[s], 0.02 * a.grad_norms[s]) << s;
}

// ---- Determinism -------------------------------------------------------------------------------

TEST(Zero, IdenticalRunsWriteIdenticalTraceBytes) {
  for (int stage = 0; stage <= 3; ++stage) {
    RunSpec spec{.world = 4, .stage = stage, .micro = 2, .gas = 2, .steps = 2, .precision = "bf16"};
    spec.model = {.widths = {3, 5, 1}, .shared_gain = true, .seed = 9};
    spec.zero = {{"reduce_bucket_size", 10}, {"overlap_comm", true}};
    const RunResult a = run(spec), b = run(spec);
    EXPECT_EQ(a.trace, b.trace) << "stage " << stage;
    EXPECT_EQ(a.params, b.params);
    EXPECT_GT(a.trace.size(), 1000u);
  }
}

}  // namespace
}  // namespace twinspeed::testing
