#pragma once
// The simulated cluster's scheduler (DESIGN.md "Scheduler rule"): exactly one rank runs at a time;
// the lowest-numbered runnable rank runs until it blocks. Execution order is thus a pure function
// of the program, never of the OS, and all simulator state is touched only by the running rank
// (no locks beyond the baton).
//
// A rank blocks with block_until(ready): it becomes runnable again once ready() holds, evaluated
// by whichever rank hands the baton on. When no rank can run and some are blocked, the deadlock
// handler runs (in the thread holding the baton); it must make at least one blocked rank ready
// (the simulator fails the operations they wait on with CommErrors), else the run is aborted.

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace twinspeed::sim {

class Scheduler {
 public:
  using Ready = std::function<bool()>;
  virtual ~Scheduler() = default;

  // Slots: the scheduler runs ranks() slots, 0..ranks()-1, and everything below says "rank" for a
  // slot. A cluster that simulates only some of its ranks (symmetric-rank collapse, cluster.hpp)
  // gives slot i the i-th lowest simulated rank, so "the lowest-numbered runnable rank" keeps its
  // meaning; rank_of_slot maps back (identity unless set_slot_ranks was called).
  virtual int ranks() const = 0;
  void set_slot_ranks(std::vector<int> global_ranks) { slot_ranks_ = std::move(global_ranks); }
  int rank_of_slot(int slot) const { return slot_ranks_.empty() ? slot : slot_ranks_[static_cast<std::size_t>(slot)]; }
  // The global rank of the slot holding the baton (-1 outside run()).
  int current_rank() const {
    const int slot = current();
    return slot < 0 ? -1 : rank_of_slot(slot);
  }
  // Called when no rank can run and at least one is blocked. Returns false if it could not
  // unblock anyone.
  void set_deadlock_handler(std::function<bool()> handler) { deadlock_handler_ = std::move(handler); }

  // Runs body(rank) for every rank under the scheduling rule and returns when all have finished.
  // Returns each rank's exception (null when it finished normally).
  virtual std::vector<std::exception_ptr> run(const std::function<void(int rank)>& body) = 0;
  // Called by the running rank: returns once ready() holds, letting other ranks run meanwhile.
  virtual void block_until(const Ready& ready) = 0;
  // The rank holding the baton (-1 outside run()).
  virtual int current() const = 0;

 protected:
  bool handle_deadlock() { return deadlock_handler_ && deadlock_handler_(); }

 private:
  std::function<bool()> deadlock_handler_;
  std::vector<int> slot_ranks_;
};

// Makes every thread that allocates from now on share glibc's main malloc arena (no-op elsewhere).
// ThreadScheduler::run calls it, so memory one rank's LibTorch code frees serves the next rank; but
// glibc fixes its arena limit once, and threads that allocated before (LibTorch's and OpenBLAS's
// workers) keep arenas of their own that later rank threads are spread over. A program that runs
// numeric simulations calls it first thing in main(). Process-wide and permanent; threads
// allocating concurrently contend on the one arena.
void share_one_malloc_arena();

// Each rank on its own OS thread, handing a baton (numeric fidelity: LibTorch's autograd state is
// thread-local, so ranks need their own threads). ~10 us per hand-off.
class ThreadScheduler final : public Scheduler {
 public:
  explicit ThreadScheduler(int ranks);
  ~ThreadScheduler() override;

  int ranks() const override { return static_cast<int>(states_.size()); }
  std::vector<std::exception_ptr> run(const std::function<void(int rank)>& body) override;
  void block_until(const Ready& ready) override;
  int current() const override { return current_; }
  // For a single rank living in the caller's thread (no run()): marks rank 0 as running inline.
  void adopt_current_thread_as_rank0();

 private:
  struct RankState;
  int pick_next_locked();
  void hand_off_locked(std::unique_lock<std::mutex>& lock);
  void wait_for_baton(std::unique_lock<std::mutex>& lock, int rank);

  std::mutex mutex_;
  std::condition_variable all_done_;
  std::vector<std::unique_ptr<RankState>> states_;
  int current_ = -1;
  int finished_ = 0;
  bool inline_mode_ = false;
  bool aborted_ = false;
};

// Every rank a fiber (ucontext) on the calling thread: hand-offs cost a context switch, so
// thousands of shape-only ranks are cheap. Not for LibTorch code (its thread-locals would be
// shared) nor for code that blocks inside a catch handler (C++ exception state is per thread).
class FiberScheduler final : public Scheduler {
 public:
  explicit FiberScheduler(int ranks, std::size_t stack_bytes = 256 * 1024);
  ~FiberScheduler() override;

  int ranks() const override { return ranks_; }
  std::vector<std::exception_ptr> run(const std::function<void(int rank)>& body) override;
  void block_until(const Ready& ready) override;
  int current() const override { return current_; }

 private:
  struct Fiber;
  static void entry(unsigned low, unsigned high);
  int pick_next();
  void switch_to(int next);

  int ranks_;
  std::size_t stack_bytes_;
  std::vector<std::unique_ptr<Fiber>> fibers_;
  const std::function<void(int)>* body_ = nullptr;
  std::vector<std::exception_ptr>* errors_ = nullptr;
  struct MainContext;
  std::unique_ptr<MainContext> main_;
  int current_ = -1;
  int finished_ = 0;
  bool aborted_ = false;
};

// Counts a rank as waiting for as long as it is in scope, also when block_until throws
// (SchedulerAborted, CommError), so a cluster's counters stay right across aborted runs.
class ScopedCount {
 public:
  explicit ScopedCount(int& count) : count_(count) { ++count_; }
  ~ScopedCount() { --count_; }
  ScopedCount(const ScopedCount&) = delete;
  ScopedCount& operator=(const ScopedCount&) = delete;

 private:
  int& count_;
};

// Thrown into ranks that can never run again because the deadlock handler could not help
// (a simulator bug, not a user error).
struct SchedulerAborted : std::exception {
  const char* what() const noexcept override { return "simulated cluster aborted: no rank can make progress"; }
};

}  // namespace twinspeed::sim
