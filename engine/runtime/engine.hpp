#pragma once
// Engine: DeepSpeed's training engine for the plain (non-pipeline) route. LibTorch-free: it owns
// the parameter, gradient, master-weight and optimizer Buffers, walks the model's layers through a
// LayerRunner, reduces gradients through the backend's Comm, and applies the optimizer and LR
// scheduler at gradient accumulation boundaries, as deepspeed.runtime.engine.DeepSpeedEngine with
// its ZeRO optimizers does.
//
// Memory per ZeRO stage (N = ranks of the ZeRO group, dp x sp; layouts in engine/zero/flat_plan.hpp;
// the per-tag formula, and what it leaves out, in engine/core/zero_memory.hpp):
//   stage 0: params and grads whole in the compute dtype; fp32 master copy of the whole model
//            when the compute dtype is 16-bit; gradients all-reduced in buckets at the boundary.
//   stage 1: params whole (padded flat layout), grads whole (same layout: this rank's partition is
//            a contiguous view); fp32 master partition; gradients reduced through buckets at the
//            boundary, each rank keeping its slices; after the step, one all-gather per group.
//   stage 2: params whole; grads: this rank's partition only, accumulated every micro-step from
//            short-lived per-layer gradient storage reduced through buckets as layers finish
//            backward; fp32 master partition; one all-gather per group after the step.
//   stage 3: params, grads and master: this rank's shard of every parameter; parameters gathered
//            per layer (engine/zero/stage3_params.hpp); gradients reduce-scattered per parameter
//            as layers finish backward.
// Mixed precision: fp16 scales the loss (engine/precision/loss_scaler.hpp) and skips steps whose
// gradients overflow on any rank; bf16 skips them when bf16.check_grad_overflow is set. Master
// weights are fp32 unless fp16.fp16_master_weights_and_grads / bf16.bf16_master_weights_and_grads
// keep them 16-bit; optimizer states are fp32 unless bf16.bf16_optimizer_states. The master-dtype
// gradients the optimizer reads exist only during the step.
// ZeRO-Offload (zero_optimization.offload_optimizer.device "cpu", stages 1-3): the master weights,
// the optimizer states and a master-dtype gradient partition live in the backend's host() memory;
// at the boundary the reduced gradient partition is copied device-to-host on the device's "copy"
// stream, unscaled, clipped and stepped by the CPU (host compute stream), and the updated
// parameters are copied host-to-device on the copy stream before ZeRO 1-2's all-gather.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/comm/backend.hpp"
#include "engine/model/layer_runner.hpp"
#include "engine/optim/lr_scheduler.hpp"
#include "engine/optim/optimizer.hpp"
#include "engine/precision/loss_scaler.hpp"
#include "engine/precision/step_accounting.hpp"
#include "engine/runtime/engine_settings.hpp"
#include "engine/runtime/process_groups.hpp"
#include "engine/zero/flat_plan.hpp"
#include "engine/zero/model_layout.hpp"

namespace twinspeed {

class BucketReducer;
class Stage3GradReducer;
class GradientsToHost;
struct ReducedRange;
class Stage3Params;

// Builds the optimizer once the engine knows where each param group lives: `groups` are fp32
// views (master weights, or the parameters themselves in fp32 ZeRO-0).
using OptimizerFactory =
    std::function<std::unique_ptr<Optimizer>(comm::Device&, std::span<const FlatParamGroup> groups)>;

// What makes an Engine one stage of a pipeline (PipelineEngine builds it; engine/pipeline has the
// stage's runner). The stage runs its own layers through forward_layers / backward_layers, reduces
// gradients only when reduce_gradients() is called, and combines overflow flags and gradient norms
// with the other stages over the pp group.
struct PipelineStageParts {
  // A parameter held by several stages (a tied embedding and LM head), as DeepSpeed's tied
  // modules: every rank creates, for every tie of the model in the same order, one group per
  // pipeline (the ranks of `stages` in that pipeline), kind "pp-tied"; the tie's weights are
  // broadcast from its first stage at start and their gradients summed by reduce_tied_gradients().
  struct Tie {
    std::vector<int> stages;          // ascending; every rank passes every tie of the model
    std::vector<std::size_t> params;  // the tie's weights on this stage (runner order); empty off it
  };
  std::vector<Tie> ties;
  // Parameters left out of the gradient norm: copies of tied modules on every stage but the tie's
  // first (DeepSpeed's ds_pipe_replicated), so each weight counts once.
  std::vector<std::size_t> norm_excluded;
};

struct EngineParts {
  std::shared_ptr<comm::Backend> backend;
  EngineSettings settings;
  std::shared_ptr<LayerRunner> runner;
  // Empty: one group holding every parameter. Parameters in no group get gradients but are not
  // updated (as when DeepSpeed's model_parameters leaves them out).
  std::vector<ParamGroupSpec> param_groups;
  // Null: the config's "optimizer" section builds one.
  OptimizerFactory optimizer_factory;
  // A client scheduler (object, else factory) takes precedence over the config's "scheduler"
  // section, as in DeepSpeed 0.19.6's _configure_lr_scheduler.
  std::shared_ptr<LRScheduler> scheduler;
  LRSchedulerFactory scheduler_factory;
  // Set by PipelineEngine: this engine runs one pipeline stage (ZeRO 0-1 only).
  std::optional<PipelineStageParts> pipeline_stage;
};

class Engine {
 public:
  explicit Engine(EngineParts parts);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs the layers on one micro-batch and returns the (unscaled) scalar loss.
  Activation forward(const Activation& inputs, const Activation& labels);
  // Back-propagates loss * loss_scale / gradient_accumulation_steps layer by layer and reduces
  // gradients as the stage prescribes (ZeRO 2-3: every micro-step; 0-1: at the boundary).
  void backward(const Activation& loss);
  // At an accumulation boundary: checks overflow, unscales and clips, steps the optimizer (or
  // skips the step), zeroes gradients, steps the LR scheduler unless skipped. Always advances the
  // micro-step counter.
  void step();

