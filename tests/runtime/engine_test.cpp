// The first engine: one simulated rank, ZeRO-0, fp32, through twinspeed::initialize().
#include <gtest/gtest.h>

#include <cmath>
#include <twinspeed/torch.hpp>

#include "engine/runtime/torch_optimizer.hpp"

namespace twinspeed {
namespace {

constexpr std::int64_t kFeatures = 8;

LossFn mse() {
  return [](const torch::Tensor& out, const torch::Tensor& labels) { return torch::mse_loss(out, labels); };
}

torch::nn::Sequential make_mlp(std::uint64_t seed) {
  torch::manual_seed(seed);
  return torch::nn::Sequential(torch::nn::Linear(kFeatures, 32), torch::nn::Tanh(), torch::nn::Linear(32, 1));
}

std::shared_ptr<TensorDataset> make_data(std::int64_t n) {
  torch::manual_seed(7);
  torch::Tensor x = torch::randn({n, kFeatures});
  // A smooth target of unit-variance projection: learnable by a small MLP in a few epochs.
  torch::Tensor y = torch::sin(x.sum(1, /*keepdim=*/true) / std::sqrt(static_cast<double>(kFeatures)));
  return std::make_shared<TensorDataset>(x, y);
}

nlohmann::json base_config() {
  return {{"train_micro_batch_size_per_gpu", 8},
          {"gradient_accumulation_steps", 2},
          {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 0.01}}}}},
          {"scheduler",
           {{"type", "WarmupLR"},
            {"params", {{"warmup_min_lr", 0.0}, {"warmup_max_lr", 0.01}, {"warmup_num_steps", 5}, {"warmup_type", "linear"}}}}},
          {"gradient_clipping", 1.0}};
}

Initialized init(nlohmann::json config, std::uint64_t seed = 1, std::int64_t samples = 256) {
  return initialize({.model = Model(make_mlp(seed), mse()), .config = std::move(config), .training_data = make_data(samples)});
}

double mean_loss(TorchEngine& engine, DataLoader& loader) {
  double sum = 0;
  for (std::size_t i = 0; i < loader.size(); ++i) {
    Batch b = loader.batch(i);
    sum += engine.forward(b).item<double>();
  }
  return sum / static_cast<double>(loader.size());
}

TEST(Engine, OneRankZeroZeroFp32LoopTrainsAndLossFalls) {
  auto [engine, optimizer, loader, scheduler] = init(base_config());
  ASSERT_TRUE(loader);
  ASSERT_TRUE(scheduler);
  double before = mean_loss(*engine, *loader);
  for (int epoch = 0; epoch < 5; ++epoch) {
    for (auto& batch : *loader) {
      auto loss = engine->forward(batch);
      engine->backward(loss);
      engine->step();
    }
  }
  double after = mean_loss(*engine, *loader);
  EXPECT_LT(after, 0.5 * before) << "before " << before << " after " << after;
  EXPECT_EQ(engine->micro_steps(), 5 * static_cast<std::int64_t>(loader->size()));
  EXPECT_EQ(engine->global_steps(), engine->micro_steps() / 2);
}

TEST(Engine, StepsTheOptimizerAndSchedulerOnlyAtAccumulationBoundaries) {
  auto [engine, optimizer, loader, scheduler] = init(base_config());
  // DeepSpeed's WarmupLR writes warmup_min_lr at construction without advancing its iteration;
  // the k-th scheduler step (after the k-th optimizer step) sets iteration k-1, and linear warmup
  // gives lr = min + (max - min) * iteration / warmup_num_steps.
  std::vector<double> lrs;
  std::vector<bool> boundaries;
  for (std::size_t i = 0; i < 6; ++i) {
    auto loss = engine->forward(loader->batch(i));
    engine->backward(loss);
    boundaries.push_back(engine->is_gradient_accumulation_boundary());
    engine->step();
    lrs.push_back(engine->get_lr().at(0));
  }
  EXPECT_EQ(boundaries, (std::vector<bool>{false, true, false, true, false, true}));
  EXPECT_EQ(engine->global_steps(), 3);
  EXPECT_EQ(lrs[0], 0.0);             // construction: warmup_min_lr
  EXPECT_EQ(lrs[1], 0.0);             // first scheduler step: iteration 0
  EXPECT_EQ(lrs[2], lrs[1]);          // no scheduler step on a non-boundary micro-step
  EXPECT_NEAR(lrs[3], 0.002, 1e-12);  // iteration 1: 0.01 * 1/5
  EXPECT_NEAR(lrs[5], 0.004, 1e-12);  // iteration 2
}

