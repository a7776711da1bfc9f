#include "sim/sim_store.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>

#include "engine/core/errors.hpp"
#include "sim/scheduler.hpp"

namespace twinspeed::sim {

void SimStore::set(const std::string& key, std::vector<std::uint8_t> value) { values_[key] = std::move(value); }

std::vector<std::uint8_t> SimStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  const std::string keys[] = {key};
  wait(keys, timeout);
  return values_.at(key);
}

std::int64_t SimStore::add(const std::string& key, std::int64_t delta) {
  auto& slot = values_[key];
  std::int64_t value = 0;
  if (slot.size() == sizeof value) std::memcpy(&value, slot.data(), sizeof value);
  value += delta;
  slot.resize(sizeof value);
  std::memcpy(slot.data(), &value, sizeof value);
  return value;
}

bool SimStore::has_all(std::span<const std::string> keys) const {
  for (const auto& k : keys) {
    if (!values_.contains(k)) return false;
  }
  return true;
}

void SimStore::wait(std::span<const std::string> keys, std::chrono::milliseconds timeout) {
  if (has_all(keys)) return;
  {
    ScopedCount waiting(waiting_);
    const std::uint64_t generation = timeouts_;
    scheduler_.block_until([this, keys, generation] { return has_all(keys) || timeouts_ != generation; });
  }
  if (!has_all(keys)) {
    std::vector<std::string> missing;
    for (const auto& k : keys) {
      if (!values_.contains(k)) missing.push_back(k);
    }
    throw CommError(fmt::format("store wait for {} timed out after {} ms: no rank can set them", missing, timeout.count()),
                    {.op = "store_wait", .rank = scheduler_.current_rank()});
  }
}

bool SimStore::fail_waiters() {
  if (waiting_ == 0) return false;
  ++timeouts_;
  return true;
}

}  // namespace twinspeed::sim
