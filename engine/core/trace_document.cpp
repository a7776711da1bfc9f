#include "engine/core/trace_document.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <tuple>
#include <utility>

namespace twinspeed {

namespace {

bool take(std::string_view& s, std::string_view literal) {
  if (!s.starts_with(literal)) return false;
  s.remove_prefix(literal.size());
  return true;
}

bool take_int(std::string_view& s, int& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || end == s.data()) return false;
  s.remove_prefix(static_cast<std::size_t>(end - s.data()));
  return true;
}

// Every field, in the order that breaks ties after (start, longer first, name).
auto event_key(const TraceEvent& e) {
  return std::tie(e.start_ns, e.name, e.category, e.op, e.group, e.seq, e.bytes, e.dtype, e.micro_batch, e.step,
                  e.stage, e.instruction, e.flow_out, e.flow_in, e.rank, e.lane);
}

std::int64_t end_of(const TraceEvent& e) { return e.start_ns + e.duration_ns; }

std::string describe_slice(std::string_view name, std::int64_t start_ns, std::int64_t end_ns) {
  return fmt::format("'{}' [{} ns, {} ns)", name, start_ns, end_ns);
}

void check_event(int rank, const TraceEvent& e) {
  auto fail = [&](std::string_view what) {
    throw TraceError(fmt::format("rank {}: event '{}' on lane '{}' at {} ns: {}", rank, e.name, e.lane, e.start_ns, what));
  };
  if (e.rank != rank) fail(fmt::format("recorded for rank {}", e.rank));
  if (e.lane.empty()) fail("empty lane name");
  if (e.name.empty()) fail("empty event name");
  if (e.start_ns < 0) fail("negative start");
  if (e.duration_ns < 0) fail(fmt::format("negative duration {} ns", e.duration_ns));
  if (e.duration_ns > std::numeric_limits<std::int64_t>::max() - e.start_ns) fail("end past the int64 range");
  if (e.bytes < 0) fail(fmt::format("negative bytes {}", e.bytes));
  // Optional numbers are -1 when unset, else >= 0 (the Chrome writer leaves -1 out).
  auto check_optional = [&](std::string_view field, std::int64_t value) {
    if (value < -1) fail(fmt::format("{} {} is neither -1 (unset) nor >= 0", field, value));
  };
  check_optional("group", e.group);
  check_optional("seq", e.seq);
  check_optional("micro_batch", e.micro_batch);
  check_optional("step", e.step);
  check_optional("stage", e.stage);
  check_optional("flow_out", e.flow_out);
  check_optional("flow_in", e.flow_in);
}

void check_sample(int rank, const MemoryCounterSample& m) {
  if (m.rank != rank || m.time_ns < 0 || m.bytes < 0) {
    throw TraceError(fmt::format("rank {}: memory sample '{}' of {} bytes at {} ns recorded for rank {}: {}", rank,
                                 memory_tag_name(m.tag), m.bytes, m.time_ns, m.rank,
                                 m.rank != rank ? "another rank" : "negative time or bytes"));
  }
}

struct Interval {
  std::int64_t start_ns;
  std::int64_t end_ns;
  std::string_view name;
};

// Slices on a lane must nest or be disjoint: walk them by (start, longer first) with a stack of
// the slices still open; a slice that starts inside the top one must end inside it too.
void check_nesting(int rank, std::string_view lane, std::vector<Interval> slices) {
  std::stable_sort(slices.begin(), slices.end(), [](const Interval& a, const Interval& b) {
    return std::tuple(a.start_ns, b.end_ns) < std::tuple(b.start_ns, a.end_ns);
  });
  std::vector<const Interval*> open;
  for (const Interval& s : slices) {
    while (!open.empty() && open.back()->end_ns <= s.start_ns) open.pop_back();
    if (!open.empty() && s.end_ns > open.back()->end_ns) {
      const Interval& top = *open.back();
      throw TraceOverlapError({.rank = rank,
                               .lane = std::string(lane),
                               .first = describe_slice(top.name, top.start_ns, top.end_ns),
                               .second = describe_slice(s.name, s.start_ns, s.end_ns)});
    }
    open.push_back(&s);
  }
}

void check_lanes(const RankTrace& r) {
  std::vector<StepSpan> steps = trace_step_spans(r);
  std::vector<std::string> step_names;
  for (const StepSpan& s : steps) step_names.push_back(fmt::format("step {}", s.step));
  bool host_seen = false;
  for (const TraceLane& lane : r.lanes) {
    std::vector<Interval> slices;
    for (const TraceEvent& e : lane.events) slices.push_back({e.start_ns, end_of(e), e.name});
    if (lane.name == "host") {
      host_seen = true;
      for (std::size_t i = 0; i < steps.size(); ++i) slices.push_back({steps[i].start_ns, steps[i].end_ns, step_names[i]});
    }
    check_nesting(r.rank, lane.name, std::move(slices));
  }
  if (!host_seen) {
    std::vector<Interval> slices;
    for (std::size_t i = 0; i < steps.size(); ++i) slices.push_back({steps[i].start_ns, steps[i].end_ns, step_names[i]});
    check_nesting(r.rank, "host", std::move(slices));
  }
}

}  // namespace

