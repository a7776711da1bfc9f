#include <gtest/gtest.h>

#include <stdexcept>

#include "engine/core/busbw.hpp"

namespace twinspeed {
namespace {

TEST(BusBandwidthFactor, FollowsNcclTestsPerformanceMd) {
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::all_reduce, 8), 2.0 * 7 / 8);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::reduce_scatter, 8), 7.0 / 8);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::all_gather, 4), 3.0 / 4);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::all_to_all, 16), 15.0 / 16);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::broadcast, 8), 1.0);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::reduce, 8), 1.0);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::p2p, 2), 1.0);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::barrier, 8), 0.0);
}

// nccl-tests doc/PERFORMANCE.md for every rank count a planner meets: all_reduce 2(n-1)/n;
// reduce_scatter, all_gather and all_to_all (n-1)/n; broadcast, reduce and p2p 1; barrier 0.
TEST(BusBandwidthFactor, EveryRankCountUpTo4096FollowsPerformanceMd) {
  for (int n = 1; n <= 4096; ++n) {
    const double ranks = n;
    EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::all_reduce, n) * ranks, 2.0 * (ranks - 1)) << n;
    for (CollectiveKind kind : {CollectiveKind::reduce_scatter, CollectiveKind::all_gather, CollectiveKind::all_to_all}) {
      EXPECT_DOUBLE_EQ(bus_bandwidth_factor(kind, n) * ranks, ranks - 1) << collective_kind_name(kind) << " " << n;
    }
    for (CollectiveKind kind : {CollectiveKind::broadcast, CollectiveKind::reduce, CollectiveKind::p2p}) {
      EXPECT_EQ(bus_bandwidth_factor(kind, n), 1.0) << collective_kind_name(kind) << " " << n;
    }
    EXPECT_EQ(bus_bandwidth_factor(CollectiveKind::barrier, n), 0.0) << n;
    EXPECT_EQ(nccl_size_bytes(CollectiveKind::all_gather, 3, n), 3 * n) << n;
    EXPECT_EQ(nccl_size_bytes(CollectiveKind::reduce_scatter, 3, n), 3) << n;
  }
}

TEST(BusBandwidthFactor, OneRankMovesNothingAndZeroRanksIsAnError) {
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::all_reduce, 1), 0.0);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::all_gather, 1), 0.0);
  EXPECT_THROW(bus_bandwidth_factor(CollectiveKind::all_reduce, 0), std::invalid_argument);
}

TEST(BusBandwidth, ReproducesAnNccltestsRow) {
  // vtrain_a100_allreduce_8gpu.csv: 1 GiB in 8193.0 us -> busbw 229.35 GB/s.
  const double seconds = 8193.0e-6, bytes = 1073741824.0;
  EXPECT_NEAR(algorithm_bandwidth(bytes, seconds) / 1e9, 131.06, 0.01);
  EXPECT_NEAR(bus_bandwidth(CollectiveKind::all_reduce, 8, bytes, seconds) / 1e9, 229.35, 0.01);
  EXPECT_NEAR(seconds_at_bus_bandwidth(CollectiveKind::all_reduce, 8, bytes, 229.35e9), seconds, 1e-6);
  EXPECT_THROW(algorithm_bandwidth(bytes, 0.0), std::invalid_argument);
}

TEST(NcclSize, AllGatherCountsTheWholeArrayOthersTheirInput) {
  EXPECT_EQ(nccl_size_bytes(CollectiveKind::all_gather, 1000, 8), 8000);
  EXPECT_EQ(nccl_size_bytes(CollectiveKind::reduce_scatter, 8000, 8), 8000);
  EXPECT_EQ(nccl_size_bytes(CollectiveKind::all_reduce, 8000, 8), 8000);
}

TEST(CollectiveKindName, RoundTripsEveryKind) {
  for (CollectiveKind kind : kAllCollectiveKinds) {
    EXPECT_EQ(parse_collective_kind(collective_kind_name(kind)), kind);
  }
  EXPECT_FALSE(parse_collective_kind("allreduce").has_value());
}

}  // namespace
}  // namespace twinspeed
