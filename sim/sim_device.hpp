#pragma once
// One simulated rank's device: tagged memory charged byte for byte to a MemoryLedger (host memory
// in numeric fidelity, no data in shape fidelity) and streams with virtual clocks.
//
// Stream semantics: on the compute stream, launch() runs fn at once (numeric fidelity) and
// advances the stream's clock by the cost model's time; an event records a stream's clock; a
// stream waiting on an event moves its clock to at least the event's time. Host-side waits block
// nothing here: the scheduler handles ordering between ranks.

#include <map>
#include <memory>
#include <string>

#include "engine/comm/device.hpp"
#include "engine/core/trace.hpp"
#include "sim/cost_model.hpp"
#include "sim/host_block_pool.hpp"
#include "engine/comm/memory_ledger.hpp"

namespace twinspeed::sim {

class SimEvent final : public comm::Event {
 public:
  explicit SimEvent(std::int64_t time_ns) : time_ns_(time_ns) {}
  bool query() const override { return true; }
  void synchronize() override {}
  std::int64_t time_ns() const { return time_ns_; }

 private:
  std::int64_t time_ns_;
};

class Scheduler;

// Ranks waiting in SimStream::settle(): when no rank can run, the cluster lets them run ahead (as
// a GPU's host would: the stream queues, the host goes on) before it declares anything hung.
struct RunAhead {
  int waiting = 0;
  std::uint64_t generation = 0;
};

class SimStream final : public comm::Stream {
 public:
  SimStream(std::string name, int rank, bool run_work, const CostModel& costs, TraceRecorder& tracer,
            Scheduler* scheduler, RunAhead* run_ahead)
      : name_(std::move(name)),
        rank_(rank),
        run_work_(run_work),
        costs_(costs),
        tracer_(tracer),
        scheduler_(scheduler),
        run_ahead_(run_ahead) {}
  std::string_view name() const override { return name_; }
  void launch(std::string_view name, const comm::ComputeCost& cost, const std::function<void()>& fn) override;
  std::shared_ptr<comm::Event> record() override {
    settle();
    return std::make_shared<SimEvent>(clock_ns_);
  }
  void wait(const comm::Event& event) override;
  void synchronize() override {}

  std::int64_t clock_ns() const { return clock_ns_; }
  // Moves the clock to at least t (never backwards).
  void advance_to(std::int64_t t) {
    if (t > clock_ns_) clock_ns_ = t;
  }
  // A collective issued on this stream whose end time is not known until it executes: later work
  // on the stream must come after it (streams are FIFO), so settle() first waits, letting the other
  // ranks run, until done() holds (executed or failed). Times are then exact. If nothing else can
  // run, the rank runs ahead instead (its later work on this stream is timed from the clock it has:
  // this happens only on the way to a hang, whose errors it keeps right).
  void set_blocker(std::function<bool()> done) { blocker_ = std::move(done); }
  void settle();

 private:
  std::string name_;
  int rank_;
  bool run_work_;
  const CostModel& costs_;
  TraceRecorder& tracer_;
  Scheduler* scheduler_;
  RunAhead* run_ahead_;
  std::function<bool()> blocker_;
  std::int64_t clock_ns_ = 0;
};

class SimDevice final : public comm::Device {
 public:
  // Buffers with data come from `pool` (shared by the cluster's devices).
  SimDevice(int rank, bool has_data, std::int64_t capacity_bytes, const CostModel& costs, TraceRecorder& tracer,
            Scheduler* scheduler, RunAhead* run_ahead, std::shared_ptr<HostBlockPool> pool);
  ~SimDevice() override;

  int rank() const override { return rank_; }
  bool has_data() const override { return has_data_; }
  Buffer allocate(DType dtype, std::int64_t numel, MemoryTag tag) override;
  Buffer charge(MemoryTag tag, std::int64_t bytes) override;
  comm::MemoryStats memory() const override { return ledger_.stats(); }
  comm::Stream& compute_stream() override { return compute_; }
  comm::Stream& comm_stream(std::string_view lane) override { return sim_stream(lane); }
  void copy(BufferView dst, BufferView src, comm::Stream& stream) override;
  void release(Buffer& buffer) noexcept override;

  SimStream& compute() { return compute_; }
  // Charges bytes the runtime holds for good to tag `reserved` (OutOfMemory past capacity).
  void reserve(std::int64_t bytes) {
    ledger_.charge(MemoryTag::reserved, bytes);
    tracer_.record_memory({.rank = rank_, .time_ns = compute_.clock_ns(), .tag = MemoryTag::reserved,
                           .bytes = ledger_.stats().current(MemoryTag::reserved)});
  }
  SimStream& sim_stream(std::string_view lane);

 private:
  int rank_;
  bool has_data_;
  const CostModel& costs_;
  TraceRecorder& tracer_;
  Scheduler* scheduler_;
  RunAhead* run_ahead_;
  std::shared_ptr<HostBlockPool> pool_;
  comm::MemoryLedger ledger_;
  SimStream compute_;
  std::map<std::string, std::unique_ptr<SimStream>, std::less<>> streams_;
};

}  // namespace twinspeed::sim