TraceOverlapError::TraceOverlapError(Context context)
    : TraceError(fmt::format("rank {}, lane '{}': slice {} overlaps slice {} without nesting in it", context.rank,
                             context.lane, context.second, context.first)),
      context_(std::move(context)) {}

std::string trace_process_name(int rank, const MeshCoordinates& m) {
  return fmt::format("rank {} (pp {}, dp {}, sp {}, tp {})", rank, m.pp, m.dp, m.sp, m.tp);
}

std::optional<ProcessNameParts> parse_trace_process_name(std::string_view name) {
  ProcessNameParts p;
  std::string_view s = name;
  bool ok = take(s, "rank ") && take_int(s, p.rank) && take(s, " (pp ") && take_int(s, p.mesh.pp) &&
            take(s, ", dp ") && take_int(s, p.mesh.dp) && take(s, ", sp ") && take_int(s, p.mesh.sp) &&
            take(s, ", tp ") && take_int(s, p.mesh.tp) && take(s, ")") && s.empty();
  // Only the canonical spelling (no leading zeros, no signs) of ranks and coordinates >= 0.
  const MeshCoordinates& m = p.mesh;
  if (!ok || std::min({p.rank, m.pp, m.dp, m.sp, m.tp}) < 0 || trace_process_name(p.rank, m) != name) {
    return std::nullopt;
  }
  return p;
}

std::string trace_represents_label(const std::vector<int>& ranks) {
  std::string out = "represents ranks [";
  for (std::size_t i = 0; i < ranks.size();) {
    std::size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (i > 0) out += ", ";
    out += j > i ? fmt::format("{}-{}", ranks[i], ranks[j]) : fmt::format("{}", ranks[i]);
    i = j + 1;
  }
  return out + "]";
}

std::optional<std::vector<int>> parse_trace_represents_label(std::string_view label) {
  std::string_view s = label;
  if (!take(s, "represents ranks [")) return std::nullopt;
  std::vector<int> ranks;
  while (!s.empty() && s.front() != ']') {
    if (!ranks.empty() && !take(s, ", ")) return std::nullopt;
    int first = 0;
    int last = 0;
    if (!take_int(s, first)) return std::nullopt;
    last = first;
    if (take(s, "-") && !take_int(s, last)) return std::nullopt;
    if (first < 0 || last < first || last - first > 1'000'000) return std::nullopt;
    for (int r = first; r <= last; ++r) ranks.push_back(r);
  }
  if (!take(s, "]") || !s.empty() || ranks.empty() || trace_represents_label(ranks) != label) return std::nullopt;
  return ranks;
}

bool trace_event_before(const TraceEvent& a, const TraceEvent& b) {
  if (a.start_ns != b.start_ns) return a.start_ns < b.start_ns;
  if (a.duration_ns != b.duration_ns) return a.duration_ns > b.duration_ns;
  return event_key(a) < event_key(b);
}

std::vector<StepSpan> trace_step_spans(const RankTrace& rank) {
  std::map<std::int64_t, StepSpan> by_step;
  for (const TraceLane& lane : rank.lanes) {
    for (const TraceEvent& e : lane.events) {
      if (e.step < 0) continue;
      auto [it, inserted] = by_step.try_emplace(e.step, StepSpan{e.step, e.start_ns, end_of(e)});
      if (!inserted) {
        it->second.start_ns = std::min(it->second.start_ns, e.start_ns);
        it->second.end_ns = std::max(it->second.end_ns, end_of(e));
      }
    }
  }
  std::vector<StepSpan> spans;
  for (const auto& [step, span] : by_step) spans.push_back(span);
  return spans;
}

