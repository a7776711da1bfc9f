// The model zoo trained by the real Engine on a simulated 2-rank cluster: ZeRO 1-3 train like
// ZeRO-0 with dropout on (each rank's dropout stream is its own, whatever the stage does to the
// parameter storage), and bf16 / fp16 run through the runner's precision paths.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include <twinspeed/torch.hpp>

#include "engine/model/torch_models.hpp"
#include "engine/model/torch_token_data.hpp"
#include "engine/runtime/engine.hpp"
#include "engine/runtime/engine_settings.hpp"
#include "model/torch_test_support.hpp"
#include "sim/cluster.hpp"

namespace twinspeed {
namespace {

constexpr int kWorld = 2;
constexpr std::int64_t kBatch = 2, kSeq = 16;

struct TrainRun {
  std::vector<double> losses;      // rank-major: [rank][step]
  std::vector<float> parameters;   // after the last step (rank 0's view)
  std::int64_t skipped = 0;
};

TrainRun train(const ModelConfig& model, nlohmann::json config, int steps) {
  config["train_micro_batch_size_per_gpu"] = kBatch;
  config["gradient_accumulation_steps"] = 1;
  config["optimizer"] = {{"type", "AdamW"}, {"params", {{"lr", 1e-3}}}};
  const SyntheticTokenDataset data(256, kSeq, model.vocab_size, 11);
  TrainRun run;
  run.losses.assign(kWorld * steps, 0.0);
  sim::SimCluster cluster({.world = kWorld});
  cluster.run([&](comm::Backend& backend) {
    auto runner = make_torch_model_runner(
        model, {.spec = {.micro_batch = kBatch, .seq_len = kSeq, .dtype_bytes = 4}, .dropout_seed = 5});
    Engine engine(EngineParts{.backend = std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}),
                              .settings = engine_settings_from(Config::from_json(config, {.world = kWorld})),
                              .runner = runner});
    for (int step = 0; step < steps; ++step) {
      const Batch b = data.micro_batch(step, backend.rank(), kWorld, kBatch);
      Activation loss = engine.forward(wrap_tensor(b.inputs), wrap_tensor(b.labels));
      run.losses[backend.rank() * steps + step] = engine.loss_value(loss);
      engine.backward(loss);
      engine.step();
    }
    auto params = engine.full_parameters();
    if (backend.rank() == 0) {
      run.parameters = std::move(params);
      run.skipped = engine.skipped_steps();
    }
  });
  return run;
}

// Stage 3 releases every gathered parameter after use (no persistence: the tiny model's tensors
// are all below DeepSpeed's default threshold), so backward runs on re-gathered storage.
nlohmann::json stage(int zero_stage) {
  nlohmann::json zero = {{"stage", zero_stage}};
  if (zero_stage == 3) zero["stage3_param_persistence_threshold"] = 0;
  return {{"zero_optimization", zero}};
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  return m;
}

TEST(ZooEngine, ZeroStagesTrainLikeZeroZeroWithDropout) {
  const auto model = testing::tiny_gpt2(0.1);
  const TrainRun zero = train(model, stage(0), 3);
  ASSERT_FALSE(zero.parameters.empty());
  EXPECT_NE(zero.losses[0], zero.losses[3]);  // ranks see other data and other dropout masks
  for (int k = 1; k <= 3; ++k) {
    SCOPED_TRACE("stage " + std::to_string(k));
    const TrainRun run = train(model, stage(k), 3);
    ASSERT_EQ(run.parameters.size(), zero.parameters.size());
    for (std::size_t i = 0; i < zero.losses.size(); ++i) EXPECT_NEAR(run.losses[i], zero.losses[i], 1e-5) << i;
    // Same updates up to the order of fp32 reductions.
    EXPECT_LT(max_abs_diff(run.parameters, zero.parameters), 1e-5);
  }
}

TEST(ZooEngine, Bf16AndFp16TrainThroughTheRunnerCloseToFp32) {
  const auto model = testing::tiny_llama("llama", true);
  const TrainRun fp32 = train(model, stage(3), 2);
  nlohmann::json bf16 = stage(3), fp16 = stage(3);
  bf16["bf16"] = {{"enabled", true}};
  fp16["fp16"] = {{"enabled", true}};
  const TrainRun b = train(model, bf16, 2), h = train(model, fp16, 2);
  // Step 0 sees the same weights (rounded to 16 bits): the losses differ by rounding only.
  EXPECT_NEAR(b.losses[0], fp32.losses[0], 5e-3 * fp32.losses[0]);
  EXPECT_NEAR(h.losses[0], fp32.losses[0], 1e-3 * fp32.losses[0]);
  EXPECT_EQ(h.losses[0], static_cast<double>(static_cast<float>(c10::Half(static_cast<float>(h.losses[0])))));
  for (const TrainRun* r : {&b, &h}) {
    for (double l : r->losses) EXPECT_TRUE(std::isfinite(l));
    EXPECT_GT(max_abs_diff(r->parameters, std::vector<float>(r->parameters.size(), 0.0f)), 0.0);
  }
  // DeepSpeed's fp16 starts at scale 2^16 and may skip overflowing steps; not all of them.
  EXPECT_LT(h.skipped, 2);
}

}  // namespace
}  // namespace twinspeed
