#pragma once
// Byte-for-byte accounting of one device's memory per tag: current, each tag's own peak, the
// total peak with the per-tag bytes live at it, and OutOfMemory past capacity. Shared by every
// simulated and CPU device (the simulator, Gloo).

#include <cstdint>

#include "engine/comm/device.hpp"

namespace twinspeed::comm {

class MemoryLedger {
 public:
  MemoryLedger(int rank, std::int64_t capacity_bytes) : rank_(rank) { stats_.capacity_bytes = capacity_bytes; }
  // Throws OutOfMemory (with the live breakdown) when bytes would exceed capacity.
  void charge(MemoryTag tag, std::int64_t bytes);
  void release(MemoryTag tag, std::int64_t bytes) noexcept;
  const MemoryStats& stats() const { return stats_; }

 private:
  int rank_;
  MemoryStats stats_;
};

}  // namespace twinspeed::comm
