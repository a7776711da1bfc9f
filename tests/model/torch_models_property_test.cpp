// Properties of the model zoo over random small configs of all four families: the runner's
// layers are the specs' layers, and layer-by-layer training equals whole-model autograd.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>

#include "engine/model/spec/layer_spec.hpp"
#include "engine/model/torch_models.hpp"
#include "engine/model/torch_token_data.hpp"
#include "model/torch_test_support.hpp"

namespace twinspeed {
namespace {

constexpr std::uint64_t kSeed = 3;

ModelConfig any_config() {
  const std::string type = *rc::gen::element<std::string>("gpt2", "llama", "mistral", "qwen2");
  const int heads = *rc::gen::element(1, 2, 4);
  const int head_dim = 2 * *rc::gen::inRange(1, 5);  // even: RoPE rotates halves
  const int layers = *rc::gen::inRange(1, 3);
  const int vocab = *rc::gen::inRange(8, 48);
  const bool tied = *rc::gen::arbitrary<bool>();
  if (type == "gpt2") {
    const double dropout = *rc::gen::element(0.0, 0.2);
    return parse_hf_config({{"model_type", type}, {"n_embd", heads * head_dim}, {"n_layer", layers}, {"n_head", heads},
                            {"n_positions", 16}, {"vocab_size", vocab}, {"n_inner", *rc::gen::inRange(4, 24)},
                            {"tie_word_embeddings", tied}, {"attn_pdrop", dropout}, {"embd_pdrop", dropout},
                            {"resid_pdrop", dropout}},
                           "property-gpt2");
  }
  const int kv_heads = heads / *rc::gen::element(1, heads);  // 1 or all: both divide
  return parse_hf_config({{"model_type", type}, {"hidden_size", heads * head_dim}, {"num_hidden_layers", layers},
                          {"num_attention_heads", heads}, {"num_key_value_heads", kv_heads},
                          {"intermediate_size", *rc::gen::inRange(4, 24)}, {"vocab_size", vocab},
                          {"max_position_embeddings", 16}, {"tie_word_embeddings", tied},
                          {"rope_theta", *rc::gen::element(10000.0, 500000.0)}},
                         "property-" + type);
}

RC_GTEST_PROP(TorchModelsProperty, RunnerLayersAreTheSpecLayersAndTrainLikeOneGraph, ()) {
  const ModelConfig c = any_config();
  const std::int64_t batch = *rc::gen::inRange(1, 3), seq = *rc::gen::inRange(2, 9);
  Model m = build_torch_model(c);
  TorchLayerRunner runner(std::move(m.layers), std::move(m.loss_fn), {.seed = kSeed});
  const auto specs = build_layer_specs(c, SpecOptions{});
  RC_ASSERT(runner.layer_count() == specs.size());
  for (std::size_t l = 0; l < specs.size(); ++l) {
    RC_ASSERT(runner.layer_name(l) == specs[l].name);
    const auto params = runner.parameters(l);
    RC_ASSERT(params.size() == specs[l].params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      RC_ASSERT(params[i].name == specs[l].name + "." + specs[l].params[i].name);
      RC_ASSERT(params[i].shape == specs[l].params[i].shape);
    }
  }
  testing::FlatStorage storage(runner, DType::f32);
  const Batch data = SyntheticTokenDataset(8, seq, c.vocab_size, 1).micro_batch(0, 0, 1, batch);
  const double loss = testing::micro_step(runner, data.inputs, data.labels);
  const auto reference = testing::whole_model(c, data, kSeed);
  RC_ASSERT(std::abs(loss - reference.loss) <= 1e-6 * reference.loss);
  const auto grads = testing::split_flat(runner, storage.grads());
  RC_ASSERT(grads.size() == reference.grads.size());
  for (std::size_t i = 0; i < grads.size(); ++i) RC_ASSERT(torch::allclose(grads[i], reference.grads[i], 1e-5, 1e-7));
}

}  // namespace
}  // namespace twinspeed
