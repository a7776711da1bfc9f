#include "engine/model/torch_layer_runner.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>
#include <optional>
#include <unordered_map>

#include "engine/comm/device.hpp"
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

void check_view_count(const Layer& layer, std::size_t parameters, std::size_t views) {
  if (views != 0 && views != parameters) {
    throw Error(fmt::format("layer {}: {} parameters but {} views bound", layer.name, parameters, views));
  }
}

// The generator stream's state of `seed`, without touching any shared generator.
torch::Tensor seeded_state(std::uint64_t seed) { return at::detail::createCPUGenerator(seed).get_state(); }

// Swaps a generator state into LibTorch's default CPU generator (what dropout draws from) for a
// scope, restoring the previous state on exit (also on exceptions). The generator's mutex is held
// only while reading or writing its state: ops lock it themselves while drawing.
class DefaultGeneratorState {
 public:
  explicit DefaultGeneratorState(const torch::Tensor& state) : gen_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard lock(gen_.mutex());
    outside_ = gen_.get_state();
    gen_.set_state(state);
  }
  ~DefaultGeneratorState() {
    std::lock_guard lock(gen_.mutex());
    gen_.set_state(outside_);
  }
  DefaultGeneratorState(const DefaultGeneratorState&) = delete;
  DefaultGeneratorState& operator=(const DefaultGeneratorState&) = delete;
  torch::Tensor current() {
    std::lock_guard lock(gen_.mutex());
    return gen_.get_state();
  }

 private:
  at::Generator gen_;
  torch::Tensor outside_;
};

// fp16 emulation: points parameters at fp32 copies of their fp16 storage for a scope and back at
// the storage on exit. set_data keeps each parameter's identity, so the module computes with the
// copies and autograd differentiates with respect to the same leaf tensors.
class Fp32Parameters {
 public:
  explicit Fp32Parameters(const std::vector<torch::Tensor>& params) : params_(params) {
    stored_.reserve(params_.size());
    for (const auto& p : params_) {
      stored_.push_back(p.data());
      p.set_data(stored_.back().to(torch::kFloat32));
    }
  }
  ~Fp32Parameters() {
    for (std::size_t i = 0; i < params_.size(); ++i) params_[i].set_data(stored_[i]);
  }
  Fp32Parameters(const Fp32Parameters&) = delete;
  Fp32Parameters& operator=(const Fp32Parameters&) = delete;

 private:
  const std::vector<torch::Tensor>& params_;
  std::vector<torch::Tensor> stored_;
};

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

TorchLayerRunner::TorchLayerRunner(std::vector<Layer> layers, LossFn loss_fn, TorchRunnerOptions options)
    : layers_(std::move(layers)), loss_fn_(std::move(loss_fn)), options_(std::move(options)),
      params_(layers_.size()), saved_(layers_.size()) {
  // The first layer holding a tensor owns it; the same TensorImpl in a later layer is shared.
  std::unordered_map<const c10::TensorImpl*, ParamRef> owner;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (layers_[i].module.is_empty()) throw Error(fmt::format("layer {} has no module", i));
    if (layers_[i].name.empty()) layers_[i].name = std::to_string(i);
    LayerParams& lp = params_[i];
    for (const auto& item : layers_[i].module.ptr()->named_parameters(/*recurse=*/true)) {
      const torch::Tensor& p = item.value();
      if (!p.is_floating_point()) {
        throw Error(fmt::format("parameter {}.{} is {}; parameters must be floating point", layers_[i].name,
                                item.key(), c10::toString(p.scalar_type())));
      }
      auto found = owner.find(p.unsafeGetTensorImpl());
      if (found == owner.end()) {
        owner.emplace(p.unsafeGetTensorImpl(), ParamRef{i, lp.owned.size()});
        lp.names.push_back(layers_[i].name + "." + item.key());
        lp.owned.push_back(p);
        lp.shapes.push_back(p.sizes().vec());
      } else if (found->second.layer != i &&
                 std::find(lp.shared.begin(), lp.shared.end(), found->second) == lp.shared.end()) {
        lp.shared.push_back(found->second);
      }
    }
  }
  for (auto& lp : params_) {
    lp.used = lp.owned;
    for (const auto& ref : lp.shared) lp.used.push_back(params_[ref.layer].owned[ref.index]);
  }
  if (!options_.saved_bytes.empty() && options_.saved_bytes.size() != layers_.size()) {
    throw Error(fmt::format("TorchLayerRunner: saved bytes of {} layers for {} layers (give one per layer, or none)",
                            options_.saved_bytes.size(), layers_.size()));
  }
  if (!options_.recompute.empty() && options_.recompute.size() != layers_.size()) {
    throw Error(fmt::format("TorchLayerRunner: {} recompute flags for {} layers (give one per layer, or none)",
                            options_.recompute.size(), layers_.size()));
  }
  set_costs(std::move(options_.costs));
  set_seed(options_.seed);
}