  // The pieces of forward / backward / step a pipeline stage runs instruction by instruction
  // (PipelineEngine; the plain route composes them). They do not set the trace context.
  // Runs every layer of the runner on x; several micro-batches may be in flight.
  Activation forward_layers(const Activation& x);
  Activation loss(const Activation& output, const Activation& labels) { return runner_->loss(output, labels); }
  // d(loss * loss_scale / gradient_accumulation_steps)/d(output).
  Activation loss_gradient(const Activation& loss);
  // Back-propagates through every layer (the oldest micro-batch in flight) and returns the
  // gradient of the layers' input. ZeRO 2-3 reduce as layers finish; stages 0-1 leave gradients
  // to reduce_gradients().
  Activation backward_layers(Activation grad);
  // Stages 0-1 at the boundary: the data-parallel reduction of every gradient.
  void reduce_gradients();
  // Pipeline stages: sums the gradients of tied weights over their tie groups (ReduceTiedGrads).
  void reduce_tied_gradients();
  // The boundary's optimizer step (overflow check, unscale, clip, update or skip, zero gradients,
  // LR scheduler). step() calls it at boundaries; a pipeline stage calls it at OptimizerStep.
  void optimizer_step();

  bool is_gradient_accumulation_boundary() const;
  std::int64_t micro_steps() const { return micro_steps_; }
  std::int64_t global_steps() const { return tracker_.global_steps(); }
  std::int64_t global_samples() const { return global_samples_; }
  std::int64_t skipped_steps() const { return tracker_.skipped_steps(); }
  bool last_step_skipped() const { return last_step_skipped_; }
  // Global norm of the (unscaled) gradients at the last applied step, before clipping (skipped
  // steps leave it); -1 when it was not finite (DeepSpeed's convention).
  double last_gradient_norm() const { return last_gradient_norm_; }
  double loss_value(const Activation& loss) const { return runner_->scalar(loss); }
  std::vector<double> get_lr() const;
  double loss_scale() const { return scaler_ ? scaler_->scale() : 1.0; }
  DType compute_dtype() const { return dtype_; }
  int zero_stage() const { return settings_.zero_stage; }

  // Every parameter's current value in runner order, as fp32. Collective under ZeRO-3 (gathers
  // each parameter): call it on every rank of the ZeRO group. Empty in shape-only fidelity.
  std::vector<float> full_parameters();

  const EngineSettings& settings() const { return settings_; }
  // This rank's group of a kind (null when the mesh gives it none).
  comm::Comm* group(GroupKind kind) const { return groups_->get(kind).get(); }
  // Drops what forwards without backwards left saved (evaluation).
  void release_saved() { runner_->release_saved(); }
  const ModelLayout& model_layout() const { return model_; }
  comm::Backend& backend() { return *backend_; }
  Optimizer& optimizer() { return *optimizer_; }
  LRScheduler* lr_scheduler() { return scheduler_.get(); }
  std::shared_ptr<Optimizer> shared_optimizer() { return optimizer_; }
  std::shared_ptr<LRScheduler> shared_lr_scheduler() { return scheduler_; }
  // Stages 0-2: the flat parameter buffer (compute dtype); stage 3: this rank's shards.
  BufferView flat_parameters() const { return params_.all(); }
  // Stages 0-1: the whole flat gradients; stage 2: this rank's partitions; stage 3: its shards.
  BufferView flat_gradients() const { return grads_.all(); }

