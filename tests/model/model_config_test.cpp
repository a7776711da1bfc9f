// HF config.json parsing for gpt2, llama, mistral and qwen2, presets and errors.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/errors.hpp"
#include "engine/model/spec/model_config.hpp"
#include "model/model_config_test_support.hpp"

namespace twinspeed {
namespace {

std::string fixture(const std::string& name) { return test::hf_fixture(name); }
ConfigError parse_error(const nlohmann::json& j) { return test::hf_parse_error(j); }

TEST(HfConfig, Gpt2) {
  const auto m = load_hf_config(fixture("gpt2.json"));
  EXPECT_EQ(m.model_type, "gpt2");
  EXPECT_EQ(m.hidden_size, 768);
  EXPECT_EQ(m.num_layers, 12);
  EXPECT_EQ(m.num_heads, 12);
  EXPECT_EQ(m.num_kv_heads, 12);
  EXPECT_EQ(m.head_dim, 64);
  EXPECT_EQ(m.intermediate_size, 4 * 768);  // n_inner: null
  EXPECT_EQ(m.vocab_size, 50257);
  EXPECT_EQ(m.max_positions, 1024);
  EXPECT_EQ(m.norm, NormType::layernorm);
  EXPECT_EQ(m.activation, MlpActivation::gelu);
  EXPECT_TRUE(m.tie_word_embeddings);
  EXPECT_TRUE(m.learned_positions);
  EXPECT_FALSE(m.rope);
  EXPECT_DOUBLE_EQ(m.hidden_dropout, 0.1);
  EXPECT_DOUBLE_EQ(m.attention_dropout, 0.1);
  EXPECT_DOUBLE_EQ(m.embedding_dropout, 0.1);
}

TEST(HfConfig, Llama3_8B) {
  const auto m = load_hf_config(fixture("llama-3-8b.json"));
  EXPECT_EQ(m.model_type, "llama");
  EXPECT_EQ(m.hidden_size, 4096);
  EXPECT_EQ(m.num_layers, 32);
  EXPECT_EQ(m.num_heads, 32);
  EXPECT_EQ(m.num_kv_heads, 8);
  EXPECT_EQ(m.head_dim, 128);
  EXPECT_EQ(m.intermediate_size, 14336);
  EXPECT_EQ(m.vocab_size, 128256);
  EXPECT_EQ(m.max_positions, 8192);
  EXPECT_EQ(m.norm, NormType::rmsnorm);
  EXPECT_DOUBLE_EQ(m.norm_eps, 1e-5);
  EXPECT_EQ(m.activation, MlpActivation::swiglu);
  EXPECT_FALSE(m.tie_word_embeddings);
  EXPECT_TRUE(m.rope);
  EXPECT_DOUBLE_EQ(m.rope_theta, 500000.0);
  EXPECT_FALSE(m.qkv_bias);
  EXPECT_DOUBLE_EQ(m.hidden_dropout, 0.0);
}

TEST(HfConfig, Mistral7B) {
  const auto m = load_hf_config(fixture("mistral-7b.json"));
  EXPECT_EQ(m.model_type, "mistral");
  EXPECT_EQ(m.num_kv_heads, 8);
  EXPECT_EQ(m.vocab_size, 32000);
  EXPECT_EQ(m.max_positions, 32768);
  EXPECT_EQ(m.activation, MlpActivation::swiglu);
  EXPECT_FALSE(m.tie_word_embeddings);
}

TEST(HfConfig, Qwen2_0_5B) {
  const auto m = load_hf_config(fixture("qwen2-0.5b.json"));
  EXPECT_EQ(m.model_type, "qwen2");
  EXPECT_EQ(m.hidden_size, 896);
  EXPECT_EQ(m.num_heads, 14);
  EXPECT_EQ(m.num_kv_heads, 2);
  EXPECT_EQ(m.head_dim, 64);
  EXPECT_TRUE(m.tie_word_embeddings);
  EXPECT_TRUE(m.qkv_bias);
  EXPECT_FALSE(m.linear_bias);
  EXPECT_DOUBLE_EQ(m.norm_eps, 1e-6);
}

TEST(HfConfig, KvHeadsDefaultToHeads) {
  const auto m = parse_hf_config({{"model_type", "llama"}, {"hidden_size", 64}, {"num_hidden_layers", 2},
                                  {"num_attention_heads", 4}, {"intermediate_size", 128}, {"vocab_size", 100},
                                  {"max_position_embeddings", 32}, {"some_new_hf_key", {1, 2}}},
                                 "test.json");
  EXPECT_EQ(m.num_kv_heads, 4);
  EXPECT_FALSE(m.tie_word_embeddings);
}

TEST(HfConfig, UnknownModelTypeNamesItAndTheSupportedOnes) {
  const auto e = parse_error({{"model_type", "bert"}, {"hidden_size", 768}});
  EXPECT_EQ(e.path(), "model_type");
  EXPECT_EQ(e.value(), "\"bert\"");
  const std::string what = e.what();
  EXPECT_NE(what.find("gpt2, llama, mistral, qwen2"), std::string::npos) << what;
}

TEST(HfConfig, MissingRequiredKeyNamesIt) {
  const auto e = parse_error({{"model_type", "llama"}, {"num_hidden_layers", 2}});
  EXPECT_EQ(e.path(), "hidden_size");
  EXPECT_NE(std::string(e.what()).find("test.json"), std::string::npos) << e.what();
  EXPECT_EQ(parse_error({{"model_type", "gpt2"}, {"n_embd", 64}}).path(), "n_layer");
  EXPECT_EQ(parse_error(nlohmann::json::object()).path(), "model_type");
}

TEST(HfConfig, WrongTypesAndValuesAreErrors) {
  nlohmann::json j = {{"model_type", "gpt2"}, {"n_embd", "768"}};
  EXPECT_EQ(parse_error(j).path(), "n_embd");
  j = {{"model_type", "gpt2"},   {"n_embd", 64},       {"n_layer", 2}, {"n_head", 4},
       {"n_positions", 32},      {"vocab_size", 100},  {"tie_word_embeddings", "yes"}};
  EXPECT_EQ(parse_error(j).path(), "tie_word_embeddings");
  j["tie_word_embeddings"] = true;
  j["n_head"] = 5;  // does not divide 64
  EXPECT_EQ(parse_error(j).path(), "n_head");
}

TEST(ModelPresets, ByName) {
  const auto bench = load_model_preset("gpt-bench");
  EXPECT_EQ(bench.model_type, "gpt2");
  EXPECT_EQ(bench.num_layers, 6);
  EXPECT_EQ(bench.hidden_size, 512);
  EXPECT_EQ(bench.num_heads, 8);
  EXPECT_EQ(bench.max_positions, 256);
  EXPECT_EQ(bench.vocab_size, 8192);
  const auto small = load_model_preset("gpt2-small");
  EXPECT_EQ(small.hidden_size, 768);
  EXPECT_EQ(small.vocab_size, 50257);
}

TEST(HfConfig, FilesMayHaveCommentsButNoDuplicateKeys) {
  const auto dir = std::filesystem::temp_directory_path() / "twinspeed_model_spec_test";
  std::filesystem::create_directories(dir);
  const auto file = dir / "config.json";
  const std::string head = R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 32,)";
  std::ofstream(file) << head << "\n// a comment\n\"vocab_size\": 100}";
  EXPECT_EQ(load_hf_config(file).vocab_size, 100);
  std::ofstream(file) << head << R"("vocab_size": 100, "n_layer": 3})";
  EXPECT_THROW(load_hf_config(file), ConfigError);
  std::filesystem::remove_all(dir);
}

TEST(ModelPresets, DefaultSeqLen) {
  EXPECT_EQ(default_seq_len(load_model_preset("gpt-bench")), 256);
  EXPECT_EQ(default_seq_len(load_model_preset("gpt2-small")), 1024);
  EXPECT_EQ(default_seq_len(load_hf_config(fixture("mistral-7b.json"))), 4096);
}

TEST(ModelPresets, ByPath) {
  EXPECT_EQ(load_model_preset(fixture("mistral-7b.json")).model_type, "mistral");
}

TEST(ModelPresets, UnknownNameSuggestsClosest) {
  try {
    load_model_preset("gpt-bnch");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "model");
    EXPECT_NE(std::string(e.what()).find("did you mean \"gpt-bench\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace twinspeed
