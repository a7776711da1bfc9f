// sim/cost/measurement_fit.hpp: the fits `twinspeed calibrate` turns timings into cluster numbers
// with recover the parameters of synthetic data exactly, including data costed by the simulator's
// own collective model.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "engine/core/busbw.hpp"
#include "sim/cost/collective_cost.hpp"
#include "sim/cost/measurement_fit.hpp"
#include "sim/presets/presets.hpp"

namespace twinspeed::sim {
namespace {

TEST(MeasurementFit, MatmulCurveRecoversPeakAndHalfSize) {
  const double peak = 132e9, half_gflop = 1.2e-4;
  std::vector<TimedSample> samples;
  for (double n : {32.0, 64.0, 128.0, 256.0, 512.0, 1024.0}) {
    const double gflop = 2 * n * n * n / 1e9;
    // rate = peak g / (g + g_half)
    samples.push_back({.x = gflop, .seconds = gflop * 1e9 / (peak * gflop / (gflop + half_gflop))});
  }
  const MatmulCurve curve = fit_matmul_curve(samples);
  EXPECT_NEAR(curve.peak_flops_per_s / peak, 1.0, 1e-9);
  EXPECT_NEAR(curve.half_gflop / half_gflop, 1.0, 1e-9);
  EXPECT_FALSE(curve.clamped);
  // Stated at a faster peak (bf16 0.37 TFLOP/s) as the local-cpu preset does: 1.2e-4 x 0.37 / 0.132.
  EXPECT_NEAR(half_gflop_at_fastest_peak(curve, 0.37e12), 1.2e-4 * 0.37 / 0.132, 1e-12);
}

TEST(MeasurementFit, RingAllReduceRecoversBusbwAndStepLatency) {
  for (int ranks : {2, 4, 8}) {
    const double busbw_GBps = 1.82, step_us = 7.8, base_us = 3.0;
    std::vector<TimedSample> samples;
    for (double bytes = 4096; bytes <= 64 << 20; bytes *= 4) {
      const double seconds = (base_us + 2 * (ranks - 1) * step_us) * 1e-6 +
                             seconds_at_bus_bandwidth(CollectiveKind::all_reduce, ranks, bytes, busbw_GBps * 1e9);
      samples.push_back({.x = bytes, .seconds = seconds});
    }
    const RingAllReduce ring = fit_ring_all_reduce(samples, ranks, base_us);
    EXPECT_NEAR(ring.busbw_GBps / busbw_GBps, 1.0, 1e-9) << ranks << " ranks";
    EXPECT_NEAR(ring.ring_step_latency_us / step_us, 1.0, 1e-9) << ranks << " ranks";
  }
}

// Times costed by collective_cost.hpp on a local-cpu cluster with known link numbers fit back to
// those numbers: the fit is the inverse of the model the simulator uses (integer nanoseconds
// leave ~1e-5 of rounding).
TEST(MeasurementFit, RingAllReduceInvertsTheCollectiveModel) {
  ClusterSpec cluster = cluster_preset("local-cpu");
  cluster.devices_per_node = 4;
  cluster.intra_node.busbw_GBps = 2.5;
  cluster.intra_node.ring_step_latency_us = 12.0;
  const std::vector<int> group = {0, 1, 2, 3};
  std::vector<TimedSample> samples;
  for (std::int64_t bytes = 4096; bytes <= (64 << 20); bytes *= 4) {
    samples.push_back({.x = static_cast<double>(bytes),
                       .seconds = collective_time_ns(cluster, CollectiveKind::all_reduce, bytes, group) * 1e-9});
  }
  const RingAllReduce ring = fit_ring_all_reduce(samples, 4, cluster.nccl.ring_base_latency_us);
  EXPECT_NEAR(ring.busbw_GBps / 2.5, 1.0, 1e-4);
  EXPECT_NEAR(ring.ring_step_latency_us / 12.0, 1.0, 1e-4);
}

TEST(MeasurementFit, NegativeInterceptIsClampedToZero) {
  // Pure bandwidth plus noise below zero latency: times slightly under the line through 0.
  const std::vector<TimedSample> samples = {{1e6, 0.98e-3}, {4e6, 4.0e-3}, {16e6, 16.0e-3}};
  const RingAllReduce ring = fit_ring_all_reduce(samples, 2);
  EXPECT_TRUE(ring.clamped);
  EXPECT_EQ(ring.ring_step_latency_us, 0.0);
  EXPECT_GT(ring.busbw_GBps, 0.0);
}

TEST(MeasurementFit, RejectsWhatCannotBeFitted) {
  const std::vector<TimedSample> one_size = {{1.0, 1.0}, {1.0, 1.1}};
  EXPECT_THROW(fit_line_relative(one_size), std::invalid_argument);
  const std::vector<TimedSample> shrinking = {{1.0, 2.0}, {2.0, 1.0}};
  EXPECT_THROW(fit_line_relative(shrinking), std::invalid_argument);
  const std::vector<TimedSample> zero_time = {{1.0, 0.0}, {2.0, 1.0}};
  EXPECT_THROW(fit_line_relative(zero_time), std::invalid_argument);
  const std::vector<TimedSample> fine = {{1.0, 1.0}, {2.0, 2.0}};
  EXPECT_THROW(fit_ring_all_reduce(fine, 1), std::invalid_argument);
}

}  // namespace
}  // namespace twinspeed::sim
