// initialize() with a PipelineModule: routes to the PipelineEngine and trains a real LibTorch model
// (a tiny GPT-2 of the model zoo, its LM head tied to the embedding across stages) to the
// parameters the unpipelined model reaches.
#include <gtest/gtest.h>

#include <cmath>
#include <twinspeed/torch.hpp>

#include "engine/model/spec/model_config.hpp"
#include "engine/model/torch_models.hpp"
#include "engine/model/torch_token_data.hpp"
#include "sim/cluster.hpp"

namespace twinspeed {
namespace {

constexpr std::int64_t kMicro = 2, kAccumulation = 4, kSeq = 16;

ModelConfig tiny_gpt2() {
  return parse_hf_config({{"model_type", "gpt2"}, {"n_embd", 32}, {"n_head", 4}, {"n_layer", 3}, {"n_positions", 16},
                          {"vocab_size", 64}, {"tie_word_embeddings", true}},
                         "tiny_gpt2");
}

nlohmann::json config(int zero) {
  return {{"train_micro_batch_size_per_gpu", kMicro},
          {"gradient_accumulation_steps", kAccumulation},
          {"gradient_clipping", 0.5},
          {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 0.01}, {"weight_decay", 0.01}}}}},
          {"zero_optimization", {{"stage", zero}}}};
}

// Every rank's parameters (its stage's, in stage order) after `steps` batches on `world` ranks.
std::vector<std::vector<float>> train(int world, int stages, int zero, int steps) {
  const ModelConfig model_config = tiny_gpt2();
  const SyntheticTokenDataset data(1 << 20, kSeq, model_config.vocab_size, 3);
  const int dp = world / stages;
  std::vector<std::vector<float>> params(static_cast<std::size_t>(world));
  sim::SimCluster cluster({.world = world});
  cluster.run([&](comm::Backend& backend) {
    // Dropout off: the ranks' dropout streams differ between the two layouts.
    Model model = build_torch_model(model_config, {.init_seed = 5, .training = false});
    const int rank = backend.rank();
    const int d = DeviceMesh(MeshShape{.pp = stages, .dp = dp}).coord_of(rank).dp;
    if (stages == 1) {
      auto result = initialize({.model = model, .config = config(zero)});
      for (std::int64_t step = 0; step < steps * kAccumulation; ++step) {
        Batch b = data.micro_batch(step, d, dp, kMicro);
        auto loss = result.engine->forward(b);
        result.engine->backward(loss);
        result.engine->step();
      }
      params[static_cast<std::size_t>(rank)] = result.engine->core().full_parameters();
      return;
    }
    auto result = initialize(
        {.model = PipelineModule{.layers = model.layers, .num_stages = stages, .loss_fn = model.loss_fn},
         .config = config(zero)});
    EXPECT_TRUE(result.engine->is_pipeline());
    EXPECT_THROW(result.engine->forward(data.micro_batch(0, d, dp, kMicro)), UsageError);
    std::int64_t next = 0;
    for (int step = 0; step < steps; ++step) {
      const double loss = result.engine->train_batch([&] { return data.micro_batch(next++, d, dp, kMicro); }).item<double>();
      EXPECT_TRUE(std::isfinite(loss));
    }
    params[static_cast<std::size_t>(rank)] = result.engine->core().full_parameters();
  });
  return params;
}

TEST(TorchPipeline, TwoStagesOfATiedGpt2TrainAsTheUnpipelinedModel) {
  for (int zero : {0, 1}) {
    const auto reference = train(/*world=*/2, /*stages=*/1, zero, /*steps=*/2);
    const auto pipelined = train(/*world=*/4, /*stages=*/2, zero, /*steps=*/2);
    // pp 2 x dp 2: ranks 0-1 hold stage 0 (the embedding and the first blocks), ranks 2-3 stage 1,
    // which starts with its tied copy of the embedding: word embeddings then positions.
    const std::vector<float>& ref = reference[0];
    const std::vector<float>& first = pipelined[0];
    const std::vector<float>& last = pipelined[2];
    ASSERT_LT(first.size(), ref.size());
    float worst = 0.0f;
    for (std::size_t i = 0; i < first.size(); ++i) worst = std::max(worst, std::abs(first[i] - ref[i]));
    // The last stage: its tied word embeddings (64 x 32) equal the first stage's, then its own layers.
    const std::size_t word = 64 * 32, embedding = word + 16 * 32;
    for (std::size_t i = 0; i < word; ++i) worst = std::max(worst, std::abs(last[i] - ref[i]));
    ASSERT_EQ(last.size() - embedding, ref.size() - first.size());
    for (std::size_t i = embedding; i < last.size(); ++i) {
      worst = std::max(worst, std::abs(last[i] - ref[first.size() + i - embedding]));
    }
    EXPECT_LT(worst, 2e-5f) << "ZeRO-" << zero;
    EXPECT_EQ(pipelined[1], pipelined[0]);
    EXPECT_EQ(pipelined[3], pipelined[2]);
  }
}

}  // namespace
}  // namespace twinspeed
