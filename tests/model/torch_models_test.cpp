// The model zoo through TorchLayerRunner: structure equal to the layer specs, layer-by-layer
// training equal to whole-model autograd, bf16 and emulated fp16 against fp32, dropout streams,
// costs, the causal-LM loss and the synthetic token data.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>
#include <memory>

#include <gtest/gtest.h>

#include "engine/core/errors.hpp"
#include "engine/model/spec/spec_layer_runner.hpp"
#include "engine/model/torch_models.hpp"
#include "engine/model/torch_token_data.hpp"
#include "model/torch_test_support.hpp"

namespace twinspeed {
namespace {

using testing::FlatStorage;
using testing::micro_step;
using testing::relative_error;
using testing::split_flat;
using testing::WholeModel;

constexpr std::uint64_t kDropoutSeed = 77;

std::shared_ptr<TorchLayerRunner> runner_for(const ModelConfig& c, TorchModelOptions model = {},
                                             TorchRunnerOptions options = {.seed = kDropoutSeed}) {
  Model m = build_torch_model(c, model);
  return std::make_shared<TorchLayerRunner>(std::move(m.layers), std::move(m.loss_fn), std::move(options));
}

Batch batch_for(const ModelConfig& c, std::int64_t batch = 2, std::int64_t seq = 16) {
  return SyntheticTokenDataset(64, seq, c.vocab_size, 5).micro_batch(0, 0, 1, batch);
}

TEST(TorchModels, LayersAndParametersEqualSpecs) {
  for (const auto& c : {testing::tiny_gpt2(), testing::tiny_llama("llama"), testing::tiny_llama("llama", true),
                        testing::tiny_llama("mistral"), testing::tiny_llama("qwen2")}) {
    SCOPED_TRACE(c.model_type + (c.tie_word_embeddings ? " tied" : " untied"));
    auto runner = runner_for(c);
    const auto specs = build_layer_specs(c, SpecOptions{});
    ASSERT_EQ(runner->layer_count(), specs.size());
    std::int64_t owned = 0;
    for (std::size_t l = 0; l < specs.size(); ++l) {
      EXPECT_EQ(runner->layer_name(l), specs[l].name);
      const auto params = runner->parameters(l);
      ASSERT_EQ(params.size(), specs[l].params.size()) << specs[l].name;
      for (std::size_t i = 0; i < params.size(); ++i) {
        EXPECT_EQ(params[i].name, specs[l].name + "." + specs[l].params[i].name);
        EXPECT_EQ(params[i].shape, specs[l].params[i].shape) << params[i].name;
        owned += params[i].numel();
      }
    }
    EXPECT_EQ(owned, total_param_count(specs));
    const auto shared = runner->shared_parameters(specs.size() - 1);
    if (c.tie_word_embeddings) {
      EXPECT_EQ(shared, (std::vector<ParamRef>{{0, 0}}));  // the embedding's word_embeddings
    } else {
      EXPECT_TRUE(shared.empty());
    }
  }
}

TEST(TorchModels, LayerByLayerEqualsWholeModelFp32) {
  // GPT-2 with dropout (same stream), tied Llama with GQA, untied Qwen2 with q/k/v biases.
  for (const auto& c : {testing::tiny_gpt2(0.1), testing::tiny_llama("llama", true), testing::tiny_llama("qwen2")}) {
    SCOPED_TRACE(c.model_type);
    const Batch batch = batch_for(c);
    auto runner = runner_for(c);
    FlatStorage storage(*runner, DType::f32);
    const double loss = micro_step(*runner, batch.inputs, batch.labels);
    const WholeModel reference = testing::whole_model(c, batch, kDropoutSeed);
    EXPECT_NEAR(loss, reference.loss, 1e-6 * reference.loss);
    const auto grads = split_flat(*runner, storage.grads());
    ASSERT_EQ(grads.size(), reference.grads.size());
    for (std::size_t i = 0; i < grads.size(); ++i) {
      // Equal up to summation order (the tied weight's two contributions are added in another order).
      EXPECT_TRUE(torch::allclose(grads[i], reference.grads[i], 1e-5, 1e-7)) << "parameter " << i;
    }
  }
}

// dropout off: precisions are compared on the same function.
struct PrecisionRun {
  double loss;
  std::vector<torch::Tensor> grads;
  torch::ScalarType output_dtype;
};
PrecisionRun run_in(const ModelConfig& c, DType dtype) {
  auto runner = runner_for(c, TorchModelOptions{.training = false});
  FlatStorage storage(*runner, dtype);
  const Batch batch = batch_for(c);
  Activation x = wrap_tensor(batch.inputs);
  for (std::size_t l = 0; l < runner->layer_count(); ++l) x = runner->forward(l, x);
  const auto output_dtype = unwrap_tensor(x).scalar_type();
  runner->release_saved();
  const double loss = micro_step(*runner, batch.inputs, batch.labels);
  return {loss, split_flat(*runner, storage.grads()), output_dtype};
}

TEST(TorchModels, Bf16ComputesInBf16WithinItsToleranceOfFp32) {
  for (const auto& c : {testing::tiny_gpt2(), testing::tiny_llama()}) {
    SCOPED_TRACE(c.model_type);
    const auto fp32 = run_in(c, DType::f32);
    const auto bf16 = run_in(c, DType::bf16);
    EXPECT_EQ(bf16.output_dtype, torch::kBFloat16);
    // bf16 keeps 8 significant bits (relative step 2^-8 = 0.4%); a few roundings per layer.
    EXPECT_LT(std::abs(bf16.loss - fp32.loss), 5e-3 * fp32.loss);
    EXPECT_NE(bf16.loss, fp32.loss);  // really computed in bf16
    for (std::size_t i = 0; i < fp32.grads.size(); ++i) {
      EXPECT_LT(relative_error(bf16.grads[i], fp32.grads[i]), 3e-2) << "parameter " << i;
    }
  }
}

TEST(TorchModels, Fp16EmulationGradientsCloseToFp32AndLossRepresentable) {
  for (const auto& c : {testing::tiny_gpt2(), testing::tiny_llama()}) {
    SCOPED_TRACE(c.model_type);
    const auto fp32 = run_in(c, DType::f32);
    const auto fp16 = run_in(c, DType::f16);
    EXPECT_EQ(fp16.output_dtype, torch::kFloat16);
    EXPECT_EQ(fp16.loss, static_cast<double>(static_cast<float>(c10::Half(static_cast<float>(fp16.loss)))));
    // fp16 keeps 11 significant bits (2^-11 = 0.05%): rounding at layer outputs and gradients only.
    EXPECT_LT(std::abs(fp16.loss - fp32.loss), 1e-3 * fp32.loss);
    for (std::size_t i = 0; i < fp32.grads.size(); ++i) {
      EXPECT_EQ(fp16.grads[i].scalar_type(), torch::kFloat16);
      EXPECT_LT(relative_error(fp16.grads[i], fp32.grads[i]), 3e-3) << "parameter " << i;
    }
  }
}

TEST(TorchModels, Fp16LossScaleStartsInFp32AndGradientOverflowShowsInTheViews) {
  const auto c = testing::tiny_gpt2(0.0);
  auto runner = runner_for(c);
  FlatStorage storage(*runner, DType::f16);
  const Batch batch = batch_for(c);
  micro_step(*runner, batch.inputs, batch.labels, 65536.0);  // not representable in fp16
  EXPECT_TRUE(torch::isfinite(storage.grads().to(torch::kFloat32)).all().item<bool>());
  EXPECT_GT(storage.grads().to(torch::kFloat32).abs().max().item<float>(), 0.0f);
  // A scale too large for fp16 gradients overflows to inf in the f16 views, where the engine's
  // overflow check (and DeepSpeed's dynamic loss scaler) sees it.
  micro_step(*runner, batch.inputs, batch.labels, 1e12);
  EXPECT_FALSE(torch::isfinite(storage.grads().to(torch::kFloat32)).all().item<bool>());
}

torch::Tensor forward_all(LayerRunner& runner, const torch::Tensor& inputs) {
  Activation x = wrap_tensor(inputs);
  for (std::size_t l = 0; l < runner.layer_count(); ++l) x = runner.forward(l, x);
  runner.release_saved();
  return unwrap_tensor(x);
}

TEST(TorchModels, DropoutStreamPerSeedAndRank) {
  const auto c = testing::tiny_gpt2(0.1);
  const Batch batch = batch_for(c);
  auto a = runner_for(c), b = runner_for(c), other_rank = runner_for(c);
  other_rank->attach(RunnerContext{.rank = 1});
  const auto ya = forward_all(*a, batch.inputs);
  EXPECT_TRUE(torch::equal(ya, forward_all(*b, batch.inputs)));
  EXPECT_FALSE(torch::equal(ya, forward_all(*other_rank, batch.inputs)));
  // The stream advances: a second micro-batch gets other masks; set_seed restarts it.
  EXPECT_FALSE(torch::equal(ya, forward_all(*a, batch.inputs)));
  a->set_seed(kDropoutSeed);
  EXPECT_TRUE(torch::equal(ya, forward_all(*a, batch.inputs)));
}

TEST(TorchModels, RunnerLeavesTheDefaultGeneratorUntouched) {
  const auto c = testing::tiny_gpt2(0.1);
  auto runner = runner_for(c);
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  const torch::Tensor before = gen.get_state();
  forward_all(*runner, batch_for(c).inputs);
  EXPECT_TRUE(torch::equal(before, gen.get_state()));
}

TEST(TorchModels, RecomputeReplaysTheForwardDropoutMasks) {
  const auto c = testing::tiny_gpt2(0.1);
  const Batch batch = batch_for(c);
  auto kept = runner_for(c);
  const std::vector<bool> every_layer(static_cast<std::size_t>(c.num_layers) + 3, true);
  auto recomputed = runner_for(c, {}, TorchRunnerOptions{.seed = kDropoutSeed, .recompute = every_layer});
  FlatStorage kept_storage(*kept, DType::f32), recomputed_storage(*recomputed, DType::f32);
  EXPECT_EQ(micro_step(*kept, batch.inputs, batch.labels), micro_step(*recomputed, batch.inputs, batch.labels));
  EXPECT_TRUE(torch::allclose(recomputed_storage.grads(), kept_storage.grads(), 1e-5, 1e-7));
  EXPECT_GT(kept_storage.grads().abs().sum().item<float>(), 0.0f);
}

TEST(TorchModels, ParametersMovedBetweenForwardAndBackwardAreRecomputedOn) {
  // ZeRO-3: a layer's gathered parameters are freed after forward and gathered again, elsewhere,
  // for backward. The kept graph would read the old memory (poisoned here with NaN).
  const auto c = testing::tiny_gpt2(0.1);
  const Batch batch = batch_for(c);
  auto reference = runner_for(c), moved = runner_for(c);
  FlatStorage reference_storage(*reference, DType::f32);
  const double reference_loss = micro_step(*reference, batch.inputs, batch.labels);
  auto first = std::make_unique<FlatStorage>(*moved, DType::f32);
  Activation x = wrap_tensor(batch.inputs);
  for (std::size_t l = 0; l < moved->layer_count(); ++l) x = moved->forward(l, x);
  FlatStorage second(*moved, DType::f32);  // copies the values, binds the new storage
  first->params().fill_(std::numeric_limits<float>::quiet_NaN());
  Activation loss = moved->loss(x, wrap_tensor(batch.labels));
  EXPECT_EQ(moved->scalar(loss), reference_loss);
  Activation grad = moved->loss_backward(loss, 1.0);
  for (std::size_t l = moved->layer_count(); l-- > 0;) grad = moved->backward(l, grad);
  EXPECT_TRUE(torch::allclose(second.grads(), reference_storage.grads(), 1e-5, 1e-7));
}

TEST(TorchModels, FloatingModelInputsAreCastToTheStorageDtype) {
  for (auto dtype : {DType::bf16, DType::f16}) {
    torch::manual_seed(0);
    TorchLayerRunner runner({layer(torch::nn::Linear(8, 4), "fc")}, {});
    FlatStorage storage(runner, dtype);
    const torch::Tensor x = torch::randn({3, 8});  // fp32 model input
    const torch::Tensor y = unwrap_tensor(runner.forward(0, wrap_tensor(x)));
    EXPECT_EQ(y.scalar_type(), testing::scalar_type(dtype));
    // The input is rounded to the storage dtype first, as x.to(dtype) before the model would.
    const auto w = storage.params().slice(0, 0, 32).view({4, 8}).to(torch::kFloat32);
    const auto b = storage.params().slice(0, 32, 36).to(torch::kFloat32);
    const auto expected = torch::nn::functional::linear(x.to(testing::scalar_type(dtype)).to(torch::kFloat32), w, b);
    EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), expected, 1e-2, 1e-2));
    runner.release_saved();
  }
}

