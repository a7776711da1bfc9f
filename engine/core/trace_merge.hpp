#pragma once
// Traces of real runs: each process of a real backend writes its own rank's trace
// (rank_trace_path), and merge_traces puts them into one document ("twinspeed trace merge", and
// `train --trace` on rank 0 at exit). Their clocks are aligned when they are recorded: every rank
// starts its trace clock as it leaves the backend's start barrier, so the merge only joins.
//
// compare_collectives is the simulation-twin check of DESIGN.md: two traces of the same config
// (simulated and real, or two real runs) must issue the same collectives on every rank: per rank
// and group, the same sequence of (op, logical bytes, dtype) in seq order.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/core/trace_document.hpp"

namespace twinspeed {

// Where rank R of a real run writes its own trace when the merged trace goes to path:
// "out.json" -> "out.rank3.json", "trace" -> "trace.rank3".
std::filesystem::path rank_trace_path(const std::filesystem::path& path, int rank);

// One document with every rank of parts. The metadata is the first part's (command line, config
// summary), with its notes followed by the other parts' notes not already present. Throws
// TraceError when parts is empty, a rank appears in two parts, or simulated and real parts are
// mixed (their times do not share a clock).
TraceDocument merge_traces(std::vector<TraceDocument> parts);

// One collective or point-to-point operation as a rank issued it: the comm and p2p events of its
// trace that carry a group and a sequence number.
struct IssuedCollective {
  int group = -1;
  std::int64_t seq = -1;
  std::string op;
  std::int64_t bytes = 0;
  std::string dtype;
  std::string lane;
  bool operator==(const IssuedCollective&) const = default;
};

// A rank's collectives by (group, seq).
std::vector<IssuedCollective> issued_collectives(const RankTrace& rank);

struct CollectiveComparison {
  std::int64_t compared = 0;             // collectives found equal in both traces
  std::vector<std::string> differences;  // one line each, at most max_differences of them
  std::int64_t difference_count = 0;     // all of them, also those not listed
  bool same() const { return difference_count == 0; }
};

// Compares a's and b's collectives rank by rank: a rank present in one trace only, a group whose
// sequences differ in length, and every (group, seq) whose op, bytes or dtype differ, in rank,
// group, seq order. Lanes and times are not compared (they are where and when, not what).
CollectiveComparison compare_collectives(const TraceDocument& a, const TraceDocument& b,
                                         std::size_t max_differences = 20);

}  // namespace twinspeed
