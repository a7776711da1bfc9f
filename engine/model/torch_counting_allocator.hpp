#pragma once
// A CPU allocator that counts what LibTorch holds: installed as LibTorch's CPU allocator for its
// lifetime, it forwards to the allocator it replaced and keeps the bytes live in the blocks it
// handed out, and their peak. Used to measure activation bytes (tests/model) and the host memory
// of numeric simulations (bench/engine_overhead_bench.cpp). Counts are process-wide (every thread,
// so every simulated rank); one instance at a time.

#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace twinspeed {

class CountingCpuAllocator final : public c10::Allocator {
 public:
  CountingCpuAllocator() : base_(c10::GetCPUAllocator()) {
    reset_peak();
    c10::SetCPUAllocator(this);
  }
  // Blocks handed out before are still released through their own deleter afterwards.
  ~CountingCpuAllocator() override { c10::SetCPUAllocator(base_); }
  CountingCpuAllocator(const CountingCpuAllocator&) = delete;
  CountingCpuAllocator& operator=(const CountingCpuAllocator&) = delete;

  // The context of each block is its data pointer (raw_allocate users need that), so the
  // underlying allocations are kept in a table.
  c10::DataPtr allocate(size_t bytes) const override {
    c10::DataPtr inner = base_->allocate(bytes);
    void* data = inner.get();
    std::lock_guard lock(mutex_);
    live_ += static_cast<std::int64_t>(bytes);
    peak_ = std::max(peak_, live_);
    blocks_.emplace(data, Block{std::move(inner), bytes});
    return {data, data, &CountingCpuAllocator::free_block, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &CountingCpuAllocator::free_block; }

  // Bytes live now in blocks this allocator handed out.
  static std::int64_t live() {
    std::lock_guard lock(mutex_);
    return live_;
  }
  // The most bytes live at once since construction or the last reset_peak().
  static std::int64_t peak() {
    std::lock_guard lock(mutex_);
    return peak_;
  }
  static void reset_peak() {
    std::lock_guard lock(mutex_);
    peak_ = live_;
  }

 private:
  struct Block {
    c10::DataPtr inner;
    size_t bytes;
  };
  static void free_block(void* data) {
    c10::DataPtr inner;  // destroyed (freed) outside the lock
    std::lock_guard lock(mutex_);
    auto it = blocks_.find(data);
    if (it == blocks_.end()) return;
    live_ -= static_cast<std::int64_t>(it->second.bytes);
    inner = std::move(it->second.inner);
    blocks_.erase(it);
  }
  c10::Allocator* base_;
  static inline std::mutex mutex_;
  static inline std::int64_t live_ = 0;
  static inline std::int64_t peak_ = 0;
  static inline std::unordered_map<void*, Block> blocks_;
};

}  // namespace twinspeed
