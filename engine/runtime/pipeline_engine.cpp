#include "engine/runtime/pipeline_engine.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/core/errors.hpp"
#include "engine/pipeline/partition_layers.hpp"

namespace twinspeed {

using pipeline::Instruction;
using pipeline::OpKind;

namespace {

std::vector<LayerInfo> layer_infos(const LayerRunner& model) {
  std::vector<LayerInfo> infos;
  for (std::size_t layer = 0; layer < model.layer_count(); ++layer) {
    std::int64_t count = 0;
    for (const ParamSpec& p : model.parameters(layer)) count += p.numel();
    infos.push_back({.type_name = model.layer_name(layer), .parameters = count});
  }
  return infos;
}

// The tied weights and the norm's exclusions of one stage (find_ties is the same on every rank).
PipelineStageParts stage_parts(const pipeline::StageRunner& runner, std::span<const std::int64_t> parts, int stage) {
  PipelineStageParts out;
  for (const pipeline::ModelTie& tie : pipeline::find_ties(runner.model(), parts)) {
    PipelineStageParts::Tie t{.stages = tie.stages, .params = {}};
    if (std::find(tie.stages.begin(), tie.stages.end(), stage) != tie.stages.end()) {
      const std::size_t layer = runner.stage_layer(tie.owner);
      for (std::size_t index : tie.indices) t.params.push_back(runner.parameter_id(layer, index));
      // DeepSpeed's ds_pipe_replicated: the tied module counts once in the norm, on its first stage.
      if (stage != tie.stages.front()) {
        const std::size_t count = runner.parameters(layer).size();
        for (std::size_t index = 0; index < count; ++index) out.norm_excluded.push_back(runner.parameter_id(layer, index));
      }
    }
    out.ties.push_back(std::move(t));
  }
  return out;
}

std::string meta_key(int from, int to, bool activation) {
  return fmt::format("pipe/meta/{}->{}/{}", from, to, activation ? "activation" : "grad");
}

}  // namespace

struct PipelineEngine::Buffers {
  explicit Buffers(int n)
      : inputs(static_cast<std::size_t>(n)), labels(inputs.size()), outputs(inputs.size()), losses(inputs.size()),
        grads(inputs.size()), input_grads(inputs.size()) {}
  std::vector<Activation> inputs, labels, outputs, losses, grads, input_grads;
  double loss_sum = 0.0;
  int loss_count = 0;
};

PipelineEngine::PipelineEngine(PipelineParts parts)
    : backend_(std::move(parts.backend)), settings_(std::move(parts.settings)) {
  if (!backend_) throw Error("PipelineEngine: no backend");
  if (!parts.module.model) throw Error("PipelineEngine: the PipelineModule has no layers");
  if (settings_.zero_stage >= 2) {
    // DeepSpeed 0.19.6 PipelineEngine.__init__'s assertion.
    throw ConfigError("zero_optimization.stage", std::to_string(settings_.zero_stage),
                      "ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism");
  }
  const DeviceMesh mesh(settings_.mesh);
  if (mesh.world() != backend_->world_size()) {
    throw ConfigError("world", std::to_string(backend_->world_size()),
                      fmt::format("{} pipeline stages do not divide the {} backend's {} ranks ({})", settings_.mesh.pp,
                                  backend_->name(), backend_->world_size(), describe_dp_derivation(settings_.mesh)));
  }
  stage_ = mesh.coord_of(backend_->rank()).pp;
  const std::vector<LayerInfo> infos = layer_infos(*parts.module.model);
  parts_ = partition_layers(parts.module.partition_method, infos, settings_.mesh.pp);
  runner_ = std::make_shared<pipeline::StageRunner>(parts.module.model, parts_, stage_);
  EngineParts engine_parts{.backend = backend_,
                           .settings = settings_,
                           .runner = runner_,
                           .param_groups = {},
                           .optimizer_factory = std::move(parts.optimizer_factory),
                           .scheduler = std::move(parts.scheduler),
                           .scheduler_factory = std::move(parts.scheduler_factory),
                           .pipeline_stage = stage_parts(*runner_, parts_, stage_)};
  core_ = std::make_unique<Engine>(std::move(engine_parts));
  pp_ = core_->group(GroupKind::pp);
  dp_ = core_->group(GroupKind::dp);
}

PipelineEngine::~PipelineEngine() = default;

std::int64_t PipelineEngine::Meta::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

void PipelineEngine::forward() const {
  throw UsageError("Only train_batch() and eval_batch() are accessible in pipeline mode: forward() runs inside them");
}
void PipelineEngine::backward() const {
  throw UsageError("Only train_batch() and eval_batch() are accessible in pipeline mode: backward() runs inside train_batch()");
}
void PipelineEngine::step() const {
  throw UsageError("Only train_batch() and eval_batch() are accessible in pipeline mode: step() runs inside train_batch()");
}

double PipelineEngine::train_batch(const MicroBatchSource& data) {
  const pipeline::TrainSchedule schedule(static_cast<int>(micro_batches()), num_stages(), stage_);
  return run(schedule, data);
}

double PipelineEngine::eval_batch(const MicroBatchSource& data) {
  const pipeline::InferenceSchedule schedule(static_cast<int>(micro_batches()), num_stages(), stage_);
  const double loss = run(schedule, data);
  core_->release_saved();
  return loss;
}

double PipelineEngine::run(const pipeline::Schedule& schedule, const MicroBatchSource& data) {
  Buffers buffers(schedule.num_buffers());
  TraceRecorder& tracer = backend_->tracer();
  const std::int64_t step = core_->global_steps();
  for (int id = 0; id < schedule.num_steps(); ++id) {
    for (const Instruction& instruction : schedule.step(id)) {
      tracer.set_context({.step = step,
                          .micro_batch = instruction.micro_batch,
                          .stage = stage_,
                          .instruction = std::string(pipeline::op_name(instruction.op))});
      execute(instruction, buffers, data);
    }
  }
  tracer.set_context({.step = core_->global_steps(), .micro_batch = -1, .stage = stage_, .instruction = {}});
  return aggregate_loss(buffers.loss_sum, buffers.loss_count);
}

void PipelineEngine::execute(const Instruction& instruction, Buffers& b, const MicroBatchSource& data) {
  const auto i = static_cast<std::size_t>(instruction.buffer);
  switch (instruction.op) {
    case OpKind::LoadMicroBatch: {
      MicroBatch batch = data();
      if (is_first_stage()) b.inputs[i] = std::move(batch.inputs);
      if (is_last_stage()) b.labels[i] = std::move(batch.labels);
      break;
    }
    case OpKind::ForwardPass: {
      Activation y = core_->forward_layers(b.inputs[i]);
      b.inputs[i] = {};
      if (is_last_stage()) {
        b.losses[i] = core_->loss(y, b.labels[i]);
        b.labels[i] = {};
        b.loss_sum += runner_->scalar(b.losses[i]);
        ++b.loss_count;
      } else {
        b.outputs[i] = std::move(y);
      }
      break;
    }
    case OpKind::BackwardPass: {
      Activation grad = is_last_stage() ? core_->loss_gradient(b.losses[i]) : std::move(b.grads[i]);
      b.losses[i] = b.grads[i] = {};
      Activation dx = core_->backward_layers(std::move(grad));
      if (!is_first_stage()) b.input_grads[i] = std::move(dx);
      break;
    }
    case OpKind::SendActivation:
      send(b.outputs[i], stage_ + 1, /*activation=*/true);
      b.outputs[i] = {};
      break;
    case OpKind::RecvActivation: b.inputs[i] = receive(stage_ - 1, /*activation=*/true); break;
    case OpKind::SendGrad:
      send(b.input_grads[i], stage_ - 1, /*activation=*/false);
      b.input_grads[i] = {};
      break;
    case OpKind::RecvGrad: b.grads[i] = receive(stage_ + 1, /*activation=*/false); break;
    case OpKind::ReduceTiedGrads: core_->reduce_tied_gradients(); break;
    case OpKind::ReduceGrads: core_->reduce_gradients(); break;
    case OpKind::OptimizerStep: core_->optimizer_step(); break;
  }
}

void PipelineEngine::send(const Activation& value, int peer, bool activation) {
  if (value.empty()) {
    throw Error(fmt::format("stage {}: nothing to send to stage {} (the stage's layers returned no {})", stage_, peer,
                            activation ? "activation" : "input gradient"));
  }
  comm::Device& device = backend_->device();
  const std::vector<std::int64_t> shape = value.shape();
  const DType dtype = runner_->activation_dtype(value);
  if (activation && !sent_meta_) {
    // DeepSpeed's _send_tensor_meta, once: the receiver allocates from it ever after.
    std::vector<std::uint8_t> bytes(sizeof(std::int64_t) * (shape.size() + 1));
    const std::int64_t code = static_cast<std::int64_t>(dtype);
    std::memcpy(bytes.data(), &code, sizeof code);
    if (!shape.empty()) std::memcpy(bytes.data() + sizeof code, shape.data(), sizeof(std::int64_t) * shape.size());
    backend_->store().set(meta_key(backend_->rank(), pp_->global_ranks()[static_cast<std::size_t>(peer)], true), std::move(bytes));
    sent_meta_ = Meta{shape, dtype};
  }
  const Meta& expected = activation ? *sent_meta_ : received_meta_.value();
  if (shape != expected.shape || dtype != expected.dtype) {
    throw Error(fmt::format("stage {}: {} of shape [{}] {} differs from the first one, [{}] {} (shapes are exchanged once)",
                            stage_, activation ? "activation" : "gradient", fmt::join(shape, ", "), dtype_name(dtype),
                            fmt::join(expected.shape, ", "), dtype_name(expected.dtype)));
  }
  Buffer buffer = device.allocate(dtype, expected.numel(), MemoryTag::activations);
  if (buffer.has_data()) runner_->write_activation(value, buffer.all());
  const comm::P2POp op{.kind = comm::P2POp::Kind::send, .buffer = buffer.all(), .peer = peer, .tag = 0};
  pp_->batch_p2p({&op, 1})->wait();
}

Activation PipelineEngine::receive(int peer, bool activation) {
  if (activation && !received_meta_) {
    const std::vector<std::uint8_t> bytes =
        backend_->store().get(meta_key(pp_->global_ranks()[static_cast<std::size_t>(peer)], backend_->rank(), true),
                              comm::kDefaultCommTimeout);
    std::int64_t code = 0;
    std::memcpy(&code, bytes.data(), sizeof code);
    std::vector<std::int64_t> shape((bytes.size() - sizeof code) / sizeof(std::int64_t));
    if (!shape.empty()) std::memcpy(shape.data(), bytes.data() + sizeof code, sizeof(std::int64_t) * shape.size());
    received_meta_ = Meta{std::move(shape), static_cast<DType>(code)};
  }
  const Meta& meta = activation ? *received_meta_ : sent_meta_.value();
  Buffer buffer = backend_->device().allocate(meta.dtype, meta.numel(), MemoryTag::activations);
  const comm::P2POp op{.kind = comm::P2POp::Kind::recv, .buffer = buffer.all(), .peer = peer, .tag = 0};
  pp_->batch_p2p({&op, 1})->wait();
  return runner_->read_activation(buffer.all(), meta.shape);
}

double PipelineEngine::aggregate_loss(double sum, int count) {
  comm::Device& device = backend_->device();
  Buffer loss = device.allocate(DType::f32, 1, MemoryTag::temporaries);
  if (is_last_stage()) {
    if (loss.has_data()) *loss.data_as<float>() = static_cast<float>(sum / std::max(count, 1));
    if (dp_ != nullptr && dp_->size() > 1) {
      dp_->all_reduce(loss.all())->wait();
      if (loss.has_data()) *loss.data_as<float>() /= static_cast<float>(dp_->size());
    }
  }
  if (num_stages() > 1) pp_->broadcast(loss.all(), num_stages() - 1)->wait();
  return loss.has_data() ? static_cast<double>(*loss.data_as<float>()) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace twinspeed
