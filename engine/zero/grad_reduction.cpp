#include "engine/zero/grad_reduction.hpp"

#include <algorithm>

#include "kernels/kernels.hpp"

namespace twinspeed {

namespace {

// The factors of the pre-division rule: before the sum, and after it (1: none).
struct Factors {
  double before = 1.0;
  double after = 1.0;
};

// DeepSpeed's "data-parallel size" of a mean: the group's size over the sequence-parallel size.
double mean_divisor(const GradAveraging& a, int world) { return static_cast<double>(world) / a.sp; }

Factors predivide_factors(const GradAveraging& a, int world) {
  const double n = mean_divisor(a, world);
  if (!a.average) return {};
  if (a.prescale) return {.before = 1.0 / n};
  return {.before = 1.0 / a.predivide, .after = a.predivide != static_cast<double>(world) ? a.predivide / n : 1.0};
}

void scale_unless_one(BufferView view, double factor) {
  if (factor != 1.0) kernels::scale(view, factor);
}

// A piece of a bucket owned by one rank, in bucket order.
struct Piece {
  std::size_t param;
  OwnedPiece owned;
  ElementRange in_bucket;
};

// What the owners' copies of a bucket cost each rank. DeepSpeed copies each owned piece into the
// partition (a kernel each), so ranks differ; the group's next reduction starts only once its
// slowest member has copied, so twinspeed charges every rank the most kernels and the most bytes
// any owner copies. Ranks then stay symmetric, and the simulator can collapse them
// (docs/ARCHITECTURE.md "Symmetric-rank collapse").
comm::ComputeCost slowest_owner_copy_cost(const std::vector<Piece>& pieces, int ranks, DType dtype) {
  std::vector<std::int64_t> kernels(static_cast<std::size_t>(ranks)), numel(static_cast<std::size_t>(ranks));
  for (const Piece& p : pieces) {
    ++kernels[static_cast<std::size_t>(p.owned.rank)];
    numel[static_cast<std::size_t>(p.owned.rank)] += p.owned.numel;
  }
  comm::ComputeCost cost = comm::copy_cost(*std::max_element(numel.begin(), numel.end()) *
                                           static_cast<std::int64_t>(dtype_size(dtype)));
  cost.kernels = *std::max_element(kernels.begin(), kernels.end());
  return cost;
}

}  // namespace

void allreduce_with_predivide(comm::Comm& group, BufferView view, const GradAveraging& averaging) {
  const Factors f = predivide_factors(averaging, group.size());
  scale_unless_one(view, f.before);
  group.all_reduce(view)->wait();
  scale_unless_one(view, f.after);
}

void reduce_scatter_zero3(comm::Comm& group, BufferView input, BufferView output, const GradAveraging& a,
                          comm::Stream* stream) {
  const double f = a.predivide, n = static_cast<double>(group.size());
  if (!a.prescale && f != 1.0) kernels::scale(input, 1.0 / f);
  kernels::scale(input, 1.0 / n);  // reduce_scatter_coalesced's own division
  group.reduce_scatter(input, output, {.stream = stream})->wait(stream);
  if (!a.prescale && f != 1.0 && f != n) kernels::scale(output, f);
}

BucketReducer::BucketReducer(comm::Device& device, comm::Comm& group, const ModelLayout& model,
                             const FlatPlan& plan, BucketReducerOptions options, Deliver deliver)
    : device_(device), group_(group), model_(model), plan_(plan), options_(options), deliver_(std::move(deliver)) {
  // DeepSpeed allocates reduce_bucket_size elements; a bucket larger than every gradient it could
  // ever hold is capped at that total (a small model with the 5e8 default would otherwise hold
  // gigabytes it never uses).
  std::int64_t grouped = 0;
  for (const auto& p : model_.params) grouped += p.group >= 0 ? p.numel : 0;
  bucket_numel_ = std::max<std::int64_t>(1, std::min(options_.bucket_elements, grouped));
  const int count = options_.overlap_comm ? 2 : 1;
  for (int i = 0; i < count; ++i) buckets_.push_back(device_.allocate(options_.dtype, bucket_numel_, MemoryTag::buckets));
}

BucketReducer::~BucketReducer() = default;

comm::Stream& BucketReducer::stream() {
  return options_.overlap_comm ? device_.comm_stream("zero-reduce") : device_.compute_stream();
}

void BucketReducer::add(std::size_t param, BufferView grad) {
  const std::int64_t n = grad.numel;
  if (filled_ + n > bucket_numel_) flush();
  if (n > bucket_numel_) {
    reduce(grad, {{param, 0, n}});
    // The caller frees the gradient's storage next: the compute stream waits for the reduction.
    if (options_.overlap_comm) device_.compute_stream().wait(*stream().record());
    return;
  }
  BufferView slot = buckets_[index_].view(filled_, n);
  device_.compute_stream().launch("copy grad to bucket", comm::copy_cost(grad.bytes()),
                                  [&] { kernels::copy(slot, grad); });
  entries_.push_back({param, filled_, n});
  filled_ += n;
}

void BucketReducer::flush() {
  if (entries_.empty()) return;
  reduce(buckets_[index_].view(0, filled_), entries_);
  entries_.clear();
  filled_ = 0;
  index_ = (index_ + 1) % buckets_.size();
}

void BucketReducer::reduce(BufferView data, const std::vector<Entry>& entries) {
  comm::Stream& s = stream();
  if (options_.overlap_comm) {
    // The bucket was filled on the compute stream; the compute stream then waits for every earlier
    // reduction (and its copies), which frees the other bucket for refilling.
    s.wait(*device_.compute_stream().record());
    device_.compute_stream().wait(*s.record());
  }
  const comm::CollectiveOptions on{.stream = options_.overlap_comm ? &s : nullptr};
  std::vector<Piece> pieces;
  for (const Entry& e : entries) {
    for (const OwnedPiece& owned : plan_.owners(model_, e.param)) {
      pieces.push_back({e.param, owned, {e.bucket_offset + owned.param_offset, owned.numel}});
    }
  }
  std::vector<comm::WorkPtr> works;
  double after = 1.0;
  if (!options_.reduce_scatter) {
    const Factors f = predivide_factors(options_.averaging, group_.size());
    scale_unless_one(data, f.before);
    after = f.after;
    works.push_back(group_.all_reduce(data, on));
  } else {
    if (options_.averaging.average) kernels::scale(data, 1.0 / mean_divisor(options_.averaging, group_.size()));
    if (options_.multi_rank_bucket_allreduce) {
      works.push_back(group_.all_reduce(data, on));
    } else {
      // One reduce per owning rank of each contiguous run of its slices in the bucket.
      std::vector<std::pair<int, ElementRange>> runs;
      for (const Piece& p : pieces) {
        if (!runs.empty() && runs.back().first == p.owned.rank && runs.back().second.end() == p.in_bucket.offset) {
          runs.back().second.numel += p.in_bucket.numel;
        } else {
          runs.emplace_back(p.owned.rank, p.in_bucket);
        }
      }
      for (const auto& [rank, r] : runs) works.push_back(group_.reduce(data.sub(r.offset, r.numel), rank, on));
    }
  }
  // The owners' copies follow the reduction on its stream (the host waits for the data).
  for (auto& work : works) work->wait(options_.overlap_comm ? &s : nullptr);
  scale_unless_one(data, after);
  s.launch("copy reduced grads", slowest_owner_copy_cost(pieces, group_.size(), data.dtype()), [&] {
    for (const Piece& p : pieces) {
      if (p.owned.rank == group_.rank()) deliver_(p.param, p.owned.param_offset, data.sub(p.in_bucket.offset, p.in_bucket.numel));
    }
  });
  if (!options_.on_reduced) return;
  std::vector<ReducedRange> ranges;
  for (const Piece& p : pieces) ranges.push_back({p.param, p.owned.rank, p.owned.param_offset, p.owned.numel});
  if (!ranges.empty()) options_.on_reduced(s, ranges);
}

void BucketReducer::finish() {
  flush();
  if (options_.overlap_comm) device_.compute_stream().wait(*stream().record());
}

}  // namespace twinspeed
