#pragma once
// The model zoo: small real LibTorch models built from a ModelConfig (gpt2, llama, mistral,
// qwen2), layer for layer what build_layer_specs(model, tp = 1) describes, so the engine can train
// them through TorchLayerRunner and the simulator can time them by their specs' FLOPs.
//
// Structure (Hugging Face eager modules; names are the specs', HF's in brackets):
//  - embedding: word_embeddings [wte / embed_tokens], GPT-2 also position_embeddings [wpe] and
//    embedding dropout [drop];
//  - block.i, GPT-2 [GPT2Block]: input_norm [ln_1], fused attn.qkv with bias [c_attn], causal
//    softmax attention with attention dropout, attn.o [attn.c_proj], residual dropout,
//    post_attention_norm [ln_2], mlp.fc1 [c_fc] -> gelu tanh ("gelu_new") -> mlp.fc2 [mlp.c_proj]
//    -> dropout;
//  - block.i, Llama/Mistral/Qwen2 [LlamaDecoderLayer]: RMSNorm [input_layernorm], attn.q/k/v
//    [q/k/v_proj] (biases for Qwen2), RoPE (theta from the config), GQA with num_kv_heads,
//    attn.o [o_proj], RMSNorm [post_attention_layernorm], SwiGLU mlp.gate/up/down;
//  - final_norm: norm [ln_f / norm]; lm_head: lm_head.weight, or, tied, the embedding's
//    word_embeddings tensor itself (the runner lists it as a shared parameter).
// Weights are [out, in] (nn.Linear; HF GPT-2's Conv1D stores the transpose). Dropout draws from
// LibTorch's default CPU generator (TorchLayerRunner swaps its per-rank stream in) and keeps a
// 1-byte mask (at::native_dropout, as on GPU). Mistral's sliding window is not applied (the
// config does not carry it; exact for seq_len <= window).

#include <twinspeed/torch.hpp>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "engine/model/spec/layer_spec.hpp"
#include "engine/model/spec/model_config.hpp"
#include "engine/model/torch_layer_runner.hpp"

namespace twinspeed {

struct TorchModelOptions {
  // Weight init (HF _init_weights): normal(0, initializer_range) for matrices and embeddings
  // (GPT-2's attn.o and mlp.fc2 scaled by 1/sqrt(2 * layers)), zero biases, unit norm weights,
  // drawn in parameter order from a generator seeded with init_seed.
  std::uint64_t init_seed = 0;
  // HF's default for all four families; ModelConfig does not carry the file's value.
  double initializer_range = 0.02;
  // false: dropout off (HF model.eval()).
  bool training = true;
};

// Builds the layers and the causal-LM loss. Throws ConfigError for a config the specs reject.
Model build_torch_model(const ModelConfig& config, const TorchModelOptions& options = {});

// Causal LM cross-entropy as HF computes it: logits[:, :-1] against labels[:, 1:], in fp32, mean
// over the tokens whose label is not -100. logits [B, s, V], labels [B, s] (int64).
torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels);

struct TorchModelRunnerOptions {
  TorchModelOptions model;
  // Micro-batch, seq_len and activation dtype bytes of the costs; tp and sp must be 1.
  SpecOptions spec;
  // The runner's dropout stream: seed + rank.
  std::uint64_t dropout_seed = 1234;
  // Full recompute of the blocks (RecomputeMode::full: the specs' saved bytes and costs; the
  // embedding, final norm and head keep their graphs, as Megatron's and DeepSpeed's activation
  // checkpointing do). fp16 emulation recomputes every layer anyway, uncharged: a CPU artefact.
  bool recompute = false;
};

// The runner the engine drives for a zoo model: layers, loss, seed, and per-layer costs from
// spec_layer_costs (the shape-only runner's, so numeric and shape runs time alike). Throws
// NotImplemented for tp or sp > 1 (the zoo's layers are not sharded).
std::shared_ptr<TorchLayerRunner> make_torch_model_runner(const ModelConfig& config,
                                                          const TorchModelRunnerOptions& options);

}  // namespace twinspeed
