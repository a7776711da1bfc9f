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
  const std::int64_t ns = on_host_ ? costs_.host_compute_ns(rank_, cost) : costs_.compute_ns(rank_, cost);
  run_and_record(name, ns, cost.op_class == comm::OpClass::copy ? TraceCategory::copy : TraceCategory::compute,
                 comm::op_class_name(cost.op_class), cost.bytes_read + cost.bytes_written, fn);
}

void SimStream::launch_host_transfer(std::string_view name, std::int64_t bytes, const std::function<void()>& fn) {
  settle();
  run_and_record(name, costs_.host_copy_ns(rank_, bytes), TraceCategory::copy, "copy", bytes, fn);
}

void SimStream::run_and_record(std::string_view name, std::int64_t duration_ns, TraceCategory category,
                               std::string_view op, std::int64_t bytes, const std::function<void()>& fn) {
  if (run_work_ && fn) fn();
  std::int64_t start = clock_ns_;
  clock_ns_ += duration_ns;
  tracer_.record({.rank = rank_,
                  .lane = name_,
                  .name = std::string(name),
                  .category = category,
                  .start_ns = start,
                  .duration_ns = clock_ns_ - start,
                  .op = std::string(op),
                  .bytes = bytes});
}

void SimStream::wait(const comm::Event& event) {
  const auto* sim_event = dynamic_cast<const SimEvent*>(&event);
  if (sim_event == nullptr) throw Error("a simulated stream can only wait on events of the simulated cluster");
  settle();
  advance_to(sim_event->time_ns());
}

SimDevice::SimDevice(int rank, bool has_data, std::int64_t capacity_bytes, const CostModel& costs,
                     TraceRecorder& tracer, Scheduler* scheduler, RunAhead* run_ahead,
                     std::shared_ptr<HostBlockPool> pool, HostSide host)
    : rank_(rank),
      has_data_(has_data),
      is_host_(!host.shares.empty()),
      shares_(is_host_ ? std::move(host.shares)
                       : std::vector<HostSide::Share>{{std::make_shared<comm::MemoryLedger>(rank, capacity_bytes), 1}}),
      costs_(costs),
      tracer_(tracer),
      scheduler_(scheduler),
      run_ahead_(run_ahead),
      pool_(std::move(pool)),
      compute_(is_host_ ? "cpu" : "compute", rank, has_data, costs, tracer, scheduler, run_ahead, is_host_) {}

void SimDevice::record_memory(MemoryTag tag) {
  if (is_host_) return;
  tracer_.record_memory({.rank = rank_, .time_ns = compute_.clock_ns(), .tag = tag, .bytes = memory().current(tag)});
}

void SimDevice::charge_ledgers(MemoryTag tag, std::int64_t bytes) {
  std::size_t done = 0;
  try {
    for (; done < shares_.size(); ++done) shares_[done].ledger->charge(tag, bytes * shares_[done].weight);
  } catch (...) {
    for (std::size_t i = 0; i < done; ++i) shares_[i].ledger->release(tag, bytes * shares_[i].weight);
    throw;
  }
}

void SimDevice::release_ledgers(MemoryTag tag, std::int64_t bytes) noexcept {
  for (const HostSide::Share& s : shares_) s.ledger->release(tag, bytes * s.weight);
}

SimDevice::~SimDevice() = default;

Buffer SimDevice::allocate(DType dtype, std::int64_t numel, MemoryTag tag) {
  if (numel < 0) throw Error(fmt::format("negative allocation of {} elements for '{}'", numel, memory_tag_name(tag)));
  std::int64_t bytes = numel * static_cast<std::int64_t>(dtype_size(dtype));
  charge_ledgers(tag, bytes);
  void* data = nullptr;
  if (has_data_ && bytes > 0) {
    data = pool_->acquire(static_cast<std::size_t>(bytes), true);
    if (data == nullptr) {
      release_ledgers(tag, bytes);
      throw OutOfMemory({.rank = rank_,
                         .tag = std::string(memory_tag_name(tag)),
                         .requested_bytes = bytes,
                         .capacity_bytes = memory().capacity_bytes,
                         .in_use_bytes = memory().total_current_bytes},
                        "the host allocator refused the request");
    }
  }
  record_memory(tag);
  return Buffer(this, tag, dtype, numel, data, rank_);
}

Buffer SimDevice::charge(MemoryTag tag, std::int64_t bytes) {
  if (bytes < 0) throw Error(fmt::format("negative charge of {} bytes for '{}'", bytes, memory_tag_name(tag)));
  charge_ledgers(tag, bytes);
  record_memory(tag);
  return Buffer(this, tag, DType::u8, bytes, nullptr, rank_);
}

void SimDevice::release(Buffer& buffer) noexcept {
  release_ledgers(buffer.tag(), buffer.bytes());
  pool_->release(buffer.data(), static_cast<std::size_t>(buffer.bytes()));
  try {
    record_memory(buffer.tag());
  } catch (...) {
    // Tracing must never turn a release into a failure.
  }
}

SimStream& SimDevice::sim_stream(std::string_view lane) {
  auto it = streams_.find(lane);
  if (it == streams_.end()) {
    it = streams_.emplace(std::string(lane), std::make_unique<SimStream>(std::string(lane), rank_, has_data_, costs_, tracer_, scheduler_,
                                                                  run_ahead_, is_host_))
             .first;
  }
  return *it->second;
}

void SimDevice::copy(BufferView dst, BufferView src, comm::Stream& stream) {
  if (dst.dtype() != src.dtype() || dst.numel != src.numel) {
    throw Error(fmt::format("copy between mismatched views: {} x {} <- {} x {}", dst.numel, dtype_name(dst.dtype()),
                            src.numel, dtype_name(src.dtype())));
  }
  auto move = [&] { std::memmove(dst.data(), src.data(), static_cast<std::size_t>(src.bytes())); };
  // A copy between the device and its node's host memory crosses PCIe (Backend::host()).
  auto on_host = [](const BufferView& v) {
    const auto* owner = v.buffer != nullptr ? dynamic_cast<const SimDevice*>(v.buffer->owner()) : nullptr;
    return owner != nullptr && owner->is_host();
  };
  if (on_host(dst) != on_host(src)) {
    auto* sim = dynamic_cast<SimStream*>(&stream);
    if (sim == nullptr) throw Error("a simulated device copies only on streams of the simulated cluster");
    sim->launch_host_transfer(on_host(dst) ? "copy to host" : "copy to device", src.bytes(), move);
    return;
  }
  stream.launch("copy", {.op_class = comm::OpClass::copy, .bytes_read = src.bytes(), .bytes_written = dst.bytes()},
                move);
}

}  // namespace twinspeed::sim
