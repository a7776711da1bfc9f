// Numeric vs shape-only fidelity on the same small models and configs: the engine owns the same
// bytes per tag at every moment that counts (current after the run, each tag's peak, the bytes at
// the total peak) and every step ends at the same virtual time. The numeric run trains the model
// zoo's LibTorch modules; the shape run the SpecLayerRunner of the same specs.

#include <gtest/gtest.h>

#include <twinspeed/torch.hpp>

#include "engine/model/spec/model_config.hpp"
#include "engine/model/spec/spec_layer_runner.hpp"
#include "engine/model/torch_models.hpp"
#include "engine/model/torch_token_data.hpp"
#include "engine/runtime/engine.hpp"
#include "sim/cluster.hpp"
#include "sim/preset_costs.hpp"
#include "sim/presets/presets.hpp"
#include "sim/sim_device.hpp"

namespace twinspeed {
namespace {

constexpr std::int64_t kMicro = 2, kSeq = 16;

struct Outcome {
  std::vector<comm::MemoryStats> memory;  // per rank, after the run
  std::vector<std::int64_t> step_end_ns;  // per rank and step, flattened
};

Outcome run(const ModelConfig& model, const nlohmann::json& json, int world, sim::Fidelity fidelity) {
  const Config config = Config::from_json(json, {.world = world});
  const DType dtype = config.bf16().enabled ? DType::bf16 : DType::f32;
  sim::SimCluster cluster(
      sim::cluster_options(sim::cluster_for_world(sim::cluster_preset("dgx-h100"), world), world, fidelity, dtype));
  Outcome out;
  out.memory.resize(static_cast<std::size_t>(world));
  std::vector<std::vector<std::int64_t>> ends(static_cast<std::size_t>(world));
  const SpecOptions sizes{.micro_batch = kMicro, .seq_len = kSeq, .dtype_bytes = static_cast<std::int64_t>(dtype_size(dtype))};
  SyntheticTokenDataset data(64, kSeq, model.vocab_size, 3);
  cluster.run([&](comm::Backend& backend) {
    const int rank = backend.rank();
    std::shared_ptr<LayerRunner> runner;
    std::shared_ptr<SpecLayerRunner> shape;
    if (fidelity == sim::Fidelity::numeric) {
      runner = make_torch_model_runner(model, {.spec = sizes});
    } else {
      shape = std::make_shared<SpecLayerRunner>(model, SpecRunnerOptions{.spec = sizes, .dtype = dtype});
      runner = shape;
    }
    Engine engine({.backend = std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}),
                   .settings = engine_settings_from(config),
                   .runner = runner});
    auto& clock = dynamic_cast<sim::SimDevice&>(backend.device()).compute();
    for (std::int64_t micro = 0; micro < 2 * config.batch().gradient_accumulation_steps; ++micro) {
      Activation x, y;
      if (shape) {
        auto b = shape->micro_batch();
        x = b.inputs, y = b.labels;
      } else {
        Batch b = data.micro_batch(micro, rank, world, kMicro);
        x = wrap_tensor(b.inputs), y = wrap_tensor(b.labels);
      }
      Activation loss = engine.forward(x, y);
      engine.backward(loss);
      const bool boundary = engine.is_gradient_accumulation_boundary();
      engine.step();
      if (boundary) ends[static_cast<std::size_t>(rank)].push_back(clock.clock_ns());
    }
    out.memory[static_cast<std::size_t>(rank)] = backend.device().memory();
  });
  for (const auto& e : ends) out.step_end_ns.insert(out.step_end_ns.end(), e.begin(), e.end());
  return out;
}

nlohmann::json config_for(int stage, bool bf16, int gas) {
  nlohmann::json c = {{"train_micro_batch_size_per_gpu", kMicro},
                      {"gradient_accumulation_steps", gas},
                      {"gradient_clipping", 1.0},
                      {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 1e-3}}}}},
                      {"zero_optimization", {{"stage", stage}, {"reduce_bucket_size", 20000}, {"overlap_comm", true},
                                             {"stage3_param_persistence_threshold", 100}}}};
  if (bf16) c["bf16"] = {{"enabled", true}};
  return c;
}

TEST(FidelityParity, NumericAndShapeRunsOwnTheSameBytesAndTakeTheSameVirtualTimeAtEveryStage) {
  const std::vector<ModelConfig> models = {
      parse_hf_config({{"model_type", "gpt2"}, {"n_embd", 32}, {"n_head", 4}, {"n_layer", 2}, {"n_positions", 32},
                       {"vocab_size", 128}},
                      "tiny gpt2"),
      parse_hf_config({{"model_type", "llama"}, {"hidden_size", 32}, {"num_attention_heads", 4},
                       {"num_key_value_heads", 2}, {"intermediate_size", 64}, {"num_hidden_layers", 2},
                       {"max_position_embeddings", 32}, {"vocab_size", 128}, {"tie_word_embeddings", false}},
                      "tiny llama")};
  for (const auto& model : models) {
    for (int stage = 0; stage <= 3; ++stage) {
      for (bool bf16 : {false, true}) {
        const auto config = config_for(stage, bf16, stage == 2 ? 2 : 1);
        const Outcome numeric = run(model, config, 2, sim::Fidelity::numeric);
        const Outcome shape = run(model, config, 2, sim::Fidelity::shape);
        SCOPED_TRACE(::testing::Message() << model.model_type << " stage " << stage << (bf16 ? " bf16" : " fp32"));
        ASSERT_EQ(numeric.step_end_ns.size(), 4u);  // 2 ranks x 2 steps
        EXPECT_GT(numeric.step_end_ns[1], numeric.step_end_ns[0]);
        EXPECT_EQ(numeric.step_end_ns, shape.step_end_ns);
        EXPECT_GT(numeric.memory[0].peak(MemoryTag::activations), 0);
        for (std::size_t r = 0; r < numeric.memory.size(); ++r) {
          for (MemoryTag tag : kAllMemoryTags) {
            EXPECT_EQ(numeric.memory[r].current(tag), shape.memory[r].current(tag)) << memory_tag_name(tag);
            EXPECT_EQ(numeric.memory[r].peak(tag), shape.memory[r].peak(tag)) << memory_tag_name(tag);
          }
          EXPECT_EQ(numeric.memory[r].total_peak_bytes, shape.memory[r].total_peak_bytes);
        }
      }
    }
  }
}

}  // namespace
}  // namespace twinspeed