void TraceDocument::add_rank(TraceRankInfo info, std::vector<TraceEvent> events,
                             std::vector<MemoryCounterSample> memory) {
  const int rank = info.rank;
  if (rank < 0) throw TraceError(fmt::format("rank {}: negative rank", rank));
  if (find_rank(rank) != nullptr) throw TraceError(fmt::format("rank {}: added twice", rank));
  const MeshCoordinates& m = info.mesh;
  if (m.pp < 0 || m.dp < 0 || m.sp < 0 || m.tp < 0) {
    throw TraceError(fmt::format("rank {}: negative mesh coordinate in {}", rank, trace_process_name(rank, m)));
  }
  std::sort(info.represents.begin(), info.represents.end());
  info.represents.erase(std::unique(info.represents.begin(), info.represents.end()), info.represents.end());
  if (!info.represents.empty() && info.represents.front() < 0) {
    throw TraceError(fmt::format("rank {}: represents negative rank {}", rank, info.represents.front()));
  }
  for (const TraceEvent& e : events) check_event(rank, e);
  for (const MemoryCounterSample& s : memory) check_sample(rank, s);

  std::sort(events.begin(), events.end(), [](const TraceEvent& a, const TraceEvent& b) {
    if (a.lane != b.lane) return trace_lane_before(a.lane, b.lane);
    return trace_event_before(a, b);
  });
  RankTrace r{.rank = rank, .mesh = m, .represents = std::move(info.represents)};
  for (TraceEvent& e : events) {
    if (r.lanes.empty() || r.lanes.back().name != e.lane) r.lanes.push_back(TraceLane{.name = e.lane});
    r.lanes.back().events.push_back(std::move(e));
  }
  std::sort(memory.begin(), memory.end(), [](const MemoryCounterSample& a, const MemoryCounterSample& b) {
    return std::tuple(a.tag, a.time_ns, a.bytes) < std::tuple(b.tag, b.time_ns, b.bytes);
  });
  r.memory = std::move(memory);
  check_lanes(r);

  auto at = std::lower_bound(ranks_.begin(), ranks_.end(), rank,
                             [](const RankTrace& existing, int wanted) { return existing.rank < wanted; });
  ranks_.insert(at, std::move(r));
}

void TraceDocument::add_recorder(TraceRankInfo info, const TraceRecorder& recorder) {
  add_rank(std::move(info), recorder.events(), recorder.memory_samples());
}

void TraceDocument::validate() const {
  struct Ends {
    const TraceEvent* out = nullptr;
    const TraceEvent* in = nullptr;
  };
  std::map<std::int64_t, Ends> flows;
  auto where = [](const TraceEvent& e) {
    return fmt::format("'{}' (rank {}, lane '{}', {} ns)", e.name, e.rank, e.lane, e.start_ns);
  };
  auto attach = [&](const TraceEvent& e, std::int64_t id, const TraceEvent* Ends::*end, std::string_view field) {
    if (id == -1) return;
    Ends& ends = flows[id];
    if (ends.*end != nullptr) {
      throw TraceError(fmt::format("flow {}: two {} ends, {} and {}", id, field, where(*(ends.*end)), where(e)));
    }
    ends.*end = &e;
  };
  for (const RankTrace& r : ranks_) {
    for (const TraceLane& lane : r.lanes) {
      for (const TraceEvent& e : lane.events) {
        if (e.flow_out != -1 && e.flow_out == e.flow_in) {
          throw TraceError(fmt::format("event {}: flow {} starts and ends on it", where(e), e.flow_out));
        }
        attach(e, e.flow_out, &Ends::out, "flow_out");
        attach(e, e.flow_in, &Ends::in, "flow_in");
      }
    }
  }
  for (const auto& [id, ends] : flows) {
    if (ends.out == nullptr || ends.in == nullptr) {
      const TraceEvent& e = ends.out != nullptr ? *ends.out : *ends.in;
      throw TraceError(fmt::format("flow {}: {} has no matching {} end", id, where(e),
                                   ends.out != nullptr ? "flow_in" : "flow_out"));
    }
    if (ends.out->category != ends.in->category) {
      throw TraceError(fmt::format("flow {}: {} is {} but {} is {}; both ends of a flow must share a category", id,
                                   where(*ends.out), trace_category_name(ends.out->category), where(*ends.in),
                                   trace_category_name(ends.in->category)));
    }
  }
}

const RankTrace* TraceDocument::find_rank(int rank) const {
  auto at = std::lower_bound(ranks_.begin(), ranks_.end(), rank,
                             [](const RankTrace& existing, int wanted) { return existing.rank < wanted; });
  return at != ranks_.end() && at->rank == rank ? &*at : nullptr;
}

}  // namespace twinspeed
