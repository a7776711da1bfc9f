#include "sim/planner/step_breakdown.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "engine/core/errors.hpp"

namespace twinspeed::planner {

namespace {

using i64 = std::int64_t;

struct Interval {
  i64 begin = 0;
  i64 end = 0;
};
using Intervals = std::vector<Interval>;  // sorted, disjoint, non-empty

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The group kind a communication lane serves (header), as a StepPart; nullopt for a lane that is
// not communication.
std::optional<StepPart> comm_part(std::string_view lane) {
  if (starts_with(lane, "p2p")) return StepPart::comm_pp;
  if (starts_with(lane, "zero-")) return StepPart::comm_dp;
  if (!starts_with(lane, "comm-")) return std::nullopt;
  const std::string_view kind = lane.substr(5, lane.find('-', 5) - 5);
  if (kind == "tp" || kind == "model") return StepPart::comm_tp;
  if (kind == "sp") return StepPart::comm_sp;
  if (kind == "pp") return StepPart::comm_pp;
  if (kind == "dp" || kind == "zero" || kind == "world") return StepPart::comm_dp;
  return std::nullopt;
}

// Sorts and merges into disjoint intervals.
Intervals normalise(Intervals v) {
  std::sort(v.begin(), v.end(), [](const Interval& a, const Interval& b) { return a.begin < b.begin; });
  Intervals out;
  for (const Interval& i : v) {
    if (i.end <= i.begin) continue;
    if (!out.empty() && i.begin <= out.back().end) {
      out.back().end = std::max(out.back().end, i.end);
    } else {
      out.push_back(i);
    }
  }
  return out;
}

// Length of a minus b.
i64 length_outside(const Intervals& a, const Intervals& b) {
  i64 total = 0;
  std::size_t j = 0;
  for (const Interval& i : a) {
    i64 cursor = i.begin;
    while (j < b.size() && b[j].end <= cursor) ++j;
    for (std::size_t k = j; k < b.size() && b[k].begin < i.end; ++k) {
      if (b[k].begin > cursor) total += b[k].begin - cursor;
      cursor = std::max(cursor, b[k].end);
    }
    if (i.end > cursor) total += i.end - cursor;
  }
  return total;
}

Intervals merged(const Intervals& a, const Intervals& b) {
  Intervals all = a;
  all.insert(all.end(), b.begin(), b.end());
  return normalise(std::move(all));
}

}  // namespace

std::string_view step_part_name(StepPart part) {
  switch (part) {
    case StepPart::forward: return "forward";
    case StepPart::backward: return "backward";
    case StepPart::recompute: return "recompute";
    case StepPart::optimizer: return "optimizer";
    case StepPart::comm_dp: return "comm_dp";
    case StepPart::comm_tp: return "comm_tp";
    case StepPart::comm_pp: return "comm_pp";
    case StepPart::comm_sp: return "comm_sp";
    case StepPart::bubble: return "bubble";
    case StepPart::host: return "host";
  }
  return "?";
}

std::int64_t StepBreakdown::total() const {
  i64 sum = 0;
  for (i64 v : ns) sum += v;
  return sum;
}

StepBreakdown break_down_step(std::span<const TraceEvent> events, std::int64_t begin_ns, std::int64_t end_ns) {
  if (end_ns < begin_ns) throw Error(fmt::format("step window [{}, {}) ends before it begins", begin_ns, end_ns));
  std::array<Intervals, kStepPartCount> busy;
  auto add = [&](StepPart part, const TraceEvent& e) {
    const i64 b = std::max(e.start_ns, begin_ns), en = std::min(e.start_ns + e.duration_ns, end_ns);
    if (en > b) busy[static_cast<std::size_t>(part)].push_back({b, en});
  };
  // The passes end where the window's last forward, recompute or backward launch ends.
  i64 passes_end = begin_ns;
  for (const TraceEvent& e : events) {
    if (e.lane == "compute" && (ends_with(e.name, " forward") || ends_with(e.name, " backward") ||
                                ends_with(e.name, " recompute"))) {
      if (e.start_ns < end_ns) passes_end = std::max(passes_end, e.start_ns + e.duration_ns);
    }
  }
  for (const TraceEvent& e : events) {
    if (e.lane == "compute") {
      if (ends_with(e.name, " forward")) add(StepPart::forward, e);
      else if (ends_with(e.name, " recompute")) add(StepPart::recompute, e);
      else if (ends_with(e.name, " backward") || e.start_ns < passes_end) add(StepPart::backward, e);
      else add(StepPart::optimizer, e);
    } else if (e.lane == "cpu") {
      // ZeRO-Offload's step on the host's CPU: optimizer work wherever it falls.
      add(StepPart::optimizer, e);
    } else if (e.lane == "host" || e.lane == "copy") {
      add(StepPart::host, e);
    } else if (std::optional<StepPart> part = comm_part(e.lane)) {
      add(*part, e);
    } else {
      throw Error(fmt::format("step breakdown: event '{}' on lane '{}' of rank {} belongs to no part (classify the "
                              "lane in sim/planner/step_breakdown)",
                              e.name, e.lane, e.rank));
    }
  }
  StepBreakdown out;
  Intervals covered;
  for (StepPart part : {StepPart::forward, StepPart::backward, StepPart::recompute, StepPart::optimizer,
                        StepPart::comm_tp, StepPart::comm_sp, StepPart::comm_pp, StepPart::comm_dp, StepPart::host}) {
    Intervals mine = normalise(std::move(busy[static_cast<std::size_t>(part)]));
    out[part] = length_outside(mine, covered);
    covered = merged(covered, mine);
  }
  i64 busy_total = 0;
  for (const Interval& i : covered) busy_total += i.end - i.begin;
  out[StepPart::bubble] = (end_ns - begin_ns) - busy_total;
  return out;
}

}  // namespace twinspeed::planner