TEST(Engine, GradientsInTheFlatBufferEqualPlainAutograd) {
  auto config = base_config();
  config["gradient_accumulation_steps"] = 1;
  config["gradient_clipping"] = 0.0;
  auto [engine, optimizer, loader, scheduler] = init(config);
  Batch batch = loader->batch(0);
  auto loss = engine->forward(batch);
  engine->backward(loss);

  auto reference = make_mlp(1);
  torch::mse_loss(reference->forward(batch.inputs), batch.labels).backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : reference->parameters()) grads.push_back(p.grad().flatten());
  torch::Tensor expected = torch::cat(grads);
  BufferView flat = engine->core().flat_gradients();
  torch::Tensor actual = torch::from_blob(flat.data(), {flat.numel}, torch::kFloat32);
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-6, 1e-7));
}

TEST(Engine, AccumulatingKMicroBatchesEqualsOneKTimesLargerBatch) {
  // k = 4 micro-batches of 8 vs one micro-batch of 32 over the same samples: same update.
  auto small = base_config();
  small["train_micro_batch_size_per_gpu"] = 8;
  small["gradient_accumulation_steps"] = 4;
  small.erase("scheduler");
  auto large = small;
  large["train_micro_batch_size_per_gpu"] = 32;
  large["gradient_accumulation_steps"] = 1;
  auto a = init(small, 3, 32);
  auto b = init(large, 3, 32);
  for (std::size_t i = 0; i < 4; ++i) {
    auto loss = a.engine->forward(a.training_dataloader->batch(i));
    a.engine->backward(loss);
    a.engine->step();
  }
  auto loss = b.engine->forward(b.training_dataloader->batch(0));
  b.engine->backward(loss);
  b.engine->step();
  BufferView pa = a.engine->core().flat_parameters(), pb = b.engine->core().flat_parameters();
  torch::Tensor ta = torch::from_blob(pa.data(), {pa.numel}, torch::kFloat32);
  torch::Tensor tb = torch::from_blob(pb.data(), {pb.numel}, torch::kFloat32);
  EXPECT_TRUE(torch::allclose(ta, tb, 1e-5, 1e-6)) << (ta - tb).abs().max().item<double>();
}

TEST(Engine, ConfigAdamWMatchesTorchAdamW) {
  auto config = base_config();
  config["gradient_accumulation_steps"] = 1;
  config["gradient_clipping"] = 0.0;
  config["optimizer"]["params"] = {{"lr", 0.01}, {"weight_decay", 0.1}, {"betas", {0.8, 0.95}}, {"eps", 1e-6}};
  config.erase("scheduler");
  auto ours = init(config);
  auto mlp = make_mlp(1);
  torch::optim::AdamW reference(mlp->parameters(), torch::optim::AdamWOptions(0.01).betas({0.8, 0.95}).eps(1e-6).weight_decay(0.1));
  for (std::size_t i = 0; i < 5; ++i) {
    Batch batch = ours.training_dataloader->batch(i);
    auto loss = ours.engine->forward(batch);
    ours.engine->backward(loss);
    ours.engine->step();
    reference.zero_grad();
    torch::mse_loss(mlp->forward(batch.inputs), batch.labels).backward();
    reference.step();
  }
  std::vector<torch::Tensor> flat;
  for (const auto& p : mlp->parameters()) flat.push_back(p.detach().flatten());
  BufferView view = ours.engine->core().flat_parameters();
  torch::Tensor actual = torch::from_blob(view.data(), {view.numel}, torch::kFloat32);
  EXPECT_TRUE(torch::allclose(actual, torch::cat(flat), 1e-5, 1e-6));
}

