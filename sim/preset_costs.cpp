#include "sim/preset_costs.hpp"

#include <fmt/format.h>

#include <cmath>

#include "engine/core/errors.hpp"
#include "sim/cost/collective_cost.hpp"
#include "sim/cost/compute_cost.hpp"

namespace twinspeed::sim {

std::int64_t PresetCostModel::compute_ns(int, const comm::ComputeCost& cost) const {
  return compute_time_ns(cluster_.device, cost, dtype_);
}

std::int64_t PresetCostModel::collective_ns(comm::CollectiveOp op, std::int64_t bytes, std::span<const int> ranks) const {
  return collective_time_ns(cluster_, to_collective_kind(op), bytes, ranks);
}

std::int64_t PresetCostModel::p2p_ns(std::int64_t bytes, int src, int dst) const {
  return p2p_time_ns(cluster_, bytes, src, dst);
}

namespace {

std::int64_t seconds_to_ns(double s) { return static_cast<std::int64_t>(std::llround(s * 1e9)); }

void require_host_field(double value, const char* field) {
  if (value <= 0.0) {
    throw ConfigError(fmt::format("host.{}", field), "0",
                      "ZeRO-Offload needs the cluster's host side: add a \"host\" object to the cluster file "
                      "(docs/CLUSTER.md)");
  }
}

}  // namespace

std::int64_t PresetCostModel::host_copy_ns(int, std::int64_t bytes) const {
  require_host_field(cluster_.host.pcie_GBps, "pcie_GBps");
  return cluster_.device.launch_overhead_ns + seconds_to_ns(static_cast<double>(bytes) / (cluster_.host.pcie_GBps * 1e9));
}

std::int64_t PresetCostModel::host_compute_ns(int, const comm::ComputeCost& cost) const {
  require_host_field(cluster_.host.memory_bandwidth_GBps, "memory_bandwidth_GBps");
  const double share = cluster_.host.memory_bandwidth_GBps * 1e9 / cluster_.devices_per_node;
  return seconds_to_ns(static_cast<double>(cost.bytes_read + cost.bytes_written) / share);
}

ClusterSpec cluster_for_world(const ClusterSpec& cluster, int world) {
  if (world < 1) throw ConfigError("world", std::to_string(world), "must be >= 1");
  ClusterSpec sized = cluster;
  sized.nodes = (world + cluster.devices_per_node - 1) / cluster.devices_per_node;
  return sized;
}

ClusterOptions cluster_options(const ClusterSpec& cluster, int world, Fidelity fidelity, DType compute_dtype) {
  ClusterSpec sized = cluster_for_world(cluster, world);
  return {.world = world,
          .fidelity = fidelity,
          .capacity_bytes = sized.device.capacity_bytes,
          .reserved_bytes = sized.device.reserved_bytes,
          .host_capacity_bytes = sized.host.memory_bytes,
          .ranks_per_node = sized.devices_per_node,
          .costs = std::make_shared<PresetCostModel>(sized, compute_dtype)};
}

}  // namespace twinspeed::sim
