#include "engine/runtime/engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/core/errors.hpp"
#include "engine/precision/unscale.hpp"
#include "engine/zero/grad_reduction.hpp"
#include "engine/zero/offload_grads.hpp"
#include "engine/zero/stage3_grads.hpp"
#include "engine/zero/stage3_params.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed {

namespace {

DType compute_dtype_of(const EngineSettings& s) {
  if (s.fp16) return DType::f16;
  if (s.bf16) return DType::bf16;
  return DType::f32;
}

// Runs work that must happen in both fidelities on a stream: inside the launch when there is data
// (a real backend times it there), before a cost-only launch in shape-only fidelity, where launch
// runs nothing but layer runners still account activations and issue their collectives and
// optimizers still allocate their state.
void launch_always(comm::Device& device, comm::Stream& stream, std::string_view name, const comm::ComputeCost& cost,
                   const std::function<void()>& fn) {
  if (device.has_data()) {
    stream.launch(name, cost, fn);
  } else {
    fn();
    stream.launch(name, cost, [] {});
  }
}

GradAveraging averaging_of(const EngineSettings& s) {
  return {.average = s.gradient_average,
          .prescale = s.prescale_gradients,
          .predivide = s.gradient_predivide_factor,
          .sp = s.mesh.sp};
}

}  // namespace

Engine::Engine(EngineParts parts)
    : backend_(std::move(parts.backend)), settings_(std::move(parts.settings)), runner_(std::move(parts.runner)) {
  if (!backend_) throw Error("Engine: no backend");
  if (!runner_) throw Error("Engine: no model");
  if (settings_.gradient_accumulation_steps < 1) {
    throw ConfigError("gradient_accumulation_steps", std::to_string(settings_.gradient_accumulation_steps),
                      "must be >= 1");
  }
  if (settings_.zero_stage < 0 || settings_.zero_stage > 3) {
    throw ConfigError("zero_optimization.stage", std::to_string(settings_.zero_stage), "must be 0, 1, 2 or 3");
  }
  if (settings_.zero_stage == 3 && !settings_.gradient_average) {
    // DeepSpeed 0.19.6's ZeRO-3 only averages (its reduce-scatter divides by the group size).
    throw ConfigError("gradient_allreduce_op", "sum", "ZeRO stage 3 supports only \"mean\" gradient reduction");
  }
  pipeline_stage_ = std::move(parts.pipeline_stage);
  if (settings_.mesh.pp != 1 && !pipeline_stage_) {
    throw ConfigError("pipeline.stages", std::to_string(settings_.mesh.pp),
                      "pipeline parallelism needs a PipelineModule (it routes to the PipelineEngine)");
  }
  if (pipeline_stage_ && settings_.zero_stage >= 2) {
    throw ConfigError("zero_optimization.stage", std::to_string(settings_.zero_stage),
                      "ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism");
  }
  if (const auto& off = settings_.zero.offload_optimizer; off && off->device != "none") {
    const std::string path = "zero_optimization.offload_optimizer.device";
    if (off->device != "cpu") {
      throw NotImplemented(fmt::format("{} = \"{}\": twinspeed offloads the optimizer to \"cpu\" only", path, off->device));
    }
    if (settings_.zero_stage == 0) {
      throw ConfigError(path, "\"cpu\"", "optimizer offload needs ZeRO stage 1, 2 or 3");
    }
    offload_ = true;
  }
  if (const auto& off = settings_.zero.offload_param; off && off->device != "none" && settings_.zero_stage == 3) {
    throw NotImplemented(fmt::format(
        "zero_optimization.offload_param.device = \"{}\": parameter offload (ZeRO-Infinity) is not implemented; "
        "offload_optimizer is",
        off->device));
  }
  comm::Device& device = backend_->device();
  if (device.has_data() && (settings_.mesh.tp != 1 || settings_.mesh.sp != 1)) {
    throw NotImplemented(
        "tensor and sequence parallelism with numeric fidelity arrive with their issues; shape-only runs model them");
  }
  dtype_ = compute_dtype_of(settings_);
  // fp16/bf16 *_master_weights_and_grads keep master weights (and the step's gradients) 16-bit.
  if ((settings_.fp16 && settings_.fp16_config.fp16_master_weights_and_grads) ||
      (settings_.bf16 && settings_.bf16_config.bf16_master_weights_and_grads)) {
    master_dtype_ = dtype_;
  }
  groups_ = std::make_unique<ProcessGroups>(*backend_, DeviceMesh(settings_.mesh));
  // ZeRO partitions and reduces over dp x sp (DeepSpeed's seq_data_parallel_group).
  zero_group_ = groups_->get(GroupKind::zero);
  create_tie_groups();
  model_ = build_model_layout(*runner_, parts.param_groups);
  runner_->attach({.device = &device,
                   .group = [this](GroupKind kind) { return groups_->get(kind).get(); },
                   .rank = backend_->rank()});
  if (settings_.fp16) scaler_ = make_loss_scaler(settings_.fp16_config, /*zero_optimization=*/settings_.zero_stage > 0);

  allocate();
  initialize_parameters();
  build_optimizer(parts);
}

