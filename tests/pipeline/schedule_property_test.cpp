// Invariants of DeepSpeed's pipeline schedules for S in 1..16 stages and M in 1..64
// micro-batches, checked on each stage's stream and by executing all streams against each other.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <map>
#include <numeric>
#include <vector>

#include "engine/pipeline/schedule.hpp"
#include "stream_interpreter.hpp"

namespace twinspeed::pipeline {
namespace {


struct Shape {
  int stages;
  int micro_batches;
};

Shape any_shape() { return {*rc::gen::inRange(1, 17), *rc::gen::inRange(1, 65)}; }

ScheduleKind any_kind() { return *rc::gen::element(ScheduleKind::Train, ScheduleKind::Inference); }

std::vector<Instruction> flatten(const std::vector<Step>& steps) {
  std::vector<Instruction> out;
  for (const Step& step : steps) out.insert(out.end(), step.begin(), step.end());
  return out;
}

int count(const std::vector<Instruction>& stream, OpKind op) {
  return static_cast<int>(std::count_if(stream.begin(), stream.end(), [&](const Instruction& i) { return i.op == op; }));
}

RC_GTEST_PROP(TrainScheduleProperty, OnEveryStageEachMicroBatchIsForwardedOnceBeforeItIsBackwardedOnce, ()) {
  const Shape shape = any_shape();
  for (const auto& stream : testing::all_streams(ScheduleKind::Train, shape.micro_batches, shape.stages)) {
    std::map<int, int> forward_at, backward_at;
    const std::vector<Instruction> flat = flatten(stream);
    for (int i = 0; i < static_cast<int>(flat.size()); ++i) {
      if (flat[i].op == OpKind::ForwardPass) RC_ASSERT(forward_at.emplace(flat[i].micro_batch, i).second);
      if (flat[i].op == OpKind::BackwardPass) RC_ASSERT(backward_at.emplace(flat[i].micro_batch, i).second);
    }
    RC_ASSERT(static_cast<int>(forward_at.size()) == shape.micro_batches);
    RC_ASSERT(static_cast<int>(backward_at.size()) == shape.micro_batches);
    for (const auto& [micro_batch, at] : forward_at) {
      RC_ASSERT(micro_batch >= 0 && micro_batch < shape.micro_batches);
      RC_ASSERT(at < backward_at.at(micro_batch));
    }
  }
}

RC_GTEST_PROP(PipelineScheduleProperty, StreamsRunAgainstEachOtherNeverDeadlockAndPairEverySendWithOneReceive, ()) {
  const Shape shape = any_shape();
  const ScheduleKind kind = any_kind();
  const auto streams = testing::all_streams(kind, shape.micro_batches, shape.stages);
  const testing::Execution ex = testing::execute(streams);
  RC_ASSERT(ex.error.empty());
  RC_ASSERT(ex.completed);
  int sends = 0, receives = 0;
  for (const auto& stream : streams) {
    const std::vector<Instruction> flat = flatten(stream);
    sends += count(flat, OpKind::SendActivation) + count(flat, OpKind::SendGrad);
    receives += count(flat, OpKind::RecvActivation) + count(flat, OpKind::RecvGrad);
  }
  // Every activation crosses each of the S-1 boundaries once, and in training its gradient too.
  const int per_boundary = kind == ScheduleKind::Train ? 2 : 1;
  RC_ASSERT(ex.pairs == per_boundary * shape.micro_batches * (shape.stages - 1));
  RC_ASSERT(sends == ex.pairs);
  RC_ASSERT(receives == ex.pairs);
}

RC_GTEST_PROP(PipelineScheduleProperty, BufferIdsAreBelowTheBufferCountAndOnlyOnBufferInstructions, ()) {
  const Shape shape = any_shape();
  for (const auto& schedule : make_schedules(any_kind(), shape.micro_batches, shape.stages)) {
    RC_ASSERT(schedule->num_buffers() >= 1);
    for (const Instruction& in : flatten(schedule->steps())) {
      if (is_buffer_op(in.op)) {
        RC_ASSERT(in.buffer >= 0 && in.buffer < schedule->num_buffers());
        RC_ASSERT(in.micro_batch >= 0 && in.micro_batch < shape.micro_batches);
      } else {
        RC_ASSERT(in.buffer == kNoBuffer);
      }
    }
  }
}

// A buffer holds one micro-batch from its first instruction on a stage to its last: the buffer count
// is enough for the schedule.
RC_GTEST_PROP(PipelineScheduleProperty, MicroBatchesSharingABufferAreNeverLiveAtOnce, ()) {
  const Shape shape = any_shape();
  for (const auto& stream : testing::all_streams(any_kind(), shape.micro_batches, shape.stages)) {
    const std::vector<Instruction> flat = flatten(stream);
    std::map<int, std::pair<int, int>> live;  // micro-batch -> [first, last] instruction index
    std::map<int, int> buffer_of;
    for (int i = 0; i < static_cast<int>(flat.size()); ++i) {
      if (!is_buffer_op(flat[i].op)) continue;
      auto [it, inserted] = live.emplace(flat[i].micro_batch, std::pair{i, i});
      it->second.second = i;
      RC_ASSERT(buffer_of.emplace(flat[i].micro_batch, flat[i].buffer).first->second == flat[i].buffer);
    }
    for (const auto& [a, span_a] : live) {
      for (const auto& [b, span_b] : live) {
        if (a < b && buffer_of[a] == buffer_of[b]) RC_ASSERT(span_a.second < span_b.first);
      }
    }
  }
}

RC_GTEST_PROP(PipelineScheduleProperty, FirstStageNeverReceivesActivationsOrSendsGradsAndTheLastNeverTheReverse, ()) {
  const Shape shape = any_shape();
  const auto streams = testing::all_streams(any_kind(), shape.micro_batches, shape.stages);
  const std::vector<Instruction> first = flatten(streams.front());
  const std::vector<Instruction> last = flatten(streams.back());
  RC_ASSERT(count(first, OpKind::RecvActivation) == 0);
  RC_ASSERT(count(first, OpKind::SendGrad) == 0);
  RC_ASSERT(count(last, OpKind::SendActivation) == 0);
  RC_ASSERT(count(last, OpKind::RecvGrad) == 0);
  // They are the only stages that load micro-batches (inputs and labels), each micro-batch once.
  for (int s = 0; s < shape.stages; ++s) {
    const bool loads = s == 0 || s == shape.stages - 1;
    RC_ASSERT(count(flatten(streams[s]), OpKind::LoadMicroBatch) == (loads ? shape.micro_batches : 0));
  }
}

RC_GTEST_PROP(PipelineScheduleProperty, TrainingTakes2MPlusSMinus1StepsAndInferenceMPlusSMinus1, ()) {
  const Shape shape = any_shape();
  for (const ScheduleKind kind : {ScheduleKind::Train, ScheduleKind::Inference}) {
    const int expected = (kind == ScheduleKind::Train ? 2 : 1) * (shape.micro_batches + shape.stages - 1);
    for (const auto& schedule : make_schedules(kind, shape.micro_batches, shape.stages)) {
      RC_ASSERT(schedule->num_steps() == expected);
      RC_ASSERT(static_cast<int>(schedule->steps().size()) == expected);
    }
  }
}

RC_GTEST_PROP(TrainScheduleProperty, OnlyTheLastStepReducesGradientsAndStepsTheOptimizerOnEveryStage, ()) {
  const Shape shape = any_shape();
  for (const auto& stream : testing::all_streams(ScheduleKind::Train, shape.micro_batches, shape.stages)) {
    const Step& last = stream.back();
    RC_ASSERT(last.size() >= 3u);
    RC_ASSERT((std::vector<OpKind>{last[last.size() - 3].op, last[last.size() - 2].op, last.back().op}) ==
              (std::vector<OpKind>{OpKind::ReduceTiedGrads, OpKind::ReduceGrads, OpKind::OptimizerStep}));
    const std::vector<Instruction> flat = flatten(stream);
    RC_ASSERT(count(flat, OpKind::OptimizerStep) == 1);
    RC_ASSERT(count(flat, OpKind::ReduceGrads) == 1);
    RC_ASSERT(count(flat, OpKind::ReduceTiedGrads) == 1);
  }
}

// The 1F1B bubble: with every stage taking F per forward and B per backward and free p2p, the
// stages are idle (S-1)/(M+S-1) of the makespan, whatever F:B.
RC_GTEST_PROP(TrainScheduleProperty, IdleFractionWithUniformStageTimesIsSMinus1OverMPlusSMinus1, ()) {
  const Shape shape = any_shape();
  const testing::StageTimes times{.forward_ns = *rc::gen::inRange<std::int64_t>(1, 1000),
                                  .backward_ns = *rc::gen::inRange<std::int64_t>(1, 1000)};
  const testing::Execution ex =
      testing::execute(testing::all_streams(ScheduleKind::Train, shape.micro_batches, shape.stages), times);
  RC_ASSERT(ex.completed);
  const std::int64_t makespan = *std::max_element(ex.finish_ns.begin(), ex.finish_ns.end());
  const std::int64_t busy = std::accumulate(ex.busy_ns.begin(), ex.busy_ns.end(), std::int64_t{0});
  const std::int64_t S = shape.stages, M = shape.micro_batches;
  const std::int64_t idle = S * makespan - busy;
  // idle / (S * makespan) == (S - 1) / (M + S - 1), in integers.
  RC_ASSERT(idle * (M + S - 1) == (S - 1) * S * makespan);
}

}  // namespace
}  // namespace twinspeed::pipeline
