#pragma once
// Threading of the CPU kernels: work is cut into fixed blocks of kBlockElements elements and the
// blocks are shared among num_threads() threads (the caller and a pool). Which thread runs a
// block never changes what the block computes, and reductions combine per-block results in
// block order, so every result is independent of the thread count.

#include <cstdint>
#include <utility>

#include "kernels/common/blocks.hpp"

namespace twinspeed::kernels {

// Threads the CPU kernels use (the caller included); 0 restores the default,
// std::thread::hardware_concurrency(). Takes effect for the next kernel call. Thread-safe.
void set_num_threads(int threads);
int num_threads();

namespace detail {
// Runs task(context, i) for every i in [0, tasks) on up to num_threads() threads and returns when
// all have run. Runs them on the calling thread alone when the pool is busy with another caller
// (another thread's kernel, or a task calling a kernel). Tasks must not throw.
void run_tasks(std::int64_t tasks, void (*task)(void* context, std::int64_t index), void* context);
}  // namespace detail

// Calls fn(block, begin, end) for every block [begin, end) of [0, numel).
template <typename Fn>
void for_each_block(std::int64_t numel, Fn&& fn) {
  const std::int64_t blocks = block_count(numel);
  if (blocks <= 1) {
    if (numel > 0) fn(std::int64_t{0}, std::int64_t{0}, numel);
    return;
  }
  struct Context {
    Fn* fn;
    std::int64_t numel;
  } context{&fn, numel};
  detail::run_tasks(
      blocks,
      [](void* c, std::int64_t block) {
        auto* ctx = static_cast<Context*>(c);
        const std::int64_t begin = block * kBlockElements;
        const std::int64_t end = begin + kBlockElements < ctx->numel ? begin + kBlockElements : ctx->numel;
        (*ctx->fn)(block, begin, end);
      },
      &context);
}

}  // namespace twinspeed::kernels
