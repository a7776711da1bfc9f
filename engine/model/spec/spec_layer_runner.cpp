#include "engine/model/spec/spec_layer_runner.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "engine/comm/comm.hpp"
#include "engine/comm/device.hpp"
#include "engine/core/errors.hpp"

namespace twinspeed {

namespace {

using i64 = std::int64_t;

i64 element_count(const std::vector<i64>& shape) {
  i64 n = 1;
  for (i64 d : shape) n *= d;
  return n;
}

bool is_float(DType dtype) {
  return dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16 || dtype == DType::f64;
}

SpecOptions with_dtype(SpecOptions spec, DType dtype) {
  if (!is_float(dtype)) throw ConfigError("dtype", std::string(dtype_name(dtype)), "must be a floating type");
  spec.dtype_bytes = static_cast<i64>(dtype_size(dtype));
  return spec;
}

void check_shape(const Activation& a, const std::vector<i64>& expected, std::string_view where) {
  if (a.shape() != expected) {
    throw Error(fmt::format("{}: got an activation of shape [{}], expected [{}]", where, fmt::join(a.shape(), ", "),
                            fmt::join(expected, ", ")));
  }
}

// The spec counts matmul FLOPs only; a layer without any (embedding, norms) is memory-bound work.
comm::OpClass op_class(const LayerSpec& spec) {
  return spec.forward_flops > 0 ? comm::OpClass::matmul : comm::OpClass::elementwise;
}

}  // namespace

Activation make_shape_activation(std::vector<std::int64_t> shape) {
  return Activation(std::make_shared<ShapeActivation>(std::move(shape)));
}

SpecLayerRunner::SpecLayerRunner(const ModelConfig& model, const SpecRunnerOptions& options)
    : layers_(build_layer_specs(model, with_dtype(options.spec, options.dtype))),
      options_(options),
      hidden_(model.hidden_size),
      local_vocab_((model.vocab_size + options.spec.tp - 1) / options.spec.tp) {
  options_.spec.dtype_bytes = static_cast<i64>(dtype_size(options.dtype));
  bound_.resize(layers_.size());
  for (std::size_t i = 0; i < layers_.size(); ++i) bound_[i] = layers_[i].params.empty();
  saved_.resize(layers_.size());
}

std::vector<ParamRef> SpecLayerRunner::shared_parameters(std::size_t layer) const {
  // build_layer_specs gives a tied LM head no parameters: it reads the token embedding's weight,
  // the embedding layer's first parameter.
  const LayerSpec& spec = layers_.at(layer);
  if (spec.kind == LayerKind::lm_head && spec.params.empty()) return {ParamRef{.layer = 0, .index = 0}};
  return {};
}

void SpecLayerRunner::check_views(std::size_t layer, std::span<const BufferView> views, const char* what) const {
  const auto& params = layers_.at(layer).params;
  if (views.size() != params.size()) {
    throw Error(fmt::format("SpecLayerRunner::{}: layer {} has {} parameters, got {} views", what,
                            layers_[layer].name, params.size(), views.size()));
  }
  for (std::size_t k = 0; k < views.size(); ++k) {
    if (views[k].numel != params[k].numel()) {
      throw Error(fmt::format("SpecLayerRunner::{}: {}.{} has {} elements, its view {}", what, layers_[layer].name,
                              params[k].name, params[k].numel(), views[k].numel));
    }
  }
}

void SpecLayerRunner::initial_parameters(std::size_t layer, std::span<const BufferView> values) {
  check_views(layer, values, "initial_parameters");
}

void SpecLayerRunner::bind_parameters(std::size_t layer, std::span<const BufferView> params) {
  if (params.empty()) {
    bound_.at(layer) = layers_.at(layer).params.empty();
    return;
  }
  check_views(layer, params, "bind_parameters");
  bound_[layer] = true;
}

void SpecLayerRunner::bind_gradients(std::size_t layer, std::span<const BufferView> grads) {
  if (!grads.empty()) check_views(layer, grads, "bind_gradients");
}

void SpecLayerRunner::require_bound(std::size_t layer) const {
  std::vector<std::size_t> needed{layer};
  for (const ParamRef& ref : shared_parameters(layer)) needed.push_back(ref.layer);
  for (std::size_t l : needed) {
    if (!bound_.at(l)) {
      throw Error(fmt::format("SpecLayerRunner: layer {} runs while the parameters of {} are not bound",
                              layers_[layer].name, layers_[l].name));
    }
  }
}

comm::Device& SpecLayerRunner::device(const char* what) const {
  if (context_.device == nullptr) {
    throw Error(fmt::format("SpecLayerRunner::{}: no device; the engine calls attach() before running layers", what));
  }
  return *context_.device;
}

std::int64_t SpecLayerRunner::bytes_of(const std::vector<std::int64_t>& shape) const {
  return element_count(shape) * options_.spec.dtype_bytes;
}

std::vector<std::int64_t> SpecLayerRunner::input_shape(std::size_t layer) const {
  const SpecOptions& o = options_.spec;
  if (layers_.at(layer).kind == LayerKind::embedding) return {o.micro_batch, o.seq_len / o.sp};
  return output_shape(layer - 1);
}

std::vector<std::int64_t> SpecLayerRunner::output_shape(std::size_t layer) const {
  const SpecOptions& o = options_.spec;
  const i64 tokens = o.seq_len / o.sp;
  // Megatron sequence parallelism keeps the residual stream split over tp between the tp regions.
  if (layers_.at(layer).kind == LayerKind::lm_head) return {o.micro_batch, tokens, local_vocab_};
  return {o.micro_batch, o.tp_sp ? tokens / o.tp : tokens, hidden_};
}

SpecLayerRunner::MicroBatch SpecLayerRunner::micro_batch() const {
  return {make_shape_activation(input_shape(0)), make_shape_activation(input_shape(0))};
}

void SpecLayerRunner::issue_collectives(std::size_t layer, CommPhase phase) {
  const LayerSpec& spec = layers_[layer];
  std::vector<const CollectiveSpec*> order;
  for (const CollectiveSpec& c : spec.collectives) {
    if (c.phase == phase) order.push_back(&c);
  }
  // Backward runs the layer's regions in reverse (the MLP's before the attention's).
  if (phase == CommPhase::backward) std::reverse(order.begin(), order.end());
  if (order.empty()) return;
  comm::Device& dev = device("forward/backward");
  for (const CollectiveSpec* c : order) {
    const std::optional<GroupKind> kind = parse_group_kind(c->group);
    comm::Comm* group = kind && context_.group ? context_.group(*kind) : nullptr;
    if (group == nullptr) {
      throw Error(fmt::format("SpecLayerRunner: layer {} issues a {} on the {} group, which the rank does not have",
                              spec.name, c->op, c->group));
    }
    const i64 degree = *kind == GroupKind::tp ? options_.spec.tp : options_.spec.sp;
    if (group->size() != degree) {
      throw Error(fmt::format("SpecLayerRunner: the rank's {} group has {} ranks; the layer specs were built for {}",
                              c->group, group->size(), degree));
    }
    const i64 numel = c->bytes / options_.spec.dtype_bytes;
    const i64 chunk = numel / degree;
    if (c->bytes % options_.spec.dtype_bytes != 0 || chunk * degree != numel) {
      throw Error(fmt::format("SpecLayerRunner: layer {}: a {} of {} bytes does not split into {} equal chunks of {}",
                              spec.name, c->op, c->bytes, degree, dtype_name(options_.dtype)));
    }
    const DType dt = options_.dtype;
    Buffer full = dev.allocate(dt, numel, MemoryTag::temporaries);
    Buffer other;  // the other side of a collective that is not in place
    comm::WorkPtr work;
    if (c->op == "all_reduce") {
      work = group->all_reduce(full.all());
    } else if (c->op == "all_gather") {  // the spec's bytes are the gathered output
      other = dev.allocate(dt, chunk, MemoryTag::temporaries);
      work = group->all_gather(other.all(), full.all());
    } else if (c->op == "reduce_scatter") {  // the spec's bytes are the input
      other = dev.allocate(dt, chunk, MemoryTag::temporaries);
      work = group->reduce_scatter(full.all(), other.all());
    } else if (c->op == "all_to_all") {
      other = dev.allocate(dt, numel, MemoryTag::temporaries);
      work = group->all_to_all(full.all(), other.all());
    } else {
      throw Error(fmt::format("SpecLayerRunner: layer {}: unknown collective '{}'", spec.name, c->op));
    }
    // The layer's next step needs the result: the compute stream waits for it.
    work->wait();
  }
}

Activation SpecLayerRunner::forward(std::size_t layer, const Activation& input) {
  require_bound(layer);
  check_shape(input, input_shape(layer), fmt::format("SpecLayerRunner::forward({})", layers_[layer].name));
  comm::Device& dev = device("forward");
  saved_[layer].push_back(
      dev.allocate(DType::u8, layers_[layer].activation_bytes(options_.recompute), MemoryTag::activations));
  issue_collectives(layer, CommPhase::forward);
  return make_shape_activation(output_shape(layer));
}

Activation SpecLayerRunner::backward(std::size_t layer, const Activation& grad_output) {
  require_bound(layer);
  const LayerSpec& spec = layers_[layer];
  check_shape(grad_output, output_shape(layer), fmt::format("SpecLayerRunner::backward({})", spec.name));
  if (saved_[layer].empty()) {
    throw Error(fmt::format("SpecLayerRunner::backward({}): no forward of this layer is waiting for its backward",
                            spec.name));
  }
  comm::Device& dev = device("backward");
  Buffer recomputed;
  if (spec.kind == LayerKind::block && options_.recompute != RecomputeMode::none) {
    // Recomputation saves again what it recomputes, for the duration of this backward: activation
    // checkpointing the whole block (re-issuing its forward collectives), selective recompute the
    // attention core.
    const bool full = options_.recompute == RecomputeMode::full;
    const i64 bytes = spec.activation_bytes(RecomputeMode::none) - (full ? 0 : spec.activation_bytes(options_.recompute));
    recomputed = dev.allocate(DType::u8, bytes, MemoryTag::activations);
    if (full) issue_collectives(layer, CommPhase::forward);
  }
  issue_collectives(layer, CommPhase::backward);
  saved_[layer].erase(saved_[layer].begin());
  if (spec.kind == LayerKind::embedding) return {};  // token ids need no gradient
  return make_shape_activation(input_shape(layer));
}

Activation SpecLayerRunner::loss(const Activation& output, const Activation& labels) {
  if (output.shape() == input_shape(0) && saved_.front().empty()) {
    // The micro-batch reached the loss untouched: no layer's forward ran.
    throw Error("SpecLayerRunner::loss: no layer's forward ran on this micro-batch; in shape fidelity the engine must "
                "call LayerRunner::forward/backward itself (Stream::launch runs its function only in numeric "
                "fidelity)");
  }
  check_shape(output, output_shape(layers_.size() - 1), "SpecLayerRunner::loss (logits)");
  check_shape(labels, input_shape(0), "SpecLayerRunner::loss (labels)");
  return make_shape_activation({});
}

Activation SpecLayerRunner::loss_backward(const Activation& loss, double /*scale*/) {
  check_shape(loss, {}, "SpecLayerRunner::loss_backward");
  return make_shape_activation(output_shape(layers_.size() - 1));
}

double SpecLayerRunner::scalar(const Activation& /*value*/) const { return std::numeric_limits<double>::quiet_NaN(); }

DType SpecLayerRunner::activation_dtype(const Activation& /*value*/) const { return options_.dtype; }

void SpecLayerRunner::write_activation(const Activation& /*value*/, BufferView /*dst*/) const {}

Activation SpecLayerRunner::read_activation(BufferView /*src*/, const std::vector<std::int64_t>& shape) const {
  return make_shape_activation(shape);
}

void SpecLayerRunner::release_saved() {
  for (auto& buffers : saved_) buffers.clear();
}

std::int64_t SpecLayerRunner::param_traffic_bytes(std::size_t layer) const {
  const LayerSpec& spec = layers_[layer];
  // A lookup touches only the rows of its tokens: one output's worth, not the whole table.
  if (spec.kind == LayerKind::embedding) return bytes_of(output_shape(layer));
  i64 params = spec.param_count();
  for (const ParamRef& ref : shared_parameters(layer)) params += layers_[ref.layer].params[ref.index].numel();
  return params * options_.spec.dtype_bytes;
}

comm::ComputeCost SpecLayerRunner::forward_cost(std::size_t layer) const {
  const LayerSpec& spec = layers_.at(layer);
  const i64 input = spec.kind == LayerKind::embedding ? element_count(input_shape(layer)) * 8  // int64 token ids
                                                      : bytes_of(input_shape(layer));
  return {.op_class = op_class(spec),
          .flops = static_cast<double>(spec.forward_flops),
          .bytes_read = param_traffic_bytes(layer) + input,
          .bytes_written = bytes_of(output_shape(layer))};
}

comm::ComputeCost SpecLayerRunner::recompute_cost(std::size_t layer) const {
  const LayerSpec& spec = layers_.at(layer);
  switch (spec.kind == LayerKind::block ? options_.recompute : RecomputeMode::none) {
    case RecomputeMode::none: return {};
    case RecomputeMode::full: return forward_cost(layer);
    case RecomputeMode::selective: {
      // The attention core again: it reads Q, K and V (part of what selective recompute saved) and
      // writes what it had not saved (softmax output, dropout mask and output).
      const i64 core_outputs =
          spec.activation_bytes(RecomputeMode::none) - spec.activation_bytes(RecomputeMode::selective);
      return {.op_class = comm::OpClass::attention,
              .flops = static_cast<double>(spec.recompute_flops[static_cast<int>(RecomputeMode::selective)]),
              .bytes_read = spec.activation_bytes(RecomputeMode::selective) - spec.activation_bytes(RecomputeMode::full),
              .bytes_written = core_outputs};
    }
  }
  return {};
}

comm::ComputeCost SpecLayerRunner::backward_cost(std::size_t layer) const {
  const LayerSpec& spec = layers_.at(layer);
  const i64 params = param_traffic_bytes(layer);
  const i64 grad_input = spec.kind == LayerKind::embedding ? 0 : bytes_of(input_shape(layer));
  return {.op_class = op_class(spec),
          .flops = static_cast<double>(spec.backward_flops),
          .bytes_read = params + bytes_of(output_shape(layer)) + spec.activation_bytes(options_.recompute),
          .bytes_written = params + grad_input};
}

LayerCosts spec_layer_costs(const ModelConfig& model, const SpecOptions& spec, RecomputeMode recompute) {
  DType dtype = DType::f32;
  if (spec.dtype_bytes == 2) dtype = DType::bf16;
  else if (spec.dtype_bytes == 8) dtype = DType::f64;
  else if (spec.dtype_bytes != 4) throw ConfigError("dtype_bytes", std::to_string(spec.dtype_bytes), "must be 2, 4 or 8");
  const SpecLayerRunner runner(model, {.spec = spec, .dtype = dtype, .recompute = recompute});
  LayerCosts costs;
  for (std::size_t i = 0; i < runner.layer_count(); ++i) {
    costs.forward.push_back(runner.forward_cost(i));
    costs.recompute.push_back(runner.recompute_cost(i));
    costs.backward.push_back(runner.backward_cost(i));
  }
  return costs;
}

}  // namespace twinspeed
