#include "engine/backends/gloo/cpu_device.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

#include "engine/core/errors.hpp"

namespace twinspeed::backends {

void CpuEvent::State::complete() {
  {
    std::lock_guard lock(mutex);
    done = true;
  }
  done_cv.notify_all();
}

void CpuEvent::State::wait() {
  std::unique_lock lock(mutex);
  done_cv.wait(lock, [this] { return done; });
}

bool CpuEvent::query() const {
  std::lock_guard lock(state_->mutex);
  return state_->done;
}

std::int64_t CpuClock::now_ns() const {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - epoch_).count();
  return ns < 0 ? 0 : ns;
}

namespace {

const CpuEvent& cpu_event(const comm::Event& event) {
  const auto* e = dynamic_cast<const CpuEvent*>(&event);
  if (e == nullptr) throw Error("a CPU stream can only wait on events of a CPU device");
  return *e;
}

// Runs fn and records its slice on the stream's lane.
void run_traced(std::string_view lane, int rank, TraceRecorder& tracer, const CpuClock& clock, std::string_view name,
                const comm::ComputeCost& cost, const std::function<void()>& fn) {
  const std::int64_t start = clock.now_ns();
  if (fn) fn();
  tracer.record({.rank = rank,
                 .lane = std::string(lane),
                 .name = std::string(name),
                 .category = cost.op_class == comm::OpClass::copy ? TraceCategory::copy : TraceCategory::compute,
                 .start_ns = start,
                 .duration_ns = clock.now_ns() - start,
                 .op = std::string(comm::op_class_name(cost.op_class)),
                 .bytes = cost.bytes_read + cost.bytes_written});
}

std::shared_ptr<CpuEvent::State> completed_state() {
  auto state = std::make_shared<CpuEvent::State>();
  state->done = true;
  return state;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void InlineStream::launch(std::string_view name, const comm::ComputeCost& cost, const std::function<void()>& fn) {
  run_traced(name_, rank_, tracer_, clock_, name, cost, fn);
}

std::shared_ptr<comm::Event> InlineStream::record() { return std::make_shared<CpuEvent>(completed_state()); }

// The calling thread is this stream: ordering later work after the event means waiting for it.
void InlineStream::wait(const comm::Event& event) { cpu_event(event).state()->wait(); }

// ---------------------------------------------------------------------------------------------

WorkerStream::WorkerStream(std::string name, int rank, TraceRecorder& tracer, const CpuClock& clock)
    : name_(std::move(name)), rank_(rank), tracer_(tracer), clock_(clock), thread_([this] { run(); }) {}

WorkerStream::~WorkerStream() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void WorkerStream::run() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

void WorkerStream::submit(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(task));
  }
  changed_.notify_one();
}

// As on CUDA, where fn runs on the host during launch() and enqueues kernels, fn is done when
// launch() returns (so it may capture by reference); here it runs on the worker, after the work
// queued before it (the collectives it depends on), and the caller waits for it.
void WorkerStream::launch(std::string_view name, const comm::ComputeCost& cost, const std::function<void()>& fn) {
  // Shared: the worker may still be notifying when the waiter returns.
  auto done = std::make_shared<CpuEvent::State>();
  std::exception_ptr error;
  submit([&, done] {
    try {
      run_traced(name_, rank_, tracer_, clock_, name, cost, fn);
    } catch (...) {
      error = std::current_exception();
    }
    done->complete();
  });
  done->wait();
  if (error) std::rethrow_exception(error);
}

std::shared_ptr<comm::Event> WorkerStream::record() {
  auto state = std::make_shared<CpuEvent::State>();
  submit([state] { state->complete(); });
  return std::make_shared<CpuEvent>(state);
}

void WorkerStream::wait(const comm::Event& event) {
  auto state = cpu_event(event).state();
  if (state->done) return;  // read racily, but done never goes back to false
  submit([state] { state->wait(); });
}

void WorkerStream::synchronize() { record()->synchronize(); }

// ---------------------------------------------------------------------------------------------

CpuDevice::CpuDevice(int rank, std::int64_t capacity_bytes, TraceRecorder& tracer)
    : rank_(rank), tracer_(tracer), ledger_(rank, capacity_bytes), compute_("compute", rank, tracer, clock_) {}