std::vector<ParamSpec> TorchLayerRunner::parameters(std::size_t layer) const {
  const LayerParams& lp = params_[layer];
  std::vector<ParamSpec> specs;
  specs.reserve(lp.owned.size());
  for (std::size_t i = 0; i < lp.owned.size(); ++i) specs.push_back({lp.names[i], lp.shapes[i]});
  return specs;
}

Buffer TorchLayerRunner::charge_activations(std::size_t layer, int kept) {
  if (options_.saved_bytes.empty() || device_ == nullptr) return {};
  return device_->charge(MemoryTag::activations, options_.saved_bytes[layer][static_cast<std::size_t>(kept)]);
}

void TorchLayerRunner::attach(const RunnerContext& context) {
  rank_ = context.rank;
  device_ = context.device;
  set_seed(options_.seed);
}

void TorchLayerRunner::set_seed(std::uint64_t seed) {
  options_.seed = seed;
  rng_state_ = seeded_state(seed + static_cast<std::uint64_t>(rank_));
}

void TorchLayerRunner::set_costs(LayerCosts costs) {
  for (const auto* per_layer : {&costs.forward, &costs.recompute, &costs.backward}) {
    if (!per_layer->empty() && per_layer->size() != layers_.size()) {
      throw Error(fmt::format("TorchLayerRunner: {} costs for {} layers (give one per layer, or none)",
                              per_layer->size(), layers_.size()));
    }
  }
  options_.costs = std::move(costs);
}

namespace {
comm::ComputeCost cost_of(const std::vector<comm::ComputeCost>& costs, std::size_t layer) {
  return costs.empty() ? comm::ComputeCost{} : costs[layer];
}
}  // namespace

comm::ComputeCost TorchLayerRunner::forward_cost(std::size_t layer) const { return cost_of(options_.costs.forward, layer); }

comm::ComputeCost TorchLayerRunner::recompute_cost(std::size_t layer) const {
  return cost_of(options_.costs.recompute, layer);
}

comm::ComputeCost TorchLayerRunner::backward_cost(std::size_t layer) const {
  return cost_of(options_.costs.backward, layer);
}

void TorchLayerRunner::check_bound_dtype(std::size_t layer, std::span<const BufferView> views) {
  for (const auto& view : views) {
    const auto dtype = torch_dtype(view.dtype());
    if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16) {
      throw Error(fmt::format("layer {}: views of dtype {}; the runner computes in fp32, bf16 or fp16",
                              layers_[layer].name, c10::toString(dtype)));
    }
    if (dtype_bound_ && dtype != storage_dtype_) {
      throw Error(fmt::format("layer {}: a {} view bound to a model stored in {} (all views share one dtype)",
                              layers_[layer].name, c10::toString(dtype), c10::toString(storage_dtype_)));
    }
    storage_dtype_ = dtype;
    dtype_bound_ = true;
  }
}

void TorchLayerRunner::initial_parameters(std::size_t layer, std::span<const BufferView> values) {
  const auto& tensors = params_[layer].owned;
  check_view_count(layers_[layer], tensors.size(), values.size());
  check_bound(layer);
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < values.size(); ++i) view_of(values[i], params_[layer].shapes[i]).copy_(tensors[i].detach());
}

void TorchLayerRunner::bind_parameters(std::size_t layer, std::span<const BufferView> params) {
  const auto& tensors = params_[layer].owned;
  check_view_count(layers_[layer], tensors.size(), params.size());
  check_bound_dtype(layer, params);
  torch::NoGradGuard no_grad;
  if (params.empty()) {
    // Unbound: an empty tensor, so a run fails in check_bound rather than reading freed memory.
    for (const auto& t : tensors) t.set_data(torch::empty({0}, t.options()));
    return;
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    // set_data keeps the parameter's identity (optimizers and sharing layers holding it stay
    // valid) while moving its storage into engine memory.
    tensors[i].set_data(view_of(params[i], params_[layer].shapes[i]));
  }
}

