#include "engine/pipeline/schedule.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "engine/core/errors.hpp"

namespace twinspeed::pipeline {

namespace {

constexpr std::array<std::string_view, kNumOpKinds> kOpNames = {
    "LoadMicroBatch", "ForwardPass", "BackwardPass", "SendActivation", "RecvActivation",
    "SendGrad",       "RecvGrad",    "ReduceTiedGrads", "ReduceGrads",  "OptimizerStep"};

constexpr std::array<std::string_view, kNumOpKinds> kOpAbbreviations = {"LD", "F",  "B",  "SA", "RA",
                                                                         "SG", "RG", "RT", "RD", "OPT"};

bool is_even(int x) { return x % 2 == 0; }

void check_shape(int micro_batches, int stages, int stage) {
  if (micro_batches < 1) {
    throw UsageError("pipeline schedule: micro_batches = " + std::to_string(micro_batches) + ": must be >= 1");
  }
  if (stages < 1) throw UsageError("pipeline schedule: stages = " + std::to_string(stages) + ": must be >= 1");
  if (stage < 0 || stage >= stages) {
    throw UsageError("pipeline schedule: stage = " + std::to_string(stage) + ": must be in [0, " +
                     std::to_string(stages) + ")");
  }
}

}  // namespace

std::string_view op_name(OpKind op) { return kOpNames[static_cast<std::size_t>(op)]; }

std::string_view op_abbreviation(OpKind op) { return kOpAbbreviations[static_cast<std::size_t>(op)]; }

std::string abbreviate(const Instruction& instruction) {
  std::string out(op_abbreviation(instruction.op));
  if (is_buffer_op(instruction.op)) out += std::to_string(instruction.buffer);
  return out;
}

std::string abbreviate(const Step& step) {
  if (step.empty()) return "-";
  std::string out;
  for (const Instruction& instruction : step) {
    if (!out.empty()) out += ' ';
    out += abbreviate(instruction);
  }
  return out;
}

bool is_buffer_op(OpKind op) {
  return op != OpKind::ReduceTiedGrads && op != OpKind::ReduceGrads && op != OpKind::OptimizerStep;
}

Schedule::Schedule(int micro_batches, int stages, int stage)
    : micro_batches_(micro_batches), stages_(stages), stage_(stage) {
  check_shape(micro_batches, stages, stage);
}

std::vector<Step> Schedule::steps() const {
  std::vector<Step> out;
  out.reserve(static_cast<std::size_t>(num_steps()));
  for (int t = 0; t < num_steps(); ++t) out.push_back(step(t));
  return out;
}

int TrainSchedule::num_steps() const { return 2 * (micro_batches() + stages() - 1); }

int TrainSchedule::num_buffers() const { return std::max(2, std::min(stages() - stage(), micro_batches())); }

// Even stages run forward slots on even steps, odd stages on odd steps. The offsets place stage s's
// forward of micro-batch m one step after stage s-1's, and its backward one step after stage s+1's
// (floor division throughout: step_id >= 0 and the stage terms are subtracted afterwards).
TrainSchedule::Slot TrainSchedule::slot(int step_id) const {
  const int s = stage();
  const bool forward = is_even(step_id) == is_even(s);
  const int half = step_id / 2;  // == (step_id - 1) / 2 for odd step_id
  if (forward) return {half - s / 2, true};
  if (is_even(step_id)) return {half - stages() + (s + 1) / 2, false};
  return {half - stages() + 1 + s / 2, false};
}

Step TrainSchedule::step(int step_id) const {
  const Slot now = slot(step_id);
  const int prev = step_id == 0 ? kNoMicroBatch : slot(step_id - 1).micro_batch;
  const bool has_now = valid_micro_batch(now.micro_batch);
  const bool has_prev = valid_micro_batch(prev);
  const int now_buffer = has_now ? now.micro_batch % num_buffers() : kNoBuffer;
  const int prev_buffer = has_prev ? prev % num_buffers() : kNoBuffer;
  const bool has_prev_stage = valid_stage(stage() - 1);
  const bool has_next_stage = valid_stage(stage() + 1);

  Step cmds;
  if (now.forward) {
    if (has_prev && has_prev_stage) cmds.push_back(buffer_op(OpKind::SendGrad, prev, prev_buffer));
    if (has_now && has_prev_stage) cmds.push_back(buffer_op(OpKind::RecvActivation, now.micro_batch, now_buffer));
  } else {
    if (has_now && has_next_stage) cmds.push_back(buffer_op(OpKind::RecvGrad, now.micro_batch, now_buffer));
    if (has_prev && has_next_stage) cmds.push_back(buffer_op(OpKind::SendActivation, prev, prev_buffer));
  }
  if ((is_first_stage() || is_last_stage()) && now.forward && has_now) {
    cmds.push_back(buffer_op(OpKind::LoadMicroBatch, now.micro_batch, now_buffer));
  }
  if (has_now) {
    cmds.push_back(
        buffer_op(now.forward ? OpKind::ForwardPass : OpKind::BackwardPass, now.micro_batch, now_buffer));
  }
  if (step_id == num_steps() - 1) {
    cmds.push_back({OpKind::ReduceTiedGrads});
    cmds.push_back({OpKind::ReduceGrads});
    cmds.push_back({OpKind::OptimizerStep});
  }
  return cmds;
}

int InferenceSchedule::num_steps() const { return micro_batches() + stages() - 1; }

int InferenceSchedule::num_buffers() const { return 2; }

Step InferenceSchedule::step(int step_id) const {
  const int micro_batch = step_id - stage();
  const bool even_stage = is_even(stage());
  // The buffer received into this step is the one sent from next step.
  const int recv_buffer = even_stage ? step_id % 2 : (step_id + 1) % 2;
  const int send_buffer = 1 - recv_buffer;
  const bool has_now = valid_micro_batch(micro_batch);
  const bool send = valid_stage(stage() + 1) && valid_micro_batch(micro_batch - 1);
  const bool recv = valid_stage(stage() - 1) && has_now;

  Step cmds;
  if ((is_first_stage() || is_last_stage()) && has_now) {
    cmds.push_back(buffer_op(OpKind::LoadMicroBatch, micro_batch, recv_buffer));
  }
  const Instruction send_op = buffer_op(OpKind::SendActivation, micro_batch - 1, send_buffer);
  const Instruction recv_op = buffer_op(OpKind::RecvActivation, micro_batch, recv_buffer);
  if (even_stage) {
    if (send) cmds.push_back(send_op);
    if (recv) cmds.push_back(recv_op);
  } else {
    if (recv) cmds.push_back(recv_op);
    if (send) cmds.push_back(send_op);
  }
  if (has_now) cmds.push_back(buffer_op(OpKind::ForwardPass, micro_batch, recv_buffer));
  return cmds;
}

std::vector<std::unique_ptr<Schedule>> make_schedules(ScheduleKind kind, int micro_batches, int stages) {
  check_shape(micro_batches, stages, 0);
  std::vector<std::unique_ptr<Schedule>> out;
  for (int s = 0; s < stages; ++s) {
    if (kind == ScheduleKind::Train) {
      out.push_back(std::make_unique<TrainSchedule>(micro_batches, stages, s));
    } else {
      out.push_back(std::make_unique<InferenceSchedule>(micro_batches, stages, s));
    }
  }
  return out;
}

}  // namespace twinspeed::pipeline
