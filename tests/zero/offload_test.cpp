// ZeRO-Offload (zero_optimization.offload_optimizer.device "cpu") against the same ZeRO stage on
// the device, on the LibTorch-free toy model.
//
// Bit-identical by construction: offloading moves the master weights, the optimizer states and the
// master-dtype gradients to host memory, but every element goes through the same kernels in the
// same order (the 16-bit -> fp32 gradient cast, unscale/clip, AdamW, the fp32 -> 16-bit cast back);
// the copies across PCIe are byte copies. So parameters, losses and norms are compared exactly.

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

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
  std::int64_t to_host = 0, to_device = 0, cpu_steps = 0;
  for (const TraceEvent& e : r.events) {
    if (e.lane == "copy" && e.name == "copy to host") {
      ++to_host;
      EXPECT_EQ(e.duration_ns, 100 + e.bytes / 2);  // toy_costs' host link
    }
    if (e.lane == "copy" && e.name == "copy to device") ++to_device;
    if (e.lane == "cpu" && e.name == "optimizer step") ++cpu_steps;
    EXPECT_FALSE(e.lane == "compute" && e.name == "optimizer step");
  }
  EXPECT_EQ(to_host, 1);
  EXPECT_EQ(to_device, 1);
  EXPECT_EQ(cpu_steps, 1);
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
