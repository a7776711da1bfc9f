// The shipped model presets (configs/models/): each loads, its layer specs hold exactly the
// parameters its published checkpoint holds, and it carries its training sequence length with a
// source; twinspeed's "twinspeed" key in any config.json, and its errors.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/errors.hpp"
#include "engine/model/spec/layer_spec.hpp"
#include "engine/model/spec/model_config.hpp"
#include "model/model_config_test_support.hpp"

namespace twinspeed {
namespace {

using i64 = std::int64_t;

i64 params_of(const ModelConfig& m) { return total_param_count(build_layer_specs(m, {.seq_len = 128})); }

std::string fixture(const std::string& name) { return test::hf_fixture(name); }
ConfigError parse_error(const nlohmann::json& j) { return test::hf_parse_error(j); }

nlohmann::json tiny_llama() {
  return {{"model_type", "llama"},         {"hidden_size", 64}, {"num_hidden_layers", 2},
          {"num_attention_heads", 4},      {"intermediate_size", 128}, {"vocab_size", 100},
          {"max_position_embeddings", 512}};
}

TEST(ModelPresets, ShippedInCmakeOrder) {
  EXPECT_EQ(model_preset_names(),
            (std::vector<std::string>{"gpt-bench", "gpt2-small", "gpt3-175b", "llama2-7b", "llama2-13b", "llama2-70b",
                                      "llama3-8b", "llama3-70b", "mistral-7b", "qwen2-7b"}));
}

TEST(ModelPresets, EveryPresetLoadsUnderItsNameAndBuildsAtItsDefaultLength) {
  for (const auto& name : model_preset_names()) {
    const ModelConfig m = load_model_preset(name);
    EXPECT_EQ(m.name, name);
    EXPECT_TRUE(m.from_preset) << name;
    const DefaultSeqLen seq = default_seq_length(m);
    EXPECT_GT(seq.value, 0) << name;
    EXPECT_LE(seq.value, m.max_positions) << name;
    EXPECT_EQ(seq.source.rfind("preset " + name + ": ", 0), 0u) << seq.source;
    EXPECT_EQ(build_layer_specs(m, {.seq_len = seq.value}).size(), static_cast<std::size_t>(m.num_layers) + 3) << name;
  }
}

// The totals of the published checkpoints (safetensors metadata shown on each Hugging Face model
// page), recomputed by hand from the config: embedding V*h, untied head V*h, final norm h, and
// per block 2h (norms) + h*(a + 2k)*d (+ (a + 2k)*d q/k/v biases for Qwen2) + a*d*h + 3*h*f.
TEST(ModelPresets, ParameterCountsEqualThePublishedCheckpoints) {
  struct Case {
    const char* preset;
    i64 published;
  };
  for (const Case& c : {Case{"llama2-7b", 6'738'415'616}, Case{"llama2-13b", 13'015'864'320},
                        Case{"llama2-70b", 68'976'648'192}, Case{"llama3-8b", 8'030'261'248},
                        Case{"llama3-70b", 70'553'706'496}, Case{"mistral-7b", 7'241'732'096},
                        Case{"qwen2-7b", 7'615'616'512}, Case{"gpt2-small", 124'439'808}}) {
    EXPECT_EQ(params_of(load_model_preset(c.preset)), c.published) << c.preset;
  }
}

TEST(ModelPresets, LlamaTwoSeventyBFormulaByHand) {
  const i64 h = 8192, L = 80, a = 64, k = 8, d = 128, f = 28672, V = 32000;
  const i64 block = 2 * h + h * (a + 2 * k) * d + a * d * h + 3 * h * f;
  EXPECT_EQ(2 * V * h + h + L * block, 68'976'648'192);
  EXPECT_EQ(params_of(load_model_preset("llama2-70b")), 2 * V * h + h + L * block);
}

// Brown et al. 2020: Table 2.1 names it 175.0B; Table D.1 counts 174,600M. As a GPT-2 model
// (learned positions, biases, tied head): V*h + n_ctx*h + L*(12h^2 + 13h) + 2h.
TEST(ModelPresets, Gpt3OneSeventyFiveBHasThePapersParameterCount) {
  const ModelConfig m = load_model_preset("gpt3-175b");
  EXPECT_EQ(m.model_type, "gpt2");
  EXPECT_EQ(m.hidden_size, 12288);
  EXPECT_EQ(m.num_layers, 96);
  EXPECT_EQ(m.num_heads, 96);
  EXPECT_EQ(m.head_dim, 128);
  EXPECT_EQ(m.max_positions, 2048);
  EXPECT_EQ(m.vocab_size, 50257);
  EXPECT_TRUE(m.tie_word_embeddings);
  const i64 h = 12288, n = params_of(m);
  EXPECT_EQ(n, 50257 * h + 2048 * h + 96 * (12 * h * h + 13 * h) + 2 * h);
  EXPECT_EQ((n + 50'000'000) / 100'000'000, 1746);  // 174.6B to the paper's precision
}

TEST(ModelPresets, ArchitecturesMatchTheirFamilies) {
  const auto l70 = load_model_preset("llama2-70b");
  EXPECT_EQ(l70.num_kv_heads, 8);
  EXPECT_FALSE(l70.qkv_bias);
  EXPECT_DOUBLE_EQ(l70.rope_theta, 10000.0);
  EXPECT_EQ(load_model_preset("llama2-7b").num_kv_heads, 32);
  EXPECT_DOUBLE_EQ(load_model_preset("llama3-70b").rope_theta, 500000.0);
  const auto qwen = load_model_preset("qwen2-7b");
  EXPECT_EQ(qwen.model_type, "qwen2");
  EXPECT_TRUE(qwen.qkv_bias);
  EXPECT_FALSE(qwen.linear_bias);
  EXPECT_FALSE(qwen.tie_word_embeddings);
  EXPECT_EQ(qwen.head_dim, 128);
  EXPECT_DOUBLE_EQ(qwen.norm_eps, 1e-6);
  EXPECT_EQ(load_model_preset("mistral-7b").max_positions, 32768);
}

TEST(ModelPresets, DefaultSeqLengthsAndTheirSources) {
  struct Case {
    const char* preset;
    i64 seq;
    const char* source_contains;
  };
  for (const Case& c : {Case{"gpt3-175b", 2048, "n_ctx 2048"}, Case{"llama2-7b", 4096, "context length 4k"},
                        Case{"llama2-13b", 4096, "Llama 2 paper"}, Case{"llama2-70b", 4096, "Llama 2 paper"},
                        Case{"llama3-8b", 8192, "8,192 tokens"}, Case{"llama3-70b", 8192, "8,192 tokens"},
                        Case{"mistral-7b", 4096, "sliding_window 4096"}, Case{"qwen2-7b", 4096, "4,096 tokens"}}) {
    const ModelConfig m = load_model_preset(c.preset);
    const DefaultSeqLen seq = default_seq_length(m);
    EXPECT_EQ(seq.value, c.seq) << c.preset;
    EXPECT_EQ(default_seq_len(m), c.seq) << c.preset;
    EXPECT_EQ(seq.source, "preset " + std::string(c.preset) + ": " + m.train_seq_len_source);
    EXPECT_NE(seq.source.find(c.source_contains), std::string::npos) << seq.source;
  }
  // Presets without the key and raw config.json files fall back to min(positions, 4096).
  EXPECT_EQ(default_seq_length(load_model_preset("gpt-bench")).source, "preset gpt-bench: min(n_positions 256, 4096)");
  const DefaultSeqLen raw = default_seq_length(load_model_preset(fixture("mistral-7b.json")));
  EXPECT_EQ(raw.value, 4096);
  EXPECT_EQ(raw.source, "min(max_position_embeddings 32768, 4096)");
  EXPECT_EQ(load_model_preset(fixture("mistral-7b.json")).name, fixture("mistral-7b.json"));
  EXPECT_FALSE(load_model_preset(fixture("mistral-7b.json")).from_preset);
}

TEST(TwinspeedKey, SeqLenOfAnyConfigFileIsItsDefaultAndOtherKeysAreIgnored) {
  auto j = tiny_llama();
  j["twinspeed"] = {{"seq_len", 256}, {"seq_len_source", "my run"}, {"future_key", {1, 2}}};
  const ModelConfig m = parse_hf_config(j, "my/config.json");
  EXPECT_EQ(m.name, "my/config.json");
  EXPECT_EQ(m.train_seq_len, 256);
  EXPECT_EQ(default_seq_length(m).value, 256);
  EXPECT_EQ(default_seq_length(m).source, "my/config.json twinspeed.seq_len: my run");
  j["twinspeed"] = {{"config_source", "somewhere"}};  // no seq_len: the usual default
  EXPECT_EQ(default_seq_length(parse_hf_config(j, "c.json")).value, 512);
  j["twinspeed"] = nullptr;
  EXPECT_EQ(parse_hf_config(j, "c.json").train_seq_len, 0);
}

TEST(TwinspeedKey, WrongTypesAreConfigErrorsWithTheirJsonPath) {
  auto j = tiny_llama();
  j["twinspeed"] = 4096;
  EXPECT_EQ(parse_error(j).path(), "twinspeed");
  j["twinspeed"] = {{"seq_len", "4096"}, {"seq_len_source", "x"}};
  EXPECT_EQ(parse_error(j).path(), "twinspeed.seq_len");
  EXPECT_EQ(parse_error(j).value(), "\"4096\"");
  j["twinspeed"] = {{"seq_len", 0}, {"seq_len_source", "x"}};
  EXPECT_EQ(parse_error(j).path(), "twinspeed.seq_len");
  j["twinspeed"] = {{"seq_len", 2048.5}, {"seq_len_source", "x"}};
  EXPECT_EQ(parse_error(j).path(), "twinspeed.seq_len");
  j["twinspeed"] = {{"seq_len", 1024}, {"seq_len_source", "x"}};  // beyond max_position_embeddings 512
  const auto beyond = parse_error(j);
  EXPECT_EQ(beyond.path(), "twinspeed.seq_len");
  EXPECT_NE(std::string(beyond.what()).find("max_position_embeddings 512"), std::string::npos) << beyond.what();
  j["twinspeed"] = {{"seq_len", 256}};
  EXPECT_EQ(parse_error(j).path(), "twinspeed.seq_len_source");
  j["twinspeed"] = {{"seq_len", 256}, {"seq_len_source", 7}};
  EXPECT_EQ(parse_error(j).path(), "twinspeed.seq_len_source");
  const std::string what = parse_error(j).what();
  EXPECT_NE(what.find("test.json"), std::string::npos) << what;
}

}  // namespace
}  // namespace twinspeed
