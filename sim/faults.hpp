#pragma once
// Injectable faults of the simulated cluster (DESIGN.md "Faults"), all deterministic: they hit
// the same operation in every run of the same program.
//
//  - failed_collective: the collective rank `rank` issues as its op-th collective (counting every
//    group, from 0), or at (group, seq), fails on every participant with a CommError, as an NCCL
//    remote error would;
//  - silent_rank: rank `rank` stops at its op-th collective and never issues it; the others end
//    in the hang CommError naming it;
//  - straggler: rank `rank`'s compute takes `factor` times longer;
//  - slow_link: collectives whose group contains `rank` (and `peer`, when given) and p2p between
//    them take `factor` times longer.
// Desync (a rank issuing a different op or size) is detected, not injected.

#include <cstdint>
#include <memory>
#include <vector>

#include "sim/cost_model.hpp"

namespace twinspeed::sim {

struct Fault {
  enum class Kind : std::uint8_t { failed_collective, silent_rank, straggler, slow_link };
  Kind kind = Kind::failed_collective;
  int rank = 0;
  std::int64_t op = -1;   // the rank's op-th collective (failed_collective, silent_rank)
  int group = -1;         // with seq: failed_collective at (group, seq) instead of op
  std::int64_t seq = -1;
  int peer = -1;          // slow_link: the other end (-1: every link of rank)
  double factor = 1.0;    // straggler, slow_link
};

// Validates faults against a world size (ConfigError with path "faults[i].<field>").
void validate_faults(const std::vector<Fault>& faults, int world);

// The cost model with straggler and slow-link faults applied.
class FaultyCostModel final : public CostModel {
 public:
  FaultyCostModel(std::shared_ptr<const CostModel> base, std::vector<Fault> faults)
      : base_(std::move(base)), faults_(std::move(faults)) {}
  std::int64_t compute_ns(int rank, const comm::ComputeCost& cost) const override;
  std::int64_t collective_ns(comm::CollectiveOp op, std::int64_t bytes, std::span<const int> ranks) const override;
  std::int64_t p2p_ns(std::int64_t bytes, int src, int dst) const override;
  // Host copies and CPU work are the base model's (faults model slow devices and links).
  std::int64_t host_copy_ns(int rank, std::int64_t bytes) const override { return base_->host_copy_ns(rank, bytes); }
  std::int64_t host_compute_ns(int rank, const comm::ComputeCost& cost) const override {
    return base_->host_compute_ns(rank, cost);
  }

 private:
  std::shared_ptr<const CostModel> base_;
  std::vector<Fault> faults_;
};

// Which fault, if any, hits the collective a rank is issuing.
const Fault* collective_fault(const std::vector<Fault>& faults, int rank, std::int64_t op_index, int group,
                              std::int64_t seq);

}  // namespace twinspeed::sim
