#pragma once
// A rank's CPU as a seam Device for real multi-process backends (Gloo): host memory per tag with
// current/peak accounting (comm::MemoryLedger), and streams as the seam documents them for CPU
// backends:
//  - the compute stream is the calling thread: launch() runs fn before it returns, its events
//    are complete when recorded, and waiting on an event blocks the caller until it completes;
//  - each comm stream is one FIFO worker thread: collectives (submit()) are queued, record()
//    queues an event, wait(event) queues a wait, so communication really overlaps compute;
//    launch() runs fn on the worker after the queued work and returns when fn is done (the seam's
//    contract: fn runs before launch returns, as on CUDA, where it enqueues kernels).
// Time in traces is wall-clock nanoseconds since the device's epoch (see set_epoch).

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/comm/device.hpp"
#include "engine/comm/memory_ledger.hpp"
#include "engine/core/trace.hpp"

namespace twinspeed::backends {

class CpuEvent final : public comm::Event {
 public:
  struct State {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    void complete();
    void wait();
  };
  explicit CpuEvent(std::shared_ptr<State> state) : state_(std::move(state)) {}
  bool query() const override;
  void synchronize() override { state_->wait(); }
  const std::shared_ptr<State>& state() const { return state_; }

 private:
  std::shared_ptr<State> state_;
};

class CpuClock {
 public:
  // Nanoseconds since the epoch (never negative).
  std::int64_t now_ns() const;
  void set_epoch(std::chrono::steady_clock::time_point epoch) { epoch_ = epoch; }

 private:
  std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();
};

// A stream whose work a backend can queue directly (collectives), not only compute launches.
class CpuStream : public comm::Stream {
 public:
  // Runs task on this stream, after everything submitted before it. The task must not throw.
  virtual void submit(std::function<void()> task) = 0;
};

class InlineStream final : public CpuStream {
 public:
  InlineStream(std::string name, int rank, TraceRecorder& tracer, const CpuClock& clock)
      : name_(std::move(name)), rank_(rank), tracer_(tracer), clock_(clock) {}
  std::string_view name() const override { return name_; }
  void launch(std::string_view name, const comm::ComputeCost& cost, const std::function<void()>& fn) override;
  std::shared_ptr<comm::Event> record() override;
  void wait(const comm::Event& event) override;
  void synchronize() override {}
  void submit(std::function<void()> task) override { task(); }

 private:
  std::string name_;
  int rank_;
  TraceRecorder& tracer_;
  const CpuClock& clock_;
};

class WorkerStream final : public CpuStream {
 public:
  WorkerStream(std::string name, int rank, TraceRecorder& tracer, const CpuClock& clock);
  // Finishes the queued work, then stops the thread.
  ~WorkerStream() override;
  std::string_view name() const override { return name_; }
  // Runs fn on the worker after the work queued before it; returns when fn is done, rethrowing
  // what it threw.
  void launch(std::string_view name, const comm::ComputeCost& cost, const std::function<void()>& fn) override;
  std::shared_ptr<comm::Event> record() override;
  void wait(const comm::Event& event) override;
  void synchronize() override;
  void submit(std::function<void()> task) override;

 private:
  void run();
  std::string name_;
  int rank_;
  TraceRecorder& tracer_;
  const CpuClock& clock_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

class CpuDevice final : public comm::Device {
 public:
  // capacity_bytes 0: unbounded.
  CpuDevice(int rank, std::int64_t capacity_bytes, TraceRecorder& tracer);
  ~CpuDevice() override;

  int rank() const override { return rank_; }
  bool has_data() const override { return true; }
  Buffer allocate(DType dtype, std::int64_t numel, MemoryTag tag) override;
  Buffer charge(MemoryTag tag, std::int64_t bytes) override;
  comm::MemoryStats memory() const override;
  comm::Stream& compute_stream() override { return compute_; }
  comm::Stream& comm_stream(std::string_view lane) override;
  void copy(BufferView dst, BufferView src, comm::Stream& stream) override;
  void release(Buffer& buffer) noexcept override;

  // The stream a collective runs on: `stream` when given (it must be one of this device's), else
  // the comm stream `lane`.
  CpuStream& stream_for(comm::Stream* stream, std::string_view lane);
  CpuClock& clock() { return clock_; }
  // Blocks until every comm stream has run what was queued on it (errors stay with their Work).
  void drain() noexcept;

 private:
  void record_memory(MemoryTag tag);
  int rank_;
  TraceRecorder& tracer_;
  CpuClock clock_;
  mutable std::mutex mutex_;  // ledger and streams
  comm::MemoryLedger ledger_;
  InlineStream compute_;
  std::map<std::string, std::unique_ptr<WorkerStream>, std::less<>> streams_;
};

}  // namespace twinspeed::backends