TEST(TorchModels, UnboundLayerThrows) {
  const auto c = testing::tiny_gpt2(0.0);
  auto runner = runner_for(c);
  FlatStorage storage(*runner, DType::f32);
  runner->bind_parameters(0, {});
  // The tied head uses the embedding's weight, so it may not run either.
  EXPECT_THROW(runner->forward(0, wrap_tensor(batch_for(c).inputs)), Error);
  EXPECT_THROW(runner->forward(runner->layer_count() - 1, wrap_tensor(torch::zeros({2, 16, 64}))), Error);
  runner->bind_parameters(0, storage.param_views(0));
  EXPECT_NO_THROW(runner->forward(0, wrap_tensor(batch_for(c).inputs)));
}

TEST(TorchModels, MixedDtypeBindingThrows) {
  const auto c = testing::tiny_gpt2(0.0);
  auto runner = runner_for(c);
  FlatStorage storage(*runner, DType::f32);
  torch::Tensor other = torch::zeros({runner->parameters(1)[0].numel()}, torch::kBFloat16);
  struct NoOwner final : BufferOwner {
    void release(Buffer&) noexcept override {}
  } owner;
  Buffer buffer(&owner, MemoryTag::params, DType::bf16, other.numel(), other.data_ptr(), 0);
  std::vector<BufferView> views = storage.param_views(1);
  views[0] = buffer.all();
  EXPECT_THROW(runner->bind_parameters(1, views), Error);
}