Engine::~Engine() = default;

// ---- Memory ------------------------------------------------------------------------------------

void Engine::allocate() {
  comm::Device& device = backend_->device();
  const int n = zero_group_->size();
  const int stage = settings_.zero_stage;
  const std::size_t groups = model_.groups.size();
  master_offset_.assign(groups, 0);
  layer_grads_.resize(model_.layer_count());
  layer_grads_pending_.assign(model_.layer_count(), 0);

  if (stage <= 2) {
    flat_ = plan_flat(model_, n, /*partitioned=*/stage >= 1);
    params_ = device.allocate(dtype_, flat_.total, MemoryTag::params);
    std::int64_t partitions = 0;
    for (std::size_t g = 0; g < groups; ++g) {
      master_offset_[g] = stage == 0 ? flat_.groups[g].base : partitions;
      partitions += flat_.groups[g].layout.partition_numel;
    }
    if (stage <= 1) {
      grads_ = device.allocate(dtype_, flat_.total, MemoryTag::grads);
    } else {
      grads_ = device.allocate(dtype_, partitions, MemoryTag::grads);
    }
    if (stage >= 1) {
      allocate_master(partitions);
    } else if (dtype_ != master_dtype_) {
      allocate_master(flat_.ungrouped.offset);
    }
  } else {
    shards_ = plan_shards(model_, n);
    params_ = device.allocate(dtype_, shards_.total, MemoryTag::params);
    grads_ = device.allocate(dtype_, shards_.total, MemoryTag::grads);
    allocate_master(shards_.ungrouped.offset);
    for (std::size_t g = 0; g < groups; ++g) master_offset_[g] = shards_.groups[g].offset;
    const auto& z = settings_.zero;
    stage3_ = std::make_unique<Stage3Params>(
        device, *zero_group_, *runner_, model_, shards_, params_,
        Stage3Options{.prefetch_elements = z.stage3.stage3_prefetch_bucket_size,
                      .max_live_elements = z.stage3.stage3_max_live_parameters,
                      .persistence_threshold = z.stage3.stage3_param_persistence_threshold,
                      .model_persistence_threshold = z.stage3.stage3_model_persistence_threshold});
  }
  // (Buffers come zero-filled from the device: gradients start at zero.)
  // Where each gradient sits in its owner layer's short-lived storage (stages 2-3).
  layer_grad_offset_.assign(model_.params.size(), 0);
  for (std::size_t layer = 0; layer < model_.layer_count(); ++layer) {
    std::int64_t at = 0;
    for (std::size_t id : model_.owned[layer]) {
      layer_grad_offset_[id] = at;
      at += layer_gradient_numel(id);
    }
  }

  norm_holes_.assign(groups, {});
  if (pipeline_stage_) {
    // Stages 0-1: a group's gradient view starts at its flat base (stage 0) or at this rank's
    // partition (stage 1); the holes are the excluded parameters' elements inside it.
    for (std::size_t id : pipeline_stage_->norm_excluded) {
      const ModelParam& p = model_.params.at(id);
      if (p.group < 0 || p.numel == 0) continue;
      const auto g = static_cast<std::size_t>(p.group);
      const ElementRange view = stage == 0 ? ElementRange{flat_.groups[g].base, flat_.groups[g].layout.numel}
                                           : flat_.groups[g].partition(zero_group_->rank());
      const std::int64_t lo = std::max(view.offset, flat_.offset[id]);
      const std::int64_t hi = std::min(view.end(), flat_.offset[id] + p.numel);
      if (hi > lo) norm_holes_[g].push_back({lo - view.offset, hi - lo});
    }
    for (auto& holes : norm_holes_) std::sort(holes.begin(), holes.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
  }
  OnReduced to_host;
  if (offload_) {
    const int world = zero_group_->size();
    std::vector<BufferView> device_parts, host_parts;
    std::vector<std::vector<ElementRange>> unreduced(groups);
    std::vector<std::vector<std::int64_t>> unreduced_numel(groups);
    for (std::size_t g = 0; g < groups; ++g) {
      device_parts.push_back(compute_gradients_of_group(g));
      host_parts.push_back(host_grads_.view(master_offset_[g], device_parts.back().numel));
      // What the reductions write of each rank's partition; the rest (padding) is final from the start.
      std::vector<std::vector<ElementRange>> written(static_cast<std::size_t>(world));
      for (std::size_t id : model_.groups[g]) {
        if (model_.params[id].numel == 0) continue;
        if (stage3_) {
          for (auto& w : written) w.push_back(partition_range_of({id, 0, 0, shards_.shard_numel[id]}));
        } else {
          for (const OwnedPiece& piece : flat_.owners(model_, id)) {
            written[static_cast<std::size_t>(piece.rank)].push_back(
                partition_range_of({id, piece.rank, piece.param_offset, piece.numel}));
          }
        }
      }
      for (int r = 0; r < world; ++r) {
        std::vector<ElementRange>& w = written[static_cast<std::size_t>(r)];
        std::sort(w.begin(), w.end(), [](const ElementRange& a, const ElementRange& b) { return a.offset < b.offset; });
        std::int64_t at = 0, rest = 0;
        for (const ElementRange& piece : w) {
          if (piece.offset > at && r == zero_group_->rank()) unreduced[g].push_back({at, piece.offset - at});
          rest += std::max<std::int64_t>(0, piece.offset - at);
          at = std::max(at, piece.end());
        }
        const std::int64_t numel = device_parts.back().numel;
        if (at < numel && r == zero_group_->rank()) unreduced[g].push_back({at, numel - at});
        unreduced_numel[g].push_back(rest + std::max<std::int64_t>(0, numel - at));
      }
    }
    host_copies_ = std::make_unique<GradientsToHost>(device, backend_->host(), std::move(device_parts),
                                                     std::move(host_parts), std::move(unreduced),
                                                     std::move(unreduced_numel));
    to_host = [this](comm::Stream& stream, std::span<const ReducedRange> ranges) { copy_reduced_to_host(stream, ranges); };
  }
  const BucketReducerOptions bucket_options{.bucket_elements = settings_.zero.comm.reduce_bucket_size,
                                            .overlap_comm = settings_.zero.comm.overlap_comm,
                                            .reduce_scatter = settings_.zero.comm.reduce_scatter,
                                            .multi_rank_bucket_allreduce =
                                                settings_.zero.comm.use_multi_rank_bucket_allreduce,
                                            .averaging = averaging_of(settings_),
                                            .dtype = dtype_,
                                            .on_reduced = to_host};
  if (stage == 3) {
    stage3_grads_ = std::make_unique<Stage3GradReducer>(device, *zero_group_, model_, shards_, grads_, bucket_options);
  }
  if (stage == 1 || stage == 2) {
    BucketReducer::Deliver deliver;
    if (stage == 1) {
      // The full gradients share the parameters' padded layout: the reduced slice goes back in place.
      deliver = [this](std::size_t p, std::int64_t off, BufferView reduced) {
        kernels::copy(grads_.view(flat_.offset[p] + off, reduced.numel), reduced);
      };
    } else {
      deliver = [this](std::size_t p, std::int64_t off, BufferView reduced) {
        const auto g = static_cast<std::size_t>(model_.params[p].group);
        const FlatGroupRegion& region = flat_.groups[g];
        const std::int64_t local = flat_.offset[p] + off - region.partition(zero_group_->rank()).offset;
        kernels::accumulate(grads_.view(master_offset_[g] + local, reduced.numel), reduced);
      };
    }
    reducer_ = std::make_unique<BucketReducer>(device, *zero_group_, model_, flat_, bucket_options, std::move(deliver));
  }
}

BufferView Engine::compute_parameters_of_group(std::size_t g) const {
  switch (settings_.zero_stage) {
    case 0: return params_.view(flat_.groups[g].base, flat_.groups[g].layout.numel);
    case 1:
    case 2: {
      ElementRange r = flat_.groups[g].partition(zero_group_->rank());
      return params_.view(r.offset, r.numel);
    }
    default: return params_.view(shards_.groups[g].offset, shards_.groups[g].numel);
  }
}

BufferView Engine::compute_gradients_of_group(std::size_t g) const {
  switch (settings_.zero_stage) {
    case 0: return grads_.view(flat_.groups[g].base, flat_.groups[g].layout.numel);
    case 1: {
      ElementRange r = flat_.groups[g].partition(zero_group_->rank());
      return grads_.view(r.offset, r.numel);
    }
    case 2: return grads_.view(master_offset_[g], flat_.groups[g].layout.partition_numel);
    default: return grads_.view(shards_.groups[g].offset, shards_.groups[g].numel);
  }
}

void Engine::initialize_parameters() {
  comm::Device& device = backend_->device();
  if (settings_.zero_stage <= 2) {
    for (std::size_t layer = 0; layer < model_.layer_count(); ++layer) {
      std::vector<BufferView> views;
      for (std::size_t id : model_.owned[layer]) views.push_back(params_.view(flat_.offset[id], model_.params[id].numel));
      runner_->initial_parameters(layer, views);
    }
    // DeepSpeed broadcasts each parameter from the group's first rank (_broadcast_model) so
    // every replica starts equal.
    for (std::size_t id = 0; id < model_.params.size(); ++id) {
      if (model_.params[id].numel > 0) {
        zero_group_->broadcast(params_.view(flat_.offset[id], model_.params[id].numel), 0)->wait();
      }
    }
    // Stages 0-2 keep every parameter in place; stages 0-1 keep every gradient too.
    for (std::size_t layer = 0; layer < model_.layer_count(); ++layer) {
      std::vector<BufferView> p, g;
      for (std::size_t id : model_.owned[layer]) {
        p.push_back(params_.view(flat_.offset[id], model_.params[id].numel));
        g.push_back(grads_.view(flat_.offset[id], model_.params[id].numel));
      }
      runner_->bind_parameters(layer, p);
      if (settings_.zero_stage <= 1) runner_->bind_gradients(layer, g);
    }
  } else {
    // As zero.Init: each layer is materialised whole, each parameter broadcast from rank 0 and
    // partitioned.
    const int n = zero_group_->size(), me = zero_group_->rank();
    for (std::size_t layer = 0; layer < model_.layer_count(); ++layer) {
      if (model_.owned[layer].empty()) continue;
      Buffer whole = device.allocate(dtype_, model_.layer_numel(layer), MemoryTag::temporaries);
      std::vector<BufferView> views;
      std::int64_t at = 0;
      for (std::size_t id : model_.owned[layer]) {
        views.push_back(whole.view(at, model_.params[id].numel));
        at += model_.params[id].numel;
      }
      runner_->initial_parameters(layer, views);
      for (const BufferView& v : views) {
        if (v.numel > 0) zero_group_->broadcast(v, 0)->wait();
      }
      for (std::size_t k = 0; k < views.size(); ++k) {
        const std::size_t id = model_.owned[layer][k];
        const ParamShard shard = param_partition(model_.params[id].numel, n, me);
        BufferView dst = params_.view(shards_.offset[id], shard.numel_padded);
        kernels::fill_zero(dst);
        if (shard.numel_real > 0) kernels::copy(dst.sub(0, shard.numel_real), views[k].sub(shard.offset, shard.numel_real));
      }
    }
  }
  // Tied weights start as the tie's first stage has them (DeepSpeed's _synchronize_tied_weights).
  for (const TieGroup& tie : ties_) {
    if (!tie.group) continue;
    for (std::size_t id : tie.params) tie.group->broadcast(flat_view(params_, id), 0)->wait();
  }
  if (master_.empty()) return;
  for (std::size_t g = 0; g < model_.groups.size(); ++g) {
    BufferView src = compute_parameters_of_group(g);
    kernels::copy(master_.view(master_offset_[g], src.numel), src);
  }
}

void Engine::build_optimizer(EngineParts& parts) {
  std::vector<FlatParamGroup> groups;
  for (std::size_t g = 0; g < model_.groups.size(); ++g) {
    BufferView params = compute_parameters_of_group(g);
    if (!master_.empty()) params = master_.view(master_offset_[g], params.numel);
    // Mixed precision gives the optimizer master-dtype gradients at each step (step() binds them).
    BufferView grads = offload_                   ? host_grads_.view(master_offset_[g], params.numel)
                       : dtype_ == master_dtype_ ? compute_gradients_of_group(g)
                                                 : BufferView{nullptr, 0, params.numel};
    const ParamGroupSpec* spec = parts.param_groups.empty() ? nullptr : &parts.param_groups[g];
    // Stage 0: the basic optimizer sees each parameter as its own tensor (LAMB's trust ratio);
    // under ZeRO, the rank's flat partition of the group is one tensor.
    std::vector<std::int64_t> starts;
    if (settings_.zero_stage == 0) {
      for (std::size_t p : model_.groups[g]) starts.push_back(flat_.offset[p] - flat_.groups[g].base);
    }
    groups.push_back({.params = params,
                      .grads = grads,
                      .lr = spec ? spec->lr : std::nullopt,
                      .weight_decay = spec ? spec->weight_decay : std::nullopt,
                      .tensor_starts = std::move(starts)});
  }
  // ZeRO-Offload: the optimizer's states live in host memory (DeepSpeedCPUAdam's).
  comm::Device& device = optimizer_device();
  if (parts.optimizer_factory) {
    optimizer_ = parts.optimizer_factory(device, groups);
  } else if (settings_.optimizer.present) {
    check_optimizer_setup(settings_.optimizer.type,
                          {.zero_stage = settings_.zero_stage,
                           .zero_allow_untested_optimizer = settings_.zero_allow_untested_optimizer,
                           .fp16 = settings_.fp16,
                           .dynamic_loss_scale = settings_.fp16_config.dynamic_loss_scale()});
    // bf16.bf16_optimizer_states keeps the optimizer's moments in bf16.
    const DType states = settings_.bf16 && settings_.bf16_config.bf16_optimizer_states ? DType::bf16 : DType::f32;
    optimizer_ = make_config_optimizer(settings_.optimizer.type, settings_.optimizer.params, device, groups, states);
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

// ---- Forward and backward ------------------------------------------------------------------------

bool Engine::is_gradient_accumulation_boundary() const {
  return (micro_steps_ + 1) % settings_.gradient_accumulation_steps == 0;
}

void Engine::set_trace_context() {
  const auto micro = static_cast<int>(micro_steps_ % settings_.gradient_accumulation_steps);
  backend_->tracer().set_context({.step = global_steps(), .micro_batch = micro, .stage = -1});
}

Activation Engine::forward(const Activation& inputs, const Activation& labels) {
  set_trace_context();
  return runner_->loss(forward_layers(inputs), labels);
}

Activation Engine::forward_layers(const Activation& inputs) {
  // Whatever an evaluation-only forward (no backward) left gathered is released first.
  if (stage3_) stage3_->release_all();
  comm::Stream& compute = backend_->device().compute_stream();
  Activation x = inputs;
  for (std::size_t layer = 0; layer < runner_->layer_count(); ++layer) {
    if (stage3_) stage3_->before(layer, Pass::forward);
    launch_always(backend_->device(), compute, runner_->layer_name(layer) + " forward", runner_->forward_cost(layer),
                  [&] { x = runner_->forward(layer, x); });
    if (stage3_) stage3_->after(layer, Pass::forward);
  }
  return x;
}

std::int64_t Engine::layer_gradient_numel(std::size_t param) const {
  // Stage 3 pads each gradient to N shards, the reduce-scatter's input.
  return stage3_ ? shards_.shard_numel[param] * zero_group_->size() : model_.params[param].numel;
}

void Engine::ensure_layer_gradients(std::size_t owner) {
  if (!layer_grads_[owner].empty() || model_.owned[owner].empty()) return;
  std::int64_t total = 0;
  for (std::size_t id : model_.owned[owner]) total += layer_gradient_numel(id);
  // Zero-filled by the device: backward accumulates into it.
  layer_grads_[owner] = backend_->device().allocate(dtype_, total, MemoryTag::grads);
  std::vector<BufferView> views;
  for (std::size_t id : model_.owned[owner]) {
    views.push_back(layer_grads_[owner].view(layer_grad_offset_[id], model_.params[id].numel));
  }
  runner_->bind_gradients(owner, views);
  layer_grads_pending_[owner] = static_cast<int>(model_.owned[owner].size());
}

void Engine::gradients_ready(std::size_t layer) {
  for (std::size_t id : model_.grads_ready[layer]) {
    const ModelParam& p = model_.params[id];
    const std::int64_t at = layer_grad_offset_[id];
    if (p.group >= 0 && p.numel > 0) {
      if (stage3_) {
        stage3_grads_->add(id, layer_grads_[p.layer].view(at, layer_gradient_numel(id)));
      } else {
        reducer_->add(id, layer_grads_[p.layer].view(at, p.numel));
      }
    }
    if (--layer_grads_pending_[p.layer] == 0) {
      runner_->bind_gradients(p.layer, {});
      layer_grads_[p.layer].reset();
    }
  }
}

Activation Engine::loss_gradient(const Activation& loss) {
  // DeepSpeed scales the loss by 1/gradient_accumulation_steps so accumulated gradients average,
  // and by the loss scale in fp16.
  const double scale = loss_scale() / static_cast<double>(settings_.gradient_accumulation_steps);
  return runner_->loss_backward(loss, scale);
}

void Engine::backward(const Activation& loss) {
  // ZeRO-Offload: the boundary micro-step's reductions copy their slices to the host as they finish.
  if (host_copies_ && is_gradient_accumulation_boundary()) host_copies_->begin();
  backward_layers(loss_gradient(loss));
  runner_->release_saved();
  // Stage 1 with overlap_comm reduced from the boundary micro-step's gradient hooks.
  const bool stage1_hooks = settings_.zero_stage == 1 && settings_.zero.comm.overlap_comm;
  if (is_gradient_accumulation_boundary() && !stage1_hooks) reduce_gradients();
}

Activation Engine::backward_layers(Activation grad) {
  comm::Stream& compute = backend_->device().compute_stream();
  const bool boundary = is_gradient_accumulation_boundary();
  const bool short_lived_grads = settings_.zero_stage >= 2;
  // Stage 1 with overlap_comm reduces from the gradient hooks of the boundary micro-step, as
  // layers finish backward (DeepSpeed's process_gradients); without it, after backward. A
  // pipeline stage reduces at its ReduceGrads instruction only.
  const bool stage1_hooks =
      settings_.zero_stage == 1 && settings_.zero.comm.overlap_comm && boundary && !pipeline_stage_;
  for (std::size_t layer = runner_->layer_count(); layer-- > 0;) {
    if (short_lived_grads) {
      for (std::size_t owner : model_.owners_used[layer]) ensure_layer_gradients(owner);
    }
    if (stage3_) stage3_->before(layer, Pass::backward);
    // The forward work backward repeats, apart on the clock (LayerRunner::recompute_cost).
    const comm::ComputeCost recompute = runner_->recompute_cost(layer);
    if (recompute.flops > 0.0 || recompute.bytes_read + recompute.bytes_written > 0) {
      compute.launch(runner_->layer_name(layer) + " recompute", recompute, [] {});
    }
    launch_always(backend_->device(), compute, runner_->layer_name(layer) + " backward",
                  runner_->backward_cost(layer), [&] { grad = runner_->backward(layer, grad); });
    if (stage3_) stage3_->after(layer, Pass::backward);
    if (short_lived_grads) gradients_ready(layer);
    if (stage1_hooks) {
      for (std::size_t id : model_.grads_ready[layer]) reduce_in_place(id);
    }
  }
  if (settings_.zero_stage == 2 || stage1_hooks) reducer_->finish();
  if (stage3_grads_) stage3_grads_->finish();
  return grad;
}

void Engine::reduce_in_place(std::size_t param) {
  const ModelParam& p = model_.params[param];
  if (p.group >= 0 && p.numel > 0) reducer_->add(param, grads_.view(flat_.offset[param], p.numel));
}

std::vector<std::size_t> Engine::flat_order() const {
  std::vector<std::size_t> order;
  for (const auto& group : model_.groups) order.insert(order.end(), group.begin(), group.end());
  order.insert(order.end(), model_.ungrouped.begin(), model_.ungrouped.end());
  return order;
}

void Engine::reduce_gradients() {
  if (settings_.zero_stage == 0) {
    // engine.allreduce_gradients -> buffered_allreduce_fallback -> allreduce_no_retain: whole
    // gradients in order, a bucket all-reduced as soon as its total exceeds allreduce_bucket_size
    // (so a bucket ends with the gradient that crossed the limit). The flat order keeps each
    // bucket one contiguous range.
    const std::int64_t limit = settings_.allreduce_bucket_elements;
    std::int64_t start = 0, end = 0;
    auto reduce_range = [&] {
      if (end > start) allreduce_with_predivide(*zero_group_, grads_.view(start, end - start), averaging_of(settings_));
      start = end;
    };
    for (std::size_t id : flat_order()) {
      end = flat_.offset[id] + model_.params[id].numel;
      if (end - start > limit) reduce_range();
    }
    reduce_range();
  } else if (settings_.zero_stage == 1) {
    // reduce_gradients: parameter by parameter in flat order through the reduce buckets.
    for (std::size_t id : flat_order()) reduce_in_place(id);
    reducer_->finish();
  }
}

// ---- Step ----------------------------------------------------------------------------------------

float Engine::combine_across_ranks(float local, comm::ReduceOp op, bool over_zero_group) {
  const bool over_stages = pipeline_stage_ && settings_.mesh.pp > 1;
  if (!over_zero_group && !over_stages) return local;
  Buffer value = backend_->device().allocate(DType::f32, 1, MemoryTag::temporaries);
  if (value.has_data()) *value.data_as<float>() = local;
  if (over_zero_group) zero_group_->all_reduce(value.all(), {.reduce_op = op})->wait();
  if (over_stages) groups_->get(GroupKind::pp)->all_reduce(value.all(), {.reduce_op = op})->wait();
  return value.has_data() ? *value.data_as<float>() : 0.0f;
}

bool Engine::detect_overflow(const std::vector<BufferView>* unscale, double scale) {
  bool local = false;
  if (unscale) {
    local = unscale_and_check_overflow(*unscale, scale);
  } else {
    for (std::size_t g = 0; g < model_.groups.size(); ++g) local = local || kernels::has_inf_or_nan(compute_gradients_of_group(g));
  }
  // At stage 0 the reduced gradients are identical on every rank of the group.
  return combine_across_ranks(local ? 1.0f : 0.0f, comm::ReduceOp::max, settings_.zero_stage > 0) > 0.0f;
}

double Engine::global_norm_squared(std::span<const BufferView> grads) {
  double total = 0.0;
  for (std::size_t g = 0; g < grads.size(); ++g) {
    const BufferView& v = grads[g];
    // The group's view without the holes (tied copies counted on another stage), as one
    // multi-tensor L2 norm: fp32 sums per block of 2^16 elements added in order (DeepSpeed's
    // multi_tensor_l2norm accumulation; deterministic for any thread count).
    std::vector<BufferView> pieces;
    std::int64_t at = 0;
    for (const ElementRange& hole : norm_holes_[g]) {
      if (hole.offset > at) pieces.push_back(v.sub(at, hole.offset - at));
      at = std::max(at, hole.end());
    }
    if (at < v.numel) pieces.push_back(at == 0 ? v : v.sub(at, v.numel - at));
    const double local = kernels::squared_l2_norm(pieces);
    if (settings_.zero_stage == 0 && !pipeline_stage_) {
      total += local;
      continue;
    }
    // get_grad_norm_direct per param group: the partition's sum of squares, all-reduced in fp32
    // over the group (added in rank order), then over the pipeline's stages.
    total += static_cast<double>(
        combine_across_ranks(static_cast<float>(local), comm::ReduceOp::sum, settings_.zero_stage > 0));
  }
  return total;
}

void Engine::apply_step(const std::vector<BufferView>& grads, double scale_of_gradients, double unscaled_by) {
  comm::Device& device = backend_->device();
  // Unscale and clip as DeepSpeed's unscale_and_clip_grads: the norm is of the scaled gradients
  // and reported divided by the scale they were computed with; the unscaling and the clip
  // coefficient use the scale as already updated for the next step (on a step where the dynamic
  // scale grows, DeepSpeed divides by the doubled scale: reproduced). Gradients the overflow check
  // already divided by `unscaled_by` (a power of two) give the scaled norm times it, exactly.
  const double scale = loss_scale();
  const double scaled_norm = std::sqrt(global_norm_squared(grads)) * unscaled_by;
  const double reported = scaled_norm / scale_of_gradients;
  last_gradient_norm_ = std::isfinite(reported) ? reported : -1.0;
  const double norm = scaled_norm / scale;
  double combined = scale;
  if (settings_.gradient_clipping > 0.0) {
    const double clip = (norm + 1e-6) / settings_.gradient_clipping;
    if (clip > 1.0) combined = clip * scale;
  }
  finish_unscale_and_clip(grads, unscaled_by, combined);
  std::int64_t n = 0;
  for (const auto& v : grads) n += v.numel;
  // The optimizer reads parameters, gradients and two moments and writes three of them back
  // (Adam's traffic; the kernels issue gives each optimizer its own cost).
  // Offloaded, DeepSpeedCPUAdam runs it on the host's CPU (memory-bound: the same 28 bytes a
  // parameter).
  comm::Device& runs_on = optimizer_device();
  launch_always(runs_on, runs_on.compute_stream(), "optimizer step",
                {.op_class = comm::OpClass::optimizer, .flops = 12.0 * static_cast<double>(n), .bytes_read = 16 * n,
                 .bytes_written = 12 * n},
                [&] { optimizer_->step(); });
  if (master_.empty()) return;
  if (offload_) {
    parameters_from_host();
  } else {
    // The updated fp32 master weights back into the compute-dtype parameters.
    for (std::size_t g = 0; g < model_.groups.size(); ++g) {
      BufferView dst = compute_parameters_of_group(g);
      BufferView src = master_.view(master_offset_[g], dst.numel);
      device.compute_stream().launch("copy master to params", comm::copy_cost(dst.bytes()),
                                     [&] { kernels::copy(dst, src); });
    }
  }
  if (stage3_) stage3_->refresh_persistent();
  if (settings_.zero_stage == 1 || settings_.zero_stage == 2) {
    // DeepSpeed 0.19.6 all-gathers each group's whole flat buffer once (all_gather_dp_groups).
    for (std::size_t g = 0; g < model_.groups.size(); ++g) {
      const FlatGroupRegion& region = flat_.groups[g];
      if (region.layout.padded_numel == 0) continue;
      zero_group_->all_gather(compute_parameters_of_group(g), params_.view(region.base, region.layout.padded_numel))->wait();
    }
  }
}

comm::Device& Engine::optimizer_device() { return offload_ ? backend_->host() : backend_->device(); }

void Engine::allocate_master(std::int64_t numel) {
  master_ = optimizer_device().allocate(master_dtype_, numel, MemoryTag::master_params);
  if (offload_) host_grads_ = backend_->host().allocate(master_dtype_, numel, MemoryTag::grads);
}

std::vector<BufferView> Engine::gradients_to_host() {
  // DeepSpeed's offload path: the reduced 16-bit (or fp32) partition crosses PCIe as it is and is
  // converted on the CPU (convert_grad_on_cpu), into the fp32 gradient partition kept in pinned
  // host memory. Engine::backward started the copies bucket by bucket; this copies the rest and
  // makes the CPU wait for them (engine/zero/offload_grads.hpp).
  return host_copies_->finish();
}

ElementRange Engine::partition_range_of(const ReducedRange& r) const {
  const auto g = static_cast<std::size_t>(model_.params[r.param].group);
  if (stage3_) return {shards_.offset[r.param] - shards_.groups[g].offset + r.offset, r.numel};
  return {flat_.offset[r.param] + r.offset - flat_.groups[g].partition(r.rank).offset, r.numel};
}

void Engine::copy_reduced_to_host(comm::Stream& stream, std::span<const ReducedRange> ranges) {
  if (!host_copies_->started()) return;
  std::vector<GradientsToHost::Range> mine;
  std::vector<GradientsToHost::Owned> every_rank;
  for (const ReducedRange& r : ranges) {
    const auto g = static_cast<std::size_t>(model_.params[r.param].group);
    if (r.rank == zero_group_->rank()) mine.push_back({g, partition_range_of(r)});
    every_rank.push_back({g, r.rank, r.numel});
  }
  host_copies_->copy(stream, mine, every_rank);
}

void Engine::parameters_from_host() {
  // The updated master weights back into the compute-dtype parameters: cast on the CPU, copied
  // host-to-device on the copy stream; the device's compute waits for them (ZeRO 1-2 all-gather
  // them next; ZeRO 3 gathers them on use).
  comm::Device& device = backend_->device();
  comm::Device& host = backend_->host();
  comm::Stream& copies = device.comm_stream("copy");
  comm::Stream& cpu = host.compute_stream();
  for (std::size_t g = 0; g < model_.groups.size(); ++g) {
    BufferView dst = compute_parameters_of_group(g);
    BufferView master = master_.view(master_offset_[g], dst.numel);
    if (dtype_ == master_dtype_) {
      copies.wait(*cpu.record());
      device.copy(dst, master, copies);
      continue;
    }
    Buffer staging = host.allocate(dtype_, dst.numel, MemoryTag::temporaries);
    cpu.launch("master to params", comm::copy_cost(dst.bytes()), [&] { kernels::copy(staging.all(), master); });
    copies.wait(*cpu.record());
    device.copy(dst, staging.all(), copies);
    // The staging buffer is released below: the copy must be done with it (CUDA would record an
    // event; every backend's copy has run when this returns).
    copies.synchronize();
  }
  device.compute_stream().wait(*copies.record());
}

void Engine::zero_gradients() { kernels::fill_zero(grads_.all()); }

void Engine::step() {
  if (is_gradient_accumulation_boundary()) optimizer_step();
  ++micro_steps_;
}

void Engine::reduce_tied_gradients() {
  // DeepSpeed's allreduce_tied_weight_gradients: a plain sum over the tie group.
  for (const TieGroup& tie : ties_) {
    if (!tie.group) continue;
    for (std::size_t id : tie.params) tie.group->all_reduce(flat_view(grads_, id))->wait();
  }
}

void Engine::create_tie_groups() {
  if (!pipeline_stage_) return;
  const DeviceMesh& mesh = groups_->mesh();
  const int me = backend_->rank();
  for (const PipelineStageParts::Tie& tie : pipeline_stage_->ties) {
    TieGroup mine{.group = nullptr, .params = tie.params};
    // One group per pipeline (pp group), collectively, in mesh order.
    for (const std::vector<int>& pipeline : mesh.groups(GroupKind::pp)) {
      std::vector<int> ranks;
      for (int s : tie.stages) ranks.push_back(pipeline.at(static_cast<std::size_t>(s)));
      comm::CommPtr group = backend_->new_group(ranks, "pp-tied");
      if (std::find(ranks.begin(), ranks.end(), me) != ranks.end()) mine.group = std::move(group);
    }
    if (mine.group && mine.params.empty()) {
      throw Error("a tie lists this rank's stage but names none of its parameters");
    }
    ties_.push_back(std::move(mine));
  }
}

std::vector<BufferView> Engine::master_dtype_gradients(std::vector<Buffer>& storage) {
  if (offload_) return gradients_to_host();
  storage.reserve(model_.groups.size());  // views below point at these Buffers: no reallocation
  std::vector<BufferView> grads;
  for (std::size_t g = 0; g < model_.groups.size(); ++g) {
    BufferView compute = compute_gradients_of_group(g);
    if (dtype_ == master_dtype_) {
      grads.push_back(compute);
      continue;
    }
    // The master-dtype gradients of a mixed-precision step live only during the step.
    storage.push_back(backend_->device().allocate(master_dtype_, compute.numel, MemoryTag::grads));
    BufferView dst = storage.back().all();
    backend_->device().compute_stream().launch("grads to fp32", comm::copy_cost(compute.bytes()),
                                               [&] { kernels::copy(dst, compute); });
    grads.push_back(dst);
  }
  return grads;
}

void Engine::optimizer_step() {
  if (!optimizer_) {
    throw ConfigError("optimizer", "", "step() needs an optimizer: pass one to initialize() or add an \"optimizer\" section");
  }
  const bool check = settings_.fp16 || (settings_.bf16 && settings_.bf16_config.check_grad_overflow);
  const double scale_of_gradients = loss_scale();
  // The one place that decides whether the overflow check also unscales (one pass,
  // engine/precision/unscale.hpp): then the master-dtype gradients exist before the check.
  const bool fused = check && fused_unscale_is_exact(scale_of_gradients, dtype_, master_dtype_);
  std::vector<Buffer> fp32;  // the master-dtype gradients of a mixed-precision step, on the device
  std::vector<BufferView> grads;
  if (fused) grads = master_dtype_gradients(fp32);
  const bool overflow = check && detect_overflow(fused ? &grads : nullptr, scale_of_gradients);
  bool skipped = false;
  if (scaler_) {
    skipped = scaler_->update(overflow);
  } else {
    skipped = bf16_step_skipped(settings_.bf16_config, overflow);
  }
  const StepOutcome outcome = tracker_.record_step(skipped);
  if (!skipped) {
    if (!fused) grads = master_dtype_gradients(fp32);
    if (!offload_ && dtype_ != master_dtype_) optimizer_->bind_gradients(grads);
    apply_step(grads, scale_of_gradients, fused ? scale_of_gradients : 1.0);
  } else if (host_copies_) {
    host_copies_->abandon();  // the copies backward started are not used
  }
  last_step_skipped_ = skipped;
  zero_gradients();
  if (scheduler_ && outcome.lr_scheduler_stepped) scheduler_->step();
  global_samples_ += settings_.train_batch_size;
}

std::vector<double> Engine::get_lr() const {
  std::vector<double> lrs;
  if (!optimizer_) return lrs;
  for (const auto& group : optimizer_->param_groups()) lrs.push_back(group.lr);
  return lrs;
}

std::vector<float> Engine::full_parameters() {
  comm::Device& device = backend_->device();
  if (!device.has_data()) return {};
  std::vector<float> out;
  const int n = zero_group_->size();
  for (std::size_t id = 0; id < model_.params.size(); ++id) {
    const std::int64_t numel = model_.params[id].numel;
    Buffer value = device.allocate(DType::f32, numel, MemoryTag::temporaries);
    if (stage3_) {
      const std::int64_t shard = shards_.shard_numel[id];
      if (shard == 0) continue;
      Buffer full = device.allocate(dtype_, shard * n, MemoryTag::temporaries);
      zero_group_->all_gather(params_.view(shards_.offset[id], shard), full.all())->wait();
      kernels::copy(value.all(), full.view(0, numel));
    } else {
      kernels::copy(value.all(), params_.view(flat_.offset[id], numel));
    }
    const float* v = value.data_as<float>();
    out.insert(out.end(), v, v + numel);
  }
  return out;
}

}  // namespace twinspeed
