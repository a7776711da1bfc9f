#include "sim/host_block_pool.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace twinspeed::sim {

namespace {
constexpr std::size_t kAlignment = 64;  // one cache line; enough for any SIMD kernel
constexpr std::size_t kPage = 4096;

std::size_t mapped_size(std::size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; }
}  // namespace

HostBlockPool::HostBlockPool(std::size_t keep_bytes) : keep_bytes_(keep_bytes) {}

HostBlockPool::~HostBlockPool() {
  for (auto& [size, data] : free_) munmap(data, size);
}

void* HostBlockPool::acquire(std::size_t bytes, bool zeroed) {
  if (bytes == 0) return nullptr;
  if (bytes < kLargeBytes) {
    void* data = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    if (data != nullptr && zeroed) std::memset(data, 0, bytes);
    return data;
  }
  const std::size_t size = mapped_size(bytes);
  {
    std::lock_guard lock(mutex_);
    auto it = free_.find(size);
    if (it != free_.end()) {
      void* data = it->second;
      free_.erase(it);
      pooled_bytes_ -= size;
      if (zeroed) std::memset(data, 0, bytes);  // warm pages: far cheaper than faulting fresh ones
      return data;
    }
  }
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  // The kernel's pages read as zero. (No MADV_HUGEPAGE: with THP defrag on madvise, faulting huge
  // pages compacted memory and tripled the system time of a numeric run.)
  return data == MAP_FAILED ? nullptr : data;
}

void HostBlockPool::release(void* data, std::size_t bytes) noexcept {
  if (data == nullptr) return;
  if (bytes < kLargeBytes) {
    std::free(data);
    return;
  }
  const std::size_t size = mapped_size(bytes);
  {
    std::lock_guard lock(mutex_);
    if (pooled_bytes_ + size <= keep_bytes_) {
      free_.emplace(size, data);
      pooled_bytes_ += size;
      return;
    }
  }
  munmap(data, size);
}

std::size_t HostBlockPool::pooled_bytes() const {
  std::lock_guard lock(mutex_);
  return pooled_bytes_;
}

HostBytes::HostBytes(std::shared_ptr<HostBlockPool> pool, std::size_t size) : pool_(std::move(pool)), size_(size) {
  if (size_ == 0) return;
  data_ = static_cast<std::byte*>(pool_->acquire(size_, false));
  if (data_ == nullptr) throw std::bad_alloc();
}

HostBytes::HostBytes(HostBytes&& other) noexcept
    : pool_(std::move(other.pool_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

HostBytes& HostBytes::operator=(HostBytes&& other) noexcept {
  if (this != &other) {
    reset();
    pool_ = std::move(other.pool_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void HostBytes::reset() noexcept {
  if (data_ != nullptr) pool_->release(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace twinspeed::sim
