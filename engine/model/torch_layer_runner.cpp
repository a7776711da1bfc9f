#include "engine/model/torch_layer_runner.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/core/errors.hpp"

namespace twinspeed {

namespace {

torch::ScalarType torch_dtype(DType t) {
  switch (t) {
    case DType::f32: return torch::kFloat32;
    case DType::f16: return torch::kFloat16;
    case DType::bf16: return torch::kBFloat16;
    case DType::f64: return torch::kFloat64;
    case DType::i64: return torch::kInt64;
    case DType::i32: return torch::kInt32;
    case DType::u8: return torch::kUInt8;
  }
  return torch::kFloat32;
}

torch::Tensor view_of(const BufferView& view, c10::IntArrayRef shape) {
  if (!view.has_data()) throw Error("TorchLayerRunner needs buffers with data (numeric fidelity)");
  return torch::from_blob(view.data(), shape, torch::TensorOptions().dtype(torch_dtype(view.dtype())));
}

std::vector<torch::Tensor> layer_parameters(const Layer& layer) {
  return layer.module.ptr()->parameters(/*recurse=*/true);
}

}  // namespace

std::string shape_string(c10::IntArrayRef shape) {
  return fmt::format("[{}]", fmt::join(shape.begin(), shape.end(), ", "));
}

Activation wrap_tensor(torch::Tensor tensor) {
  if (!tensor.defined()) return {};
  return Activation(std::make_shared<TorchActivation>(std::move(tensor)));
}

torch::Tensor unwrap_tensor(const Activation& activation) {
  if (activation.empty()) return {};
  auto* data = dynamic_cast<TorchActivation*>(activation.data().get());
  if (data == nullptr) throw Error("activation does not hold a torch tensor");
  return data->tensor;
}

TorchLayerRunner::TorchLayerRunner(std::vector<Layer> layers, LossFn loss_fn)
    : layers_(std::move(layers)), loss_fn_(std::move(loss_fn)), saved_(layers_.size()) {
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i].module.is_empty()) throw Error(fmt::format("layer {} has no module", i));
    if (layers_[i].name.empty()) layers_[i].name = std::to_string(i);
  }
}

std::vector<ParamSpec> TorchLayerRunner::parameters(std::size_t layer) const {
  std::vector<ParamSpec> specs;
  for (const auto& item : layers_[layer].module.ptr()->named_parameters(/*recurse=*/true)) {
    if (item.value().scalar_type() != torch::kFloat32) {
      throw NotImplemented(fmt::format("parameter {}.{} is {}; this version trains fp32 parameters",
                                       layers_[layer].name, item.key(), c10::toString(item.value().scalar_type())));
    }
    specs.push_back({layers_[layer].name + "." + item.key(), item.value().sizes().vec()});
  }
  return specs;
}

namespace {

void check_view_count(const Layer& layer, std::size_t parameters, std::size_t views) {
  if (views != 0 && views != parameters) {
    throw Error(fmt::format("layer {}: {} parameters but {} views bound", layer.name, parameters, views));
  }
}

}  // namespace

void TorchLayerRunner::initial_parameters(std::size_t layer, std::span<const BufferView> values) {
  auto tensors = layer_parameters(layers_[layer]);
  check_view_count(layers_[layer], tensors.size(), values.size());
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < values.size(); ++i) view_of(values[i], tensors[i].sizes()).copy_(tensors[i].detach());
}

void TorchLayerRunner::bind_parameters(std::size_t layer, std::span<const BufferView> params) {
  auto tensors = layer_parameters(layers_[layer]);
  check_view_count(layers_[layer], tensors.size(), params.size());
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < params.size(); ++i) {
    // set_data keeps the parameter's identity (optimizers holding it stay valid) while moving its
    // storage into engine memory.
    tensors[i].set_data(view_of(params[i], tensors[i].sizes()));
  }
}

void TorchLayerRunner::bind_gradients(std::size_t layer, std::span<const BufferView> grads) {
  auto tensors = layer_parameters(layers_[layer]);
  check_view_count(layers_[layer], tensors.size(), grads.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    // A defined gradient makes autograd accumulate in place (+=) into engine memory.
    tensors[i].mutable_grad() = grads.empty() ? torch::Tensor() : view_of(grads[i], tensors[i].sizes());
  }
}

Activation TorchLayerRunner::forward(std::size_t layer, const Activation& input) {
  torch::Tensor x = unwrap_tensor(input).detach();
  if (layer > 0 && x.is_floating_point()) x.requires_grad_(true);
  torch::Tensor y = layers_[layer].module.forward(x);
  saved_[layer] = {x, y};
  return wrap_tensor(y.detach());
}

Activation TorchLayerRunner::backward(std::size_t layer, const Activation& grad_output) {
  Saved& s = saved_[layer];
  if (!s.output.defined()) throw Error(fmt::format("backward of layer {} without a forward", layers_[layer].name));
  torch::Tensor dy = unwrap_tensor(grad_output);
  if (s.output.requires_grad()) torch::autograd::backward({s.output}, {dy});
  torch::Tensor dx = s.input.requires_grad() ? s.input.grad() : torch::Tensor();
  s = {};
  return wrap_tensor(dx);
}

Activation TorchLayerRunner::loss(const Activation& output, const Activation& labels) {
  loss_input_ = unwrap_tensor(output).detach().requires_grad_(true);
  torch::Tensor value = loss_fn_ ? loss_fn_(loss_input_, unwrap_tensor(labels)) : loss_input_;
  if (value.numel() != 1) {
    throw Error(fmt::format("the loss must be a scalar, got shape {}{}", shape_string(value.sizes()),
                            loss_fn_ ? "" : " (the model has no loss function, so its last layer must return the loss)"));
  }
  return wrap_tensor(value);
}

Activation TorchLayerRunner::loss_backward(const Activation& loss, double scale) {
  torch::Tensor value = unwrap_tensor(loss);
  torch::autograd::backward({value}, {torch::full_like(value, scale)});
  torch::Tensor grad = loss_input_.grad();
  loss_input_ = torch::Tensor();
  return wrap_tensor(grad);
}

double TorchLayerRunner::scalar(const Activation& value) const { return unwrap_tensor(value).item<double>(); }

void TorchLayerRunner::release_saved() {
  for (auto& s : saved_) s = {};
  loss_input_ = torch::Tensor();
}

std::vector<torch::Tensor> TorchLayerRunner::all_parameters() const {
  std::vector<torch::Tensor> all;
  for (const auto& layer : layers_) {
    auto p = layer_parameters(layer);
    all.insert(all.end(), p.begin(), p.end());
  }
  return all;
}

}  // namespace twinspeed