void TorchLayerRunner::bind_gradients(std::size_t layer, std::span<const BufferView> grads) {
  const auto& tensors = params_[layer].owned;
  check_view_count(layers_[layer], tensors.size(), grads.size());
  check_bound_dtype(layer, grads);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    // A defined gradient makes autograd accumulate in place (+=) into engine memory.
    tensors[i].mutable_grad() = grads.empty() ? torch::Tensor() : view_of(grads[i], params_[layer].shapes[i]);
  }
}

torch::Tensor TorchLayerRunner::run_layer(std::size_t layer, const torch::Tensor& x, const torch::Tensor& rng_start,
                                          bool advance) {
  DefaultGeneratorState rng(rng_start);
  torch::Tensor y = layers_[layer].module.forward(x);
  if (advance) rng_state_ = rng.current();
  return y;
}

std::vector<const void*> TorchLayerRunner::storage_addresses(std::size_t layer) const {
  std::vector<const void*> addresses;
  addresses.reserve(params_[layer].used.size());
  for (const auto& p : params_[layer].used) addresses.push_back(p.data_ptr());
  return addresses;
}

void TorchLayerRunner::check_bound(std::size_t layer) const {
  for (const auto& p : params_[layer].used) {
    if (p.numel() == 0 && p.dim() == 1 && p.size(0) == 0) {
      throw Error(fmt::format("layer {} runs while a parameter it uses is unbound (bind_parameters with an empty span)",
                              layers_[layer].name));
    }
  }
}

Activation TorchLayerRunner::forward(std::size_t layer, const Activation& input) {
  check_bound(layer);
  torch::Tensor x = unwrap_tensor(input).detach();
  // Floating model inputs are cast to the storage dtype; later layers already receive it.
  if (x.is_floating_point() && x.scalar_type() != storage_dtype_) x = x.to(storage_dtype_);
  Saved& s = saved_[layer].emplace_back();
  if (recomputes(layer)) {
    s = {x, {}, rng_state_, {}, charge_activations(layer, 1)};
    torch::NoGradGuard no_grad;
    std::optional<Fp32Parameters> fp32;
    if (emulated()) fp32.emplace(params_[layer].used);
    torch::Tensor y = run_layer(layer, x.is_floating_point() ? x.to(compute_dtype()) : x, rng_state_, true);
    return wrap_tensor(y.is_floating_point() ? y.to(storage_dtype_) : y);
  }
  if (layer > 0 && x.is_floating_point()) x.requires_grad_(true);
  torch::Tensor start = rng_state_;
  torch::Tensor y = run_layer(layer, x, start, true);
  s = {x, y, start, storage_addresses(layer), charge_activations(layer, 0)};
  return wrap_tensor(y.detach());
}

