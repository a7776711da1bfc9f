#include "engine/backends/flight_recorder.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

namespace twinspeed::backends {

namespace {

const char* state_name(FlightRecorder::State s) {
  switch (s) {
    case FlightRecorder::State::queued: return "queued";
    case FlightRecorder::State::started: return "started";
    case FlightRecorder::State::completed: return "completed";
    case FlightRecorder::State::failed: return "failed";
  }
  return "?";
}

}  // namespace

FlightRecorder::FlightRecorder(int rank, std::size_t capacity) : rank_(rank), capacity_(capacity == 0 ? 1 : capacity) {
  ring_.resize(capacity_);
}

std::uint64_t FlightRecorder::queued(int group, const std::string& kind, std::int64_t seq, const std::string& op,
                                     std::int64_t bytes, std::int64_t now_ns) {
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_id_++;
  ring_[id % capacity_] = Entry{.id = id, .group = group, .kind = kind, .op = op, .seq = seq, .bytes = bytes,
                                .state = State::queued, .queued_ns = now_ns, .started_ns = -1, .ended_ns = -1};
  return id;
}

FlightRecorder::Entry* FlightRecorder::find(std::uint64_t id) {
  Entry& e = ring_[id % capacity_];
  return e.id == id && id < next_id_ ? &e : nullptr;  // overwritten by a later operation: gone
}

void FlightRecorder::started(std::uint64_t id, std::int64_t now_ns) {
  std::lock_guard lock(mutex_);
  if (Entry* e = find(id)) {
    e->state = State::started;
    e->started_ns = now_ns;
  }
}

void FlightRecorder::ended(std::uint64_t id, bool ok, std::int64_t now_ns) {
  std::lock_guard lock(mutex_);
  if (Entry* e = find(id)) {
    e->state = ok ? State::completed : State::failed;
    e->ended_ns = now_ns;
  }
}

std::string FlightRecorder::json(const std::string& reason) const {
  std::lock_guard lock(mutex_);
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  const std::uint64_t first = next_id_ > capacity_ ? next_id_ - capacity_ : 0;
  for (std::uint64_t id = first; id < next_id_; ++id) {
    const Entry& e = ring_[id % capacity_];
    entries.push_back({{"group", e.group}, {"kind", e.kind}, {"seq", e.seq}, {"op", e.op}, {"bytes", e.bytes},
                       {"state", state_name(e.state)}, {"queued_ns", e.queued_ns}, {"started_ns", e.started_ns},
                       {"ended_ns", e.ended_ns}});
  }
  nlohmann::ordered_json doc = {{"schema", "twinspeed.flight/1"}, {"rank", rank_},   {"capacity", capacity_},
                                {"recorded", next_id_},            {"reason", reason}, {"entries", entries}};
  return doc.dump(1);
}

bool FlightRecorder::dump(const std::string& path, const std::string& reason) const {
  const std::string text = json(reason);
  const std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << text << '\n';
    if (!out.flush()) return false;
  }
  return std::rename(temporary.c_str(), path.c_str()) == 0;
}

std::string flight_record_path(const std::string& dir, int rank) {
  std::string base = dir;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  return fmt::format("{}/twinspeed-flight-rank{}.json", base, rank);
}

}  // namespace twinspeed::backends
