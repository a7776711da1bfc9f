#pragma once
// ZeRO-Offload's device-to-host gradient copies, overlapped with backward as DeepSpeed 0.19.6
// does: stage_1_and_2.py copies each reduced bucket's slices of the rank's partition to the pinned
// CPU gradient buffer as the bucket finishes (reduce_ipg_grads -> copy_grads_in_partition ->
// async_inplace_copy_grad_to_fp32_buffer_from_gpu), stage3.py the reduced shards
// (partition_grads with offload).
//
// At the boundary micro-step (begin() .. finish()), copy() is called once per reduction with what
// it made final, for every rank of the group: the device's "copy" stream waits for the stream that
// wrote it (an event: never the host) and copies, so in the timeline the copies overlap the rest
// of backward and the other buckets' communication. finish() is the step's side: it copies what
// is left, then per group makes the host's compute stream wait for the copy stream and casts a
// 16-bit partition to the master dtype on the CPU (DeepSpeed's convert_grad_on_cpu). finish()
// without begin() copies everything at once (the boundary copy, for callers that reduce outside
// Engine::backward). Every element of every partition crosses once per step: the same bytes.
//
// Symmetric ranks: which bucket holds a rank's pieces depends on where its partition lies, so in
// DeepSpeed the ranks of a group copy at different times, and the simulator's symmetric-rank
// collapse (docs/ARCHITECTURE.md) would no longer stand for them. As the reducers' owner copies
// do, every rank is charged like the slowest: after each reduction each rank copies, per group, as
// many elements as the rank that has received the fewest so far (padding counts as received at
// the start), taking them from its own final, not yet copied, ranges. A rank that is ahead keeps
// the rest for later; the slowest rank copies as in DeepSpeed. Copy-finish times are therefore
// never earlier than DeepSpeed's slowest rank's.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/comm/device.hpp"
#include "engine/core/partition.hpp"

namespace twinspeed {

class GradientsToHost {
 public:
  struct Range {  // this rank's
    std::size_t group;
    ElementRange range;  // in the group's partition
  };
  struct Owned {  // any rank's
    std::size_t group;
    int rank;
    std::int64_t numel;
  };

  // device_parts[g]: group g's gradient partition on `device`; host_parts[g]: its master-dtype
  // copy on `host` (same numel). unreduced[g]: the ranges of this rank's partition of group g that
  // no reduction writes (padding); unreduced_numel[g][r]: their element count on rank r (the
  // group's size is unreduced_numel[g].size()). The views must outlive this object's use.
  GradientsToHost(comm::Device& device, comm::Device& host, std::vector<BufferView> device_parts,
                  std::vector<BufferView> host_parts, std::vector<std::vector<ElementRange>> unreduced,
                  std::vector<std::vector<std::int64_t>> unreduced_numel);

  // Starts the copies of a boundary micro-step (no-op when started).
  void begin();
  bool started() const { return started_; }
  // A reduction made `mine` (this rank's) and `every_rank` final once `after` reaches this point.
  void copy(comm::Stream& after, std::span<const Range> mine, std::span<const Owned> every_rank);
  // Copies the rest, waits on the host for every copy, casts; returns host_parts. Ends the step.
  std::vector<BufferView> finish();
  // Ends a step that is skipped: waits for the copies started, casts nothing.
  void abandon();

 private:
  void end();
  // Copies up to `budget` elements of group g's ready ranges, lowest offsets first.
  void take(std::size_t g, std::int64_t budget, comm::Stream& copies);

  comm::Device& device_;
  comm::Device& host_;
  std::vector<BufferView> device_parts_;
  std::vector<BufferView> host_parts_;
  std::vector<std::vector<ElementRange>> unreduced_;
  std::vector<std::vector<std::int64_t>> unreduced_numel_;
  bool started_ = false;
  std::vector<Buffer> staging_;                   // 16-bit partitions on the host, while started
  std::vector<std::vector<ElementRange>> ready_;   // per group: final, not yet copied
  std::vector<std::vector<ElementRange>> copied_;  // per group, this step
  std::vector<std::vector<std::int64_t>> final_;   // per group and rank: elements final so far
  std::vector<std::int64_t> charged_;              // per group: elements every rank has copied
};

}  // namespace twinspeed
