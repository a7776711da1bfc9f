// Layer specs against known parameter totals and the published closed forms: Megatron's
// model FLOPs (Narayanan et al. 2021) and Korthikanti et al. 2022's activation bytes.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "engine/core/errors.hpp"
#include "engine/model/spec/layer_spec.hpp"

namespace twinspeed {
namespace {

using i64 = std::int64_t;

ModelConfig fixture(const std::string& name) {
  const char* root = std::getenv("TWINSPEED_SOURCE_DIR");
  return load_hf_config(std::string(root ? root : ".") + "/tests/data/hf-configs/" + name);
}

const ParamSpec& param(const LayerSpec& layer, const std::string& name) {
  for (const auto& p : layer.params) {
    if (p.name == name) return p;
  }
  throw std::runtime_error("no parameter " + name + " in " + layer.name);
}

i64 count(const LayerSpec& layer, const std::string& op, const std::string& group, CommPhase phase) {
  i64 n = 0;
  for (const auto& c : layer.collectives) n += c.op == op && c.group == group && c.phase == phase;
  return n;
}

TEST(LayerSpecs, ParameterCountsEqualKnownTotals) {
  const SpecOptions one{.micro_batch = 1, .seq_len = 128};
  EXPECT_EQ(total_param_count(build_layer_specs(fixture("gpt2.json"), one)), 124'439'808);
  EXPECT_EQ(total_param_count(build_layer_specs(fixture("llama-3-8b.json"), one)), 8'030'261'248);
  EXPECT_EQ(total_param_count(build_layer_specs(fixture("mistral-7b.json"), one)), 7'241'732'096);
  EXPECT_EQ(total_param_count(build_layer_specs(fixture("qwen2-0.5b.json"), one)), 494'032'768);
}

TEST(LayerSpecs, LayerOrderAndTiedHead) {
  const auto m = fixture("gpt2.json");
  const auto layers = build_layer_specs(m, {.seq_len = 128});
  ASSERT_EQ(layers.size(), 12u + 3u);
  EXPECT_EQ(layers.front().name, "embedding");
  EXPECT_EQ(layers[1].name, "block.0");
  EXPECT_EQ(layers[12].name, "block.11");
  EXPECT_EQ(layers[13].name, "final_norm");
  EXPECT_EQ(layers.back().name, "lm_head");
  EXPECT_TRUE(layers.back().params.empty());  // tied to the token embedding
  EXPECT_GT(layers.back().forward_flops, 0);
}

// Megatron: forward 24BsLh^2 (1 + s/(6h)) + 2BshV; a step is 3x that (72 ... V/(12Lh)); with full
// recompute 96 BsLh^2 (1 + s/(6h) + V/(16Lh)). Multiplied out to stay in exact integers.
TEST(LayerSpecs, GptFlopsEqualMegatronClosedForm) {
  for (const char* preset : {"gpt2-small", "gpt-bench"}) {
    const auto m = load_model_preset(preset);
    const i64 B = 4, s = 256, h = m.hidden_size, L = m.num_layers, V = m.vocab_size;
    const auto layers = build_layer_specs(m, {.micro_batch = B, .seq_len = s});
    i64 forward = 0, step = 0, step_full_recompute = 0;
    for (const auto& layer : layers) {
      forward += layer.forward_flops;
      step += layer.forward_flops + layer.backward_flops;
      step_full_recompute += layer.forward_flops + layer.backward_flops +
                             (layer.kind == LayerKind::block ? layer.forward_flops : 0);
    }
    EXPECT_EQ(forward, 24 * B * s * L * h * h + 4 * B * L * s * s * h + 2 * B * s * h * V) << preset;
    EXPECT_EQ(step, 72 * B * s * L * h * h + 12 * B * L * s * s * h + 6 * B * s * h * V) << preset;
    EXPECT_EQ(step_full_recompute, 96 * B * s * L * h * h + 16 * B * L * s * s * h + 6 * B * s * h * V) << preset;
  }
}

TEST(LayerSpecs, FlopsSplitEvenlyOverTpAndSp) {
  const auto m = fixture("llama-3-8b.json");
  const auto base = build_layer_specs(m, {.micro_batch = 2, .seq_len = 1024});
  const auto split = build_layer_specs(m, {.micro_batch = 2, .seq_len = 1024, .tp = 2, .sp = 4});
  for (std::size_t i = 0; i < base.size(); ++i) {
    EXPECT_EQ(split[i].forward_flops * 8, base[i].forward_flops) << base[i].name;
    EXPECT_EQ(split[i].backward_flops, 2 * split[i].forward_flops) << base[i].name;
  }
}

// Korthikanti et al. 2022, GPT with 2-byte activations and dropout, per layer:
// none sbh(34 + 5as/h); selective 34 sbh; full 2 sbh; tp t: sbh(10 + 24/t + 5as/(ht)) and
// sbh(10 + 24/t) selective; tp + sequence parallelism: all divided by t.
TEST(LayerSpecs, GptActivationBytesEqualKorthikanti) {
  const auto m = load_model_preset("gpt2-small");
  const i64 b = 4, s = 512, h = m.hidden_size, a = m.num_heads;
  const i64 sbh = s * b * h, core = 5 * a * s * s * b;
  const auto block = build_layer_specs(m, {.micro_batch = b, .seq_len = s, .dtype_bytes = 2})[1];
  EXPECT_EQ(block.activation_bytes(RecomputeMode::none), 34 * sbh + core);
  EXPECT_EQ(block.activation_bytes(RecomputeMode::selective), 34 * sbh);
  EXPECT_EQ(block.activation_bytes(RecomputeMode::full), 2 * sbh);

  for (i64 t : {2, 4}) {
    const auto tp = build_layer_specs(m, {.micro_batch = b, .seq_len = s, .tp = t, .dtype_bytes = 2})[1];
    EXPECT_EQ(tp.activation_bytes(RecomputeMode::none), 10 * sbh + 24 * sbh / t + core / t) << t;
    EXPECT_EQ(tp.activation_bytes(RecomputeMode::selective), 10 * sbh + 24 * sbh / t) << t;
    EXPECT_EQ(tp.activation_bytes(RecomputeMode::full), 2 * sbh) << t;
    const auto tpsp =
        build_layer_specs(m, {.micro_batch = b, .seq_len = s, .tp = t, .tp_sp = true, .dtype_bytes = 2})[1];
    EXPECT_EQ(tpsp.activation_bytes(RecomputeMode::none), (34 * sbh + core) / t) << t;
    EXPECT_EQ(tpsp.activation_bytes(RecomputeMode::selective), 34 * sbh / t) << t;
    EXPECT_EQ(tpsp.activation_bytes(RecomputeMode::full), 2 * sbh / t) << t;
  }
}

// Llama: no dropout, RMSNorm, SwiGLU (4 saved f-sized tensors), GQA (K, V with kv heads).
TEST(LayerSpecs, LlamaActivationBytes) {
  const auto m = fixture("llama-3-8b.json");
  const i64 b = 1, s = 4096, h = 4096, a = 32, kd = 8 * 128, f = 14336, e = 2;
  const auto block = build_layer_specs(m, {.micro_batch = b, .seq_len = s, .dtype_bytes = e})[1];
  const i64 selective = e * s * b * (4 * h + h + 2 * kd + h + 4 * f);
  EXPECT_EQ(block.activation_bytes(RecomputeMode::selective), selective);
  EXPECT_EQ(block.activation_bytes(RecomputeMode::none), selective + e * a * s * s * b);
  EXPECT_EQ(block.activation_bytes(RecomputeMode::full), e * s * b * h);
  const auto ulysses = build_layer_specs(m, {.micro_batch = b, .seq_len = s, .sp = 4, .dtype_bytes = e})[1];
  for (auto mode : {RecomputeMode::none, RecomputeMode::selective, RecomputeMode::full}) {
    EXPECT_EQ(ulysses.activation_bytes(mode) * 4, block.activation_bytes(mode));
  }
}

// Flash attention: the 5as^2b terms become the fp32 log-sum-exp (4 bytes per query row and head);
// forward FLOPs are unchanged, backward gains the recomputed scores QK^T (2Bs^2h).
TEST(LayerSpecs, FlashAttentionSavesTheLogSumExpInsteadOfTheScoresAndRecomputesQkInBackward) {
  const auto m = load_model_preset("gpt2-small");
  const i64 b = 4, s = 512, h = m.hidden_size, a = m.num_heads;
  const i64 sbh = s * b * h, lse = 4 * a * s * b;
  const SpecOptions standard{.micro_batch = b, .seq_len = s, .dtype_bytes = 2};
  SpecOptions flash = standard;
  flash.attention = AttentionKernel::flash;
  const LayerSpec std_block = build_layer_specs(m, standard)[1], flash_block = build_layer_specs(m, flash)[1];
  EXPECT_EQ(flash_block.activation_bytes(RecomputeMode::none), 34 * sbh + lse);
  EXPECT_EQ(flash_block.activation_bytes(RecomputeMode::selective), 34 * sbh);
  EXPECT_EQ(flash_block.activation_bytes(RecomputeMode::full), 2 * sbh);
  EXPECT_EQ(flash_block.forward_flops, std_block.forward_flops);
  EXPECT_EQ(flash_block.backward_flops, std_block.backward_flops + 2 * b * s * s * h);
  EXPECT_EQ(flash_block.recompute_flops, std_block.recompute_flops);
  // tp (with tp_sp) shards the heads, and so the log-sum-exp.
  SpecOptions tp = flash;
  tp.tp = 4;
  tp.tp_sp = true;
  EXPECT_EQ(build_layer_specs(m, tp)[1].activation_bytes(RecomputeMode::none), 34 * sbh / 4 + lse / 4);
}

TEST(LayerSpecs, TpShardsParameters) {
  const auto m = fixture("gpt2.json");
  const i64 h = 768;
  const auto layers = build_layer_specs(m, {.seq_len = 128, .tp = 4});
  const auto& block = layers[1];
  EXPECT_EQ(param(block, "attn.qkv.weight").shape, (std::vector<i64>{3 * h / 4, h}));
  EXPECT_EQ(param(block, "attn.qkv.bias").shape, (std::vector<i64>{3 * h / 4}));
  EXPECT_EQ(param(block, "attn.o.weight").shape, (std::vector<i64>{h, h / 4}));
  EXPECT_EQ(param(block, "attn.o.bias").shape, (std::vector<i64>{h}));  // row-parallel: replicated
  EXPECT_EQ(param(block, "mlp.fc1.weight").shape, (std::vector<i64>{4 * h / 4, h}));
  EXPECT_EQ(param(block, "mlp.fc2.weight").shape, (std::vector<i64>{h, 4 * h / 4}));
  EXPECT_EQ(param(block, "input_norm.weight").shape, (std::vector<i64>{h}));
  // 50257 padded to 50260 = 4 * 12565.
  EXPECT_EQ(param(layers[0], "word_embeddings.weight").shape, (std::vector<i64>{12565, h}));
  EXPECT_EQ(param(layers[0], "position_embeddings.weight").shape, (std::vector<i64>{1024, h}));

  const auto llama = fixture("llama-3-8b.json");
  const auto l8 = build_layer_specs(llama, {.seq_len = 128, .tp = 8});
  EXPECT_EQ(param(l8[1], "attn.k.weight").shape, (std::vector<i64>{128, 4096}));
  EXPECT_EQ(param(l8[1], "mlp.down.weight").shape, (std::vector<i64>{4096, 14336 / 8}));
  EXPECT_EQ(param(l8.back(), "lm_head.weight").shape, (std::vector<i64>{128256 / 8, 4096}));
  // Block matrices split 8 ways, the two norms are replicated.
  const auto l1 = build_layer_specs(llama, {.seq_len = 128});
  EXPECT_EQ(l8[1].param_count(), (l1[1].param_count() - 2 * 4096) / 8 + 2 * 4096);
}

TEST(LayerSpecs, TpCollectives) {
  const auto m = load_model_preset("gpt-bench");
  const i64 x = 2 * 4 * 256 * 512;  // e * b * s * h
  EXPECT_TRUE(build_layer_specs(m, {.micro_batch = 4, .seq_len = 256})[1].collectives.empty());
  const auto block = build_layer_specs(m, {.micro_batch = 4, .seq_len = 256, .tp = 2})[1];
  EXPECT_EQ(count(block, "all_reduce", "tp", CommPhase::forward), 2);
  EXPECT_EQ(count(block, "all_reduce", "tp", CommPhase::backward), 2);
  for (const auto& c : block.collectives) EXPECT_EQ(c.bytes, x);
  const auto sp = build_layer_specs(m, {.micro_batch = 4, .seq_len = 256, .tp = 2, .tp_sp = true})[1];
  EXPECT_EQ(count(sp, "all_reduce", "tp", CommPhase::forward), 0);
  EXPECT_EQ(count(sp, "all_gather", "tp", CommPhase::forward), 2);
  EXPECT_EQ(count(sp, "reduce_scatter", "tp", CommPhase::forward), 2);
  EXPECT_EQ(count(sp, "reduce_scatter", "tp", CommPhase::backward), 2);
  EXPECT_EQ(count(sp, "all_gather", "tp", CommPhase::backward), 4);
}

TEST(LayerSpecs, UlyssesAddsFourAllToAllsEachWay) {
  const auto m = fixture("llama-3-8b.json");
  const i64 b = 2, s = 2048, u = 4, e = 2;
  const auto block = build_layer_specs(m, {.micro_batch = b, .seq_len = s, .sp = u, .dtype_bytes = e})[1];
  EXPECT_EQ(block.collectives.size(), 8u);
  EXPECT_EQ(count(block, "all_to_all", "sp", CommPhase::forward), 4);
  EXPECT_EQ(count(block, "all_to_all", "sp", CommPhase::backward), 4);
  const i64 q = e * b * (s / u) * 4096, kv = e * b * (s / u) * 1024;
  EXPECT_EQ(block.collectives[0], (CollectiveSpec{"all_to_all", "sp", q, CommPhase::forward}));
  EXPECT_EQ(block.collectives[1], (CollectiveSpec{"all_to_all", "sp", kv, CommPhase::forward}));
  EXPECT_EQ(block.collectives[2], (CollectiveSpec{"all_to_all", "sp", kv, CommPhase::forward}));
  EXPECT_EQ(block.collectives[3], (CollectiveSpec{"all_to_all", "sp", q, CommPhase::forward}));
  // With tp as well, the tp all-reduces stay and the all-to-alls carry the local heads.
  const auto both = build_layer_specs(m, {.micro_batch = b, .seq_len = s, .tp = 2, .sp = u, .dtype_bytes = e})[1];
  EXPECT_EQ(both.collectives.size(), 12u);
  EXPECT_EQ(count(both, "all_to_all", "sp", CommPhase::forward), 4);
  EXPECT_EQ(both.collectives[2].bytes, q / 2);
}

TEST(LayerSpecs, IndivisibleSplitsAreConfigErrors) {
  const auto m = fixture("llama-3-8b.json");
  auto path_of = [&](const SpecOptions& o) -> std::string {
    try {
      build_layer_specs(m, o);
    } catch (const ConfigError& e) {
      return e.path();
    }
    return "no error";
  };
  EXPECT_EQ(path_of({.seq_len = 128, .tp = 16}), "tp");       // 8 kv heads
  EXPECT_EQ(path_of({.seq_len = 130, .sp = 4}), "sp");        // 130 tokens
  EXPECT_EQ(path_of({.seq_len = 128, .tp = 0}), "tp");
  EXPECT_EQ(path_of({.micro_batch = 0, .seq_len = 128}), "micro_batch");
}

}  // namespace
}  // namespace twinspeed
