#pragma once
// Gradient reduction over the data-parallel (ZeRO) group, as DeepSpeed 0.19.6 issues it.
//
// Averaging. DeepSpeed's two formulas, both here once:
//  - all-reduce with pre-division (engine.allreduce_bucket for stage 0, and ZeRO 1-2 with
//    reduce_scatter false; ZeRO-3's reduce-scatter follows the same rule): with
//    prescale_gradients, divide by N then sum; otherwise divide by gradient_predivide_factor,
//    sum, then multiply by factor / N (skipped when the factor equals N);
//  - ZeRO 1-2 bucket reduction (reduce_scatter true, the default): divide the bucket by N, then
//    sum. prescale_gradients and gradient_predivide_factor do not apply there.
// With gradient_allreduce_op "sum" nothing is divided.
//
// BucketReducer: ZeRO 1-2's "independent partition gradient" buckets (stage_1_and_2.py
// reduce_independent_p_g_buckets_and_remove_grads / average_tensor). Gradients arrive one
// parameter at a time, in the order they become ready; each is copied into the current bucket of
// reduce_bucket_size elements, and a bucket that would overflow is reduced first. A parameter larger
// than the bucket is reduced alone, in its own storage. A bucket is reduced by one all-reduce over
// the group after which every rank keeps the slices it owns (use_multi_rank_bucket_allreduce, the
// default), or by one reduce per owning rank of its slices (false), or by the pre-division
// all-reduce of the whole bucket (reduce_scatter false). With overlap_comm the reduction runs on
// the "zero-reduce" comm stream with two buckets used in turn, and the owners' copies happen there
// too; otherwise it runs on the group's comm stream and the compute stream waits for it.

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/comm/comm.hpp"
#include "engine/comm/device.hpp"
#include "engine/zero/flat_plan.hpp"

namespace twinspeed {

struct GradAveraging {
  bool average = true;       // gradient_allreduce_op "mean"
  bool prescale = false;     // prescale_gradients
  double predivide = 1.0;    // gradient_predivide_factor
};

// The pre-division all-reduce of `view` over `group`, completed (the compute stream waits).
void allreduce_with_predivide(comm::Comm& group, BufferView view, const GradAveraging& averaging);

// ZeRO-3's reduce-scatter of a padded gradient into this rank's shard with the same averaging
// rule; completed before returning.
void reduce_scatter_with_predivide(comm::Comm& group, BufferView input, BufferView output,
                                   const GradAveraging& averaging);

struct BucketReducerOptions {
  std::int64_t bucket_elements = 500'000'000;  // reduce_bucket_size
  bool overlap_comm = false;
  bool reduce_scatter = true;
  bool multi_rank_bucket_allreduce = true;
  GradAveraging averaging;
  DType dtype = DType::f32;  // of gradients and buckets
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

  // Hands over the full gradient of a parameter. `grad` must stay valid until the next add(),
  // flush() or finish() (only a parameter larger than a bucket is read in place).
  void add(std::size_t param, BufferView grad);
  // Reduces what the current bucket holds.
  void flush();
  // Flushes, then completes every reduction in flight and orders the compute stream after them.
  void finish();

  std::int64_t bucket_elements() const { return bucket_numel_; }

 private:
  struct Entry {
    std::size_t param;
    std::int64_t bucket_offset;
    std::int64_t numel;
  };
  struct InFlight {
    std::vector<comm::WorkPtr> works;
    BufferView data;
    std::vector<Entry> entries;
  };
  void reduce(InFlight& flight);
  void complete(InFlight& flight);
  comm::Stream& stream();

  comm::Device& device_;
  comm::Comm& group_;
  const ModelLayout& model_;
  const FlatPlan& plan_;
  BucketReducerOptions options_;
  Deliver deliver_;
  std::int64_t bucket_numel_ = 0;
  std::vector<Buffer> buckets_;
  std::vector<InFlight> in_flight_;  // per bucket index
  std::size_t index_ = 0;
  std::vector<Entry> entries_;
  std::int64_t filled_ = 0;
};

}  // namespace twinspeed
