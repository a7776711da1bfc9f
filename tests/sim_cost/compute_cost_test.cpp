#include <gtest/gtest.h>

#include <stdexcept>

#include "sim/cost/compute_cost.hpp"
#include "sim/presets/presets.hpp"

namespace twinspeed::sim {
namespace {

using comm::ComputeCost;
using comm::OpClass;

// Round numbers: bf16 matmul 100 TFLOP/s, vector 10 TFLOP/s, 1000 GB/s at 80%, matmul efficiency
// 0.8 x g / (g + 1 GFLOP), attention 0.75 of that, 2 us per launch.
DeviceSpec round_device() {
  DeviceSpec d;
  d.name = "round";
  d.capacity_bytes = 1;
  d.matmul_peak_tflops = {.fp32 = 10, .fp16 = 100, .bf16 = 100, .fp64 = 0};
  d.vector_peak_tflops = 10;
  d.memory_bandwidth_GBps = 1000;
  d.matmul_max_efficiency = 0.8;
  d.matmul_half_efficiency_gflop = 1.0;
  d.attention_relative_efficiency = 0.75;
  d.memory_efficiency = 0.8;
  d.launch_overhead_ns = 2000;
  return d;
}

TEST(ComputeCost, MatmulEfficiencyRampsWithItsSize) {
  DeviceSpec d = round_device();
  // 1 GFLOP: efficiency 0.8 x 1/2 = 0.4 -> 1e9 / (100e12 x 0.4) s = 25 us, + 2 us launch.
  EXPECT_EQ(compute_time_ns(d, {.op_class = OpClass::matmul, .flops = 1e9}, DType::bf16), 27000);
  // 99 GFLOP: efficiency 0.8 x 99/100 = 0.792 -> 1250 us.
  EXPECT_EQ(compute_time_ns(d, {.op_class = OpClass::matmul, .flops = 99e9}, DType::bf16), 1252000);
  EXPECT_LT(compute_efficiency(d, OpClass::matmul, 1e8, DType::bf16),
            compute_efficiency(d, OpClass::matmul, 1e10, DType::bf16));
}

TEST(ComputeCost, AttentionRunsAtAFractionOfTheMatmulCurve) {
  DeviceSpec d = round_device();
  // 0.4 x 0.75 = 0.3 -> 1e9 / 30e12 s = 33333.3 ns.
  EXPECT_EQ(compute_time_ns(d, {.op_class = OpClass::attention, .flops = 1e9}, DType::bf16), 2000 + 33333);
}

TEST(ComputeCost, MemoryBoundOpsPayTheirBytesAtAchievedBandwidth) {
  DeviceSpec d = round_device();
  // 600 MB read + 200 MB written at 800 GB/s = 1 ms; 1e9 FLOP at 10 TFLOP/s would be 100 us.
  ComputeCost cost{.op_class = OpClass::elementwise, .flops = 1e9, .bytes_read = 600'000'000, .bytes_written = 200'000'000};
  EXPECT_EQ(compute_time_ns(d, cost, DType::f32), 1'002'000);
}

TEST(ComputeCost, TheRooflineTakesTheSlowerOfComputeAndMemory) {
  DeviceSpec d = round_device();
  // 1 GFLOP matmul (25 us) that moves 80 MB (100 us): memory-bound.
  ComputeCost cost{.op_class = OpClass::matmul, .flops = 1e9, .bytes_read = 80'000'000, .bytes_written = 0};
  EXPECT_EQ(compute_time_ns(d, cost, DType::bf16), 102000);
}

TEST(ComputeCost, AMatmulLaunchTakesAtLeastTheHostOverhead) {
  DeviceSpec d = round_device();
  d.host_overhead_ns = 100'000;
  // 1 GFLOP matmul: 25 us on the device, host-bound at 100 us; + 2 us launch.
  EXPECT_EQ(compute_time_ns(d, {.op_class = OpClass::matmul, .flops = 1e9}, DType::bf16), 102000);
  // 99 GFLOP: 1250 us on the device hides the host's 100 us.
  EXPECT_EQ(compute_time_ns(d, {.op_class = OpClass::matmul, .flops = 99e9}, DType::bf16), 1252000);
  // Only matmul launches (a layer's pass) carry the host floor: a copy or an attention core does not.
  EXPECT_EQ(compute_time_ns(d, {.op_class = OpClass::copy, .bytes_read = 8'000'000}, DType::bf16), 12000);
  EXPECT_EQ(compute_time_ns(d, {.op_class = OpClass::attention, .flops = 1e9}, DType::bf16), 2000 + 33333);
}

TEST(ComputeCost, ASlowerDtypeReachesHalfEfficiencyWithProportionallyFewerFlops) {
  DeviceSpec d = round_device();
  // The half point, 1 GFLOP at the fastest peak (bf16, 100 TFLOP/s), is 10 us there; fp32 (10
  // TFLOP/s) reaches it with 0.1 GFLOP: efficiency 0.8 x 1 / 1.1 -> 1e9 / (10e12 x 0.8 / 1.1) s = 137.5 us.
  EXPECT_DOUBLE_EQ(compute_efficiency(d, OpClass::matmul, 1e8, DType::f32), 0.4);
  EXPECT_EQ(compute_time_ns(d, {.op_class = OpClass::matmul, .flops = 1e9}, DType::f32), 2000 + 137500);
  // At the fastest dtype the half point is the stated 1 GFLOP.
  EXPECT_DOUBLE_EQ(compute_efficiency(d, OpClass::matmul, 1e9, DType::bf16), 0.4);
}

TEST(ComputeCost, DtypesWithoutAMatrixPathUseTheVectorPeak) {
  DeviceSpec d = round_device();
  // fp64 has no matrix peak here: the vector peak, 10 TFLOP/s, with the half point scaled to it
  // (0.1 GFLOP): 1e9 / (10e12 x 0.8 / 1.1) s = 137.5 us.
  EXPECT_EQ(compute_time_ns(d, {.op_class = OpClass::matmul, .flops = 1e9}, DType::f64), 2000 + 137500);
  EXPECT_EQ(compute_time_ns(d, {.op_class = OpClass::matmul, .flops = 1e9}, DType::i32), 2000 + 137500);
  EXPECT_DOUBLE_EQ(peak_flops_per_s(d, OpClass::reduction, DType::bf16), 10e12);
}

TEST(ComputeCost, ALaunchStandingForSeveralKernelsPaysTheOverheadOfEach) {
  const DeviceSpec d = round_device();
  // 800 KB at 800 GB/s = 1 us, plus 2 us per kernel.
  comm::ComputeCost copies = comm::copy_cost(400'000);
  copies.kernels = 5;
  EXPECT_EQ(compute_time_ns(d, copies, DType::bf16), 5 * 2000 + 1000);
  copies.kernels = 0;
  EXPECT_EQ(compute_time_ns(d, copies, DType::bf16), 1000);
}

TEST(ComputeCost, AnEmptyLaunchCostsItsOverheadAndBadInputsThrow) {
  DeviceSpec d = round_device();
  EXPECT_EQ(compute_time_ns(d, {}, DType::f32), 2000);
  EXPECT_THROW(compute_time_ns(d, {.op_class = OpClass::copy, .flops = -1.0}, DType::f32), std::invalid_argument);
  EXPECT_THROW(compute_time_ns(d, {.op_class = OpClass::copy, .bytes_read = -1}, DType::f32), std::invalid_argument);
  EXPECT_THROW(compute_time_ns(d, {.op_class = OpClass::copy, .kernels = -1}, DType::f32), std::invalid_argument);
  d.memory_bandwidth_GBps = 0;
  EXPECT_THROW(compute_time_ns(d, {}, DType::f32), std::invalid_argument);
}

TEST(ComputeCost, EveryPresetDeviceCostsAGemm) {
  for (const DeviceSpec& d : device_presets()) {
    SCOPED_TRACE(d.name);
    // 4096^3 GEMM in bf16: 137 GFLOP.
    const double flops = 2.0 * 4096.0 * 4096.0 * 4096.0;
    std::int64_t ns = compute_time_ns(d, {.op_class = OpClass::matmul, .flops = flops}, DType::bf16);
    EXPECT_GT(ns, 0);
    EXPECT_GE(static_cast<double>(ns - d.launch_overhead_ns),
              flops / peak_flops_per_s(d, OpClass::matmul, DType::bf16) * 1e9 * 0.999);
    EXPECT_GE(ns, d.launch_overhead_ns + d.host_overhead_ns);
  }
}

}  // namespace
}  // namespace twinspeed::sim
