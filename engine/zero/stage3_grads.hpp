#pragma once
// ZeRO-3 gradient reduction (DeepSpeed 0.19.6 stage3.py __add_grad_to_ipg_bucket /
// __reduce_and_partition_ipg_grads / reduce_scatter_coalesced). A parameter's gradient, padded to
// N shards, is copied into the reduce bucket (reduce_bucket_size elements) when it is ready; a
// bucket that would overflow is reduce-scattered first, as ONE collective over all its parameters:
// the bucket is rearranged so that rank r's section holds the r-th shard of every parameter in
// it (reduce_scatter_coalesced's flattening, a temporary of the bucket's size), averaged by
// reduce_scatter_zero3's rule, reduce-scattered, and each rank adds its shards into its gradient
// shards. A gradient larger than the bucket is reduce-scattered alone. With overlap_comm the
// reduction runs on the "zero-reduce" stream under the same stream-wait discipline as
// BucketReducer's (grad_reduction.hpp); otherwise on the group's stream, waited for at once.

#include <cstdint>
#include <vector>

#include "engine/zero/flat_plan.hpp"
#include "engine/zero/grad_reduction.hpp"

namespace twinspeed {

class Stage3GradReducer {
 public:
  // grad_shards: the rank's shard buffer of gradients laid out by `plan` (where reduced shards
  // are accumulated). Allocates the bucket (tag buckets): min(bucket_elements, the padded
  // gradients of every grouped parameter) elements.
  Stage3GradReducer(comm::Device& device, comm::Comm& group, const ModelLayout& model, const ShardPlan& plan,
                    const Buffer& grad_shards, BucketReducerOptions options);
  ~Stage3GradReducer();
  Stage3GradReducer(const Stage3GradReducer&) = delete;
  Stage3GradReducer& operator=(const Stage3GradReducer&) = delete;

  // Hands over a parameter's padded gradient (N shards). Its storage may be freed once add()
  // returns.
  void add(std::size_t param, BufferView padded);
  // Reduces what the bucket holds, and orders the compute stream after every reduction.
  void finish();

 private:
  struct Entry {
    std::size_t param;
    std::int64_t offset;  // in the bucket (padded elements)
  };
  void flush();
  // Reduce-scatters `data` (the padded gradients of `entries`, back to back) and accumulates
  // this rank's shards.
  void reduce(BufferView data, const std::vector<Entry>& entries);
  comm::Stream& stream();

  comm::Device& device_;
  comm::Comm& group_;
  const ModelLayout& model_;
  const ShardPlan& plan_;
  const Buffer& grad_shards_;
  BucketReducerOptions options_;
  Buffer bucket_;
  std::vector<Entry> entries_;
  std::int64_t filled_ = 0;
};

}  // namespace twinspeed
