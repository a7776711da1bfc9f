#include "engine/core/trace_merge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>
#include <utility>

namespace twinspeed {

std::filesystem::path rank_trace_path(const std::filesystem::path& path, int rank) {
  std::filesystem::path out = path;
  out.replace_filename(fmt::format("{}.rank{}{}", path.stem().string(), rank, path.extension().string()));
  return out;
}

TraceDocument merge_traces(std::vector<TraceDocument> parts) {
  if (parts.empty()) throw TraceError("merge: no traces to merge");
  TraceDocument merged;
  merged.metadata = parts.front().metadata;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    TraceDocument& part = parts[i];
    if (part.metadata.simulated != merged.metadata.simulated) {
      throw TraceError(fmt::format("merge: trace {} is {} but trace 1 is {}; their times do not share a clock", i + 1,
                                   part.metadata.simulated ? "simulated" : "real",
                                   merged.metadata.simulated ? "simulated" : "real"));
    }
    for (const std::string& note : part.metadata.notes) {
      auto& notes = merged.metadata.notes;
      if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(note);
    }
    for (const RankTrace& r : part.ranks()) {
      if (merged.find_rank(r.rank) != nullptr) {
        throw TraceError(fmt::format("merge: rank {} is in two of the traces (trace {} and an earlier one)", r.rank, i + 1));
      }
      std::vector<TraceEvent> events;
      for (const TraceLane& lane : r.lanes) events.insert(events.end(), lane.events.begin(), lane.events.end());
      merged.add_rank({.rank = r.rank, .mesh = r.mesh, .represents = r.represents}, std::move(events), r.memory);
    }
  }
  merged.validate();
  return merged;
}

std::vector<IssuedCollective> issued_collectives(const RankTrace& rank) {
  std::vector<IssuedCollective> out;
  for (const TraceLane& lane : rank.lanes) {
    for (const TraceEvent& e : lane.events) {
      const bool communicates = e.category == TraceCategory::comm || e.category == TraceCategory::p2p;
      if (!communicates || e.group < 0 || e.seq < 0) continue;
      out.push_back({.group = e.group, .seq = e.seq, .op = e.op, .bytes = e.bytes, .dtype = e.dtype, .lane = e.lane});
    }
  }
  std::sort(out.begin(), out.end(), [](const IssuedCollective& a, const IssuedCollective& b) {
    return std::tie(a.group, a.seq, a.op, a.bytes, a.dtype, a.lane) < std::tie(b.group, b.seq, b.op, b.bytes, b.dtype, b.lane);
  });
  return out;
}

namespace {

std::string describe(const IssuedCollective& c) {
  return fmt::format("{} of {} bytes{}", c.op.empty() ? "(unnamed)" : c.op, c.bytes, c.dtype.empty() ? "" : " " + c.dtype);
}

// Adds the differences of one rank's collectives, walking both (group, seq)-sorted lists at once.
void compare_rank(int rank, const std::vector<IssuedCollective>& a, const std::vector<IssuedCollective>& b,
                  const auto& differ, std::int64_t& compared) {
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    const bool take_a = j == b.size() || (i < a.size() && std::tie(a[i].group, a[i].seq) < std::tie(b[j].group, b[j].seq));
    const bool take_b = i == a.size() || (j < b.size() && std::tie(b[j].group, b[j].seq) < std::tie(a[i].group, a[i].seq));
    if (take_a) {
      differ(fmt::format("rank {} group {} seq {}: {} only in the first trace", rank, a[i].group, a[i].seq, describe(a[i])));
      ++i;
    } else if (take_b) {
      differ(fmt::format("rank {} group {} seq {}: {} only in the second trace", rank, b[j].group, b[j].seq, describe(b[j])));
      ++j;
    } else {
      if (std::tie(a[i].op, a[i].bytes, a[i].dtype) != std::tie(b[j].op, b[j].bytes, b[j].dtype)) {
        differ(fmt::format("rank {} group {} seq {}: {} in the first trace, {} in the second", rank, a[i].group,
                           a[i].seq, describe(a[i]), describe(b[j])));
      } else {
        ++compared;
      }
      ++i;
      ++j;
    }
  }
}

}  // namespace

CollectiveComparison compare_collectives(const TraceDocument& a, const TraceDocument& b, std::size_t max_differences) {
  CollectiveComparison result;
  auto differ = [&](std::string line) {
    ++result.difference_count;
    if (result.differences.size() < max_differences) result.differences.push_back(std::move(line));
  };
  std::vector<int> ranks;
  for (const RankTrace& r : a.ranks()) ranks.push_back(r.rank);
  for (const RankTrace& r : b.ranks()) ranks.push_back(r.rank);
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  for (int rank : ranks) {
    const RankTrace* in_a = a.find_rank(rank);
    const RankTrace* in_b = b.find_rank(rank);
    if (in_a == nullptr || in_b == nullptr) {
      differ(fmt::format("rank {}: only in the {} trace", rank, in_a != nullptr ? "first" : "second"));
      continue;
    }
    compare_rank(rank, issued_collectives(*in_a), issued_collectives(*in_b), differ, result.compared);
  }
  return result;
}

}  // namespace twinspeed
