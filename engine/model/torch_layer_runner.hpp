#pragma once
// TorchLayerRunner: runs a list of torch modules layer by layer for the engine. Parameters and
// gradients are bound as from_blob views of engine Buffers, so autograd writes gradients straight
// into the engine's flat gradient buffer and optimizers update engine memory in place.
// Each layer's input is cut from the previous layer's graph (detached), which is what lets the
// engine, not autograd, drive the backward pass layer by layer.

#include <twinspeed/torch.hpp>

#include <vector>

#include "engine/model/layer_runner.hpp"

namespace twinspeed {

class TorchActivation final : public ActivationData {
 public:
  explicit TorchActivation(torch::Tensor tensor) : tensor(std::move(tensor)) {}
  std::vector<std::int64_t> shape() const override { return tensor.sizes().vec(); }
  torch::Tensor tensor;
};

Activation wrap_tensor(torch::Tensor tensor);
// "[8, 16]": a shape for error messages.
std::string shape_string(c10::IntArrayRef shape);
// The tensor inside an activation made by wrap_tensor (undefined for an empty activation).
torch::Tensor unwrap_tensor(const Activation& activation);

class TorchLayerRunner final : public LayerRunner {
 public:
  TorchLayerRunner(std::vector<Layer> layers, LossFn loss_fn);

  std::size_t layer_count() const override { return layers_.size(); }
  std::string layer_name(std::size_t layer) const override { return layers_[layer].name; }
  std::vector<ParamSpec> parameters(std::size_t layer) const override;
  void initial_parameters(std::size_t layer, std::span<const BufferView> values) override;
  void bind_parameters(std::size_t layer, std::span<const BufferView> params) override;
  void bind_gradients(std::size_t layer, std::span<const BufferView> grads) override;
  Activation forward(std::size_t layer, const Activation& input) override;
  Activation backward(std::size_t layer, const Activation& grad_output) override;
  Activation loss(const Activation& output, const Activation& labels) override;
  Activation loss_backward(const Activation& loss, double scale) override;
  double scalar(const Activation& value) const override;
  void release_saved() override;

  // The model's parameters in engine order (after bind: views of engine memory).
  std::vector<torch::Tensor> all_parameters() const;

 private:
  struct Saved {
    torch::Tensor input;   // detached copy of the layer's input (requires grad when floating)
    torch::Tensor output;  // the layer's output, with its graph
  };
  std::vector<Layer> layers_;
  LossFn loss_fn_;
  std::vector<Saved> saved_;
  torch::Tensor loss_input_;  // the detached model output the loss was computed from
};

}  // namespace twinspeed