CpuDevice::~CpuDevice() = default;

void CpuDevice::record_memory(MemoryTag tag) {
  tracer_.record_memory({.rank = rank_, .time_ns = clock_.now_ns(), .tag = tag, .bytes = ledger_.stats().current(tag)});
}

Buffer CpuDevice::allocate(DType dtype, std::int64_t numel, MemoryTag tag) {
  if (numel < 0) throw Error(fmt::format("negative allocation of {} elements for '{}'", numel, memory_tag_name(tag)));
  const std::int64_t bytes = numel * static_cast<std::int64_t>(dtype_size(dtype));
  std::lock_guard lock(mutex_);
  ledger_.charge(tag, bytes);
  void* data = nullptr;
  if (bytes > 0) {
    constexpr std::size_t kAlign = 64;
    const std::size_t rounded = (static_cast<std::size_t>(bytes) + kAlign - 1) / kAlign * kAlign;
    data = std::aligned_alloc(kAlign, rounded);
    if (data == nullptr) {
      ledger_.release(tag, bytes);
      throw OutOfMemory({.rank = rank_,
                         .tag = std::string(memory_tag_name(tag)),
                         .requested_bytes = bytes,
                         .capacity_bytes = ledger_.stats().capacity_bytes,
                         .in_use_bytes = ledger_.stats().total_current_bytes},
                        "the host allocator refused the request");
    }
    std::memset(data, 0, rounded);
  }
  record_memory(tag);
  return Buffer(this, tag, dtype, numel, data, rank_);
}

Buffer CpuDevice::charge(MemoryTag tag, std::int64_t bytes) {
  if (bytes < 0) throw Error(fmt::format("negative charge of {} bytes for '{}'", bytes, memory_tag_name(tag)));
  std::lock_guard lock(mutex_);
  ledger_.charge(tag, bytes);
  record_memory(tag);
  return Buffer(this, tag, DType::u8, bytes, nullptr, rank_);
}

void CpuDevice::release(Buffer& buffer) noexcept {
  std::lock_guard lock(mutex_);
  std::free(buffer.data());
  ledger_.release(buffer.tag(), buffer.bytes());
  record_memory(buffer.tag());
}

comm::MemoryStats CpuDevice::memory() const {
  std::lock_guard lock(mutex_);
  return ledger_.stats();
}

comm::Stream& CpuDevice::comm_stream(std::string_view lane) {
  std::lock_guard lock(mutex_);
  auto it = streams_.find(lane);
  if (it == streams_.end()) {
    it = streams_.emplace(std::string(lane), std::make_unique<WorkerStream>(std::string(lane), rank_, tracer_, clock_))
             .first;
  }
  return *it->second;
}

void CpuDevice::drain() noexcept {
  std::vector<WorkerStream*> streams;
  {
    std::lock_guard lock(mutex_);
    for (auto& [name, stream] : streams_) streams.push_back(stream.get());
  }
  for (WorkerStream* s : streams) {
    try {
      s->synchronize();
    } catch (...) {
      // A failed launch was the engine's to see; at teardown only the draining matters.
    }
  }
}

CpuStream& CpuDevice::stream_for(comm::Stream* stream, std::string_view lane) {
  comm::Stream& chosen = stream != nullptr ? *stream : comm_stream(lane);
  auto* cpu = dynamic_cast<CpuStream*>(&chosen);
  if (cpu == nullptr) throw Error(fmt::format("stream '{}' is not a stream of this CPU device", chosen.name()));
  return *cpu;
}

void CpuDevice::copy(BufferView dst, BufferView src, comm::Stream& stream) {
  if (dst.numel != src.numel || dst.dtype() != src.dtype()) {
    throw Error(fmt::format("device copy of {} {} elements into {} {} elements", src.numel, dtype_name(src.dtype()),
                            dst.numel, dtype_name(dst.dtype())));
  }
  stream.launch("copy", comm::copy_cost(src.bytes()), [dst, src] {
    if (dst.has_data() && src.has_data()) std::memmove(dst.data(), src.data(), static_cast<std::size_t>(src.bytes()));
  });
}

}  // namespace twinspeed::backends
