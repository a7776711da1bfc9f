// RapidCheck: every valid ClusterSpec survives write -> load unchanged, and costs computed from the
// reloaded spec are the same nanoseconds.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "sim/cost/collective_cost.hpp"
#include "sim/cost/compute_cost.hpp"
#include "sim/presets/cluster_file.hpp"

namespace twinspeed::sim {
namespace {

rc::Gen<std::string> text() {
  return rc::gen::container<std::string>(rc::gen::inRange<char>(' ', '~' + 1));
}

rc::Gen<std::string> name() {
  return rc::gen::suchThat(text(), [](const std::string& s) { return !s.empty(); });
}

// A positive number with up to six decimals, up to 1e6.
rc::Gen<double> positive(std::int64_t max_millionths = 1'000'000'000'000) {
  return rc::gen::map(rc::gen::inRange<std::int64_t>(1, max_millionths + 1),
                      [](std::int64_t x) { return static_cast<double>(x) / 1e6; });
}

rc::Gen<double> non_negative() {
  return rc::gen::map(rc::gen::inRange<std::int64_t>(0, 1'000'000'000'000),
                      [](std::int64_t x) { return static_cast<double>(x) / 1e6; });
}

rc::Gen<double> fraction() { return positive(1'000'000); }  // (0, 1]

DeviceSpec random_device() {
  DeviceSpec d;
  d.name = *name();
  d.description = *text();
  d.capacity_bytes = *rc::gen::inRange<std::int64_t>(1, std::int64_t{1} << 50);
  d.reserved_bytes = *rc::gen::inRange<std::int64_t>(0, d.capacity_bytes);
  d.memory_source = *text();
  d.matmul_peak_tflops = {*non_negative(), *non_negative(), *non_negative(), *non_negative()};
  d.vector_peak_tflops = *positive();
  d.compute_source = *text();
  d.memory_bandwidth_GBps = *positive();
  d.memory_bandwidth_source = *text();
  d.matmul_max_efficiency = *fraction();
  d.matmul_half_efficiency_gflop = *non_negative();
  d.attention_relative_efficiency = *fraction();
  d.memory_efficiency = *fraction();
  d.launch_overhead_ns = *rc::gen::inRange<std::int64_t>(0, 1'000'000'000);
  d.host_overhead_ns = *rc::gen::inRange<std::int64_t>(0, 1'000'000'000);
  d.efficiency_source = *text();
  return d;
}

std::vector<EfficiencyPoint> random_curve() {
  const int points = *rc::gen::inRange(0, 6);
  std::vector<EfficiencyPoint> curve;
  std::int64_t size = 0;
  for (int i = 0; i < points; ++i) {
    size += *rc::gen::inRange<std::int64_t>(1, std::int64_t{1} << 34);
    curve.push_back({size, *fraction()});
  }
  return curve;
}

ClusterSpec random_cluster() {
  ClusterSpec c;
  c.name = *name();
  c.description = *text();
  c.nodes = *rc::gen::inRange(1, 65);
  c.devices_per_node = *rc::gen::inRange(1, 17);
  c.device = random_device();
  c.intra_node = {.kind = *rc::gen::element<std::string>("nvswitch", "nvlink", "pcie", "loopback"),
                  .busbw_GBps = *positive(),
                  .nvls_busbw_GBps = *non_negative(),
                  .ring_step_latency_us = *non_negative(),
                  .tree_step_latency_us = *non_negative(),
                  .efficiency = random_curve(),
                  .source = *text()};
  const bool network = c.nodes > 1 || *rc::gen::arbitrary<bool>();
  if (network) {
    c.inter_node = {.kind = *rc::gen::element<std::string>("infiniband", "roce", "ethernet"),
                    .nics_per_node = *rc::gen::inRange(1, 17),
                    .nic_GBps = *positive(),
                    .ring_step_latency_us = *non_negative(),
                    .tree_step_latency_us = *non_negative(),
                    .source = *text()};
  } else {
    c.inter_node = {.kind = "none", .source = *text()};
  }
  c.nccl = {.ring_base_latency_us = *non_negative(),
            .tree_base_latency_us = *non_negative(),
            .nvls_latency_us = *non_negative(),
            .tree_bandwidth_factor = *fraction(),
            .algorithm = *rc::gen::element(CollectiveAlgorithm::automatic, CollectiveAlgorithm::ring,
                                           CollectiveAlgorithm::tree, CollectiveAlgorithm::nvls),
            .source = *text()};
  if (*rc::gen::arbitrary<bool>()) {
    c.host = {.memory_bytes = *rc::gen::inRange<std::int64_t>(1, std::int64_t{1} << 45),
              .memory_bandwidth_GBps = *positive(),
              .pcie_GBps = *positive(),
              .source = *text()};
  }
  return c;
}

RC_GTEST_PROP(ClusterFileProperty, LoadOfWriteIsIdentity, ()) {
  const ClusterSpec c = random_cluster();
  RC_ASSERT(parse_cluster(write_cluster(c)) == c);
}

RC_GTEST_PROP(ClusterFileProperty, ReloadedClustersCostTheSame, ()) {
  ClusterSpec c = random_cluster();
  c.nccl.algorithm = CollectiveAlgorithm::automatic;
  const ClusterSpec reloaded = parse_cluster(write_cluster(c));
  std::vector<int> group(static_cast<std::size_t>(c.world_size()));
  std::iota(group.begin(), group.end(), 0);
  const std::int64_t bytes = *rc::gen::inRange<std::int64_t>(0, std::int64_t{1} << 32);
  for (CollectiveKind kind : {CollectiveKind::all_reduce, CollectiveKind::all_gather, CollectiveKind::all_to_all}) {
    RC_ASSERT(collective_time_ns(c, kind, bytes, group) == collective_time_ns(reloaded, kind, bytes, group));
  }
  const comm::ComputeCost cost{.op_class = comm::OpClass::matmul, .flops = 1e12, .bytes_read = bytes};
  RC_ASSERT(compute_time_ns(c.device, cost, DType::bf16) == compute_time_ns(reloaded.device, cost, DType::bf16));
}

RC_GTEST_PROP(CollectiveCostProperty, MoreBytesNeverTakeLessTime, ()) {
  ClusterSpec c = random_cluster();
  c.intra_node.efficiency.clear();  // a curve may dip; the flat model is monotone
  c.nccl.algorithm = CollectiveAlgorithm::ring;
  std::vector<int> group(static_cast<std::size_t>(c.world_size()));
  std::iota(group.begin(), group.end(), 0);
  const std::int64_t small = *rc::gen::inRange<std::int64_t>(0, std::int64_t{1} << 30);
  const std::int64_t large = small + *rc::gen::inRange<std::int64_t>(0, std::int64_t{1} << 30);
  RC_ASSERT(collective_time_ns(c, CollectiveKind::all_reduce, small, group) <=
            collective_time_ns(c, CollectiveKind::all_reduce, large, group));
}

}  // namespace
}  // namespace twinspeed::sim
