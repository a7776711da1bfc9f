#include "kernels/cpu/parallel.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace twinspeed::kernels {

namespace {

int default_threads() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

std::atomic<int> requested_threads{0};  // 0: default

// A pool of workers that, with the caller, run one job's tasks at a time. A job lives on the
// caller's stack and hands out task indices through an atomic counter. Workers take the job
// under the mutex and count themselves busy; the caller returns only when every task has run
// and no worker still holds the job, and then clears it, so a worker that wakes late finds none.
class Pool {
 public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int threads() const { return static_cast<int>(threads_.size()) + 1; }

  void run(std::int64_t tasks, void (*task)(void*, std::int64_t), void* context) {
    Job job{task, context, tasks, {0}};
    {
      std::lock_guard lock(mutex_);
      job_ = &job;
      unfinished_ = tasks;
      ++generation_;
    }
    wake_.notify_all();
    const std::int64_t done = job.drain();
    std::unique_lock lock(mutex_);
    unfinished_ -= done;
    finished_.wait(lock, [this] { return unfinished_ == 0 && busy_ == 0; });
    job_ = nullptr;
  }

 private:
  struct Job {
    void (*task)(void*, std::int64_t);
    void* context;
    std::int64_t tasks;
    std::atomic<std::int64_t> next;
    // Runs tasks until none is left; returns how many this thread ran.
    std::int64_t drain() {
      std::int64_t done = 0;
      for (std::int64_t i = next.fetch_add(1); i < tasks; i = next.fetch_add(1)) {
        task(context, i);
        ++done;
      }
      return done;
    }
  };

  void work() {
    std::uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      Job* job = job_;
      if (job == nullptr) continue;
      ++busy_;
      lock.unlock();
      const std::int64_t done = job->drain();
      lock.lock();
      --busy_;
      unfinished_ -= done;
      if (unfinished_ == 0 && busy_ == 0) finished_.notify_all();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  bool stopping_ = false;
  std::uint64_t generation_ = 0;
  Job* job_ = nullptr;
  std::int64_t unfinished_ = 0;
  int busy_ = 0;
};

// One pool per process, created on first use and rebuilt when the thread count changes or after
// fork() (a child has none of its parent's workers). job_mutex is held while a job runs.
std::mutex job_mutex;
std::unique_ptr<Pool> pool;
pid_t pool_pid = 0;

}  // namespace

void set_num_threads(int threads) { requested_threads.store(std::max(0, threads)); }

int num_threads() {
  const int requested = requested_threads.load();
  return requested > 0 ? requested : default_threads();
}

namespace detail {

void run_tasks(std::int64_t tasks, void (*task)(void*, std::int64_t), void* context) {
  const int threads = num_threads();
  std::unique_lock lock(job_mutex, std::try_to_lock);
  if (threads <= 1 || tasks <= 1 || !lock.owns_lock()) {
    for (std::int64_t i = 0; i < tasks; ++i) task(context, i);
    return;
  }
  if (!pool || pool->threads() != threads || pool_pid != getpid()) {
    if (pool_pid != getpid()) (void)pool.release();  // the parent's workers do not exist here
    pool = std::make_unique<Pool>(threads - 1);
    pool_pid = getpid();
  }
  pool->run(tasks, task, context);
}

}  // namespace detail

}  // namespace twinspeed::kernels
