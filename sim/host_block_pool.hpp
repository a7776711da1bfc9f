#pragma once
// Host memory behind one simulated cluster's device Buffers and collective payloads.
//
// A numeric simulation allocates and frees the same sizes over and over (a layer's gradients every
// backward, an all-reduce's result every step), rank after rank, and every rank's persistent state
// once. Fresh memory is what costs: each page faults and is cleared by the kernel (and a
// zero-filled Buffer was then cleared a second time by memset). So blocks below kHeapBlockBytes
// come from the C heap, which while ranks run is one arena that is never trimmed
// (sim/scheduler.cpp): what any rank freed, LibTorch's activations included, serves the next
// allocation warm. Larger blocks (a model-sized bucket or result) are mapped fresh, zero-filled by
// the kernel with no memset and untouched pages costing nothing, and kept when released (up to a
// cap) for the next request of the same size, from any rank (ranks run one at a time; a mutex
// keeps it safe regardless).

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>

namespace twinspeed::sim {

// Blocks up to this size glibc serves from its heap while ranks run (its largest mmap threshold,
// DEFAULT_MMAP_THRESHOLD_MAX on 64-bit); larger ones the pool maps itself.
inline constexpr std::size_t kHeapBlockBytes = std::size_t{32} << 20;

class HostBlockPool {
 public:
  // keep_bytes: how many released bytes the pool holds for reuse; beyond that, blocks go back to
  // the system.
  explicit HostBlockPool(std::size_t keep_bytes = kDefaultKeepBytes);
  ~HostBlockPool();
  HostBlockPool(const HostBlockPool&) = delete;
  HostBlockPool& operator=(const HostBlockPool&) = delete;

  // bytes > 0 of memory aligned to 64 bytes, zero-filled when `zeroed`; nullptr when the system
  // refuses. Give it back with release(data, bytes), the same bytes.
  void* acquire(std::size_t bytes, bool zeroed);
  void release(void* data, std::size_t bytes) noexcept;

  std::size_t pooled_bytes() const;

  // Blocks from this size up are mapped and pooled; smaller ones come from aligned_alloc.
  static constexpr std::size_t kLargeBytes = kHeapBlockBytes;
  static constexpr std::size_t kDefaultKeepBytes = std::size_t{1} << 30;

 private:
  mutable std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;  // released large blocks by mapped size
  std::size_t pooled_bytes_ = 0;
  std::size_t keep_bytes_;
};

// Bytes held in a HostBlockPool (not zero-filled); move-only, released to the pool when destroyed.
class HostBytes {
 public:
  HostBytes() = default;
  // Throws std::bad_alloc when the pool cannot provide the bytes.
  HostBytes(std::shared_ptr<HostBlockPool> pool, std::size_t size);
  ~HostBytes() { reset(); }
  HostBytes(HostBytes&& other) noexcept;
  HostBytes& operator=(HostBytes&& other) noexcept;
  HostBytes(const HostBytes&) = delete;
  HostBytes& operator=(const HostBytes&) = delete;

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void reset() noexcept;

 private:
  std::shared_ptr<HostBlockPool> pool_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace twinspeed::sim
