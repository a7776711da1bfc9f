// The LibTorch-facing API of <twinspeed/torch.hpp>: models, datasets, the dataloader, the engine
// facade and initialize().

#include <fmt/format.h>

#include <algorithm>

#include <twinspeed/torch.hpp>

#include "engine/model/torch_layer_runner.hpp"
#include "engine/runtime/distributed_sampler.hpp"
#include "engine/runtime/torch_optimizer.hpp"

namespace twinspeed {

Model::Model(torch::nn::Sequential sequential, LossFn loss) : loss_fn(std::move(loss)) {
  // Sequential keeps its children as AnyModules already.
  std::size_t i = 0;
  for (const torch::nn::AnyModule& child : *sequential) layers.push_back(Layer{std::to_string(i++), child});
}

TensorDataset::TensorDataset(torch::Tensor inputs, torch::Tensor labels)
    : inputs_(std::move(inputs)), labels_(std::move(labels)) {
  if (inputs_.dim() == 0 || labels_.dim() == 0 || inputs_.size(0) != labels_.size(0)) {
    throw Error(fmt::format("TensorDataset: inputs {} and labels {} must have the same first dimension",
                            shape_string(inputs_.sizes()), shape_string(labels_.sizes())));
  }
}

Batch default_collate(const std::vector<Example>& examples) {
  std::vector<torch::Tensor> inputs, labels;
  for (const auto& e : examples) {
    inputs.push_back(e.input);
    labels.push_back(e.label);
  }
  return {torch::stack(inputs), torch::stack(labels)};
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, std::vector<std::vector<std::int64_t>> batches,
                       CollateFn collate)
    : dataset_(std::move(dataset)), batches_(std::move(batches)), collate_(std::move(collate)) {
  if (!collate_) collate_ = default_collate;
}

Batch DataLoader::batch(std::size_t i) const {
  std::vector<Example> examples;
  for (std::int64_t index : batches_.at(i)) examples.push_back(dataset_->get(index));
  return collate_(examples);
}

Batch& DataLoader::iterator::operator*() {
  if (!current_) current_ = loader_->batch(i_);
  return *current_;
}

namespace {

constexpr const char* kPipelineOnly = "Only train_batch() and eval_batch() are accessible in pipeline mode";

}  // namespace

TorchEngine::TorchEngine(std::shared_ptr<PipelineEngine> pipeline, Config config)
    : pipeline_(std::move(pipeline)),
      core_(std::shared_ptr<Engine>(pipeline_, &pipeline_->core())),
      config_(std::move(config)) {}

PipelineEngine& TorchEngine::pipeline() {
  if (!pipeline_) throw UsageError("this engine trains a plain model: use forward(), backward() and step()");
  return *pipeline_;
}

namespace {

MicroBatchSource micro_batches_of(const std::function<Batch()>& data) {
  return [&data] {
    Batch b = data();
    return MicroBatch{wrap_tensor(b.inputs), wrap_tensor(b.labels)};
  };
}

}  // namespace

torch::Tensor TorchEngine::train_batch(const std::function<Batch()>& data) {
  if (!pipeline_) throw UsageError("train_batch() runs a PipelineModule; this engine trains with forward(), backward() and step()");
  return torch::tensor(pipeline_->train_batch(micro_batches_of(data)), torch::kFloat32);
}

torch::Tensor TorchEngine::eval_batch(const std::function<Batch()>& data) {
  if (!pipeline_) throw UsageError("eval_batch() runs a PipelineModule; this engine evaluates with forward()");
  return torch::tensor(pipeline_->eval_batch(micro_batches_of(data)), torch::kFloat32);
}

torch::Tensor TorchEngine::forward(const Batch& batch) {
  if (pipeline_) throw UsageError(kPipelineOnly);
  last_loss_ = core_->forward(wrap_tensor(batch.inputs), wrap_tensor(batch.labels));
  last_loss_tensor_ = unwrap_tensor(last_loss_);
  return last_loss_tensor_;
}

void TorchEngine::backward(const torch::Tensor& loss) {
  if (pipeline_) throw UsageError(kPipelineOnly);
  if (!last_loss_tensor_.defined() || !loss.is_same(last_loss_tensor_)) {
    throw Error("backward() takes the loss returned by the last forward()");
  }
  core_->backward(last_loss_);
  last_loss_ = {};
  last_loss_tensor_ = torch::Tensor();
}

void TorchEngine::step() {
  if (pipeline_) throw UsageError(kPipelineOnly);
  core_->step();
}

ConfigSource ConfigSource::from_text(std::string json_text) {
  ConfigSource source;
  source.json_.reset();
  source.text_ = std::move(json_text);
  return source;
}

Config ConfigSource::resolve(const LoadOptions& options) const {
  if (config_) return *config_;
  if (path_) return Config::load(*path_, options);
  if (text_) return Config::parse(*text_, options, "<config text>");
  return Config::from_json(json_ ? *json_ : nlohmann::json::object(), options);
}

namespace {

// model_parameters as indices into the runner's parameter order (tensors matched by identity).
std::vector<ParamGroupSpec> param_group_specs(const std::vector<ParamGroup>& groups,
                                              const std::vector<torch::Tensor>& parameters) {
  std::vector<ParamGroupSpec> specs;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    ParamGroupSpec spec{.parameters = {}, .lr = groups[g].lr, .weight_decay = groups[g].weight_decay};
    for (const auto& tensor : groups[g].params) {
      auto it = std::find_if(parameters.begin(), parameters.end(),
                             [&](const torch::Tensor& p) { return p.is_same(tensor); });
      if (it == parameters.end()) {
        throw Error(fmt::format("model_parameters group {} holds a tensor of shape {} that is not a parameter of the model",
                                g, shape_string(tensor.sizes())));
      }
      spec.parameters.push_back(static_cast<std::size_t>(it - parameters.begin()));
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

std::shared_ptr<DataLoader> make_dataloader(const InitializeArgs& args, const Config& config, int dp_rank);

// What initialize() returns around a built engine: the rank's dataloader and the core's optimizer
// and scheduler.
Initialized initialized(std::shared_ptr<TorchEngine> engine, const InitializeArgs& args, int rank) {
  const Config& config = engine->config();
  const int dp_rank = DeviceMesh(config.mesh()).coord_of(rank).dp;
  Engine& core = engine->core();
  return {.engine = engine,
          .optimizer = core.shared_optimizer(),
          .training_dataloader = make_dataloader(args, config, dp_rank),
          .lr_scheduler = core.shared_lr_scheduler()};
}

std::shared_ptr<DataLoader> make_dataloader(const InitializeArgs& args, const Config& config, int dp_rank) {
  if (!args.training_data) return nullptr;
  const std::int64_t n = args.training_data->size();
  // DistributedSampler(shuffle=True, seed=0): torch.randperm(n) from a generator seeded 0 + epoch;
  // DeepSpeed never calls set_epoch, so every epoch reads epoch 0's order.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(/*seed_in=*/0);
  torch::Tensor permutation = torch::randperm(n, generator, torch::TensorOptions().dtype(torch::kInt64));
  std::vector<std::int64_t> order(permutation.data_ptr<std::int64_t>(), permutation.data_ptr<std::int64_t>() + n);
  auto indices = distributed_sampler_indices(order, config.mesh().dp, dp_rank);
  auto batches =
      micro_batches(indices, config.batch().train_micro_batch_size_per_gpu, config.dataloader_drop_last());
  return std::make_shared<DataLoader>(args.training_data, std::move(batches), args.collate_fn);
}

Initialized initialize_pipeline(const InitializeArgs& args, const PipelineModule& module,
                                std::shared_ptr<comm::Backend> backend, Config config) {
  if (args.optimizer || args.optimizer_factory || !args.model_parameters.empty()) {
    throw NotImplemented("a PipelineModule trains with the config's optimizer (a client optimizer or model_parameters "
                         "would have to be split by stage)");
  }
  if (module.layers.empty()) throw ConfigError("model", "PipelineModule", "has no layers");
  TorchRunnerOptions runner_options;
  if (module.activation_checkpoint_interval > 0) runner_options.recompute.assign(module.layers.size(), true);
  auto runner = std::make_shared<TorchLayerRunner>(module.layers, module.loss_fn, std::move(runner_options));
  auto pipeline = std::make_shared<PipelineEngine>(PipelineParts{
      .backend = backend,
      .settings = engine_settings_from(config),
      .module = {.model = runner, .partition_method = module.partition_method},
      .optimizer_factory = {},
      .scheduler = args.lr_scheduler,
      .scheduler_factory = args.lr_scheduler_factory});
  return initialized(std::make_shared<TorchEngine>(pipeline, std::move(config)), args, backend->rank());
}

}  // namespace

Initialized initialize(InitializeArgs args) {
  // The process group comes first: like DeepSpeed, the world size is the backend's.
  std::shared_ptr<comm::Backend> backend =
      comm::create_backend(args.backend, {.rank = -1, .world_size = -1, .settings_json = args.backend_settings});
  LoadOptions options = args.load_options;
  options.world = backend->world_size();
  // DeepSpeed takes the stages from PipelineModule(num_stages=...).
  if (const auto* module = std::get_if<PipelineModule>(&args.model); module != nullptr && module->num_stages > 0) {
    options.pp = module->num_stages;
  }
  if (args.mesh_param) options.sp = args.mesh_param->second;
  Config config = args.config.resolve(options);
  if (args.mesh_param) {
    // deepspeed.initialize(mesh_param=(dp, sp)) must agree with the config's mesh.
    DeviceMesh requested = DeviceMesh::from_mesh_param(config.mesh().world(), args.mesh_param->first,
                                                       args.mesh_param->second);
    if (requested.shape() != config.mesh()) {
      throw ConfigError("mesh_param", fmt::format("({}, {})", args.mesh_param->first, args.mesh_param->second),
                        fmt::format("disagrees with the config's mesh: {}", describe_dp_derivation(config.mesh())));
    }
  }

  // Routing, as deepspeed.initialize does it.
  if (auto* module = std::get_if<PipelineModule>(&args.model)) return initialize_pipeline(args, *module, backend, std::move(config));
  if (config.hybrid_engine().enabled) {
    throw NotImplemented("hybrid_engine.enabled routes to the HybridEngine, which twinspeed does not implement yet");
  }

  Model& model = std::get<Model>(args.model);
  auto runner = std::make_shared<TorchLayerRunner>(model.layers, model.loss_fn);
  const std::vector<torch::Tensor> parameters = runner->all_parameters();
  EngineParts parts{.backend = backend,
                    .settings = engine_settings_from(config),
                    .runner = runner,
                    .param_groups = param_group_specs(args.model_parameters, parameters)};
  if (args.optimizer) {
    parts.optimizer_factory = [opt = args.optimizer](comm::Device&, std::span<const FlatParamGroup> groups) {
      return std::make_unique<TorchOptimizer>(opt, groups);
    };
  } else if (args.optimizer_factory) {
    for (const auto& group : args.model_parameters) {
      if (group.lr || group.weight_decay) {
        throw ConfigError("model_parameters", "",
                          "per-group lr / weight_decay apply to the config's optimizer; an optimizer factory "
                          "receives plain tensors, so build the groups in the factory instead");
      }
    }
    std::vector<torch::Tensor> given = parameters;
    if (!args.model_parameters.empty()) {
      given.clear();
      for (const auto& group : args.model_parameters) given.insert(given.end(), group.params.begin(), group.params.end());
    }
    parts.optimizer_factory = [factory = args.optimizer_factory, given](comm::Device&,
                                                                        std::span<const FlatParamGroup> groups) {
      return std::make_unique<TorchOptimizer>(factory(given), groups);
    };
  }
  parts.scheduler = args.lr_scheduler;
  parts.scheduler_factory = args.lr_scheduler_factory;

  auto core = std::make_shared<Engine>(std::move(parts));
  return initialized(std::make_shared<TorchEngine>(core, std::move(config)), args, backend->rank());
}

}  // namespace twinspeed
