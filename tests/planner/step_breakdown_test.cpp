// The step breakdown (sim/planner/step_breakdown.hpp): every nanosecond of the window goes to one
// part, by the documented priorities.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <vector>

#include "engine/core/errors.hpp"
#include "sim/planner/step_breakdown.hpp"

namespace twinspeed::planner {
namespace {

TraceEvent event(std::string lane, std::string name, std::int64_t start, std::int64_t duration) {
  return {.rank = 0, .lane = std::move(lane), .name = std::move(name), .start_ns = start, .duration_ns = duration};
}

TEST(StepBreakdown, ComputeHidesCommunicationAndIdleTimeIsBubble) {
  const std::vector<TraceEvent> events = {
      event("compute", "block.0 forward", 0, 10),
      event("compute", "block.0 recompute", 10, 5),
      event("compute", "block.0 backward", 15, 20),
      event("comm-dp", "all_reduce", 20, 30),         // 15 hidden behind backward, 15 exposed
      event("comm-tp", "all_reduce", 40, 10),         // overlaps the exposed dp: tp first
      event("compute", "optimizer step", 60, 10),     // after the last pass: optimizer
      event("p2p-send", "send", 75, 5),
      event("host", "data", 85, 5),
      event("comm-dp", "all_reduce", 95, 20)};         // clipped at 100
  const StepBreakdown b = break_down_step(events, 0, 100);
  EXPECT_EQ(b[StepPart::forward], 10);
  EXPECT_EQ(b[StepPart::recompute], 5);
  EXPECT_EQ(b[StepPart::backward], 20);
  EXPECT_EQ(b[StepPart::comm_tp], 10);
  EXPECT_EQ(b[StepPart::comm_dp], 5 + 5);  // 35..40 (the rest is behind backward or tp) and 95..100
  EXPECT_EQ(b[StepPart::optimizer], 10);
  EXPECT_EQ(b[StepPart::comm_pp], 5);
  EXPECT_EQ(b[StepPart::host], 5);
  EXPECT_EQ(b.total(), 100);
  EXPECT_EQ(b[StepPart::bubble], 100 - 10 - 5 - 20 - 10 - 10 - 10 - 5 - 5);
}

TEST(StepBreakdown, OtherComputeDuringThePassesIsBackwardWork) {
  const std::vector<TraceEvent> events = {event("compute", "block.0 backward", 0, 10),
                                          event("compute", "copy grad to bucket", 10, 3),
                                          event("compute", "block.1 backward", 13, 10),
                                          event("compute", "grads to fp32", 23, 2)};
  const StepBreakdown b = break_down_step(events, 0, 30);
  EXPECT_EQ(b[StepPart::backward], 23);
  EXPECT_EQ(b[StepPart::optimizer], 2);
  EXPECT_EQ(b[StepPart::bubble], 5);
}

TEST(StepBreakdown, ZeroStreamsAreDataParallelAndUnknownLanesAreErrors) {
  const StepBreakdown b = break_down_step(
      std::vector<TraceEvent>{event("zero-reduce", "reduce_scatter", 0, 4), event("comm-sp", "all_to_all", 4, 2),
                              event("comm-model", "all_reduce", 6, 1), event("comm-pp-tied", "all_reduce", 7, 1)},
      0, 8);
  EXPECT_EQ(b[StepPart::comm_dp], 4);
  EXPECT_EQ(b[StepPart::comm_sp], 2);
  EXPECT_EQ(b[StepPart::comm_tp], 1);
  EXPECT_EQ(b[StepPart::comm_pp], 1);
  EXPECT_THROW(break_down_step(std::vector<TraceEvent>{event("gpu-magic", "x", 0, 1)}, 0, 1), Error);
  EXPECT_THROW(break_down_step(std::vector<TraceEvent>{}, 5, 1), Error);
}

RC_GTEST_PROP(StepBreakdownProperty, PartsSumExactlyToTheWindowAndNoneIsNegative, ()) {
  const std::vector<std::string> lanes = {"compute", "comm-dp", "comm-tp", "comm-sp", "p2p-recv", "zero-gather", "host"};
  const std::vector<std::string> names = {"x forward", "x backward", "x recompute", "optimizer step", "all_reduce"};
  const auto n = *rc::gen::inRange(0, 40);
  std::vector<TraceEvent> events;
  for (int i = 0; i < n; ++i) {
    events.push_back(event(*rc::gen::elementOf(lanes), *rc::gen::elementOf(names), *rc::gen::inRange(-50, 500),
                           *rc::gen::inRange(0, 200)));
  }
  const std::int64_t begin = *rc::gen::inRange(0, 100);
  const std::int64_t end = begin + *rc::gen::inRange(0, 400);
  const StepBreakdown b = break_down_step(events, begin, end);
  RC_ASSERT(b.total() == end - begin);
  for (std::int64_t v : b.ns) RC_ASSERT(v >= 0);
}

}  // namespace
}  // namespace twinspeed::planner