TEST(Engine, ClientOptimizerAndSchedulerFactoryTakePrecedenceOverTheConfig) {
  auto mlp = make_mlp(1);
  auto sgd = std::make_shared<torch::optim::SGD>(mlp->parameters(), torch::optim::SGDOptions(0.5));
  int factory_calls = 0;
  auto result = initialize({.model = Model(mlp, mse()),
                            .config = base_config(),
                            .training_data = make_data(64),
                            .optimizer = sgd,
                            .lr_scheduler_factory = [&](HyperparamTarget& target) {
                              ++factory_calls;
                              return make_lr_scheduler("StepLR", {{"step_size", 1}, {"gamma", 0.5}}, target);
                            }});
  EXPECT_EQ(result.optimizer->name(), "SGD");
  EXPECT_EQ(factory_calls, 1);
  torch::Tensor before = mlp->parameters()[0].detach().clone();
  for (std::size_t i = 0; i < 2; ++i) {
    auto loss = result.engine->forward(result.training_dataloader->batch(i));
    result.engine->backward(loss);
    result.engine->step();
  }
  // The SGD step wrote engine memory, which the module's parameters now view.
  EXPECT_FALSE(torch::equal(before, mlp->parameters()[0].detach()));
  EXPECT_NEAR(result.engine->get_lr().at(0), 0.25, 1e-12);
}

TEST(Engine, RoutesPipelineModuleAndHybridEngineToClearNotImplementedErrors) {
  EXPECT_THROW(initialize({.model = PipelineModule{}, .config = base_config()}), ConfigError);  // no layers
  auto hybrid = base_config();
  hybrid["hybrid_engine"] = {{"enabled", true}};
  EXPECT_THROW(initialize({.model = Model(make_mlp(1), mse()), .config = hybrid}), NotImplemented);
}

TEST(Engine, DataloaderFollowsDistributedSamplerOrderWithSeedZero) {
  // torch.randperm(10, generator=torch.Generator().manual_seed(0)) in PyTorch.
  auto data = std::make_shared<TensorDataset>(torch::arange(10).to(torch::kFloat32).unsqueeze(1),
                                              torch::zeros({10, 1}));
  auto config = base_config();
  config["train_micro_batch_size_per_gpu"] = 10;
  config["gradient_accumulation_steps"] = 1;
  auto result = initialize({.model = Model(torch::nn::Sequential(torch::nn::Linear(1, 1)), mse()),
                            .config = config, .training_data = data});
  Batch batch = result.training_dataloader->batch(0);
  std::vector<std::int64_t> order;
  for (std::int64_t i = 0; i < 10; ++i) order.push_back(batch.inputs[i][0].item<std::int64_t>());
  EXPECT_EQ(order, (std::vector<std::int64_t>{4, 1, 7, 5, 3, 9, 0, 8, 6, 2}));
}

TEST(Engine, ConfigErrorsSurfaceFromInitialize) {
  auto config = base_config();
  config["optimizer"]["params"]["lrr"] = 0.1;
  EXPECT_THROW(init(config), ConfigError);
}

}  // namespace
}  // namespace twinspeed

namespace twinspeed {
namespace {

TEST(Engine, ChargesFlatBuffersAndAdamStatesToTheirMemoryTags) {
  auto result = init(base_config());
  const std::int64_t n = result.engine->core().flat_parameters().numel;
  EXPECT_EQ(n, kFeatures * 32 + 32 + 32 + 1);
  auto memory = result.engine->core().backend().device().memory();
  EXPECT_EQ(memory.current(MemoryTag::params), 4 * n);
  EXPECT_EQ(memory.current(MemoryTag::grads), 4 * n);
  EXPECT_EQ(memory.current(MemoryTag::optimizer_states), 2 * 4 * n);  // exp_avg, exp_avg_sq
  EXPECT_EQ(memory.total_current_bytes, 4 * 4 * n);
}

TEST(Engine, AClientSchedulerObjectIsSteppedAsItIs) {
  OwnedParamGroups groups({GroupHyperparams{.lr = 1.0}});
  std::shared_ptr<LRScheduler> step_lr = make_lr_scheduler("StepLR", {{"step_size", 1}, {"gamma", 0.1}}, groups);
  auto config = base_config();
  config["gradient_accumulation_steps"] = 1;
  auto result = initialize({.model = Model(make_mlp(1), mse()),
                            .config = config,
                            .training_data = make_data(32),
                            .lr_scheduler = step_lr});
  EXPECT_EQ(result.lr_scheduler, step_lr);
  auto loss = result.engine->forward(result.training_dataloader->batch(0));
  result.engine->backward(loss);
  result.engine->step();
  EXPECT_NEAR(groups.groups()[0].lr, 0.1, 1e-12);
}

TEST(Engine, StepWithoutAnyOptimizerFailsWithAConfigError) {
  auto config = base_config();
  config.erase("optimizer");
  config.erase("scheduler");
  config["gradient_accumulation_steps"] = 1;
  auto result = init(config);
  EXPECT_EQ(result.optimizer, nullptr);
  auto loss = result.engine->forward(result.training_dataloader->batch(0));
  result.engine->backward(loss);
  EXPECT_THROW(result.engine->step(), ConfigError);
}

}  // namespace
}  // namespace twinspeed

