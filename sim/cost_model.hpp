#pragma once
// What the simulated cluster asks a cost model: how long a compute launch, a collective or a
// point-to-point transfer takes, in integer nanoseconds. The calibrated models (sim/cost/)
// implement it; ZeroCostModel makes time stand still (pure correctness runs).

#include <cstdint>
#include <span>

#include "engine/comm/types.hpp"

namespace twinspeed::sim {

class CostModel {
 public:
  virtual ~CostModel() = default;
  virtual std::int64_t compute_ns(int rank, const comm::ComputeCost& cost) const = 0;
  // bytes: the logical bytes of one rank's input (DESIGN: traces count logical bytes).
  virtual std::int64_t collective_ns(comm::CollectiveOp op, std::int64_t bytes,
                                     std::span<const int> global_ranks) const = 0;
  virtual std::int64_t p2p_ns(std::int64_t bytes, int src_rank, int dst_rank) const = 0;
  // ZeRO-Offload's two host costs: a copy of `bytes` between the rank's device and its node's host
  // memory (over the host link, PCIe), and a launch on the host's CPU (Backend::host()'s streams).
  // The defaults keep time still, as a model without a host side (ZeroCostModel) should.
  virtual std::int64_t host_copy_ns(int /*rank*/, std::int64_t /*bytes*/) const { return 0; }
  virtual std::int64_t host_compute_ns(int /*rank*/, const comm::ComputeCost& /*cost*/) const { return 0; }
};

class ZeroCostModel final : public CostModel {
 public:
  std::int64_t compute_ns(int, const comm::ComputeCost&) const override { return 0; }
  std::int64_t collective_ns(comm::CollectiveOp, std::int64_t, std::span<const int>) const override { return 0; }
  std::int64_t p2p_ns(std::int64_t, int, int) const override { return 0; }
};

}  // namespace twinspeed::sim
