#pragma once
// Gradient reduction over the ZeRO group (dp x sp), as DeepSpeed 0.19.6 issues it.
//
// Averaging: three formulas, each here once. N is the group's size; "mean" divides by N / sp
// (Ulysses ranks each hold a sequence shard's gradient, which are summed, not averaged), as
// DeepSpeed divides by dp_world_size / sequence_parallel_size.
//  - Pre-division all-reduce (engine.allreduce_bucket at stage 0; stage_1_and_2
//    gradient_reduction_w_predivide with reduce_scatter false): with prescale_gradients divide by
//    N/sp, then sum; otherwise divide by gradient_predivide_factor f, sum, then multiply by
//    f / (N/sp) unless f == N.
//  - ZeRO 1-2 bucket reduction (reduce_scatter true, the default; average_tensor): divide the
//    bucket by N/sp, then sum. prescale_gradients and f do not apply.
//  - ZeRO-3 (stage3 __avg_scatter_grads + reduce_scatter_coalesced): without prescale_gradients
//    divide by f when f != 1; then always divide by N; reduce-scatter; then, without
//    prescale_gradients, multiply by f when f is neither 1 nor N. (So f == N yields sum / N^2,
//    as in DeepSpeed.)
// With gradient_allreduce_op "sum" nothing is divided (ZeRO-3 rejects "sum").
//
// BucketReducer: ZeRO 1-2's "independent partition gradient" buckets (stage_1_and_2.py
// reduce_independent_p_g_buckets_and_remove_grads / average_tensor / reduce_ipg_grads).
// Gradients arrive one parameter at a time; each is copied into the current bucket of
// reduce_bucket_size elements, and a bucket that would overflow is reduced first. A parameter
// larger than the bucket is reduced alone, in its own storage. A bucket is reduced by one all-reduce
// over the group after which every rank keeps the slices it owns (use_multi_rank_bucket_allreduce,
// the default), or by one reduce per owning rank of its slices (false), or by the pre-division
// all-reduce of the whole bucket (reduce_scatter false); the owners' copies follow on the same
// stream. With overlap_comm this happens on the "zero-reduce" stream with two buckets used in turn:
// before each reduction that stream waits for the compute stream and the compute stream for it
// (DeepSpeed's two wait_stream calls), so a reduction overlaps the backward compute until the next
// one. Without overlap_comm it runs on the group's comm stream and the compute stream waits at once.

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/comm/comm.hpp"
#include "engine/comm/device.hpp"
#include "engine/zero/flat_plan.hpp"

namespace twinspeed {

struct GradAveraging {
  bool average = true;       // gradient_allreduce_op "mean"
  bool prescale = false;     // prescale_gradients
  double predivide = 1.0;    // gradient_predivide_factor
  int sp = 1;                // sequence_parallel_size: "mean" divides by group size / sp
};

// The pre-division all-reduce of `view` over `group`, completed (the compute stream waits).
void allreduce_with_predivide(comm::Comm& group, BufferView view, const GradAveraging& averaging);

// ZeRO-3's averaged reduce-scatter of padded gradients into this rank's shards, on `stream` (null:
// the group's comm stream, then the compute stream waits); the host waits for the data.
void reduce_scatter_zero3(comm::Comm& group, BufferView input, BufferView output, const GradAveraging& averaging,
                          comm::Stream* stream = nullptr);

// A range of reduced gradients that rank `rank` keeps: `numel` elements from element `offset` of
// parameter `param`'s gradient (stage 3: of the rank's shard of it).
struct ReducedRange {
  std::size_t param;
  int rank;
  std::int64_t offset;
  std::int64_t numel;
};
// Called after a reduction put its values into the owners' gradients, with the stream that did
// it here and the ranges of every rank of the group (ZeRO-Offload starts the host copies here).
using OnReduced = std::function<void(comm::Stream& stream, std::span<const ReducedRange> ranges)>;

struct BucketReducerOptions {
  std::int64_t bucket_elements = 500'000'000;  // reduce_bucket_size
  bool overlap_comm = false;
  bool reduce_scatter = true;
  bool multi_rank_bucket_allreduce = true;
  GradAveraging averaging;
  DType dtype = DType::f32;  // of gradients and buckets
  OnReduced on_reduced;      // may be empty
};

class BucketReducer {
 public:
  // Receives the reduced values of the part of `param` this rank owns: elements
  // [param_offset, param_offset + reduced.numel) of the parameter.
  using Deliver = std::function<void(std::size_t param, std::int64_t param_offset, BufferView reduced)>;

  // Allocates the bucket(s) (tag buckets): min(bucket_elements, the largest total a bucket can
  // hold) elements each, two with overlap_comm.
  BucketReducer(comm::Device& device, comm::Comm& group, const ModelLayout& model, const FlatPlan& plan,
                BucketReducerOptions options, Deliver deliver);
  ~BucketReducer();
  BucketReducer(const BucketReducer&) = delete;
  BucketReducer& operator=(const BucketReducer&) = delete;

  // Hands over the full gradient of a parameter. Its storage may be reused or freed once add()
  // returns: it is copied into a bucket, or (larger than a bucket) reduced in place and waited for.
  void add(std::size_t param, BufferView grad);
  // Reduces what the current bucket holds.
  void flush();
  // Flushes, then orders the compute stream after every reduction and copy (end of backward).
  void finish();

  std::int64_t bucket_elements() const { return bucket_numel_; }

 private:
  struct Entry {
    std::size_t param;
    std::int64_t bucket_offset;
    std::int64_t numel;
  };
  // Reduces `data` holding `entries` and delivers the owned slices, on stream().
  void reduce(BufferView data, const std::vector<Entry>& entries);
  comm::Stream& stream();

  comm::Device& device_;
  comm::Comm& group_;
  const ModelLayout& model_;
  const FlatPlan& plan_;
  BucketReducerOptions options_;
  Deliver deliver_;
  std::int64_t bucket_numel_ = 0;
  std::vector<Buffer> buckets_;
  std::size_t index_ = 0;
  std::vector<Entry> entries_;
  std::int64_t filled_ = 0;
};

}  // namespace twinspeed
