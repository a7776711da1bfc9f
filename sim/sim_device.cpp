#include "sim/sim_device.hpp"

#include <fmt/format.h>

#include <cstring>

#include "engine/core/errors.hpp"
#include "sim/scheduler.hpp"

namespace twinspeed::sim {

void SimStream::settle() {
  if (!blocker_) return;
  if (!blocker_() && scheduler_ != nullptr) {
    if (run_ahead_ == nullptr) {
      scheduler_->block_until(blocker_);
    } else {
      ScopedCount waiting(run_ahead_->waiting);
      const std::uint64_t generation = run_ahead_->generation;
      scheduler_->block_until([this, generation] { return blocker_() || run_ahead_->generation != generation; });
    }
  }
  blocker_ = nullptr;
}

void SimStream::launch(std::string_view name, const comm::ComputeCost& cost, const std::function<void()>& fn) {
  settle();
  if (run_work_ && fn) fn();
  std::int64_t start = clock_ns_;
  clock_ns_ += costs_.compute_ns(rank_, cost);
  tracer_.record({.rank = rank_,
                  .lane = name_,
                  .name = std::string(name),
                  .category = cost.op_class == comm::OpClass::copy ? TraceCategory::copy : TraceCategory::compute,
                  .start_ns = start,
                  .duration_ns = clock_ns_ - start,
                  .op = std::string(comm::op_class_name(cost.op_class)),
                  .bytes = cost.bytes_read + cost.bytes_written});
}

void SimStream::wait(const comm::Event& event) {
  const auto* sim_event = dynamic_cast<const SimEvent*>(&event);
  if (sim_event == nullptr) throw Error("a simulated stream can only wait on events of the simulated cluster");
  settle();
  advance_to(sim_event->time_ns());
}

SimDevice::SimDevice(int rank, bool has_data, std::int64_t capacity_bytes, const CostModel& costs,
                     TraceRecorder& tracer, Scheduler* scheduler, RunAhead* run_ahead,
                     std::shared_ptr<HostBlockPool> pool)
    : rank_(rank),
      has_data_(has_data),
      costs_(costs),
      tracer_(tracer),
      scheduler_(scheduler),
      run_ahead_(run_ahead),
      pool_(std::move(pool)),
      ledger_(rank, capacity_bytes),
      compute_("compute", rank, has_data, costs, tracer, scheduler, run_ahead) {}

SimDevice::~SimDevice() = default;

Buffer SimDevice::allocate(DType dtype, std::int64_t numel, MemoryTag tag) {
  if (numel < 0) throw Error(fmt::format("negative allocation of {} elements for '{}'", numel, memory_tag_name(tag)));
  std::int64_t bytes = numel * static_cast<std::int64_t>(dtype_size(dtype));
  ledger_.charge(tag, bytes);
  void* data = nullptr;
  if (has_data_ && bytes > 0) {
    data = pool_->acquire(static_cast<std::size_t>(bytes), true);
    if (data == nullptr) {
      ledger_.release(tag, bytes);
      throw OutOfMemory({.rank = rank_,
                         .tag = std::string(memory_tag_name(tag)),
                         .requested_bytes = bytes,
                         .capacity_bytes = ledger_.stats().capacity_bytes,
                         .in_use_bytes = ledger_.stats().total_current_bytes},
                        "the host allocator refused the request");
    }
  }
  tracer_.record_memory({.rank = rank_, .time_ns = compute_.clock_ns(), .tag = tag, .bytes = ledger_.stats().current(tag)});
  return Buffer(this, tag, dtype, numel, data, rank_);
}

Buffer SimDevice::charge(MemoryTag tag, std::int64_t bytes) {
  if (bytes < 0) throw Error(fmt::format("negative charge of {} bytes for '{}'", bytes, memory_tag_name(tag)));
  ledger_.charge(tag, bytes);
  tracer_.record_memory({.rank = rank_, .time_ns = compute_.clock_ns(), .tag = tag, .bytes = ledger_.stats().current(tag)});
  return Buffer(this, tag, DType::u8, bytes, nullptr, rank_);
}

void SimDevice::release(Buffer& buffer) noexcept {
  ledger_.release(buffer.tag(), buffer.bytes());
  pool_->release(buffer.data(), static_cast<std::size_t>(buffer.bytes()));
  try {
    tracer_.record_memory({.rank = rank_,
                           .time_ns = compute_.clock_ns(),
                           .tag = buffer.tag(),
                           .bytes = ledger_.stats().current(buffer.tag())});
  } catch (...) {
    // Tracing must never turn a release into a failure.
  }
}

SimStream& SimDevice::sim_stream(std::string_view lane) {
  auto it = streams_.find(lane);
  if (it == streams_.end()) {
    it = streams_.emplace(std::string(lane), std::make_unique<SimStream>(std::string(lane), rank_, has_data_, costs_, tracer_, scheduler_, run_ahead_))
             .first;
  }
  return *it->second;
}

void SimDevice::copy(BufferView dst, BufferView src, comm::Stream& stream) {
  if (dst.dtype() != src.dtype() || dst.numel != src.numel) {
    throw Error(fmt::format("copy between mismatched views: {} x {} <- {} x {}", dst.numel, dtype_name(dst.dtype()),
                            src.numel, dtype_name(src.dtype())));
  }
  stream.launch("copy", {.op_class = comm::OpClass::copy, .bytes_read = src.bytes(), .bytes_written = dst.bytes()},
                [&] { std::memmove(dst.data(), src.data(), static_cast<std::size_t>(src.bytes())); });
}

}  // namespace twinspeed::sim