namespace twinspeed {
namespace {

TEST(Engine, ModelParametersBecomeContiguousParamGroupsWithTheirOwnHyperparameters) {
  // Hugging Face's usual split: weights with weight decay, biases without.
  auto mlp = make_mlp(1);
  std::vector<torch::Tensor> weights, biases;
  for (const auto& item : mlp->named_parameters()) {
    (item.key().find("bias") != std::string::npos ? biases : weights).push_back(item.value());
  }
  auto config = base_config();
  config.erase("scheduler");
  config["gradient_accumulation_steps"] = 1;
  auto result = initialize({.model = Model(mlp, mse()),
                            .config = config,
                            .training_data = make_data(32),
                            .model_parameters = {{.params = weights, .weight_decay = 0.1},
                                                 {.params = biases, .lr = 0.5, .weight_decay = 0.0}}});
  auto groups = result.optimizer->param_groups();
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].lr, 0.01);  // the config's lr
  EXPECT_EQ(groups[0].weight_decay, 0.1);
  EXPECT_EQ(groups[1].lr, 0.5);
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  // Group-major layout: the weights first, then the biases, each contiguous.
  BufferView flat = result.engine->core().flat_parameters();
  EXPECT_EQ(weights[0].data_ptr<float>(), flat.data_as<float>());
  EXPECT_EQ(biases[0].data_ptr<float>(), flat.data_as<float>() + weights[0].numel() + weights[1].numel());
  torch::Tensor before = mlp->parameters()[0].detach().clone();
  auto loss = result.engine->forward(result.training_dataloader->batch(0));
  result.engine->backward(loss);
  result.engine->step();
  EXPECT_FALSE(torch::equal(before, mlp->parameters()[0].detach()));
}

TEST(Engine, ParametersLeftOutOfModelParametersAreNotUpdated) {
  auto mlp = make_mlp(1);
  auto first_layer = mlp->parameters();  // weight0, bias0, weight2, bias2
  auto config = base_config();
  config["gradient_accumulation_steps"] = 1;
  auto result = initialize({.model = Model(mlp, mse()),
                            .config = config,
                            .training_data = make_data(32),
                            .model_parameters = {{.params = {first_layer[2], first_layer[3]}}}});
  torch::Tensor frozen = first_layer[0].detach().clone();
  torch::Tensor trained = first_layer[2].detach().clone();
  for (std::size_t i = 0; i < 3; ++i) {
    auto loss = result.engine->forward(result.training_dataloader->batch(i));
    result.engine->backward(loss);
    result.engine->step();
  }
  EXPECT_TRUE(torch::equal(frozen, first_layer[0].detach()));
  EXPECT_FALSE(torch::equal(trained, first_layer[2].detach()));
}

TEST(Engine, ATensorOutsideTheModelOrTwiceInModelParametersIsRejected) {
  auto stranger = torch::zeros({3});
  EXPECT_THROW(initialize({.model = Model(make_mlp(1), mse()), .config = base_config(),
                           .model_parameters = {{.params = {stranger}}}}),
               Error);
  auto mlp = make_mlp(1);
  auto p = mlp->parameters();
  EXPECT_THROW(initialize({.model = Model(mlp, mse()), .config = base_config(),
                           .model_parameters = {{.params = {p[0]}}, {.params = {p[0]}}}}),
               Error);
}

}  // namespace
}  // namespace twinspeed

#include "sim/cluster.hpp"

