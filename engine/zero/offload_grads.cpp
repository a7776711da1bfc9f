#include "engine/zero/offload_grads.hpp"

#include <algorithm>

#include "kernels/kernels.hpp"

namespace twinspeed {

namespace {

void sort_by_offset(std::vector<ElementRange>& ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const ElementRange& a, const ElementRange& b) { return a.offset < b.offset; });
}

}  // namespace

GradientsToHost::GradientsToHost(comm::Device& device, comm::Device& host, std::vector<BufferView> device_parts,
                                 std::vector<BufferView> host_parts, std::vector<std::vector<ElementRange>> unreduced,
                                 std::vector<std::vector<std::int64_t>> unreduced_numel)
    : device_(device),
      host_(host),
      device_parts_(std::move(device_parts)),
      host_parts_(std::move(host_parts)),
      unreduced_(std::move(unreduced)),
      unreduced_numel_(std::move(unreduced_numel)) {}

void GradientsToHost::begin() {
  if (started_) return;
  started_ = true;
  ready_ = unreduced_;
  final_ = unreduced_numel_;
  charged_.assign(device_parts_.size(), 0);
  copied_.assign(device_parts_.size(), {});
  staging_.clear();
  for (std::size_t g = 0; g < device_parts_.size(); ++g) {
    // A 16-bit partition crosses PCIe as it is and is cast on the CPU; a same-dtype one lands in
    // place.
    if (device_parts_[g].dtype() != host_parts_[g].dtype()) {
      staging_.push_back(host_.allocate(device_parts_[g].dtype(), device_parts_[g].numel, MemoryTag::temporaries));
    } else {
      staging_.emplace_back();
    }
  }
}

void GradientsToHost::take(std::size_t g, std::int64_t budget, comm::Stream& copies) {
  std::vector<ElementRange>& ready = ready_[g];
  sort_by_offset(ready);
  // One copy per contiguous run (a bucket's slices of a partition are adjacent, in reverse order).
  std::vector<ElementRange> runs;
  for (const ElementRange& r : ready) {
    if (!runs.empty() && runs.back().end() == r.offset) {
      runs.back().numel += r.numel;
    } else if (r.numel > 0) {
      runs.push_back(r);
    }
  }
  ready.clear();
  for (ElementRange& r : runs) {
    const std::int64_t n = std::min(budget, r.numel);
    if (n > 0) {
      const BufferView dst = staging_[g].empty() ? host_parts_[g] : staging_[g].all();
      device_.copy(dst.sub(r.offset, n), device_parts_[g].sub(r.offset, n), copies);
      copied_[g].push_back({r.offset, n});
      budget -= n;
    }
    if (n < r.numel) ready.push_back({r.offset + n, r.numel - n});
  }
}

void GradientsToHost::copy(comm::Stream& after, std::span<const Range> mine, std::span<const Owned> every_rank) {
  if (!started_) return;
  for (const Range& r : mine) ready_[r.group].push_back(r.range);
  for (const Owned& o : every_rank) final_[o.group][static_cast<std::size_t>(o.rank)] += o.numel;
  // What every rank copies now: per group, the fewest elements any rank has final.
  std::vector<std::int64_t> budget(device_parts_.size(), 0);
  bool any = false;
  for (std::size_t g = 0; g < device_parts_.size(); ++g) {
    const std::int64_t slowest = *std::min_element(final_[g].begin(), final_[g].end());
    budget[g] = slowest - charged_[g];
    charged_[g] = slowest;
    any = any || budget[g] > 0;
  }
  if (!any) return;
  comm::Stream& copies = device_.comm_stream("copy");
  copies.wait(*after.record());
  for (std::size_t g = 0; g < device_parts_.size(); ++g) {
    if (budget[g] > 0) take(g, budget[g], copies);
  }
}

std::vector<BufferView> GradientsToHost::finish() {
  begin();
  comm::Stream& compute = device_.compute_stream();
  comm::Stream& copies = device_.comm_stream("copy");
  comm::Stream& cpu = host_.compute_stream();
  for (std::size_t g = 0; g < device_parts_.size(); ++g) {
    // What was not copied yet (everything when begin() was not called before).
    std::vector<ElementRange>& done = copied_[g];
    sort_by_offset(done);
    ready_[g].clear();
    std::int64_t at = 0;
    for (const ElementRange& r : done) {
      if (r.offset > at) ready_[g].push_back({at, r.offset - at});
      at = std::max(at, r.end());
    }
    if (at < device_parts_[g].numel) ready_[g].push_back({at, device_parts_[g].numel - at});
    if (!ready_[g].empty()) {
      copies.wait(*compute.record());
      take(g, device_parts_[g].numel, copies);
    }
    cpu.wait(*copies.record());
    if (!staging_[g].empty()) {
      const BufferView src = staging_[g].all();
      cpu.launch("grads to fp32", comm::copy_cost(src.bytes()), [&] { kernels::copy(host_parts_[g], src); });
    }
  }
  // The staging buffers are released below: the CPU's casts must be done with them (every
  // backend's host stream has run its launches when they return).
  end();
  return host_parts_;
}

void GradientsToHost::abandon() {
  if (!started_) return;
  host_.compute_stream().wait(*device_.comm_stream("copy").record());
  end();
}

void GradientsToHost::end() {
  staging_.clear();
  ready_.clear();
  copied_.clear();
  final_.clear();
  started_ = false;
}

}  // namespace twinspeed
