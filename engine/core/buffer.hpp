#pragma once
// Buffer: the engine's own memory (flat parameters, gradients, master weights, optimizer states,
// buckets). A Buffer is a move-only handle returned by Device::allocate; destroying it returns
// the bytes to its device. In shape-only mode data() is null: everything else is real, so memory
// accounting and communication sizes are identical in both modes.
//
// A Buffer also says where its bytes live (MemorySpace), set by the device that allocates it:
// the kernels (kernels/kernels.hpp) run on the CPU or on CUDA by it, never by who calls them.

#include <cassert>
#include <cstdint>

#include "engine/core/dtype.hpp"
#include "engine/core/memory_tag.hpp"

namespace twinspeed {

class Buffer;
struct BufferView;

// Where a Buffer's bytes are: host memory (every device today, the simulator's numeric mode
// included) or CUDA device memory (dereferenceable only by CUDA kernels and copies).
enum class MemorySpace : std::uint8_t { host, cuda };

// Implemented by devices: takes back the memory of a Buffer being destroyed.
class BufferOwner {
 public:
  virtual void release(Buffer& buffer) noexcept = 0;

 protected:
  ~BufferOwner() = default;
};

class Buffer {
 public:
  Buffer() = default;
  Buffer(BufferOwner* owner, MemoryTag tag, DType dtype, std::int64_t numel, void* data, int device_rank,
         MemorySpace memory_space = MemorySpace::host)
      : owner_(owner),
        tag_(tag),
        dtype_(dtype),
        numel_(numel),
        data_(data),
        device_rank_(device_rank),
        memory_space_(memory_space) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      reset();
      owner_ = other.owner_;
      tag_ = other.tag_;
      dtype_ = other.dtype_;
      numel_ = other.numel_;
      data_ = other.data_;
      device_rank_ = other.device_rank_;
      memory_space_ = other.memory_space_;
      other.owner_ = nullptr;
      other.data_ = nullptr;
      other.numel_ = 0;
    }
    return *this;
  }
  ~Buffer() { reset(); }

  // Returns the memory to the device now. The Buffer becomes empty.
  void reset() noexcept {
    if (owner_ != nullptr) owner_->release(*this);
    owner_ = nullptr;
    data_ = nullptr;
    numel_ = 0;
  }

  bool empty() const noexcept { return owner_ == nullptr; }
  MemoryTag tag() const noexcept { return tag_; }
  DType dtype() const noexcept { return dtype_; }
  std::int64_t numel() const noexcept { return numel_; }
  std::int64_t bytes() const noexcept { return numel_ * static_cast<std::int64_t>(dtype_size(dtype_)); }
  bool has_data() const noexcept { return data_ != nullptr; }
  void* data() const noexcept { return data_; }
  int device_rank() const noexcept { return device_rank_; }
  MemorySpace memory_space() const noexcept { return memory_space_; }
  // The device that allocated it (null when empty): tells a copy which memories it connects.
  const BufferOwner* owner() const noexcept { return owner_; }
  template <typename T>
  T* data_as() const noexcept {
    assert(sizeof(T) == dtype_size(dtype_));
    return static_cast<T*>(data_);
  }

  BufferView view(std::int64_t offset, std::int64_t numel) const;
  BufferView all() const;

 private:
  BufferOwner* owner_ = nullptr;
  MemoryTag tag_ = MemoryTag::temporaries;
  DType dtype_ = DType::f32;
  std::int64_t numel_ = 0;
  void* data_ = nullptr;
  int device_rank_ = -1;
  MemorySpace memory_space_ = MemorySpace::host;
};

// A contiguous slice of a Buffer, in elements. Views do not own; the Buffer must outlive them.
struct BufferView {
  const Buffer* buffer = nullptr;
  std::int64_t offset = 0;
  std::int64_t numel = 0;

  // An empty view (no buffer: a barrier's) has dtype u8 and no bytes.
  DType dtype() const noexcept { return buffer != nullptr ? buffer->dtype() : DType::u8; }
  std::int64_t bytes() const noexcept {
    return buffer != nullptr ? numel * static_cast<std::int64_t>(dtype_size(dtype())) : 0;
  }
  bool has_data() const noexcept { return buffer != nullptr && buffer->has_data(); }
  MemorySpace memory_space() const noexcept { return buffer != nullptr ? buffer->memory_space() : MemorySpace::host; }
  void* data() const noexcept {
    if (!has_data()) return nullptr;
    return static_cast<char*>(buffer->data()) + offset * static_cast<std::int64_t>(dtype_size(dtype()));
  }
  template <typename T>
  T* data_as() const noexcept {
    assert(sizeof(T) == dtype_size(dtype()));
    return static_cast<T*>(data());
  }
  BufferView sub(std::int64_t sub_offset, std::int64_t sub_numel) const {
    assert(sub_offset >= 0 && sub_offset + sub_numel <= numel);
    return BufferView{buffer, offset + sub_offset, sub_numel};
  }
};

inline BufferView Buffer::view(std::int64_t offset, std::int64_t n) const {
  assert(offset >= 0 && offset + n <= numel_);
  return BufferView{this, offset, n};
}
inline BufferView Buffer::all() const { return BufferView{this, 0, numel_}; }

}  // namespace twinspeed