namespace twinspeed {
namespace {

std::vector<float> flat_copy(const BufferView& v) {
  return std::vector<float>(v.data_as<float>(), v.data_as<float>() + v.numel);
}

TEST(Engine, DataParallelOverFourSimulatedRanksEqualsOneRankWithAFourTimesLargerBatch) {
  auto config = base_config();
  config.erase("scheduler");
  config["gradient_accumulation_steps"] = 1;
  config["gradient_clipping"] = 0.0;
  // One rank, micro-batch 32.
  auto single = config;
  single["train_micro_batch_size_per_gpu"] = 32;
  auto one = init(single, 5, 128);
  for (std::size_t i = 0; i < 2; ++i) {
    auto loss = one.engine->forward(one.training_dataloader->batch(i));
    one.engine->backward(loss);
    one.engine->step();
  }
  const std::vector<float> expected = flat_copy(one.engine->core().flat_parameters());

  // Four simulated ranks, micro-batch 8 each: DistributedSampler gives rank r the samples
  // r, r + 4, ... of the same permutation, so each step covers the same 32 samples.
  auto dp = config;
  dp["train_micro_batch_size_per_gpu"] = 8;
  std::vector<std::vector<float>> params(4);
  std::vector<std::int64_t> train_batch(4);
  sim::SimCluster cluster({.world = 4});
  cluster.run([&](comm::Backend& backend) {
    auto result = init(dp, 5, 128);
    for (std::size_t i = 0; i < 2; ++i) {
      auto loss = result.engine->forward(result.training_dataloader->batch(i));
      result.engine->backward(loss);
      result.engine->step();
    }
    params[static_cast<std::size_t>(backend.rank())] = flat_copy(result.engine->core().flat_parameters());
    train_batch[static_cast<std::size_t>(backend.rank())] = result.engine->core().settings().train_batch_size;
  });
  EXPECT_EQ(train_batch, std::vector<std::int64_t>(4, 32));
  for (int r = 1; r < 4; ++r) EXPECT_EQ(params[static_cast<std::size_t>(r)], params[0]) << "rank " << r;
  ASSERT_EQ(params[0].size(), expected.size());
  float worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) worst = std::max(worst, std::abs(params[0][i] - expected[i]));
  EXPECT_LT(worst, 1e-5f);
  // The gradient all-reduce went over the data-parallel group of the mesh on every rank.
  int reduces = 0;
  for (const auto& e : cluster.tracer(2).events()) reduces += e.name == "all_reduce" ? 1 : 0;
  EXPECT_EQ(reduces, 2);
}

}  // namespace
}  // namespace twinspeed

#include "engine/model/torch_layer_runner.hpp"

namespace twinspeed {
namespace {

// Gives every layer of a torch model a fixed cost, as a layer spec will.
class CostedRunner final : public LayerRunner {
 public:
  explicit CostedRunner(std::shared_ptr<LayerRunner> inner) : inner_(std::move(inner)) {}
  std::size_t layer_count() const override { return inner_->layer_count(); }
  std::string layer_name(std::size_t l) const override { return inner_->layer_name(l); }
  std::vector<ParamSpec> parameters(std::size_t l) const override { return inner_->parameters(l); }
  void initial_parameters(std::size_t l, std::span<const BufferView> v) override { inner_->initial_parameters(l, v); }
  void bind_parameters(std::size_t l, std::span<const BufferView> v) override { inner_->bind_parameters(l, v); }
  void bind_gradients(std::size_t l, std::span<const BufferView> v) override { inner_->bind_gradients(l, v); }
  Activation forward(std::size_t l, const Activation& x) override { return inner_->forward(l, x); }
  Activation backward(std::size_t l, const Activation& dy) override { return inner_->backward(l, dy); }
  Activation loss(const Activation& y, const Activation& t) override { return inner_->loss(y, t); }
  Activation loss_backward(const Activation& l, double s) override { return inner_->loss_backward(l, s); }
  double scalar(const Activation& v) const override { return inner_->scalar(v); }
  void release_saved() override { inner_->release_saved(); }
  comm::ComputeCost forward_cost(std::size_t) const override { return {.op_class = comm::OpClass::matmul, .flops = 1000}; }
  comm::ComputeCost backward_cost(std::size_t) const override { return {.op_class = comm::OpClass::matmul, .flops = 2000}; }

