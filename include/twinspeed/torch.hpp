#pragma once
// twinspeed's LibTorch-facing API: deepspeed.initialize() for torch modules, optimizers and
// datasets. Include this only where you use LibTorch; <twinspeed/engine.hpp> is LibTorch-free.
//
//   auto config = twinspeed::Config::load("configs/zero0_fp32.json");
//   auto [engine, optimizer, loader, scheduler] =
//       twinspeed::initialize({.model = model, .config = config, .training_data = dataset});
//   for (auto& batch : *loader) {
//     auto loss = engine->forward(batch);
//     engine->backward(loss);
//     engine->step();
//   }

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <twinspeed/engine.hpp>

namespace twinspeed {

// One layer of a model: the unit of ZeRO-3 gathering, activation checkpointing and pipeline
// partitioning.
struct Layer {
  std::string name;
  torch::nn::AnyModule module;
};

template <typename ModuleHolder>
Layer layer(ModuleHolder module, std::string name = {}) {
  return Layer{std::move(name), torch::nn::AnyModule(std::move(module))};
}

// (output, labels) -> scalar loss.
using LossFn = std::function<torch::Tensor(const torch::Tensor& output, const torch::Tensor& labels)>;

// A model is an ordered list of layers, optionally followed by a loss function; without one, the
// last layer must return the scalar loss.
struct Model {
  std::vector<Layer> layers;
  LossFn loss_fn;

  Model() = default;
  Model(std::vector<Layer> layers_, LossFn loss = {}) : layers(std::move(layers_)), loss_fn(std::move(loss)) {}
  // Each child of a Sequential becomes a layer named after its index.
  Model(torch::nn::Sequential sequential, LossFn loss = {});
};

// A model split into pipeline stages (DeepSpeed's PipelineModule): initialize() routes it to the
// PipelineEngine, whose engine trains with train_batch(). A layer that uses another layer's
// parameter (a tied LM head) is tied across stages as DeepSpeed's TiedLayerSpec is.
struct PipelineModule {
  std::vector<Layer> layers;
  // 0: the config's pipeline.stages (twinspeed extension); DeepSpeed takes it from here only.
  int num_stages = 0;
  LossFn loss_fn;
  // "parameters" (DeepSpeed's default), "uniform" or "type:REGEX" over layer names.
  std::string partition_method = "parameters";
  // > 0: every layer recomputes its forward in backward (DeepSpeed checkpoints every
  // `interval` layers; twinspeed checkpoints each layer).
  int activation_checkpoint_interval = 0;
};

struct Example {
  torch::Tensor input;
  torch::Tensor label;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::int64_t size() const = 0;
  virtual Example get(std::int64_t index) const = 0;
};

// Rows of inputs paired with rows of labels (torch.utils.data.TensorDataset).
class TensorDataset final : public Dataset {
 public:
  TensorDataset(torch::Tensor inputs, torch::Tensor labels);
  std::int64_t size() const override { return inputs_.size(0); }
  Example get(std::int64_t index) const override { return {inputs_[index], labels_[index]}; }

 private:
  torch::Tensor inputs_, labels_;
};

struct Batch {
  torch::Tensor inputs;
  torch::Tensor labels;
};

// Builds a micro-batch from examples. The default stacks inputs and labels along a new dim 0.
using CollateFn = std::function<Batch(const std::vector<Example>&)>;
Batch default_collate(const std::vector<Example>& examples);

// DeepSpeed's dataloader: DistributedSampler order (seed 0, the same every epoch), micro-batches of
// train_micro_batch_size_per_gpu, dataloader_drop_last honoured. Iterating runs one epoch.
class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, std::vector<std::vector<std::int64_t>> batches, CollateFn collate);
  std::size_t size() const { return batches_.size(); }
  Batch batch(std::size_t i) const;

  class iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    iterator(const DataLoader* loader, std::size_t i) : loader_(loader), i_(i) {}
    Batch& operator*();
    iterator& operator++() {
      ++i_;
      current_.reset();
      return *this;
    }
    bool operator==(const iterator& other) const { return i_ == other.i_; }

   private:
    const DataLoader* loader_;
    std::size_t i_;
    std::optional<Batch> current_;
  };
  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, batches_.size()}; }

 private:
  std::shared_ptr<const Dataset> dataset_;
  std::vector<std::vector<std::int64_t>> batches_;
  CollateFn collate_;
};

// The engine with LibTorch types at its edges: the plain engine (forward / backward / step) or,
// for a PipelineModule, the pipeline engine (train_batch / eval_batch).
class TorchEngine {
 public:
  TorchEngine(std::shared_ptr<Engine> core, Config config) : core_(std::move(core)), config_(std::move(config)) {}
  TorchEngine(std::shared_ptr<PipelineEngine> pipeline, Config config);
  // Runs the model on a micro-batch; returns the scalar loss. A pipeline engine throws
  // UsageError (DeepSpeed: "Only train_batch() is accessible in pipeline mode").
  torch::Tensor forward(const Batch& batch);
  void backward(const torch::Tensor& loss);
  void step();

