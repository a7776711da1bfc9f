#pragma once
// PipelineEngine: DeepSpeed 0.19.6's PipelineEngine (runtime/pipe/engine.py). Each rank runs one
// stage of the model (a StageRunner over the PipelineModule's layers) through a stage Engine that
// keeps ZeRO 0-1 inside the stage's data-parallel group, and executes its schedule's instruction
// streams: train_batch() runs gradient_accumulation_steps micro-batches through TrainSchedule
// (1F1B) and steps the optimizer; eval_batch() runs InferenceSchedule. Nothing else drives it, so
// another schedule is another generator (engine/pipeline/schedule.hpp), not another engine.
//
// Instructions (pp group: stage s is group rank s):
//   LoadMicroBatch   first stage: inputs of the next micro-batch; last stage: its labels
//   ForwardPass      the stage's layers on the buffer's input; the last stage adds the loss
//   BackwardPass     from the loss (last stage) or the received gradient, through the layers
//   Send/Recv*       one batch_p2p with one send or receive on the pp group. The activation's
//                    shape and dtype go through the backend's store once per direction and are
//                    reused (DeepSpeed sends them once); gradients have their activation's shape
//   ReduceTiedGrads  Engine::reduce_tied_gradients (sum over each tie group)
//   ReduceGrads      Engine::reduce_gradients (the stage's data-parallel reduction)
//   OptimizerStep    Engine::optimizer_step: overflow and norm combined over dp and then pp
// Every event recorded while an instruction runs carries its micro-batch, stage and instruction
// name (trace field `instruction`); sends and their receives are linked by flows.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/pipeline/schedule.hpp"
#include "engine/pipeline/stage_runner.hpp"
#include "engine/runtime/engine.hpp"

namespace twinspeed {

// The model of the pipeline route: every layer (each rank runs its stage's share) and how to split
// them. The number of stages is the mesh's pp degree.
struct PipelineModel {
  std::shared_ptr<LayerRunner> model;
  // DeepSpeed's PipelineModule(partition_method=...): "parameters" (its default), "uniform" or
  // "type:REGEX" (matched against layer names).
  std::string partition_method = "parameters";
};

struct PipelineParts {
  std::shared_ptr<comm::Backend> backend;
  EngineSettings settings;
  PipelineModel module;
  // As EngineParts (indices in the whole model's parameter order are not used: groups are per
  // stage); empty: one group.
  OptimizerFactory optimizer_factory;
  std::shared_ptr<LRScheduler> scheduler;
  LRSchedulerFactory scheduler_factory;
};

struct MicroBatch {
  Activation inputs;
  Activation labels;
};
// The data iterator: the next micro-batch. Called by the first stage (for inputs) and the last
// (for labels) once per LoadMicroBatch, as DeepSpeed calls next(data_iter).
using MicroBatchSource = std::function<MicroBatch()>;

class PipelineEngine {
 public:
  // Throws ConfigError for ZeRO 2-3 ("ZeRO-2 and ZeRO-3 are incompatible with pipeline
  // parallelism"), a partition that fails, or fewer layers than stages can hold.
  explicit PipelineEngine(PipelineParts parts);
  ~PipelineEngine();
  PipelineEngine(const PipelineEngine&) = delete;
  PipelineEngine& operator=(const PipelineEngine&) = delete;

  // One optimizer step over gradient_accumulation_steps micro-batches. Returns the mean loss over
  // the micro-batches and the data-parallel ranks, on every stage (DeepSpeed's agg_train_loss);
  // NaN in shape-only fidelity.
  double train_batch(const MicroBatchSource& data);
  // Forward only over gradient_accumulation_steps micro-batches (InferenceSchedule); the mean
  // loss as train_batch returns it.
  double eval_batch(const MicroBatchSource& data);

  // DeepSpeed's PipelineEngine refuses these: a pipeline runs whole batches.
  [[noreturn]] void forward() const;
  [[noreturn]] void backward() const;
  [[noreturn]] void step() const;

  int stage() const { return stage_; }
  int num_stages() const { return settings_.mesh.pp; }
  bool is_first_stage() const { return stage_ == 0; }
  bool is_last_stage() const { return stage_ == num_stages() - 1; }
  // DeepSpeed's parts vector: stage s runs layers [parts[s], parts[s + 1]).
  const std::vector<std::int64_t>& parts() const { return parts_; }
  std::int64_t micro_batches() const { return settings_.gradient_accumulation_steps; }
  std::int64_t global_steps() const { return core_->global_steps(); }
  Engine& core() { return *core_; }
  const pipeline::StageRunner& stage_runner() const { return *runner_; }

 private:
  struct Buffers;
  double run(const pipeline::Schedule& schedule, const MicroBatchSource& data);
  void execute(const pipeline::Instruction& instruction, Buffers& buffers, const MicroBatchSource& data);
  void send(const Activation& value, int peer, bool activation);
  Activation receive(int peer, bool activation);
  // DeepSpeed's _aggregate_total_loss: mean over micro-batches, over dp, broadcast from the last
  // stage over the pp group.
  double aggregate_loss(double sum, int count);

  std::shared_ptr<comm::Backend> backend_;
  EngineSettings settings_;
  std::vector<std::int64_t> parts_;
  std::shared_ptr<pipeline::StageRunner> runner_;
  std::unique_ptr<Engine> core_;
  comm::Comm* pp_ = nullptr;
  comm::Comm* dp_ = nullptr;
  int stage_ = 0;
  // Shapes and dtypes of what crosses each boundary, learnt once: activations sent to / received
  // from the neighbouring stage (gradients travel with the same shapes).
  struct Meta {
    std::vector<std::int64_t> shape;
    DType dtype = DType::f32;
    std::int64_t numel() const;
  };
  std::optional<Meta> sent_meta_, received_meta_;
};

}  // namespace twinspeed