 private:
  void allocate();
  void initialize_parameters();
  void build_optimizer(EngineParts& parts);
  void set_trace_context();
  // Gradient storage of an owner layer while its gradients are being produced (stages 2-3).
  void ensure_layer_gradients(std::size_t owner);
  std::int64_t layer_gradient_numel(std::size_t param) const;
  void gradients_ready(std::size_t layer);
  // Stage 1: hands a parameter's gradient, in place in the flat buffer, to the reduce buckets.
  void reduce_in_place(std::size_t param);
  // Parameter ids in the order of the flat buffer: group after group, then those of no group.
  std::vector<std::size_t> flat_order() const;
  // Views of the fp32 gradients of each param group for the optimizer.
  std::vector<BufferView> master_gradient_views(const std::vector<Buffer>& fp32_grads) const;
  BufferView compute_gradients_of_group(std::size_t g) const;
  BufferView compute_parameters_of_group(std::size_t g) const;
  // Whether any rank's gradients hold inf/NaN (the flag all-reduced, op max). Given `unscale`
  // (the master-dtype gradients), the same pass divides them by `scale`.
  bool detect_overflow(const std::vector<BufferView>* unscale, double scale);
  // The step's master-dtype gradients, one view per group: offloaded, copied to the host;
  // mixed precision, converted into `storage` (device, tag grads); else the gradients themselves.
  std::vector<BufferView> master_dtype_gradients(std::vector<Buffer>& storage);
  // Where the master weights, their gradients and the optimizer's states live and the step runs:
  // host() with ZeRO-Offload, else the device.
  comm::Device& optimizer_device();
  // master_ (and, offloaded, host_grads_) of numel elements on optimizer_device().
  void allocate_master(std::int64_t numel);
  // ZeRO-Offload: the step's gradients copied to host memory in the master dtype (one view per
  // group, into host_grads_), and the updated master weights copied back into the parameters.
  std::vector<BufferView> gradients_to_host();
  // ZeRO-Offload, at the boundary micro-step: a reduction's ranges, final once `stream` gets
  // there, start their copies to the host.
  void copy_reduced_to_host(comm::Stream& stream, std::span<const ReducedRange> ranges);
  // Where a reduced range sits in its owner's gradient partition of the group
  // (compute_gradients_of_group on that rank).
  ElementRange partition_range_of(const ReducedRange& r) const;
  void parameters_from_host();
  double global_norm_squared(std::span<const BufferView> grads);
  // A value summed over the zero group (stages 1-3) and then over the pipeline's stages: the
  // overflow flag (op max) and the norm's squares (op sum) in fp32, as DeepSpeed all-reduces them.
  float combine_across_ranks(float local, comm::ReduceOp op, bool over_zero_group);
  void create_tie_groups();
  // Parameter p's storage in the flat buffers (stages 0-2).
  BufferView flat_view(const Buffer& buffer, std::size_t param) const {
    return buffer.view(flat_.offset[param], model_.params[param].numel);
  }
  // scale_of_gradients: the loss scale the gradients were computed with (before its update);
  // unscaled_by: what the overflow check already divided `grads` by (1: nothing).
  void apply_step(const std::vector<BufferView>& grads, double scale_of_gradients, double unscaled_by);
  void zero_gradients();

  std::shared_ptr<comm::Backend> backend_;
  EngineSettings settings_;
  std::shared_ptr<LayerRunner> runner_;
  std::unique_ptr<ProcessGroups> groups_;
  std::optional<PipelineStageParts> pipeline_stage_;
  struct TieGroup {
    comm::CommPtr group;              // null when this rank's stage holds none of the tie
    std::vector<std::size_t> params;
  };
  std::vector<TieGroup> ties_;
  // Per param group: the [offset, offset + numel) ranges, relative to the group's gradient view,
  // that the norm leaves out (pipeline_stage.norm_excluded).
  std::vector<std::vector<ElementRange>> norm_holes_;
  comm::CommPtr zero_group_;
  DType dtype_ = DType::f32;         // parameters, gradients, communication
  DType master_dtype_ = DType::f32;  // master weights and the gradients the optimizer reads
  ModelLayout model_;
  FlatPlan flat_;
  ShardPlan shards_;
  Buffer params_;
  Buffer grads_;
  Buffer master_;
  std::vector<std::int64_t> master_offset_;  // per group: first element in master_
  bool offload_ = false;                     // ZeRO-Offload: master_, host_grads_ and states on host()
  Buffer host_grads_;                        // offload: master-dtype gradient partitions, host memory
  std::vector<Buffer> layer_grads_;          // stages 2-3: per owner layer, while alive
  std::vector<int> layer_grads_pending_;     // parameters of the owner still to reduce
  std::vector<std::int64_t> layer_grad_offset_;  // per parameter: where it sits in its owner's
  std::unique_ptr<BucketReducer> reducer_;
  std::unique_ptr<Stage3Params> stage3_;
  std::unique_ptr<Stage3GradReducer> stage3_grads_;
  std::unique_ptr<GradientsToHost> host_copies_;  // offload: the gradient partitions' copies to host
  std::shared_ptr<Optimizer> optimizer_;
  std::shared_ptr<LRScheduler> scheduler_;
  std::unique_ptr<LossScaler> scaler_;
  OverflowTracker tracker_;
  std::int64_t micro_steps_ = 0;
  std::int64_t global_samples_ = 0;
  double last_gradient_norm_ = 0.0;
  bool last_step_skipped_ = false;
};

}  // namespace twinspeed