  // Pipeline engine: one optimizer step over gradient_accumulation_steps micro-batches drawn from
  // `data` (by the first and last stages), as DeepSpeed's train_batch(data_iter). Returns the mean
  // loss over micro-batches and data-parallel ranks, on every stage. The plain engine throws
  // UsageError.
  torch::Tensor train_batch(const std::function<Batch()>& data);
  // Forward only (InferenceSchedule); the mean loss as train_batch.
  torch::Tensor eval_batch(const std::function<Batch()>& data);
  bool is_pipeline() const { return pipeline_ != nullptr; }
  PipelineEngine& pipeline();

  bool is_gradient_accumulation_boundary() const { return core_->is_gradient_accumulation_boundary(); }
  std::int64_t global_steps() const { return core_->global_steps(); }
  std::int64_t micro_steps() const { return core_->micro_steps(); }
  std::vector<double> get_lr() const { return core_->get_lr(); }
  double loss_scale() const { return core_->loss_scale(); }
  // The plain engine, or the pipeline stage's.
  Engine& core() { return *core_; }
  // The resolved config, with its warnings.
  const Config& config() const { return config_; }

 private:
  std::shared_ptr<PipelineEngine> pipeline_;
  std::shared_ptr<Engine> core_;  // the pipeline stage's engine when pipeline_ is set
  Config config_;
  // The activation forward() returned for the tensor it handed out, matched in backward().
  Activation last_loss_;
  torch::Tensor last_loss_tensor_;
};

// DeepSpeed's model_parameters entries: parameters and the hyper-parameters they override (the
// usual use: one group with weight decay, one without).
struct ParamGroup {
  std::vector<torch::Tensor> params;
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

// A user optimizer, built once the parameters live in engine memory. It receives model_parameters'
// tensors (all of the model's when model_parameters is empty), as DeepSpeed calls a callable
// client optimizer with model_parameters.
using TorchOptimizerFactory =
    std::function<std::shared_ptr<torch::optim::Optimizer>(const std::vector<torch::Tensor>& parameters)>;

// A config as DeepSpeed takes it: a file path, a JSON object, or (twinspeed) a loaded Config or
// JSON text. A plain string is a path, as in deepspeed.initialize(config="ds.json").
class ConfigSource {
 public:
  ConfigSource() : json_(nlohmann::json::object()) {}
  ConfigSource(Config config) : config_(std::move(config)) {}
  ConfigSource(nlohmann::json json) : json_(std::move(json)) {}
  ConfigSource(std::filesystem::path path) : path_(std::move(path)) {}
  ConfigSource(const char* path) : path_(path) {}
  ConfigSource(std::string path) : path_(std::move(path)) {}
  static ConfigSource from_text(std::string json_text);
  // Loads and validates the config; options apply unless a loaded Config was given.
  Config resolve(const LoadOptions& options) const;

 private:
  std::optional<Config> config_;
  std::optional<nlohmann::json> json_;
  std::optional<std::filesystem::path> path_;
  std::optional<std::string> text_;
};

struct InitializeArgs {
  std::variant<Model, PipelineModule> model;
  ConfigSource config;
  std::shared_ptr<const Dataset> training_data;
  // Param groups for the config's optimizer; empty: one group with every parameter. Parameters in
  // no group are not updated.
  std::vector<ParamGroup> model_parameters;
  // Either an optimizer over the model's parameters, or a factory; neither: the config's.
  std::shared_ptr<torch::optim::Optimizer> optimizer;
  TorchOptimizerFactory optimizer_factory;
  // A scheduler object (stepped as it is), or a factory called with the optimizer; neither: the
  // config's "scheduler" section, if any.
  std::shared_ptr<LRScheduler> lr_scheduler;
  LRSchedulerFactory lr_scheduler_factory;
  // DeepSpeed's mesh_param (dp, sp).
  std::optional<std::pair<int, int>> mesh_param;
  CollateFn collate_fn;
  // Backend by name ("sim"); settings as JSON (see the backend's documentation).
  std::string backend = "sim";
  std::string backend_settings = "{}";
  // Flags that override the config file (world, tp, pp, sp, auto resolutions).
  LoadOptions load_options;
};

struct Initialized {
  std::shared_ptr<TorchEngine> engine;
  std::shared_ptr<Optimizer> optimizer;
  std::shared_ptr<DataLoader> training_dataloader;  // null without training_data
  std::shared_ptr<LRScheduler> lr_scheduler;        // null without a scheduler
};

// deepspeed.initialize(): sets up the backend's process groups, parses and validates the config,
// builds the device mesh, binds the model's parameters to engine memory, builds or wraps the
// optimizer and scheduler, and routes: PipelineModule -> PipelineEngine (model_parameters must be
// empty: groups are per stage), hybrid_engine.enabled -> HybridEngine (not built yet:
// NotImplemented), else Engine.
Initialized initialize(InitializeArgs args);

}  // namespace twinspeed