 private:
  std::shared_ptr<LayerRunner> inner_;
};

class FlopCosts final : public sim::CostModel {
 public:
  std::int64_t compute_ns(int, const comm::ComputeCost& c) const override { return static_cast<std::int64_t>(c.flops); }
  std::int64_t collective_ns(comm::CollectiveOp, std::int64_t, std::span<const int>) const override { return 500; }
  std::int64_t p2p_ns(std::int64_t, int, int) const override { return 0; }
};

TEST(Engine, LayersAreTimedOnTheComputeStreamAndTheGradientReductionFollowsTheLastBackward) {
  sim::SimCluster cluster({.world = 2, .costs = std::make_shared<FlopCosts>()});
  cluster.run([&](comm::Backend& backend) {
    auto config = base_config();
    config.erase("scheduler");
    config["gradient_accumulation_steps"] = 2;
    EngineParts parts{.backend = std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}),
                      .settings = engine_settings_from(Config::from_json(config, {.world = 2})),
                      .runner = std::make_shared<CostedRunner>(
                          std::make_shared<TorchLayerRunner>(Model(make_mlp(1), mse()).layers, mse()))};
    Engine engine(std::move(parts));
    auto data = make_data(64);
    for (int micro = 0; micro < 2; ++micro) {
      Batch b = default_collate({data->get(2 * micro + backend.rank()), data->get(2 * micro + backend.rank() + 4)});
      auto loss = engine.forward(wrap_tensor(b.inputs), wrap_tensor(b.labels));
      engine.backward(loss);
      engine.step();
    }
  });
  // The start-up broadcasts of the 4 parameters (one each, as DeepSpeed's _broadcast_model) take
  // 4 x 500 ns; then 3 layers: each micro-step is 3 x 1000 forward + 3 x 2000 backward = 9000 ns;
  // the all-reduce follows the second micro-step's last backward (2000 + 18000 ns).
  std::int64_t reduce_start = -1, last_backward_end = -1;
  int forwards = 0;
  for (const auto& e : cluster.tracer(1).events()) {
    if (e.name == "all_reduce") {
      reduce_start = e.start_ns;
      EXPECT_EQ(e.step, 0);
      EXPECT_EQ(e.micro_batch, 1);
    }
    if (e.name.ends_with(" backward")) last_backward_end = std::max(last_backward_end, e.start_ns + e.duration_ns);
    if (e.name.ends_with(" forward")) {
      ++forwards;
      EXPECT_EQ(e.step, 0);
    }
  }
  EXPECT_EQ(forwards, 6);
  EXPECT_EQ(last_backward_end, 20000);
  EXPECT_EQ(reduce_start, 20000);
}

}  // namespace
}  // namespace twinspeed

namespace twinspeed {
namespace {

TEST(Engine, AClientTorchOptimizerIsWrappedOnTheRanksPartitionsAtEveryZeroStage) {
  // The same torch::optim::SGD (momentum) trains the same model alike at stages 0-3 on 2 ranks.
  auto config = base_config();
  config.erase("scheduler");
  config["gradient_accumulation_steps"] = 1;
  config["gradient_clipping"] = 0.0;
  config["prescale_gradients"] = true;
  std::vector<std::vector<float>> result(4);
  for (int stage = 0; stage <= 3; ++stage) {
    config["zero_optimization"] = {{"stage", stage}, {"reduce_bucket_size", 50}};
    sim::SimCluster cluster({.world = 2});
    cluster.run([&](comm::Backend& backend) {
      auto mlp = make_mlp(1);
      auto sgd = std::make_shared<torch::optim::SGD>(mlp->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
      auto r = initialize({.model = Model(mlp, mse()), .config = config, .training_data = make_data(64), .optimizer = sgd});
      EXPECT_EQ(r.optimizer->name(), "SGD");
      for (std::size_t i = 0; i < 3; ++i) {
        auto loss = r.engine->forward(r.training_dataloader->batch(i));
        r.engine->backward(loss);
        r.engine->step();
      }
      auto params = r.engine->core().full_parameters();
      if (backend.rank() == 0) result[static_cast<std::size_t>(stage)] = params;
    });
  }
  for (int stage = 1; stage <= 3; ++stage) EXPECT_EQ(result[static_cast<std::size_t>(stage)], result[0]) << "stage " << stage;
}

}  // namespace
}  // namespace twinspeed
