#pragma once
// A real backend's flight recorder: the last `capacity` operations of one rank (group, seq, op,
// bytes, state and times), kept in a ring buffer and written to a file when an operation fails or
// times out, so a hang or a crash can be read after the fact (what each rank issued last, and
// what it was waiting for).
//
// File format (schema twinspeed.flight/1, one JSON object per rank):
//   {"schema": "twinspeed.flight/1", "rank": R, "capacity": N, "recorded": total operations
//    recorded so far, "reason": the error,
//    "entries": [{"group", "kind", "seq", "op", "bytes", "state", "queued_ns", "started_ns",
//                 "ended_ns"}, ...]}
// entries oldest first; state is "queued", "started", "completed" or "failed"; times are the
// backend's trace clock (ns since its start barrier), -1 when not reached.

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace twinspeed::backends {

class FlightRecorder {
 public:
  enum class State { queued, started, completed, failed };

  explicit FlightRecorder(int rank, std::size_t capacity = 2048);

  // Records an operation as queued; returns its id for the calls below.
  std::uint64_t queued(int group, const std::string& kind, std::int64_t seq, const std::string& op, std::int64_t bytes,
                       std::int64_t now_ns);
  void started(std::uint64_t id, std::int64_t now_ns);
  void ended(std::uint64_t id, bool ok, std::int64_t now_ns);

  // The JSON document above.
  std::string json(const std::string& reason) const;
  // Writes it to `path` atomically (a temporary file renamed over it); returns false when the
  // file cannot be written (the error being reported matters more than the dump).
  bool dump(const std::string& path, const std::string& reason) const;

 private:
  struct Entry {
    std::uint64_t id = 0;
    int group = 0;
    std::string kind, op;
    std::int64_t seq = 0, bytes = 0;
    State state = State::queued;
    std::int64_t queued_ns = -1, started_ns = -1, ended_ns = -1;
  };
  Entry* find(std::uint64_t id);

  int rank_;
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::vector<Entry> ring_;  // ring_[id % capacity_]
  std::uint64_t next_id_ = 0;
};

// Where a rank's flight record goes: <dir>/twinspeed-flight-rank<R>.json, dir being `dir` when
// not empty, else $TMPDIR, else /tmp.
std::string flight_record_path(const std::string& dir, int rank);

}  // namespace twinspeed::backends
