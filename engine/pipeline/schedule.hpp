#pragma once
// Pipeline schedules as instruction streams, with DeepSpeed 0.19.6's semantics
// (deepspeed/runtime/pipe/schedule.py).
//
// A schedule is a generator: for one stage of an S-stage pipeline running M micro-batches it
// yields num_steps() steps, each an ordered list of instructions that stage executes. Steps are
// atomic: a barrier between two successive steps of all stages never deadlocks. The pipeline
// engine executes these streams and nothing else, so a new schedule (interleaved 1F1B, ...) is a
// new generator, not a new engine. Instruction names are DeepSpeed's.
//
// Buffer instructions name one of num_buffers() pipeline buffers (activations in, outputs,
// gradients of one micro-batch). Communication is blocking and pairs in order on each pair of
// adjacent stages: stage s's k-th SendActivation with stage s+1's k-th RecvActivation, stage s+1's
// k-th SendGrad with stage s's k-th RecvGrad.
//
// twinspeed adds the micro-batch each instruction works on (DeepSpeed's engine does not need it;
// the trace does). It is not part of DeepSpeed's instruction and not printed by
// `twinspeed schedule --json`.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace twinspeed::pipeline {

enum class OpKind : std::uint8_t {
  LoadMicroBatch,   // buffer <- next micro-batch (inputs on the first stage, labels on the last)
  ForwardPass,      // outputs[buffer] = forward(inputs[buffer])
  BackwardPass,     // backward from outputs[buffer] with gradients[buffer]; accumulates grads
  SendActivation,   // outputs[buffer] -> next stage
  RecvActivation,   // inputs[buffer] <- previous stage
  SendGrad,         // gradient of inputs[buffer] -> previous stage
  RecvGrad,         // gradients[buffer] <- next stage
  ReduceTiedGrads,  // all-reduce gradients of tied layers across the stages that hold them
  ReduceGrads,      // reduce gradients over the stage's data-parallel group
  OptimizerStep,    // optimizer step, then gradients zeroed
};

inline constexpr int kNumOpKinds = 10;

// DeepSpeed's class name ("LoadMicroBatch", ...).
std::string_view op_name(OpKind op);
// True for the instructions that carry a buffer id (DeepSpeed's BufferOpInstruction).
bool is_buffer_op(OpKind op);
// twinspeed's abbreviation for grids: LD F B SA RA SG RG RT RD OPT.
std::string_view op_abbreviation(OpKind op);

inline constexpr int kNoBuffer = -1;
inline constexpr int kNoMicroBatch = -1;

struct Instruction {
  OpKind op;
  int buffer = kNoBuffer;           // in [0, num_buffers()) for buffer instructions, else kNoBuffer
  int micro_batch = kNoMicroBatch;  // in [0, M) for buffer instructions, else kNoMicroBatch

  friend bool operator==(const Instruction&, const Instruction&) = default;
};

using Step = std::vector<Instruction>;

// "F0" (abbreviation and buffer id; no id on other instructions); a step joins its instructions
// with spaces and is "-" when idle.
std::string abbreviate(const Instruction& instruction);
std::string abbreviate(const Step& step);

// One stage's schedule. Constructors throw UsageError unless micro_batches >= 1, stages >= 1 and
// 0 <= stage < stages.
class Schedule {
 public:
  Schedule(int micro_batches, int stages, int stage);
  virtual ~Schedule() = default;

  int micro_batches() const { return micro_batches_; }
  int stages() const { return stages_; }
  int stage() const { return stage_; }
  bool is_first_stage() const { return stage_ == 0; }
  bool is_last_stage() const { return stage_ == stages_ - 1; }

  virtual int num_steps() const = 0;
  // Buffers the engine allocates on this stage.
  virtual int num_buffers() const = 0;
  // The instructions of step step_id in [0, num_steps()), in execution order. Pure: any order of
  // calls gives the same steps.
  virtual Step step(int step_id) const = 0;
  // All steps, in order.
  std::vector<Step> steps() const;

 protected:
  bool valid_micro_batch(int id) const { return id >= 0 && id < micro_batches_; }
  bool valid_stage(int id) const { return id >= 0 && id < stages_; }
  Instruction buffer_op(OpKind op, int micro_batch, int buffer) const { return {op, buffer, micro_batch}; }

 private:
  int micro_batches_;
  int stages_;
  int stage_;
};

// Synchronous 1F1B training (DeepSpeed's TrainSchedule): 2 (M + S - 1) steps that alternate
// between forward and backward slots, even and odd stages out of phase, so that neighbouring stages
// always exchange in matching order. A step holds, in order: the exchange (forward slot: SendGrad
// of the previous slot's micro-batch, RecvActivation of this one; backward slot: RecvGrad of this
// one, SendActivation of the previous slot's), LoadMicroBatch on the first and last stages in a
// forward slot, then ForwardPass or BackwardPass; the last step ends with ReduceTiedGrads,
// ReduceGrads, OptimizerStep. Micro-batch m uses buffer m % num_buffers(), and num_buffers() =
// max(2, min(S - s, M)): the forward passes in flight on stage s.
class TrainSchedule final : public Schedule {
 public:
  using Schedule::Schedule;
  int num_steps() const override;
  int num_buffers() const override;
  Step step(int step_id) const override;

 private:
  // The micro-batch of a step's slot (may be outside [0, M): an idle slot) and its direction.
  struct Slot {
    int micro_batch;
    bool forward;
  };
  Slot slot(int step_id) const;
};

// Forward-only inference (DeepSpeed's InferenceSchedule): M + S - 1 steps; in step t stage s runs
// micro-batch t - s. Two buffers alternate between receiving and sending; even stages send before
// they receive, odd stages receive first. A step holds LoadMicroBatch (first and last stages),
// the exchange, then ForwardPass.
class InferenceSchedule final : public Schedule {
 public:
  using Schedule::Schedule;
  int num_steps() const override;
  int num_buffers() const override;
  Step step(int step_id) const override;
};

enum class ScheduleKind { Train, Inference };

// One schedule per stage of an S-stage pipeline over M micro-batches (throws as the constructors).
std::vector<std::unique_ptr<Schedule>> make_schedules(ScheduleKind kind, int micro_batches, int stages);

}  // namespace twinspeed::pipeline