TEST(TorchModels, CostsComeFromTheLayerSpecs) {
  const auto c = testing::tiny_llama();
  const SpecOptions spec{.micro_batch = 2, .seq_len = 16, .dtype_bytes = 4};
  auto runner = make_torch_model_runner(c, TorchModelRunnerOptions{.spec = spec});
  const auto specs = build_layer_specs(c, spec);
  const auto shape_costs = spec_layer_costs(c, spec, RecomputeMode::none);
  for (std::size_t l = 0; l < specs.size(); ++l) {
    EXPECT_EQ(runner->forward_cost(l).flops, static_cast<double>(specs[l].forward_flops));
    EXPECT_EQ(runner->backward_cost(l).flops, static_cast<double>(specs[l].backward_flops));
    // The shape-only runner's costs, bytes included: numeric and shape runs time alike.
    EXPECT_EQ(runner->forward_cost(l).bytes_read, shape_costs.forward[l].bytes_read);
    EXPECT_EQ(runner->backward_cost(l).bytes_written, shape_costs.backward[l].bytes_written);
  }
  EXPECT_GT(runner->forward_cost(1).flops, 0.0);
  // Full recompute of the blocks: a block's backward runs its forward again; the head's does not.
  auto recomputing = make_torch_model_runner(c, TorchModelRunnerOptions{.spec = spec, .recompute = true});
  EXPECT_EQ(recomputing->recompute_cost(1).flops, static_cast<double>(specs[1].forward_flops));
  EXPECT_EQ(recomputing->backward_cost(1).flops, static_cast<double>(specs[1].backward_flops));
  EXPECT_EQ(recomputing->recompute_cost(specs.size() - 1).flops, 0.0);
  EXPECT_EQ(runner->recompute_cost(1).flops, 0.0);
  EXPECT_THROW(runner->set_costs({.forward = {comm::ComputeCost{}}}), Error);
  EXPECT_THROW(runner_for(c, {}, TorchRunnerOptions{.recompute = {true}}), Error);
  EXPECT_THROW(make_torch_model_runner(c, TorchModelRunnerOptions{.spec = {.tp = 2}}), NotImplemented);
}

