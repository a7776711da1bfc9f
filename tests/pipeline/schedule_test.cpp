// DeepSpeed 0.19.6's exact instruction streams for small pipelines, derived by hand from
// deepspeed/runtime/pipe/schedule.py (TrainSchedule._step_to_micro_batch and steps(),
// InferenceSchedule.steps()), and the schedules' argument checks.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/errors.hpp"
#include "engine/pipeline/schedule.hpp"
#include "stream_interpreter.hpp"

namespace twinspeed::pipeline {
namespace {


// Each stage's steps abbreviated ("RG0 SA1 B0", "-" when idle).
std::vector<std::vector<std::string>> abbreviated(ScheduleKind kind, int micro_batches, int stages) {
  std::vector<std::vector<std::string>> out;
  for (const auto& stream : testing::all_streams(kind, micro_batches, stages)) {
    std::vector<std::string> steps;
    for (const Step& step : stream) steps.push_back(abbreviate(step));
    out.push_back(steps);
  }
  return out;
}

std::vector<int> buffer_counts(ScheduleKind kind, int micro_batches, int stages) {
  std::vector<int> out;
  for (const auto& schedule : make_schedules(kind, micro_batches, stages)) {
    out.push_back(schedule->num_buffers());
  }
  return out;
}

TEST(TrainScheduleGolden, TwoStagesThreeMicroBatchesMatchDeepSpeed) {
  const std::vector<std::vector<std::string>> expected = {
      {"LD0 F0", "SA0", "LD1 F1", "RG0 SA1 B0", "LD0 F0", "RG1 SA0 B1", "-", "RG0 B0 RT RD OPT"},
      {"-", "RA0 LD0 F0", "B0", "SG0 RA1 LD1 F1", "B1", "SG1 RA0 LD0 F0", "B0", "SG0 RT RD OPT"},
  };
  EXPECT_EQ(abbreviated(ScheduleKind::Train, 3, 2), expected);
  EXPECT_EQ(buffer_counts(ScheduleKind::Train, 3, 2), (std::vector<int>{2, 2}));
}

TEST(TrainScheduleGolden, FourStagesTwoMicroBatchesMatchDeepSpeed) {
  const std::vector<std::vector<std::string>> expected = {
      {"LD0 F0", "SA0", "LD1 F1", "SA1", "-", "-", "-", "RG0 B0", "-", "RG1 B1 RT RD OPT"},
      {"-", "RA0 F0", "SA0", "RA1 F1", "SA1", "-", "RG0 B0", "SG0", "RG1 B1", "SG1 RT RD OPT"},
      {"-", "-", "RA0 F0", "SA0", "RA1 F1", "RG0 SA1 B0", "SG0", "RG1 B1", "SG1", "RT RD OPT"},
      {"-", "-", "-", "RA0 LD0 F0", "B0", "SG0 RA1 LD1 F1", "B1", "SG1", "-", "RT RD OPT"},
  };
  EXPECT_EQ(abbreviated(ScheduleKind::Train, 2, 4), expected);
}

TEST(TrainScheduleGolden, MicroBatchesFollowTheStepsOfTheSecondStage) {
  // Stage 1 of S=2, M=3: forward of micro-batch m in step 2m+1, its backward in step 2m+2, the
  // gradient sent back in the next forward slot.
  const std::vector<Step> steps = TrainSchedule(3, 2, 1).steps();
  EXPECT_EQ(steps[3][0], (Instruction{OpKind::SendGrad, 0, 0}));
  EXPECT_EQ(steps[3][1], (Instruction{OpKind::RecvActivation, 1, 1}));
  EXPECT_EQ(steps[6][0], (Instruction{OpKind::BackwardPass, 0, 2}));
  EXPECT_EQ(steps[7][0], (Instruction{OpKind::SendGrad, 0, 2}));
}

TEST(TrainScheduleGolden, BufferCountIsTheForwardPassesInFlightAtLeastTwo) {
  EXPECT_EQ(buffer_counts(ScheduleKind::Train, 3, 4), (std::vector<int>{3, 3, 2, 2}));
  EXPECT_EQ(buffer_counts(ScheduleKind::Train, 64, 8), (std::vector<int>{8, 7, 6, 5, 4, 3, 2, 2}));
  EXPECT_EQ(buffer_counts(ScheduleKind::Train, 1, 3), (std::vector<int>{2, 2, 2}));
  EXPECT_EQ(buffer_counts(ScheduleKind::Train, 5, 1), (std::vector<int>{2}));
}

TEST(InferenceScheduleGolden, TwoStagesTwoMicroBatchesMatchDeepSpeed) {
  const std::vector<std::vector<std::string>> expected = {
      {"LD0 F0", "LD1 SA0 F1", "SA1"},
      {"-", "LD0 RA0 F0", "LD1 RA1 F1"},
  };
  EXPECT_EQ(abbreviated(ScheduleKind::Inference, 2, 2), expected);
  EXPECT_EQ(buffer_counts(ScheduleKind::Inference, 2, 2), (std::vector<int>{2, 2}));
}

TEST(InferenceScheduleGolden, ThreeStagesOddStagesReceiveBeforeTheySend) {
  const std::vector<std::vector<std::string>> expected = {
      {"LD0 F0", "SA0", "-"},
      {"-", "RA0 F0", "SA0"},
      {"-", "-", "LD0 RA0 F0"},
  };
  EXPECT_EQ(abbreviated(ScheduleKind::Inference, 1, 3), expected);
}

TEST(Schedule, NamesAreDeepSpeedsInstructionClasses) {
  EXPECT_EQ(op_name(OpKind::LoadMicroBatch), "LoadMicroBatch");
  EXPECT_EQ(op_name(OpKind::RecvGrad), "RecvGrad");
  EXPECT_EQ(op_name(OpKind::OptimizerStep), "OptimizerStep");
  EXPECT_TRUE(is_buffer_op(OpKind::SendGrad));
  EXPECT_FALSE(is_buffer_op(OpKind::ReduceTiedGrads));
}

TEST(Schedule, RejectsMicroBatchesStagesOrStageOutOfRange) {
  EXPECT_THROW(TrainSchedule(0, 2, 0), UsageError);
  EXPECT_THROW(TrainSchedule(2, 0, 0), UsageError);
  EXPECT_THROW(TrainSchedule(2, 2, 2), UsageError);
  EXPECT_THROW(InferenceSchedule(2, 2, -1), UsageError);
  EXPECT_NO_THROW(InferenceSchedule(1, 1, 0));
}

// The oracle of the property tests: it must catch a deadlock and a mismatched pair, and time a
// pipeline as the discrete-event model says.
TEST(StreamInterpreter, ReportsADeadlockWhenNeighboursBothSendFirst) {
  const std::vector<std::vector<Step>> streams = {
      {{{OpKind::SendActivation, 0, 0}}, {{OpKind::RecvGrad, 0, 0}}},
      {{{OpKind::SendGrad, 0, 0}}, {{OpKind::RecvActivation, 0, 0}}},
  };
  const testing::Execution ex = testing::execute(streams);
  EXPECT_FALSE(ex.completed);
  EXPECT_NE(ex.error.find("stuck: stage 0 SendActivation"), std::string::npos) << ex.error;
  EXPECT_EQ(ex.pairs, 0);
}

TEST(StreamInterpreter, ReportsASendMetByAnotherMicroBatchsReceive) {
  const std::vector<std::vector<Step>> streams = {
      {{{OpKind::SendActivation, 0, 0}}},
      {{{OpKind::RecvActivation, 0, 1}}},
  };
  const testing::Execution ex = testing::execute(streams);
  EXPECT_FALSE(ex.completed);
  EXPECT_NE(ex.error.find("met stage 1 RecvActivation"), std::string::npos) << ex.error;
}

TEST(StreamInterpreter, AReceiveCompletesWhenItsSendArrives) {
  const std::vector<std::vector<Step>> streams = {
      {{{OpKind::ForwardPass, 0, 0}, {OpKind::SendActivation, 0, 0}}},
      {{{OpKind::RecvActivation, 0, 0}, {OpKind::ForwardPass, 0, 0}}},
  };
  const testing::Execution ex = testing::execute(streams, {.forward_ns = 5, .backward_ns = 7});
  ASSERT_TRUE(ex.completed) << ex.error;
  EXPECT_EQ(ex.pairs, 1);
  EXPECT_EQ(ex.finish_ns, (std::vector<std::int64_t>{5, 10}));
  EXPECT_EQ(ex.busy_ns, (std::vector<std::int64_t>{5, 5}));
}

}  // namespace
}  // namespace twinspeed::pipeline
