#include "engine/zero/grad_reduction.hpp"

#include <algorithm>

#include "kernels/cpu/flat_ops.hpp"

namespace twinspeed {

namespace {

// The factors of the pre-division rule: before the sum, and after it (1: none).
struct Factors {
  double before = 1.0;
  double after = 1.0;
};

Factors predivide_factors(const GradAveraging& a, int world) {
  const double n = static_cast<double>(world);
  if (!a.average) return {};
  if (a.prescale) return {.before = 1.0 / n};
  return {.before = 1.0 / a.predivide, .after = a.predivide != n ? a.predivide / n : 1.0};
}

void scale_unless_one(BufferView view, double factor) {
  if (factor != 1.0) kernels::scale(view, factor);
}

comm::ComputeCost copy_cost(std::int64_t bytes) {
  return {.op_class = comm::OpClass::copy, .bytes_read = bytes, .bytes_written = bytes};
}

}  // namespace

void allreduce_with_predivide(comm::Comm& group, BufferView view, const GradAveraging& averaging) {
  const Factors f = predivide_factors(averaging, group.size());
  scale_unless_one(view, f.before);
  group.all_reduce(view)->wait();
  scale_unless_one(view, f.after);
}

void reduce_scatter_with_predivide(comm::Comm& group, BufferView input, BufferView output,
                                   const GradAveraging& averaging) {
  const Factors f = predivide_factors(averaging, group.size());
  scale_unless_one(input, f.before);
  group.reduce_scatter(input, output)->wait();
  scale_unless_one(output, f.after);
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
  in_flight_.resize(buckets_.size());
}

BucketReducer::~BucketReducer() = default;

comm::Stream& BucketReducer::stream() {
  return options_.overlap_comm ? device_.comm_stream("zero-reduce") : device_.compute_stream();
}

void BucketReducer::add(std::size_t param, BufferView grad) {
  const std::int64_t n = grad.numel;
  if (filled_ + n > bucket_numel_) flush();
  if (n > bucket_numel_) {
    InFlight alone{.works = {}, .data = grad, .entries = {{param, 0, n}}};
    reduce(alone);
    complete(alone);
    return;
  }
  if (entries_.empty() && !in_flight_[index_].entries.empty()) complete(in_flight_[index_]);
  BufferView slot = buckets_[index_].view(filled_, n);
  device_.compute_stream().launch("copy grad to bucket", copy_cost(grad.bytes()), [&] { kernels::copy(slot, grad); });
  entries_.push_back({param, filled_, n});
  filled_ += n;
}

void BucketReducer::flush() {
  if (entries_.empty()) return;
  InFlight& flight = in_flight_[index_];
  flight = {.works = {}, .data = buckets_[index_].view(0, filled_), .entries = std::move(entries_)};
  entries_.clear();
  filled_ = 0;
  reduce(flight);
  if (options_.overlap_comm) {
    index_ = (index_ + 1) % buckets_.size();
  } else {
    complete(flight);
  }
}

void BucketReducer::reduce(InFlight& flight) {
  // The bucket was filled on the compute stream: the reduction stream waits for it (DeepSpeed's
  // reduction_stream.wait_stream(current_stream)).
  if (options_.overlap_comm) stream().wait(*device_.compute_stream().record());
  const comm::CollectiveOptions on{.stream = options_.overlap_comm ? &stream() : nullptr};
  if (!options_.reduce_scatter) {
    scale_unless_one(flight.data, predivide_factors(options_.averaging, group_.size()).before);
    flight.works.push_back(group_.all_reduce(flight.data, on));
    return;
  }
  if (options_.averaging.average) kernels::scale(flight.data, 1.0 / static_cast<double>(group_.size()));
  if (options_.multi_rank_bucket_allreduce) {
    flight.works.push_back(group_.all_reduce(flight.data, on));
    return;
  }
  // One reduce per owning rank of each contiguous run of its slices in the bucket.
  std::vector<std::pair<int, ElementRange>> runs;
  for (const Entry& e : flight.entries) {
    for (const OwnedPiece& piece : plan_.owners(model_, e.param)) {
      ElementRange r{e.bucket_offset + piece.param_offset, piece.numel};
      if (!runs.empty() && runs.back().first == piece.rank && runs.back().second.end() == r.offset) {
        runs.back().second.numel += r.numel;
      } else {
        runs.emplace_back(piece.rank, r);
      }
    }
  }
  for (const auto& [rank, r] : runs) flight.works.push_back(group_.reduce(flight.data.sub(r.offset, r.numel), rank, on));
}

void BucketReducer::complete(InFlight& flight) {
  comm::Stream& s = stream();
  for (auto& work : flight.works) work->wait(options_.overlap_comm ? &s : nullptr);
  flight.works.clear();
  if (!options_.reduce_scatter) scale_unless_one(flight.data, predivide_factors(options_.averaging, group_.size()).after);
  const int me = group_.rank();
  for (const Entry& e : flight.entries) {
    for (const OwnedPiece& piece : plan_.owners(model_, e.param)) {
      if (piece.rank != me) continue;
      BufferView reduced = flight.data.sub(e.bucket_offset + piece.param_offset, piece.numel);
      s.launch("copy reduced grad", copy_cost(reduced.bytes()),
               [&] { deliver_(e.param, piece.param_offset, reduced); });
    }
  }
  flight.entries.clear();
}

void BucketReducer::finish() {
  flush();
  for (auto& flight : in_flight_) {
    if (!flight.works.empty() || !flight.entries.empty()) complete(flight);
  }
  if (options_.overlap_comm) device_.compute_stream().wait(*stream().record());
}

}  // namespace twinspeed
