#pragma once
// What the cost models know about a cluster: one device kind, how many per node, the links inside
// a node and between nodes, and NCCL's latency constants. Plain values, no behaviour; the units are
// in the names and are the units of the cluster file (docs/CLUSTER.md), so a file round-trips
// exactly. Every field group carries a `source`: "datasheet: ...", "measured: <command>",
// "calibrated: ...", "estimated: ..." or "assumed: ...".

#include <cstdint>
#include <string>
#include <vector>

namespace twinspeed::sim {

// Dense matrix-unit peaks in TFLOP/s (1e12 FLOP/s) per element type; 0 = no matrix path for it.
struct MatmulPeakTflops {
  double fp32 = 0.0;
  double fp16 = 0.0;
  double bf16 = 0.0;
  double fp64 = 0.0;
  bool operator==(const MatmulPeakTflops&) const = default;
};

struct DeviceSpec {
  std::string name;         // "a100-sxm4-80gb": the names of shared/data/calibration/hardware_presets.csv
  std::string description;

  // Memory. capacity_bytes is what the process can use (usable GiB, not marketing GB);
  // reserved_bytes is what the runtime holds outside the engine: CUDA context, communicator
  // buffers, allocator slack (the `reserved` memory tag).
  std::int64_t capacity_bytes = 0;
  std::int64_t reserved_bytes = 0;
  std::string memory_source;

  // Compute peaks. vector_peak_tflops is the non-matrix FP32 rate (elementwise, reductions).
  MatmulPeakTflops matmul_peak_tflops;
  double vector_peak_tflops = 0.0;
  std::string compute_source;

  // Memory bandwidth (HBM or DRAM), GB/s (1e9 B/s), one device.
  double memory_bandwidth_GBps = 0.0;
  std::string memory_bandwidth_source;

  // Achieved fractions of the peaks (sim/cost/compute_cost.hpp has the curve):
  //   matmul: matmul_max_efficiency * g / (g + matmul_half_efficiency_gflop), g = GFLOP of the op;
  //   attention: the matmul curve times attention_relative_efficiency;
  //   memory traffic: memory_efficiency (STREAM-like fraction of the bandwidth).
  double matmul_max_efficiency = 1.0;
  double matmul_half_efficiency_gflop = 0.0;
  double attention_relative_efficiency = 1.0;
  double memory_efficiency = 1.0;
  std::int64_t launch_overhead_ns = 0;  // added to every compute launch
  // The host's time to issue one matmul launch: the engine issues a layer's forward, recompute or
  // backward as one launch, which on a GPU is the framework's Python and some tens of kernel
  // launches. The device runs a launch while the host issues the next, so a matmul launch takes at
  // least this long (sim/cost/compute_cost.hpp). 0: no floor.
  std::int64_t host_overhead_ns = 0;
  std::string efficiency_source;

  bool operator==(const DeviceSpec&) const = default;
};

// A point of a per-size bus-bandwidth efficiency curve: at size_bytes (nccl-tests' S), the link
// reaches efficiency x its busbw. Between points the curve is linear in log2(size); outside it is
// flat at the nearest point. An empty curve is 1 everywhere.
struct EfficiencyPoint {
  std::int64_t size_bytes = 0;
  double efficiency = 1.0;
  bool operator==(const EfficiencyPoint&) const = default;
};

// The links between the devices of one node.
struct IntraNodeLink {
  std::string kind;                   // "nvswitch", "nvlink", "pcie", "loopback"
  double busbw_GBps = 0.0;            // per device, what a large ring collective reaches (nccl-tests busbw)
  double nvls_busbw_GBps = 0.0;       // NVLink SHARP all-reduce busbw; 0 = no NVLS
  double ring_step_latency_us = 0.0;  // NCCL hwLat of this link for Ring (Simple protocol), per step
  double tree_step_latency_us = 0.0;  // the same for Tree
  std::vector<EfficiencyPoint> efficiency;
  std::string source;
  bool operator==(const IntraNodeLink&) const = default;
};

// The network between nodes. kind "none" (with zero numbers) only for one-node clusters.
struct InterNodeLink {
  std::string kind;                   // "infiniband", "roce", "ethernet", "none"
  int nics_per_node = 0;
  double nic_GBps = 0.0;              // one NIC, one direction, achieved (not line rate unless said)
  double ring_step_latency_us = 0.0;  // NCCL hwLat NET, Ring (Simple), per step
  double tree_step_latency_us = 0.0;  // the same for Tree
  std::string source;
  bool operator==(const InterNodeLink&) const = default;
};

enum class CollectiveAlgorithm : std::uint8_t { automatic, ring, tree, nvls };

// NCCL's per-operation constants (src/graph/tuning.cc, Simple protocol).
struct NcclConstants {
  double ring_base_latency_us = 0.0;
  double tree_base_latency_us = 0.0;
  double nvls_latency_us = 0.0;         // whole-operation latency of an NVLS all-reduce
  double tree_bandwidth_factor = 1.0;   // NCCL derates tree busbw by this (0.9)
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::automatic;  // automatic = fastest, as NCCL's tuner
  std::string source;
  bool operator==(const NcclConstants&) const = default;
};

// The host side of a node, for ZeRO-Offload (optimizer states in CPU memory, the optimizer step on
// the CPU, gradients and parameters over PCIe). 0 = not described: a cluster without a host model
// plans no offload (the cost model throws a ConfigError naming the missing field).
struct HostSpec {
  std::int64_t memory_bytes = 0;        // per node, usable by the training processes; 0 = unbounded
  double memory_bandwidth_GBps = 0.0;   // per node, STREAM-like achieved; shared by the node's ranks
  double pcie_GBps = 0.0;               // per device, one direction, host <-> device
  std::string source;
  bool described() const { return memory_bytes > 0 || memory_bandwidth_GBps > 0.0 || pcie_GBps > 0.0; }
  bool operator==(const HostSpec&) const = default;
};

struct ClusterSpec {
  std::string name;
  std::string description;
  int nodes = 1;
  int devices_per_node = 1;
  DeviceSpec device;
  IntraNodeLink intra_node;
  InterNodeLink inter_node;
  NcclConstants nccl;
  HostSpec host;  // optional in cluster files ("host")

  int world_size() const { return nodes * devices_per_node; }
  bool operator==(const ClusterSpec&) const = default;
};

}  // namespace twinspeed::sim
