#include "engine/runtime/engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engine/core/errors.hpp"
#include "kernels/cpu/flat_ops.hpp"

namespace twinspeed {

Engine::Engine(EngineParts parts)
    : backend_(std::move(parts.backend)), settings_(std::move(parts.settings)), runner_(std::move(parts.runner)) {
  if (!backend_) throw Error("Engine: no backend");
  if (!runner_) throw Error("Engine: no model");
  if (settings_.gradient_accumulation_steps < 1) {
    throw ConfigError("gradient_accumulation_steps", std::to_string(settings_.gradient_accumulation_steps),
                      "must be >= 1");
  }
  if (settings_.zero_stage != 0) {
    throw NotImplemented(fmt::format("ZeRO stage {} arrives with the ZeRO issue; this version runs stage 0",
                                     settings_.zero_stage));
  }
  if (settings_.fp16 || settings_.bf16) {
    throw NotImplemented("fp16/bf16 mixed precision arrives with the ZeRO issue; this version trains in fp32");
  }
  if (settings_.mesh.tp != 1 || settings_.mesh.pp != 1 || settings_.mesh.sp != 1) {
    throw NotImplemented("tensor, pipeline and sequence parallelism arrive with their issues");
  }
  groups_ = std::make_unique<ProcessGroups>(*backend_, DeviceMesh(settings_.mesh));
  dp_group_ = groups_->get(GroupKind::dp);

  allocate_and_bind(parts.param_groups);
  broadcast_parameters();

  comm::Device& device = backend_->device();
  if (parts.optimizer_factory) {
    optimizer_ = parts.optimizer_factory(device, flat_groups_);
  } else if (settings_.optimizer.present) {
    optimizer_ = make_config_optimizer(settings_.optimizer.type, settings_.optimizer.params, device, flat_groups_);
  }
  // Without an optimizer the engine can still run forward and backward (evaluation), as in
  // DeepSpeed; step() then fails.
  if (parts.scheduler) {
    scheduler_ = std::move(parts.scheduler);
  } else if (parts.scheduler_factory && optimizer_) {
    scheduler_ = parts.scheduler_factory(*optimizer_);
  } else if (settings_.scheduler.present && optimizer_) {
    scheduler_ = make_lr_scheduler(settings_.scheduler.type, settings_.scheduler.params, *optimizer_);
  }
}

Engine::~Engine() = default;

void Engine::allocate_and_bind(const std::vector<ParamGroupSpec>& groups) {
  // ZeRO-0 keeps one flat fp32 copy of every parameter and gradient, laid out group after group
  // (each param group contiguous, as DeepSpeed flattens per group for ZeRO 1-2), parameters in
  // runner order within a group, then the parameters of no group.
  std::vector<std::int64_t> numel;
  std::vector<std::pair<std::size_t, std::size_t>> where;  // (layer, index within the layer)
  for (std::size_t layer = 0; layer < runner_->layer_count(); ++layer) {
    auto specs = runner_->parameters(layer);
    for (std::size_t k = 0; k < specs.size(); ++k) {
      numel.push_back(specs[k].numel());
      where.emplace_back(layer, k);
    }
  }
  std::vector<ParamGroupSpec> layout = groups;
  if (layout.empty()) {
    layout.emplace_back();
    for (std::size_t i = 0; i < numel.size(); ++i) layout[0].parameters.push_back(i);
  }
  std::vector<int> owner(numel.size(), -1);
  for (std::size_t g = 0; g < layout.size(); ++g) {
    for (std::size_t i : layout[g].parameters) {
      if (i >= numel.size()) throw Error(fmt::format("param group {} names parameter {} of {}", g, i, numel.size()));
      if (owner[i] >= 0) {
        throw Error(fmt::format("parameter {} appears in param groups {} and {}; each parameter may appear once",
                                i, owner[i], g));
      }
      owner[i] = static_cast<int>(g);
    }
  }
  std::vector<std::int64_t> offset(numel.size(), 0);
  std::vector<std::pair<std::int64_t, std::int64_t>> group_ranges;  // (offset, numel)
  std::int64_t total = 0;
  for (const auto& group : layout) {
    std::int64_t start = total;
    for (std::size_t i : group.parameters) {
      offset[i] = total;
      total += numel[i];
    }
    group_ranges.emplace_back(start, total - start);
  }
  for (std::size_t i = 0; i < numel.size(); ++i) {
    if (owner[i] < 0) {
      offset[i] = total;
      total += numel[i];
    }
  }

  comm::Device& device = backend_->device();
  params_ = device.allocate(DType::f32, total, MemoryTag::params);
  grads_ = device.allocate(DType::f32, total, MemoryTag::grads);
  std::vector<std::vector<BufferView>> param_views(runner_->layer_count()), grad_views(runner_->layer_count());
  for (std::size_t i = 0; i < numel.size(); ++i) {
    auto [layer, k] = where[i];
    param_views[layer].resize(std::max(param_views[layer].size(), k + 1));
    grad_views[layer].resize(std::max(grad_views[layer].size(), k + 1));
    param_views[layer][k] = params_.view(offset[i], numel[i]);
    grad_views[layer][k] = grads_.view(offset[i], numel[i]);
  }
  for (std::size_t layer = 0; layer < runner_->layer_count(); ++layer) {
    runner_->initial_parameters(layer, param_views[layer]);
    runner_->bind_parameters(layer, param_views[layer]);
    runner_->bind_gradients(layer, grad_views[layer]);
  }
  for (std::size_t g = 0; g < layout.size(); ++g) {
    auto [start, n] = group_ranges[g];
    flat_groups_.push_back({.params = params_.view(start, n),
                            .grads = grads_.view(start, n),
                            .lr = layout[g].lr,
                            .weight_decay = layout[g].weight_decay});
  }
}

void Engine::broadcast_parameters() {
  // DeepSpeed broadcasts the model from the data-parallel group's first rank so every replica
  // starts from the same weights.
  dp_group_->broadcast(params_.all(), 0)->wait();
}

bool Engine::is_gradient_accumulation_boundary() const {
  return (micro_steps_ + 1) % settings_.gradient_accumulation_steps == 0;
}

void Engine::set_trace_context() {
  const auto micro = static_cast<int>(micro_steps_ % settings_.gradient_accumulation_steps);
  backend_->tracer().set_context({.step = global_steps_, .micro_batch = micro, .stage = -1});
}

Activation Engine::forward(const Activation& inputs, const Activation& labels) {
  set_trace_context();
  comm::Stream& compute = backend_->device().compute_stream();
  Activation x = inputs;
  for (std::size_t layer = 0; layer < runner_->layer_count(); ++layer) {
    compute.launch(runner_->layer_name(layer) + " forward", runner_->forward_cost(layer),
                   [&] { x = runner_->forward(layer, x); });
  }
  return runner_->loss(x, labels);
}

void Engine::backward(const Activation& loss) {
  // DeepSpeed scales the loss by 1/gradient_accumulation_steps so accumulated gradients average.
  double scale = 1.0 / static_cast<double>(settings_.gradient_accumulation_steps);
  Activation grad = runner_->loss_backward(loss, scale);
  comm::Stream& compute = backend_->device().compute_stream();
  for (std::size_t layer = runner_->layer_count(); layer-- > 0;) {
    compute.launch(runner_->layer_name(layer) + " backward", runner_->backward_cost(layer),
                   [&] { grad = runner_->backward(layer, grad); });
  }
  runner_->release_saved();
  if (is_gradient_accumulation_boundary()) allreduce_gradients();
}

void Engine::allreduce_gradients() {
  // DeepSpeed's allreduce_bucket: by default divide after the sum (postscale), optionally
  // pre-dividing by gradient_predivide_factor; with prescale_gradients divide before.
  const double dp = static_cast<double>(dp_group_->size());
  const double predivide = settings_.gradient_predivide_factor;
  const std::int64_t bucket = std::max<std::int64_t>(1, settings_.allreduce_bucket_elements);
  for (std::int64_t offset = 0; offset < grads_.numel(); offset += bucket) {
    BufferView view = grads_.view(offset, std::min(bucket, grads_.numel() - offset));
    if (settings_.prescale_gradients) {
      if (settings_.gradient_average) kernels::scale(view, 1.0 / dp);
      dp_group_->all_reduce(view)->wait();
    } else {
      if (predivide != 1.0) kernels::scale(view, 1.0 / predivide);
      dp_group_->all_reduce(view)->wait();
      if (settings_.gradient_average && predivide != dp) kernels::scale(view, predivide / dp);
    }
  }
}

void Engine::clip_gradients() {
  last_gradient_norm_ = std::sqrt(kernels::sum_of_squares(grads_.all()));
  if (settings_.gradient_clipping <= 0.0) return;
  // torch / DeepSpeed clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
  double coefficient = settings_.gradient_clipping / (last_gradient_norm_ + 1e-6);
  if (coefficient < 1.0) kernels::scale(grads_.all(), coefficient);
}

void Engine::step() {
  if (is_gradient_accumulation_boundary()) {
    if (!optimizer_) {
      throw ConfigError("optimizer", "", "step() needs an optimizer: pass one to initialize() or add an \"optimizer\" section");
    }
    clip_gradients();
    // The optimizer reads parameters, gradients and two moments and writes three of them back
    // (Adam's traffic; the kernels issue gives each optimizer its own cost).
    const std::int64_t n = params_.numel();
    backend_->device().compute_stream().launch(
        "optimizer step", {.op_class = comm::OpClass::optimizer, .flops = 12.0 * static_cast<double>(n),
                           .bytes_read = 16 * n, .bytes_written = 12 * n},
        [&] { optimizer_->step(); });
    kernels::fill_zero(grads_.all());
    if (scheduler_) scheduler_->step();
    ++global_steps_;
    global_samples_ += settings_.train_batch_size;
  }
  ++micro_steps_;
}

std::vector<double> Engine::get_lr() const {
  std::vector<double> lrs;
  if (!optimizer_) return lrs;
  for (const auto& group : optimizer_->param_groups()) lrs.push_back(group.lr);
  return lrs;
}

}  // namespace twinspeed
