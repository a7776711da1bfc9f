#include "engine/zero/stage3_grads.hpp"

#include <algorithm>

#include "kernels/kernels.hpp"

namespace twinspeed {

Stage3GradReducer::Stage3GradReducer(comm::Device& device, comm::Comm& group, const ModelLayout& model,
                                     const ShardPlan& plan, const Buffer& grad_shards, BucketReducerOptions options)
    : device_(device), group_(group), model_(model), plan_(plan), grad_shards_(grad_shards), options_(options) {
  std::int64_t padded = 0;
  for (std::size_t p = 0; p < model_.params.size(); ++p) {
    if (model_.params[p].group >= 0) padded += plan_.shard_numel[p] * group_.size();
  }
  bucket_ = device_.allocate(options_.dtype, std::max<std::int64_t>(1, std::min(options_.bucket_elements, padded)),
                             MemoryTag::buckets);
}

Stage3GradReducer::~Stage3GradReducer() = default;

comm::Stream& Stage3GradReducer::stream() {
  return options_.overlap_comm ? device_.comm_stream("zero-reduce") : device_.compute_stream();
}

void Stage3GradReducer::add(std::size_t param, BufferView padded) {
  const std::int64_t n = padded.numel;
  if (filled_ + n > bucket_.numel()) flush();
  if (n > bucket_.numel()) {
    reduce(padded, {{param, 0}});
    // The caller frees the gradient next: the compute stream waits for the reduction.
    if (options_.overlap_comm) device_.compute_stream().wait(*stream().record());
    return;
  }
  BufferView slot = bucket_.view(filled_, n);
  device_.compute_stream().launch("copy grad to bucket", comm::copy_cost(padded.bytes()),
                                  [&] { kernels::copy(slot, padded); });
  entries_.push_back({param, filled_});
  filled_ += n;
}

void Stage3GradReducer::flush() {
  if (entries_.empty()) return;
  reduce(bucket_.view(0, filled_), entries_);
  entries_.clear();
  filled_ = 0;
}

void Stage3GradReducer::reduce(BufferView data, const std::vector<Entry>& entries) {
  comm::Stream& s = stream();
  comm::Stream& compute = device_.compute_stream();
  if (options_.overlap_comm) {
    s.wait(*compute.record());
    compute.wait(*s.record());
  }
  const int world = group_.size();
  std::int64_t shards = 0;  // this rank's elements: one shard per parameter
  for (const Entry& e : entries) shards += plan_.shard_numel[e.param];
  // reduce_scatter_coalesced's layout: rank r's section is the r-th shard of every parameter.
  Buffer coalesced = device_.allocate(options_.dtype, shards * world, MemoryTag::temporaries);
  Buffer mine = device_.allocate(options_.dtype, shards, MemoryTag::temporaries);
  s.launch("coalesce grads", comm::copy_cost(data.bytes()), [&] {
    std::int64_t at = 0;
    for (const Entry& e : entries) {
      const std::int64_t shard = plan_.shard_numel[e.param];
      for (int r = 0; r < world; ++r) {
        kernels::copy(coalesced.view(r * shards + at, shard), data.sub(e.offset + r * shard, shard));
      }
      at += shard;
    }
  });
  reduce_scatter_zero3(group_, coalesced.all(), mine.all(), options_.averaging,
                       options_.overlap_comm ? &s : nullptr);
  s.launch("accumulate grad shards", comm::copy_cost(mine.bytes()), [&] {
    std::int64_t at = 0;
    for (const Entry& e : entries) {
      const std::int64_t shard = plan_.shard_numel[e.param];
      kernels::accumulate(grad_shards_.view(plan_.offset[e.param], shard), mine.view(at, shard));
      at += shard;
    }
  });
  if (!options_.on_reduced) return;
  std::vector<ReducedRange> reduced;
  for (const Entry& e : entries) {
    for (int r = 0; r < world; ++r) {
      if (plan_.shard_numel[e.param] > 0) reduced.push_back({e.param, r, 0, plan_.shard_numel[e.param]});
    }
  }
  if (!reduced.empty()) options_.on_reduced(s, reduced);
}

void Stage3GradReducer::finish() {
  flush();
  if (options_.overlap_comm) device_.compute_stream().wait(*stream().record());
}

}  // namespace twinspeed
