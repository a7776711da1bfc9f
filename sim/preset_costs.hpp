#pragma once
// The calibrated cost models (sim/cost) behind the simulator's CostModel interface, and cluster
// options built from a cluster preset or file: its costs, each device's capacity and reserved
// bytes.

#include "engine/core/dtype.hpp"
#include "sim/cluster.hpp"
#include "sim/cost/hardware.hpp"

namespace twinspeed::sim {

class PresetCostModel final : public CostModel {
 public:
  // compute_dtype: the precision compute launches run in (peak FLOP/s depend on it).
  PresetCostModel(ClusterSpec cluster, DType compute_dtype) : cluster_(std::move(cluster)), dtype_(compute_dtype) {}
  std::int64_t compute_ns(int rank, const comm::ComputeCost& cost) const override;
  std::int64_t collective_ns(comm::CollectiveOp op, std::int64_t bytes, std::span<const int> ranks) const override;
  std::int64_t p2p_ns(std::int64_t bytes, int src, int dst) const override;
  // bytes over the device's PCIe link (host.pcie_GBps) plus the device's launch overhead.
  std::int64_t host_copy_ns(int rank, std::int64_t bytes) const override;
  // Memory-bound: the launch's bytes at the node's host memory bandwidth shared equally by the
  // node's devices (host.memory_bandwidth_GBps / devices_per_node); FLOPs are not charged (CPU
  // Adam moves 28 bytes per 12 FLOPs, far below any CPU's ridge point).
  std::int64_t host_compute_ns(int rank, const comm::ComputeCost& cost) const override;
  const ClusterSpec& cluster() const { return cluster_; }

 private:
  ClusterSpec cluster_;
  DType dtype_;
};

// The cluster grown (or kept) to hold world devices: as many nodes as needed, devices_per_node
// unchanged. Throws ConfigError when world < 1.
ClusterSpec cluster_for_world(const ClusterSpec& cluster, int world);

// Options for a SimCluster of world ranks on cluster: preset costs, per-device capacity and
// reserved bytes.
// host_capacity_bytes and ranks_per_node come from the cluster's host side (ZeRO-Offload).
ClusterOptions cluster_options(const ClusterSpec& cluster, int world, Fidelity fidelity, DType compute_dtype);

}  // namespace twinspeed::sim
