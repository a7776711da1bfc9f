#pragma once
// Device: tagged memory, streams and copies of one rank's accelerator (or CPU).

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/comm/stream.hpp"
#include "engine/core/buffer.hpp"
#include "engine/core/memory_tag.hpp"

namespace twinspeed::comm {

struct MemoryStats {
  std::array<std::int64_t, kMemoryTagCount> current_bytes{};  // indexed by MemoryTag
  std::array<std::int64_t, kMemoryTagCount> peak_bytes{};     // each tag's own peak
  // What each tag held when the total first reached total_peak_bytes: sums to total_peak_bytes,
  // so a report can say which buffers make up the peak (the tags' own peaks need not coincide).
  std::array<std::int64_t, kMemoryTagCount> at_peak_bytes{};
  std::int64_t total_current_bytes = 0;
  std::int64_t total_peak_bytes = 0;
  std::int64_t capacity_bytes = 0;  // 0 = unbounded

  std::int64_t current(MemoryTag tag) const { return current_bytes[static_cast<std::size_t>(tag)]; }
  std::int64_t peak(MemoryTag tag) const { return peak_bytes[static_cast<std::size_t>(tag)]; }
  std::int64_t at_peak(MemoryTag tag) const { return at_peak_bytes[static_cast<std::size_t>(tag)]; }
};

// "params 1024, grads 1024, ..." — the live breakdown used by OutOfMemory and reports.
std::string describe_memory(const MemoryStats& stats);

class Device : public BufferOwner {
 public:
  virtual ~Device() = default;

  virtual int rank() const = 0;
  // False in shape-only simulation: Buffers are accounted for but carry no data.
  virtual bool has_data() const = 0;
  // Allocates numel elements of dtype, zero-filled when the device has data.
  // Throws OutOfMemory (rank, tag, bytes requested, capacity, live breakdown) past capacity.
  virtual Buffer allocate(DType dtype, std::int64_t numel, MemoryTag tag) = 0;
  // Counts `bytes` that something else holds on this device (LibTorch's saved activations in a
  // numeric run) under `tag` until the returned Buffer is destroyed. The Buffer has no data (u8,
  // `bytes` elements); the capacity check and the memory trace are those of allocate.
  virtual Buffer charge(MemoryTag tag, std::int64_t bytes) = 0;
  virtual MemoryStats memory() const = 0;

  virtual Stream& compute_stream() = 0;
  // The comm stream with this lane name ("comm-dp", "comm-dp-gather", ...), created on first use.
  virtual Stream& comm_stream(std::string_view lane) = 0;
  // Copies src into dst (same dtype and numel) on stream. Either may be a Buffer of the backend's
  // host() Device: the copy then moves between host and device memory (PCIe on a GPU; priced as
  // such by the simulator).
  virtual void copy(BufferView dst, BufferView src, Stream& stream) = 0;
};

}  // namespace twinspeed::comm
