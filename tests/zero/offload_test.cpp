// ZeRO-Offload (zero_optimization.offload_optimizer.device "cpu") against the same ZeRO stage on
// the device, on the LibTorch-free toy model.
//
// Bit-identical by construction: offloading moves the master weights, the optimizer states and the
// master-dtype gradients to host memory, but every element goes through the same kernels in the
// same order (the 16-bit -> fp32 gradient cast, unscale/clip, AdamW, the fp32 -> 16-bit cast back);
// the copies across PCIe are byte copies. So parameters, losses and norms are compared exactly.

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>

#include "engine/core/errors.hpp"
#include "tests/zero/zero_harness.hpp"

namespace twinspeed::testing {
namespace {

nlohmann::json cpu_offload() { return {{"device", "cpu"}, {"pin_memory", true}}; }

RC_GTEST_PROP(OffloadProperty, ZeroKWithOptimizerOffloadTrainsBitIdenticallyToZeroKOnTheDevice, ()) {
  const char* precisions[] = {"fp32", "bf16", "fp16"};
  RunSpec spec{.world = *rc::gen::inRange(1, 5),
               .stage = *rc::gen::inRange(1, 4),
               .micro = *rc::gen::inRange<std::int64_t>(1, 3),
               .gas = *rc::gen::inRange<std::int64_t>(1, 3),
               .steps = 2,
               .precision = precisions[*rc::gen::inRange(0, 3)]};
  spec.model = ToyModel{.widths = *rc::gen::container<std::vector<std::int64_t>>(
                            *rc::gen::inRange<std::size_t>(2, 4), rc::gen::inRange<std::int64_t>(1, 7)),
                        .shared_gain = *rc::gen::arbitrary<bool>(),
                        .seed = *rc::gen::inRange<std::uint64_t>(1, 1000)};
  spec.config = {{"gradient_clipping", *rc::gen::element(0.0, 0.05, 1.0)}};
  spec.zero = {{"overlap_comm", *rc::gen::arbitrary<bool>()},
               {"reduce_bucket_size", *rc::gen::inRange<std::int64_t>(1, 60)}};
  const RunResult device = run(spec);
  spec.zero["offload_optimizer"] = cpu_offload();
  const RunResult offloaded = run(spec);
  RC_ASSERT(offloaded.params_per_step == device.params_per_step);
  RC_ASSERT(offloaded.losses == device.losses);
  RC_ASSERT(offloaded.grad_norms == device.grad_norms);
  RC_ASSERT(offloaded.loss_scales == device.loss_scales);
}

TEST(Offload, MasterWeightsAndOptimizerStatesLiveInTheNodesHostMemoryNotOnTheDevice) {
  for (int stage = 1; stage <= 3; ++stage) {
    for (const char* precision : {"fp32", "bf16"}) {
      SCOPED_TRACE(::testing::Message() << "stage " << stage << " " << precision);
      RunSpec spec{.world = 4, .stage = stage, .steps = 1, .precision = precision, .ranks_per_node = 2};
      spec.model = ToyModel{.widths = {5, 7, 3}, .seed = 3};
      const RunResult device = run(spec);
      spec.zero["offload_optimizer"] = cpu_offload();
      const RunResult offloaded = run(spec);
      for (int r = 0; r < spec.world; ++r) {
        const auto& dev_before = device.memory_after_run[static_cast<std::size_t>(r)];
        const auto& dev_after = offloaded.memory_after_run[static_cast<std::size_t>(r)];
        const auto& host = offloaded.host_after_run[static_cast<std::size_t>(r)];
        EXPECT_EQ(dev_after.current(MemoryTag::master_params), 0);
        EXPECT_EQ(dev_after.current(MemoryTag::optimizer_states), 0);
        EXPECT_EQ(dev_after.current(MemoryTag::params), dev_before.current(MemoryTag::params));
        EXPECT_EQ(dev_after.current(MemoryTag::grads), dev_before.current(MemoryTag::grads));
        // Two ranks share a node: its host holds both ranks' partitions (equal-sized by construction).
        EXPECT_EQ(host.current(MemoryTag::master_params), 2 * dev_before.current(MemoryTag::master_params));
        EXPECT_EQ(host.current(MemoryTag::optimizer_states), 2 * dev_before.current(MemoryTag::optimizer_states));
        // The master-dtype gradient partition DeepSpeed keeps in pinned memory for the CPU step.
        EXPECT_EQ(host.current(MemoryTag::grads), host.current(MemoryTag::master_params));
        EXPECT_EQ(host.current(MemoryTag::temporaries), 0);
        EXPECT_EQ(device.host_after_run[static_cast<std::size_t>(r)].total_peak_bytes, 0);
      }
    }
  }
}

TEST(Offload, TheStepCopiesGradientsAndParametersOverPcieAndStepsOnTheCpu) {
  RunSpec spec{.world = 2, .stage = 2, .steps = 1, .precision = "bf16"};
  spec.model = ToyModel{.widths = {6, 8, 4}, .seed = 5};
  spec.zero["offload_optimizer"] = cpu_offload();
  const RunResult r = run(spec);
  std::int64_t to_host_bytes = 0, to_device = 0, cpu_steps = 0;
  for (const TraceEvent& e : r.events) {
    if (e.lane == "copy" && e.name == "copy to host") {
      to_host_bytes += e.bytes;
      EXPECT_EQ(e.duration_ns, 100 + e.bytes / 2);  // toy_costs' host link
    }
    if (e.lane == "copy" && e.name == "copy to device") ++to_device;
    if (e.lane == "cpu" && e.name == "optimizer step") ++cpu_steps;
    EXPECT_FALSE(e.lane == "compute" && e.name == "optimizer step");
  }
  // The bf16 gradient partition crosses once, whole (in the buckets' pieces plus any padding).
  EXPECT_EQ(to_host_bytes, r.host_after_run[0].current(MemoryTag::grads) / 2);  // fp32 on the host
  EXPECT_EQ(to_device, 1);
  EXPECT_EQ(cpu_steps, 1);
}

// DeepSpeed copies each reduced bucket's slices of the partition to the host as the bucket
// finishes, so the copies overlap the rest of backward (stage_1_and_2.py copy_grads_in_partition,
// stage3.py partition_grads). Small buckets make several reductions per backward.
TEST(Offload, TheBoundaryMicroStepsCopiesToTheHostStartWhileBackwardStillRuns) {
  for (int stage = 1; stage <= 3; ++stage) {
    for (const bool overlap : {false, true}) {
      if (stage == 1 && !overlap) continue;  // stage 1 reduces after backward without overlap_comm
      SCOPED_TRACE(::testing::Message() << "stage " << stage << " overlap_comm " << overlap);
      RunSpec spec{.world = 2, .stage = stage, .gas = 2, .steps = 2, .precision = "bf16"};
      spec.model = ToyModel{.widths = {6, 8, 8, 4}, .seed = 5};
      spec.zero = {{"offload_optimizer", cpu_offload()}, {"overlap_comm", overlap}, {"reduce_bucket_size", 16}};
      const RunResult r = run(spec);
      // Per step: the first copy to the host and the end of the boundary micro-step's backward.
      std::map<std::int64_t, std::int64_t> first_copy, last_backward_end;
      std::int64_t bytes = 0;
      for (const TraceEvent& e : r.events) {
        if (e.lane == "copy" && e.name == "copy to host") {
          bytes += e.bytes;
          auto [it, fresh] = first_copy.emplace(e.step, e.start_ns);
          if (!fresh) it->second = std::min(it->second, e.start_ns);
        }
        if (e.lane == "compute" && e.name.ends_with(" backward") && e.micro_batch % spec.gas == spec.gas - 1) {
          auto& end = last_backward_end[e.step];
          end = std::max(end, e.start_ns + e.duration_ns);
        }
      }
      ASSERT_EQ(first_copy.size(), 2u);
      for (const auto& [step, start] : first_copy) EXPECT_LT(start, last_backward_end.at(step)) << "step " << step;
      // Every element of the bf16 partition crosses once a step.
      EXPECT_EQ(bytes, 2 * (r.host_after_run[0].current(MemoryTag::grads) / 2));  // two steps; fp32 on the host
    }
  }
}

TEST(Offload, AnOverflowOnOneRankSkipsTheStepOnEveryRankAsOnTheDevice) {
  for (int stage = 1; stage <= 3; ++stage) {
    SCOPED_TRACE(::testing::Message() << "stage " << stage);
    RunSpec spec{.world = 3, .stage = stage, .micro = 1, .steps = 3, .precision = "fp16"};
    spec.model = ToyModel{.widths = {4, 5, 3}, .seed = 9};
    spec.zero = {{"reduce_bucket_size", 8}};
    spec.overflows = {{2, 1, 0, 0}};  // +inf in rank 2's gradient at step 1
    const RunResult device = run(spec);
    spec.zero["offload_optimizer"] = cpu_offload();
    const RunResult offloaded = run(spec);
    EXPECT_EQ(offloaded.skipped, (std::vector<bool>{false, true, false}));  // rank 0's view
    EXPECT_EQ(offloaded.skipped, device.skipped);
    EXPECT_EQ(offloaded.loss_scales, device.loss_scales);
    EXPECT_EQ(offloaded.params_per_step, device.params_per_step);
  }
}

TEST(Offload, StageZeroAndNvmeAreRefusedWithTheKeyThatAskedForThem) {
  RunSpec spec{.world = 1, .stage = 0, .steps = 1};
  spec.model = ToyModel{.widths = {2, 2}, .seed = 1};
  spec.zero["offload_optimizer"] = cpu_offload();
  EXPECT_THROW(run(spec), ConfigError);
  spec.stage = 2;
  spec.zero["offload_optimizer"] = {{"device", "nvme"}, {"nvme_path", "/tmp"}};
  EXPECT_THROW(run(spec), NotImplemented);
  spec.stage = 3;
  spec.zero = {{"offload_param", {{"device", "cpu"}}}};
  EXPECT_THROW(run(spec), NotImplemented);
}

}  // namespace
}  // namespace twinspeed::testing
