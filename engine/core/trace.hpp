#pragma once
// The trace schema every backend records (DESIGN.md "Trace schema", docs/TRACE.md) and viz reads.
// Bytes are logical (elements x dtype size as the engine issued them), never wire bytes, so
// simulated and real traces compare. Times are integer nanoseconds: virtual time in the simulator,
// time since the run's start on real backends.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/memory_tag.hpp"

namespace twinspeed {

enum class TraceCategory : std::uint8_t { compute, comm, p2p, copy, host };
// "compute", "comm", "p2p", "copy", "host" (the "cat" of a Chrome-trace event).
std::string_view trace_category_name(TraceCategory c);
std::optional<TraceCategory> parse_trace_category(std::string_view name);

// One slice on one lane of one rank. Unset optional fields are -1 (numbers), 0 (bytes) or empty
// (strings); the Chrome writer leaves unset fields out of "args".
struct TraceEvent {
  int rank = 0;
  std::string lane;  // the stream: "host", "compute", "comm-dp", "comm-dp-gather", "p2p", "copy"
  std::string name;
  TraceCategory category = TraceCategory::compute;
  std::int64_t start_ns = 0;     // >= 0
  std::int64_t duration_ns = 0;  // >= 0
  std::string op;          // collective or instruction name; empty for plain compute
  int group = -1;          // comm group id
  std::int64_t seq = -1;   // sequence number within the group
  std::int64_t bytes = 0;  // logical bytes
  std::string dtype;
  int micro_batch = -1;
  std::int64_t step = -1;  // optimizer step; the Chrome writer derives "step N" slices from it
  int stage = -1;          // pipeline stage
  std::string instruction;  // the pipeline instruction it ran under ("ForwardPass"); empty: none
  // Flow ids link a point-to-point send to its receive (an arrow in Perfetto). The send's slice
  // carries the id in flow_out, the receive's slice the same id in flow_in. Each id is used by
  // exactly one flow_out and one flow_in in a trace, on events of the same category. -1: none.
  std::int64_t flow_out = -1;
  std::int64_t flow_in = -1;

  bool operator==(const TraceEvent&) const = default;
};

struct MemoryCounterSample {
  int rank = 0;
  std::int64_t time_ns = 0;  // >= 0
  MemoryTag tag = MemoryTag::params;
  std::int64_t bytes = 0;  // bytes in use under tag from time_ns on

  bool operator==(const MemoryCounterSample&) const = default;
};

// Lanes are shown in a fixed order: host, compute, the comm lanes ("comm-<group kind>[-<purpose>]",
// by name), p2p, copy, then any other lane (by name). True when lane a comes before lane b.
bool trace_lane_before(std::string_view a, std::string_view b);

// Collects one rank's events. Thread-safe: comm worker threads record too.
// What the engine is doing, stamped on every event recorded while it is set (fields an event sets
// itself win). The engine sets it; backends record ops without knowing steps.
struct TraceContext {
  std::int64_t step = -1;
  int micro_batch = -1;
  int stage = -1;
  std::string instruction;  // the pipeline instruction being executed ("ForwardPass")
};

class TraceRecorder {
 public:
  void record(TraceEvent event);
  void set_context(TraceContext context);
  TraceContext context() const;
  void record_memory(MemoryCounterSample sample);
  std::vector<TraceEvent> events() const;
  std::vector<MemoryCounterSample> memory_samples() const;
  void set_enabled(bool enabled);
  bool enabled() const;

 private:
  mutable std::mutex mutex_;
  bool enabled_ = true;
  TraceContext context_;
  std::vector<TraceEvent> events_;
  std::vector<MemoryCounterSample> memory_;
};

}  // namespace twinspeed
