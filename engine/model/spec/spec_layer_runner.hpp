#pragma once
// SpecLayerRunner: the LayerRunner of shape-only simulation (DESIGN.md "Buffers, not tensors").
// It runs a model described by its layer specs (layer_spec.hpp) on a device whose Buffers carry no
// data: activations are shapes, forward/backward charge the spec's FLOPs through forward_cost /
// backward_cost, saved activations are charged to the device byte for byte, and the spec's
// tensor- and sequence-parallel collectives are issued on the rank's tp / sp groups with data-less
// buffers of the spec's sizes. No LibTorch, no tensor of any kind.
//
// Memory: forward(i) allocates layer i's saved bytes for the recompute mode (tag activations, u8)
// and keeps them until backward(i) or release_saved(). Under full recompute, backward(i) of a block
// re-runs its forward first (re-issuing the forward collectives and holding the no-recompute bytes
// for the duration of its backward), as activation checkpointing does; under selective recompute
// it holds the attention core's bytes again. The recomputation's FLOPs are recompute_cost(i),
// which the engine launches before backward_cost(i).
//
// Collectives (bytes per rank as the spec gives them: all_gather's output, reduce_scatter's input,
// all_reduce's and all_to_all's buffer) are issued on the group's comm stream and waited for on the
// compute stream, each buffer tagged temporaries and freed after the wait.
//
// Shapes per rank (B micro-batch, s tokens of this rank, h hidden, V/t vocabulary of this rank):
// inputs and labels [B, s] token ids; embedding, block, final_norm outputs [B, s', h] (s' = s/tp
// with Megatron sequence parallelism, tp_sp); lm_head output [B, s, V/t]; loss a scalar (shape []).
// scalar() is NaN: shape mode has no values.

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/comm/types.hpp"
#include "engine/core/buffer.hpp"
#include "engine/core/dtype.hpp"
#include "engine/model/layer_runner.hpp"
#include "engine/model/spec/layer_spec.hpp"

namespace twinspeed {

// An activation that is only a shape.
class ShapeActivation final : public ActivationData {
 public:
  explicit ShapeActivation(std::vector<std::int64_t> shape) : shape_(std::move(shape)) {}
  std::vector<std::int64_t> shape() const override { return shape_; }

 private:
  std::vector<std::int64_t> shape_;
};

Activation make_shape_activation(std::vector<std::int64_t> shape);

struct SpecRunnerOptions {
  SpecOptions spec;                   // micro-batch, seq_len, tp, sp, tp_sp (dtype_bytes is set from dtype)
  DType dtype = DType::bf16;          // activation and collective element type
  RecomputeMode recompute = RecomputeMode::none;
};

class SpecLayerRunner final : public LayerRunner {
 public:
  // Throws ConfigError when the sizes do not split (build_layer_specs) or dtype is not floating.
  SpecLayerRunner(const ModelConfig& model, const SpecRunnerOptions& options);

  std::size_t layer_count() const override { return layers_.size(); }
  std::string layer_name(std::size_t layer) const override { return layers_.at(layer).name; }
  std::vector<ParamSpec> parameters(std::size_t layer) const override { return layers_.at(layer).params; }
  // A tied LM head uses the embedding's word_embeddings.weight.
  std::vector<ParamRef> shared_parameters(std::size_t layer) const override;
  void attach(const RunnerContext& context) override { context_ = context; }
  // No values to write in shape mode; the view counts and sizes are checked (Error on a mismatch).
  void initial_parameters(std::size_t layer, std::span<const BufferView> values) override;
  void bind_parameters(std::size_t layer, std::span<const BufferView> params) override;
  void bind_gradients(std::size_t layer, std::span<const BufferView> grads) override;
  Activation forward(std::size_t layer, const Activation& input) override;
  Activation backward(std::size_t layer, const Activation& grad_output) override;
  Activation loss(const Activation& output, const Activation& labels) override;
  Activation loss_backward(const Activation& loss, double scale) override;
  double scalar(const Activation& value) const override;
  void release_saved() override;
  // Shape mode: activations are options().dtype, nothing is copied.
  DType activation_dtype(const Activation& value) const override;
  void write_activation(const Activation& value, BufferView dst) const override;
  Activation read_activation(BufferView src, const std::vector<std::int64_t>& shape) const override;
  // The spec's FLOPs as matmul work (op class matmul; elementwise for a layer without FLOPs), plus the bytes the layer reads and writes
  // once: its parameters (the embedding only the rows it looks up), its input and output, and in
  // backward its saved activations and parameter gradients, so FLOP-free layers (embedding, norms)
  // cost their memory traffic. recompute_cost: a block's forward under full recompute, its
  // attention core (op class attention) under selective recompute, nothing otherwise.
  // A numeric runner of the same model can ask a SpecLayerRunner for these to keep times equal.
  comm::ComputeCost forward_cost(std::size_t layer) const override;
  comm::ComputeCost recompute_cost(std::size_t layer) const override;
  comm::ComputeCost backward_cost(std::size_t layer) const override;

  const std::vector<LayerSpec>& specs() const { return layers_; }
  const SpecRunnerOptions& options() const { return options_; }
  // Shapes of layer i's input and output on this rank.
  std::vector<std::int64_t> input_shape(std::size_t layer) const;
  std::vector<std::int64_t> output_shape(std::size_t layer) const;

  // The inputs and labels of one micro-batch: [B, s] token ids each.
  struct MicroBatch {
    Activation inputs;
    Activation labels;
  };
  MicroBatch micro_batch() const;

 private:
  void check_views(std::size_t layer, std::span<const BufferView> views, const char* what) const;
  void require_bound(std::size_t layer) const;
  comm::Device& device(const char* what) const;
  void issue_collectives(std::size_t layer, CommPhase phase);
  std::int64_t bytes_of(const std::vector<std::int64_t>& shape) const;
  std::int64_t param_traffic_bytes(std::size_t layer) const;

  std::vector<LayerSpec> layers_;
  SpecRunnerOptions options_;
  std::int64_t hidden_ = 0;
  std::int64_t local_vocab_ = 0;  // the padded vocabulary / tp
  RunnerContext context_;
  std::vector<bool> bound_;
  std::vector<std::vector<Buffer>> saved_;  // per layer, one Buffer per micro-batch in flight
};

// Every layer's forward, recompute and backward cost on one micro-batch, as SpecLayerRunner gives
// them: the one source of layer costs, so a numeric runner of the same model (the model zoo's) and
// the shape-only runner put the same time on the simulator's clocks. Only the element size of
// spec.dtype_bytes matters (2, 4 or 8).
LayerCosts spec_layer_costs(const ModelConfig& model, const SpecOptions& spec, RecomputeMode recompute);

}  // namespace twinspeed