TEST(TorchModels, CausalLmLossShiftsLabels) {
  const std::int64_t vocab = 10;
  torch::Tensor labels = torch::tensor({{1, 2, 3, 4}}, torch::kInt64);
  // Uniform logits: ln V per token.
  EXPECT_NEAR(causal_lm_loss(torch::zeros({1, 4, vocab}), labels).item<double>(), std::log(10.0), 1e-6);
  // Position t predicting labels[t + 1] (not labels[t]) gives a near-zero loss.
  torch::Tensor logits = torch::zeros({1, 4, vocab});
  for (int t = 0; t < 3; ++t) logits[0][t][labels[0][t + 1].item<std::int64_t>()] = 30.0;
  EXPECT_LT(causal_lm_loss(logits, labels).item<double>(), 1e-6);
  EXPECT_THROW(causal_lm_loss(torch::zeros({4, vocab}), labels), Error);
}

TEST(TorchModels, InitIsDeterministicAndHfLike) {
  const auto c = testing::tiny_gpt2();
  auto a = runner_for(c), b = runner_for(c), other = runner_for(c, TorchModelOptions{.init_seed = 1});
  const auto pa = a->all_parameters(), pb = b->all_parameters(), po = other->all_parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
  EXPECT_FALSE(torch::equal(pa[0], po[0]));
  const auto block = a->parameters(1);
  for (std::size_t i = 0; i < block.size(); ++i) {
    const torch::Tensor& t = pa[2 + i];  // after wte and wpe
    if (block[i].name.ends_with(".bias")) {
      EXPECT_EQ(t.abs().max().item<float>(), 0.0f) << block[i].name;
    }
    if (block[i].name == "block.0.input_norm.weight") {
      EXPECT_TRUE(torch::equal(t, torch::ones_like(t)));
    }
    if (block[i].name == "block.0.attn.qkv.weight") {
      EXPECT_NEAR(t.std().item<double>(), 0.02, 0.002);
    }
    if (block[i].name == "block.0.attn.o.weight") {
      EXPECT_NEAR(t.std().item<double>(), 0.01, 0.001);  // 0.02/sqrt(4)
    }
  }
}

