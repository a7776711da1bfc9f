#include "sim/scheduler.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <limits>
#include <mutex>
#include <thread>

#include "sim/host_block_pool.hpp"

namespace twinspeed::sim {

namespace {

// Ranks run one at a time, so heap memory one rank frees (LibTorch's activations at the end of its
// backward, its model's initial weights once the engine holds them) could serve the next rank at
// once. glibc defeats that twice: each new thread gets a malloc arena of its own, where what one
// rank freed is invisible to the others; and free memory at the top of the heap goes back to the
// kernel, to be faulted in again, zeroed, by the next rank. In a numeric 8-rank gpt-bench ZeRO-2
// step the two cost about a fifth of the wall time. So while ranks run as threads: one arena
// (share_one_malloc_arena, scheduler.hpp), blocks up to 32 MiB from the heap, and no trimming;
// after the run, trimming as glibc's own adaptive rule ends up (64 MiB) and the free memory
// returned.
class RankHeapPolicy {
 public:
  RankHeapPolicy() {
#if defined(__GLIBC__)
    share_one_malloc_arena();
    mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
    mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
#endif
  }
  ~RankHeapPolicy() {
#if defined(__GLIBC__)
    mallopt(M_TRIM_THRESHOLD, 2 * kMmapThreshold);
    malloc_trim(0);
#endif
  }
  RankHeapPolicy(const RankHeapPolicy&) = delete;
  RankHeapPolicy& operator=(const RankHeapPolicy&) = delete;

 private:
  static constexpr int kMmapThreshold = static_cast<int>(kHeapBlockBytes);
};

}  // namespace

void share_one_malloc_arena() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] { mallopt(M_ARENA_MAX, 1); });
#endif
}

struct ThreadScheduler::RankState {
  std::condition_variable baton;
  Ready ready;  // set while blocked
  bool finished = false;
};

ThreadScheduler::ThreadScheduler(int ranks) {
  for (int r = 0; r < ranks; ++r) states_.push_back(std::make_unique<RankState>());
}

ThreadScheduler::~ThreadScheduler() = default;

void ThreadScheduler::adopt_current_thread_as_rank0() {
  inline_mode_ = true;
  current_ = 0;
}

int ThreadScheduler::pick_next_locked() {
  for (int r = 0; r < ranks(); ++r) {
    RankState& s = *states_[r];
    if (s.finished) continue;
    if (!s.ready || s.ready()) return r;
  }
  return -1;
}

// Gives the baton to the lowest runnable rank; runs the deadlock handler when there is none while
// some rank is still blocked.
void ThreadScheduler::hand_off_locked(std::unique_lock<std::mutex>&) {
  int next = pick_next_locked();
  if (next < 0 && finished_ < ranks()) {
    // Failing an operation may unblock nobody (its waiter already finished): keep going while the
    // handler makes progress.
    while (next < 0 && handle_deadlock()) next = pick_next_locked();
    if (next < 0) aborted_ = true;
  }
  current_ = next;
  if (aborted_) {
    for (auto& s : states_) s->baton.notify_one();
  } else if (next >= 0) {
    states_[next]->baton.notify_one();
  }
  if (finished_ == ranks()) all_done_.notify_all();
}

void ThreadScheduler::wait_for_baton(std::unique_lock<std::mutex>& lock, int rank) {
  states_[rank]->baton.wait(lock, [&] { return current_ == rank || aborted_; });
  if (aborted_ && current_ != rank) throw SchedulerAborted();
}

void ThreadScheduler::block_until(const Ready& ready) {
  if (ready()) return;
  std::unique_lock lock(mutex_);
  const int me = current_;
  RankState& state = *states_[me];
  state.ready = ready;
  if (inline_mode_) {
    // One rank in the caller's thread: nobody else can make progress, so only the deadlock
    // handler can (by failing what this rank waits for).
    bool progress = true;
    while (!ready() && progress) progress = handle_deadlock();
    if (!ready()) {
      state.ready = nullptr;
      throw SchedulerAborted();
    }
  } else {
    hand_off_locked(lock);
    wait_for_baton(lock, me);
  }
  state.ready = nullptr;
}

std::vector<std::exception_ptr> ThreadScheduler::run(const std::function<void(int)>& body) {
  const RankHeapPolicy heap_policy;
  std::vector<std::exception_ptr> errors(states_.size());
  std::vector<std::thread> threads;
  {
    // A cluster may run several programs: start every one from a clean slate.
    std::unique_lock lock(mutex_);
    for (auto& s : states_) {
      s->finished = false;
      s->ready = nullptr;
    }
    finished_ = 0;
    aborted_ = false;
    current_ = 0;
  }
  for (int r = 0; r < ranks(); ++r) {
    threads.emplace_back([this, r, &body, &errors] {
      {
        std::unique_lock lock(mutex_);
        try {
          wait_for_baton(lock, r);
        } catch (...) {
          errors[r] = std::current_exception();
          states_[r]->finished = true;
          ++finished_;
          if (finished_ == ranks()) all_done_.notify_all();
          return;
        }
      }
      try {
        body(r);
      } catch (...) {
        errors[r] = std::current_exception();
      }
      std::unique_lock lock(mutex_);
      states_[r]->finished = true;
      ++finished_;
      if (!aborted_) hand_off_locked(lock);
      if (finished_ == ranks()) all_done_.notify_all();
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

}  // namespace twinspeed::sim
