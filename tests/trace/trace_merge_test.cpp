#include "engine/core/trace_merge.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "trace_test_support.hpp"

namespace twinspeed {
namespace {

// The document's ranks, each as a document of its own with the same metadata (what every rank of
// a real run writes).
std::vector<TraceDocument> split_by_rank(const TraceDocument& doc) {
  std::vector<TraceDocument> parts;
  for (const RankTrace& r : doc.ranks()) {
    TraceDocument part;
    part.metadata = doc.metadata;
    std::vector<TraceEvent> events;
    for (const TraceLane& lane : r.lanes) events.insert(events.end(), lane.events.begin(), lane.events.end());
    part.add_rank({.rank = r.rank, .mesh = r.mesh, .represents = r.represents}, events, r.memory);
    parts.push_back(std::move(part));
  }
  return parts;
}

TraceEvent collective(int rank, std::string op, int group, std::int64_t seq, std::int64_t bytes, std::int64_t start) {
  return {.rank = rank, .lane = "comm-dp", .name = op, .category = TraceCategory::comm, .start_ns = start,
          .duration_ns = 10, .op = op, .group = group, .seq = seq, .bytes = bytes, .dtype = "fp32"};
}

TraceDocument two_ranks(std::vector<TraceEvent> rank0, std::vector<TraceEvent> rank1) {
  TraceDocument doc;
  doc.add_rank({.rank = 0, .mesh = {.dp = 0}}, std::move(rank0));
  doc.add_rank({.rank = 1, .mesh = {.dp = 1}}, std::move(rank1));
  return doc;
}

TEST(RankTracePath, InsertsTheRankBeforeTheExtension) {
  EXPECT_EQ(rank_trace_path("out.json", 3), "out.rank3.json");
  EXPECT_EQ(rank_trace_path("runs/a.b.json", 0), "runs/a.b.rank0.json");
  EXPECT_EQ(rank_trace_path("/tmp/trace", 12), "/tmp/trace.rank12");
}

TEST(MergeTraces, PerRankPartsMergeBackIntoTheWholeDocument) {
  const TraceDocument whole = trace_test::small_document();
  std::vector<TraceDocument> parts = split_by_rank(whole);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(merge_traces(parts), whole);
  // The order of the parts does not matter.
  std::swap(parts[0], parts[1]);
  EXPECT_EQ(merge_traces(parts).ranks(), whole.ranks());
}

TEST(MergeTraces, NotesOfEveryPartAreKeptOnce) {
  std::vector<TraceDocument> parts = split_by_rank(trace_test::small_document());
  parts[1].metadata.notes.push_back("rank 2 was slow");
  const TraceDocument merged = merge_traces(parts);
  EXPECT_EQ(merged.metadata.notes,
            (std::vector<std::string>{"ranks 1 and 3 are simulated by ranks 0 and 2", "rank 2 was slow"}));
}

TEST(MergeTraces, RejectsNoParts_ARankTwice_AndSimulatedWithReal) {
  EXPECT_THROW(merge_traces({}), TraceError);
  std::vector<TraceDocument> parts = split_by_rank(trace_test::small_document());
  std::vector<TraceDocument> twice = {parts[0], parts[1], parts[0]};
  try {
    merge_traces(twice);
    FAIL() << "a rank in two parts was merged";
  } catch (const TraceError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0 is in two of the traces"), std::string::npos) << e.what();
  }
  parts[1].metadata.simulated = false;
  EXPECT_THROW(merge_traces(parts), TraceError);
}

TEST(MergeTraces, AFlowWhoseOtherEndIsMissingIsRejected) {
  // Rank 0 sends to rank 2; merging rank 0 alone leaves the flow without its receive.
  std::vector<TraceDocument> parts = split_by_rank(trace_test::small_document());
  EXPECT_THROW(merge_traces({parts[0]}), TraceError);
}

TEST(IssuedCollectives, AreTheCommAndP2pEventsWithAGroupAndSeqInGroupSeqOrder) {
  const TraceDocument doc = trace_test::small_document();
  const std::vector<IssuedCollective> c = issued_collectives(*doc.find_rank(0));
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0], (IssuedCollective{.group = 1, .seq = 0, .op = "send", .bytes = 1024, .lane = "p2p"}));
  EXPECT_EQ(c[1].op, "all_reduce");
  EXPECT_EQ(c[2].op, "all_gather");
  EXPECT_EQ(c[2].seq, 1);
}

TEST(CompareCollectives, EqualWhenOnlyTimesAndLanesDiffer) {
  const TraceDocument a = two_ranks({collective(0, "all_reduce", 1, 0, 64, 0), collective(0, "all_gather", 1, 1, 32, 20)},
                                    {collective(1, "all_reduce", 1, 0, 64, 5), collective(1, "all_gather", 1, 1, 32, 40)});
  std::vector<TraceEvent> moved0 = {collective(0, "all_reduce", 1, 0, 64, 100), collective(0, "all_gather", 1, 1, 32, 300)};
  moved0[1].lane = "comm-dp-gather";
  const TraceDocument b =
      two_ranks(moved0, {collective(1, "all_reduce", 1, 0, 64, 7), collective(1, "all_gather", 1, 1, 32, 70)});
  const CollectiveComparison c = compare_collectives(a, b);
  EXPECT_TRUE(c.same());
  EXPECT_EQ(c.compared, 4);
  EXPECT_TRUE(c.differences.empty());
}

TEST(CompareCollectives, NamesEachDifferenceByRankGroupAndSeq) {
  const TraceDocument a = two_ranks({collective(0, "all_reduce", 1, 0, 64, 0), collective(0, "all_gather", 1, 1, 32, 20)},
                                    {collective(1, "all_reduce", 1, 0, 64, 0)});
  const TraceDocument b = two_ranks({collective(0, "all_reduce", 1, 0, 128, 0)},
                                    {collective(1, "all_reduce", 1, 0, 64, 0), collective(1, "broadcast", 2, 0, 8, 20)});
  const CollectiveComparison c = compare_collectives(a, b);
  EXPECT_FALSE(c.same());
  EXPECT_EQ(c.compared, 1);
  EXPECT_EQ(c.differences, (std::vector<std::string>{
                               "rank 0 group 1 seq 0: all_reduce of 64 bytes fp32 in the first trace, all_reduce of "
                               "128 bytes fp32 in the second",
                               "rank 0 group 1 seq 1: all_gather of 32 bytes fp32 only in the first trace",
                               "rank 1 group 2 seq 0: broadcast of 8 bytes fp32 only in the second trace"}));
  const CollectiveComparison capped = compare_collectives(a, b, 1);
  EXPECT_EQ(capped.difference_count, 3);
  EXPECT_EQ(capped.differences.size(), 1u);
}

TEST(CompareCollectives, ARankInOneTraceOnlyIsADifference) {
  TraceDocument one;
  one.add_rank({.rank = 0}, {collective(0, "all_reduce", 1, 0, 64, 0)});
  const TraceDocument both = two_ranks({collective(0, "all_reduce", 1, 0, 64, 0)}, {});
  const CollectiveComparison c = compare_collectives(one, both);
  EXPECT_EQ(c.compared, 1);
  EXPECT_EQ(c.differences, (std::vector<std::string>{"rank 1: only in the second trace"}));
}

}  // namespace
}  // namespace twinspeed
