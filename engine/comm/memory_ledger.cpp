#include "engine/comm/memory_ledger.hpp"

#include <algorithm>

#include "engine/core/errors.hpp"

namespace twinspeed::comm {

void MemoryLedger::charge(MemoryTag tag, std::int64_t bytes) {
  auto index = static_cast<std::size_t>(tag);
  if (stats_.capacity_bytes > 0 && stats_.total_current_bytes + bytes > stats_.capacity_bytes) {
    throw OutOfMemory({.rank = rank_,
                       .tag = std::string(memory_tag_name(tag)),
                       .requested_bytes = bytes,
                       .capacity_bytes = stats_.capacity_bytes,
                       .in_use_bytes = stats_.total_current_bytes},
                      describe_memory(stats_));
  }
  stats_.current_bytes[index] += bytes;
  stats_.peak_bytes[index] = std::max(stats_.peak_bytes[index], stats_.current_bytes[index]);
  stats_.total_current_bytes += bytes;
  if (stats_.total_current_bytes > stats_.total_peak_bytes) {
    stats_.total_peak_bytes = stats_.total_current_bytes;
    stats_.at_peak_bytes = stats_.current_bytes;
  }
}

void MemoryLedger::release(MemoryTag tag, std::int64_t bytes) noexcept {
  stats_.current_bytes[static_cast<std::size_t>(tag)] -= bytes;
  stats_.total_current_bytes -= bytes;
}

}  // namespace twinspeed::comm
