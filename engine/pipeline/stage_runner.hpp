#pragma once
// One pipeline stage's share of a model, as a LayerRunner the stage's Engine drives.
//
// A PipelineModule is the whole model's runner (every layer, on every rank) split by a parts
// vector (partition_layers.hpp): stage s runs layers [parts[s], parts[s + 1]). A layer may use
// parameters another layer owns (a tied LM head uses the embedding's weight); when the owner sits
// on another stage, the stage holds a copy of the owner layer, as DeepSpeed's TiedLayerSpec builds
// the tied module on every stage that uses it. That copy is a "tied copy" layer placed before the
// stage's own layers: it owns the owner layer's parameters, never runs (forward and backward pass
// their input through, at no cost), and binding it binds the owner layer of the model runner, which
// is what the stage's users read.
//
// A tie is one owner layer whose parameters are shared across stages: the stages holding it (the
// owner's and its users'), and the shared parameters' indices (DeepSpeed's tied_weight_attr), whose
// gradients ReduceTiedGrads sums over those stages. find_ties is a pure function of the model and
// the parts, so every rank computes the same ties in the same order.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/model/layer_runner.hpp"

namespace twinspeed::pipeline {

struct ModelTie {
  std::size_t owner = 0;             // the model layer owning the parameters
  std::vector<std::size_t> indices;  // shared parameter indices within parameters(owner), ascending
  std::vector<int> stages;           // ascending: the owner's stage and every user's
};

// The stage of each layer under `parts` (S + 1 ascending indices ending at the layer count).
std::vector<int> stage_of_layers(std::span<const std::int64_t> parts);

// Every owner whose shared parameters are used on a stage other than its own, by owner index.
std::vector<ModelTie> find_ties(const LayerRunner& model, std::span<const std::int64_t> parts);

class StageRunner final : public LayerRunner {
 public:
  // Stage `stage` of `model` split by `parts`. Throws ConfigError (path "pipeline.stages") for an
  // invalid parts vector or stage.
  StageRunner(std::shared_ptr<LayerRunner> model, std::span<const std::int64_t> parts, int stage);

  // The model layer behind a stage layer, and whether it is a tied copy.
  std::size_t model_layer(std::size_t layer) const;
  bool is_tied_copy(std::size_t layer) const { return layer < tied_copies_.size(); }
  // The stage layer holding model layer `owner` (its own or its tied copy); throws Error if the
  // stage holds neither.
  std::size_t stage_layer(std::size_t model_layer) const;
  // The parameter id (in this runner's parameter order: layer by layer, each layer's parameters in
  // order) of parameter `index` of stage layer `layer`.
  std::size_t parameter_id(std::size_t layer, std::size_t index) const;
  std::size_t first_model_layer() const { return first_; }
  std::size_t end_model_layer() const { return last_; }
  LayerRunner& model() const { return *model_; }

  std::size_t layer_count() const override { return tied_copies_.size() + (last_ - first_); }
  std::string layer_name(std::size_t layer) const override;
  std::vector<ParamSpec> parameters(std::size_t layer) const override;
  std::vector<ParamRef> shared_parameters(std::size_t layer) const override;
  void attach(const RunnerContext& context) override { model_->attach(context); }
  void initial_parameters(std::size_t layer, std::span<const BufferView> values) override;
  void bind_parameters(std::size_t layer, std::span<const BufferView> params) override;
  void bind_gradients(std::size_t layer, std::span<const BufferView> grads) override;
  Activation forward(std::size_t layer, const Activation& input) override;
  Activation backward(std::size_t layer, const Activation& grad_output) override;
  Activation loss(const Activation& output, const Activation& labels) override { return model_->loss(output, labels); }
  Activation loss_backward(const Activation& loss, double scale) override { return model_->loss_backward(loss, scale); }
  double scalar(const Activation& value) const override { return model_->scalar(value); }
  void release_saved() override { model_->release_saved(); }
  DType activation_dtype(const Activation& value) const override { return model_->activation_dtype(value); }
  void write_activation(const Activation& value, BufferView dst) const override { model_->write_activation(value, dst); }
  Activation read_activation(BufferView src, const std::vector<std::int64_t>& shape) const override {
    return model_->read_activation(src, shape);
  }
  comm::ComputeCost forward_cost(std::size_t layer) const override;
  comm::ComputeCost recompute_cost(std::size_t layer) const override;
  comm::ComputeCost backward_cost(std::size_t layer) const override;

 private:
  std::shared_ptr<LayerRunner> model_;
  std::size_t first_ = 0, last_ = 0;
  std::vector<std::size_t> tied_copies_;  // model layers copied onto this stage, ascending
  std::vector<std::size_t> first_param_;  // per stage layer: its first parameter id
};

}  // namespace twinspeed::pipeline