Activation TorchLayerRunner::backward_recompute(std::size_t layer, Saved& s, const torch::Tensor& dy) {
  s.output = torch::Tensor();  // a kept graph that cannot be used: free it before recomputing
  const auto& used = params_[layer].used;
  const bool input_grad = layer > 0 && s.input.is_floating_point();
  torch::Tensor x = s.input.is_floating_point() ? s.input.to(compute_dtype()) : s.input;
  if (input_grad) x = x.detach().requires_grad_(true);
  std::vector<torch::Tensor> wrt;
  if (input_grad) wrt.push_back(x);
  std::vector<torch::Tensor> grads;
  {
    std::optional<Fp32Parameters> fp32;
    if (emulated()) fp32.emplace(used);
    for (const auto& p : used) {
      if (p.requires_grad()) wrt.push_back(p);
    }
    // The same dropout masks as the forward: replay its starting state.
    torch::Tensor y = run_layer(layer, x, s.rng_state, /*advance=*/false);
    if (y.requires_grad() && !wrt.empty()) {
      grads = torch::autograd::grad({y}, wrt, {dy.to(y.scalar_type())}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
    }
  }
  s = {};
  if (grads.empty()) return {};
  std::size_t next = input_grad ? 1 : 0;
  torch::NoGradGuard no_grad;
  for (const auto& p : used) {
    if (!p.requires_grad()) continue;
    const torch::Tensor& g = grads[next++];
    if (!g.defined()) continue;
    // fp16: round the fp32 gradient to fp16, then accumulate in fp16, as fp16 autograd would.
    torch::Tensor rounded = g.to(storage_dtype_);
    torch::Tensor& slot = p.mutable_grad();
    if (slot.defined()) {
      slot.add_(rounded);
    } else {
      slot = rounded;
    }
  }
  return input_grad && grads[0].defined() ? wrap_tensor(grads[0].to(storage_dtype_)) : Activation{};
}

Activation TorchLayerRunner::backward(std::size_t layer, const Activation& grad_output) {
  if (saved_[layer].empty()) throw Error(fmt::format("backward of layer {} without a forward", layers_[layer].name));
  // The oldest micro-batch in flight: backward passes come in the order of their forwards.
  Saved s = std::move(saved_[layer].front());
  saved_[layer].pop_front();
  torch::Tensor dy = unwrap_tensor(grad_output);
  check_bound(layer);
  // The graph holds views of the parameter storage bound at forward. If the engine moved it since
  // (ZeRO-3 releases a layer's gathered parameters after forward and gathers them again, into new
  // memory, for backward), those views dangle: drop the graph and recompute on the new storage.
  if (recomputes(layer) || s.storage != storage_addresses(layer)) return backward_recompute(layer, s, dy);
  if (s.output.requires_grad()) torch::autograd::backward({s.output}, {dy});
  torch::Tensor dx = s.input.requires_grad() ? s.input.grad() : torch::Tensor();
  return wrap_tensor(dx);
}

Activation TorchLayerRunner::loss(const Activation& output, const Activation& labels) {
  loss_input_ = unwrap_tensor(output).detach().requires_grad_(true);
  // Under fp16 emulation the loss is computed in fp32 and handed out rounded to fp16.
  torch::Tensor y = emulated() ? loss_input_.to(torch::kFloat32) : loss_input_;
  torch::Tensor value = loss_fn_ ? loss_fn_(y, unwrap_tensor(labels)) : y;
  if (value.numel() != 1) {
    throw Error(fmt::format("the loss must be a scalar, got shape {}{}", shape_string(value.sizes()),
                            loss_fn_ ? "" : " (the model has no loss function, so its last layer must return the loss)"));
  }
  loss_graph_ = value;
  loss_value_ = emulated() ? value.detach().to(torch::kFloat16) : value;
  return wrap_tensor(loss_value_);
}

Activation TorchLayerRunner::loss_backward(const Activation& loss, double scale) {
  torch::Tensor value = unwrap_tensor(loss);
  // The scaled gradient starts in the graph's dtype (fp32 under emulation, so a loss scale of
  // 2^16 does not overflow); it is rounded to the storage dtype where it meets the model output.
  torch::Tensor graph = value.is_same(loss_value_) ? loss_graph_ : value;
  torch::autograd::backward({graph}, {torch::full_like(graph, scale)});
  torch::Tensor grad = loss_input_.grad();
  loss_input_ = loss_graph_ = loss_value_ = torch::Tensor();
  return wrap_tensor(grad);
}

double TorchLayerRunner::scalar(const Activation& value) const { return unwrap_tensor(value).item<double>(); }

DType TorchLayerRunner::activation_dtype(const Activation& value) const {
  switch (unwrap_tensor(value).scalar_type()) {
    case torch::kFloat32: return DType::f32;
    case torch::kFloat16: return DType::f16;
    case torch::kBFloat16: return DType::bf16;
    case torch::kFloat64: return DType::f64;
    case torch::kInt64: return DType::i64;
    case torch::kInt32: return DType::i32;
    case torch::kUInt8: return DType::u8;
    default: throw Error(fmt::format("an activation of type {} cannot be sent between stages",
                                     c10::toString(unwrap_tensor(value).scalar_type())));
  }
}

void TorchLayerRunner::write_activation(const Activation& value, BufferView dst) const {
  torch::Tensor t = unwrap_tensor(value);
  if (dst.numel != t.numel()) {
    throw Error(fmt::format("write_activation: {} elements into a buffer of {}", t.numel(), dst.numel));
  }
  torch::NoGradGuard no_grad;
  view_of(dst, t.sizes()).copy_(t);
}

Activation TorchLayerRunner::read_activation(BufferView src, const std::vector<std::int64_t>& shape) const {
  return wrap_tensor(view_of(src, shape).clone());
}

void TorchLayerRunner::release_saved() {
  for (auto& s : saved_) s.clear();
  loss_input_ = loss_graph_ = loss_value_ = torch::Tensor();
}

std::vector<torch::Tensor> TorchLayerRunner::all_parameters() const {
  std::vector<torch::Tensor> all;
  for (const auto& lp : params_) all.insert(all.end(), lp.owned.begin(), lp.owned.end());
  return all;
}

}  // namespace twinspeed
