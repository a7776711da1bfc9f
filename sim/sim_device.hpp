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
#include <vector>

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
  // on_host: a stream of the host's CPU (Backend::host()), costed by CostModel::host_compute_ns.
  SimStream(std::string name, int rank, bool run_work, const CostModel& costs, TraceRecorder& tracer,
            Scheduler* scheduler, RunAhead* run_ahead, bool on_host = false)
      : name_(std::move(name)),
        rank_(rank),
        run_work_(run_work),
        on_host_(on_host),
        costs_(costs),
        tracer_(tracer),
        scheduler_(scheduler),
        run_ahead_(run_ahead) {}
  std::string_view name() const override { return name_; }
  void launch(std::string_view name, const comm::ComputeCost& cost, const std::function<void()>& fn) override;
  // A copy between the device and the host's memory: CostModel::host_copy_ns on the clock.
  void launch_host_transfer(std::string_view name, std::int64_t bytes, const std::function<void()>& fn);
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
  void run_and_record(std::string_view name, std::int64_t duration_ns, TraceCategory category, std::string_view op,
                      std::int64_t bytes, const std::function<void()>& fn);

  std::string name_;
  int rank_;
  bool run_work_;
  bool on_host_;
  const CostModel& costs_;
  TraceRecorder& tracer_;
  Scheduler* scheduler_;
  RunAhead* run_ahead_;
  std::function<bool()> blocker_;
  std::int64_t clock_ns_ = 0;
};

// What makes a SimDevice the host memory of a node (Backend::host()) rather than an accelerator:
// the ledgers of the nodes whose ranks it stands for, each with how many of that node's ranks.
// Without collapse that is its own node's ledger, shared with the node's other ranks, weight 1. A
// simulated rank that represents k ranks of a node charges that node's ledger k times its bytes,
// so every node's total is exact under symmetric-rank collapse. The first entry is its own node's,
// the one memory() reports.
struct HostSide {
  struct Share {
    std::shared_ptr<comm::MemoryLedger> ledger;
    int weight = 1;
  };
  std::vector<Share> shares;  // empty: an accelerator
};

class SimDevice final : public comm::Device {
 public:
  // Buffers with data come from `pool` (shared by the cluster's devices). With host shares the
  // device is a node's host memory: charged to that ledger, its compute stream is lane "cpu",
  // its memory is not traced per tag (the device's counters keep the trace's tag lanes).
  SimDevice(int rank, bool has_data, std::int64_t capacity_bytes, const CostModel& costs, TraceRecorder& tracer,
            Scheduler* scheduler, RunAhead* run_ahead, std::shared_ptr<HostBlockPool> pool, HostSide host = {});
  ~SimDevice() override;

  int rank() const override { return rank_; }
  bool has_data() const override { return has_data_; }
  Buffer allocate(DType dtype, std::int64_t numel, MemoryTag tag) override;
  Buffer charge(MemoryTag tag, std::int64_t bytes) override;
  comm::MemoryStats memory() const override { return shares_.front().ledger->stats(); }
  bool is_host() const { return is_host_; }
  comm::Stream& compute_stream() override { return compute_; }
  comm::Stream& comm_stream(std::string_view lane) override { return sim_stream(lane); }
  void copy(BufferView dst, BufferView src, comm::Stream& stream) override;
  void release(Buffer& buffer) noexcept override;

  SimStream& compute() { return compute_; }
  // Charges bytes the runtime holds for good to tag `reserved` (OutOfMemory past capacity).
  void reserve(std::int64_t bytes) {
    charge_ledgers(MemoryTag::reserved, bytes);
    record_memory(MemoryTag::reserved);
  }
  SimStream& sim_stream(std::string_view lane);

 private:
  void record_memory(MemoryTag tag);
  void charge_ledgers(MemoryTag tag, std::int64_t bytes);
  void release_ledgers(MemoryTag tag, std::int64_t bytes) noexcept;

  int rank_;
  bool has_data_;
  bool is_host_;
  std::vector<HostSide::Share> shares_;  // where allocations are charged; [0] is reported
  const CostModel& costs_;
  TraceRecorder& tracer_;
  Scheduler* scheduler_;
  RunAhead* run_ahead_;
  std::shared_ptr<HostBlockPool> pool_;
  SimStream compute_;
  std::map<std::string, std::unique_ptr<SimStream>, std::less<>> streams_;
};

}  // namespace twinspeed::sim