TEST(SyntheticTokens, DeterministicBoundedAndPerRank) {
  const SyntheticTokenDataset data(100, 32, 50, 9), same(100, 32, 50, 9), other(100, 32, 50, 10);
  EXPECT_TRUE(torch::equal(data.get(3).input, same.get(3).input));
  EXPECT_FALSE(torch::equal(data.get(3).input, other.get(3).input));
  EXPECT_TRUE(torch::equal(data.get(3).input, data.get(3).label));
  const Batch r0 = data.micro_batch(2, 0, 2, 4), r1 = data.micro_batch(2, 1, 2, 4);
  EXPECT_EQ(r0.inputs.sizes(), (std::vector<std::int64_t>{4, 32}));
  EXPECT_FALSE(torch::equal(r0.inputs, r1.inputs));
  EXPECT_TRUE(torch::equal(r0.inputs[0], data.get(16).input));  // (step 2 * dp 2 + rank 0) * 4
  EXPECT_GE(r0.inputs.min().item<std::int64_t>(), 0);
  EXPECT_LT(r0.inputs.max().item<std::int64_t>(), 50);
  EXPECT_THROW(SyntheticTokenDataset(0, 32, 50, 9), ConfigError);
  EXPECT_THROW(data.get(100), Error);
}

}  // namespace
}  // namespace twinspeed
