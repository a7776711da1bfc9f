#include "engine/model/spec/layer_spec.hpp"

#include "engine/core/errors.hpp"

namespace twinspeed {
namespace {

using i64 = std::int64_t;

void require_divides(i64 divisor, i64 value, const std::string& path, const std::string& what) {
  if (value % divisor != 0) {
    throw ConfigError(path, std::to_string(divisor), "must divide " + what + " = " + std::to_string(value));
  }
}

// Local (one rank's) sizes, after checking that every split is exact.
struct Local {
  i64 b, s_full, s, h, ad, kd, heads, f, vocab, e, t, u;
  bool tp_sp;
  double attn_dropout, hidden_dropout, embd_dropout;
  bool flash;  // AttentionKernel::flash
  // Tensors outside the tp region: split by t only with Megatron sequence parallelism.
  i64 replicated(i64 bytes) const { return tp_sp ? bytes / t : bytes; }
};

Local local_sizes(const ModelConfig& m, const SpecOptions& o) {
  for (auto [path, v] : {std::pair<const char*, i64>{"micro_batch", o.micro_batch}, {"seq_len", o.seq_len},
                         {"tp", o.tp}, {"sp", o.sp}, {"dtype_bytes", o.dtype_bytes}}) {
    if (v <= 0) throw ConfigError(path, std::to_string(v), "must be positive");
  }
  const i64 t = o.tp, u = o.sp;
  require_divides(t * u, m.num_heads, o.sp > 1 ? "sp" : "tp", "the attention heads (times tp*sp)");
  require_divides(t * u, m.num_kv_heads, o.sp > 1 ? "sp" : "tp", "the kv heads (times tp*sp)");
  require_divides(t, m.intermediate_size, "tp", "the intermediate size");
  require_divides(u, o.seq_len, "sp", "seq_len");
  if (o.tp_sp) require_divides(t, o.seq_len / u, "tp", "the tokens per sp rank (tp_sp)");
  const i64 padded_vocab = (m.vocab_size + t - 1) / t * t;
  return Local{.b = o.micro_batch, .s_full = o.seq_len, .s = o.seq_len / u, .h = m.hidden_size,
               .ad = m.num_heads * m.head_dim / t, .kd = m.num_kv_heads * m.head_dim / t,
               .heads = m.num_heads / (t * u), .f = m.intermediate_size / t, .vocab = padded_vocab / t,
               .e = o.dtype_bytes, .t = t, .u = u, .tp_sp = o.tp_sp, .attn_dropout = m.attention_dropout,
               .hidden_dropout = m.hidden_dropout, .embd_dropout = m.embedding_dropout,
               .flash = o.attention == AttentionKernel::flash};
}

void add_norm(std::vector<ParamSpec>& params, const std::string& name, const ModelConfig& m) {
  params.push_back({name + ".weight", {m.hidden_size}});
  if (m.norm == NormType::layernorm) params.push_back({name + ".bias", {m.hidden_size}});
}

void add_linear(std::vector<ParamSpec>& params, const std::string& name, i64 out, i64 in, bool bias) {
  params.push_back({name + ".weight", {out, in}});
  if (bias) params.push_back({name + ".bias", {out}});
}

void add(std::vector<CollectiveSpec>& c, const char* op, const char* group, i64 bytes, CommPhase phase) {
  c.push_back({op, group, bytes, phase});
}

// Megatron's conjugate operators around one tp region (attention or MLP); x = bytes of its input.
void add_tp_region(std::vector<CollectiveSpec>& c, const Local& l, i64 x) {
  if (l.t == 1) return;
  if (!l.tp_sp) {
    add(c, "all_reduce", "tp", x, CommPhase::forward);
    add(c, "all_reduce", "tp", x, CommPhase::backward);
    return;
  }
  add(c, "all_gather", "tp", x, CommPhase::forward);
  add(c, "reduce_scatter", "tp", x, CommPhase::forward);
  add(c, "all_gather", "tp", x, CommPhase::backward);      // gradient of the reduce_scatter
  add(c, "all_gather", "tp", x, CommPhase::backward);      // re-gather the input for the weight grads
  add(c, "reduce_scatter", "tp", x, CommPhase::backward);  // gradient of the all_gather
}

LayerSpec embedding_layer(const ModelConfig& m, const Local& l) {
  LayerSpec layer{.name = "embedding", .kind = LayerKind::embedding};
  layer.params.push_back({"word_embeddings.weight", {l.vocab, l.h}});
  if (m.learned_positions) layer.params.push_back({"position_embeddings.weight", {m.max_positions, l.h}});
  const i64 sbh = l.b * l.s * l.h;
  const i64 saved = l.embd_dropout > 0 ? l.replicated(sbh) : 0;
  layer.saved_bytes = {saved, saved, saved};
  if (l.t > 1) {
    if (l.tp_sp) {
      add(layer.collectives, "reduce_scatter", "tp", l.e * sbh, CommPhase::forward);
      add(layer.collectives, "all_gather", "tp", l.e * sbh, CommPhase::backward);
    } else {
      add(layer.collectives, "all_reduce", "tp", l.e * sbh, CommPhase::forward);
    }
  }
  return layer;
}

LayerSpec block_layer(const ModelConfig& m, const Local& l, i64 index) {
  LayerSpec layer{.name = "block." + std::to_string(index), .kind = LayerKind::block};
  const bool fused_qkv = m.model_type == "gpt2";
  auto& p = layer.params;
  add_norm(p, "input_norm", m);
  if (fused_qkv) {
    add_linear(p, "attn.qkv", l.ad + 2 * l.kd, l.h, m.qkv_bias);
  } else {
    add_linear(p, "attn.q", l.ad, l.h, m.qkv_bias);
    add_linear(p, "attn.k", l.kd, l.h, m.qkv_bias);
    add_linear(p, "attn.v", l.kd, l.h, m.qkv_bias);
  }
  p.push_back({"attn.o.weight", {l.h, l.ad}});
  if (m.linear_bias) p.push_back({"attn.o.bias", {l.h}});
  add_norm(p, "post_attention_norm", m);
  const bool swiglu = m.activation == MlpActivation::swiglu;
  if (swiglu) {
    add_linear(p, "mlp.gate", l.f, l.h, false);
    add_linear(p, "mlp.up", l.f, l.h, false);
    p.push_back({"mlp.down.weight", {l.h, l.f}});
  } else {
    add_linear(p, "mlp.fc1", l.f, l.h, m.linear_bias);
    p.push_back({"mlp.fc2.weight", {l.h, l.f}});
    if (m.linear_bias) p.push_back({"mlp.fc2.bias", {l.h}});
  }

  // FLOPs (header: 2 per multiply-add, matmuls only). Linear layers: Bs/u tokens; the attention
  // core: all s tokens of a/(t*u) heads, i.e. (s/u) * s * ad/t multiply-adds per matrix product.
  const i64 tokens = l.b * l.s;
  const i64 linear = 2 * tokens * l.h * (l.ad + 2 * l.kd) + 2 * tokens * l.ad * l.h;
  const i64 core = 2 * (2 * l.b * l.s * l.s_full * l.ad);
  const i64 mlp = (swiglu ? 3 : 2) * 2 * tokens * l.h * l.f;
  layer.forward_flops = linear + core + mlp;
  layer.backward_flops = 2 * layer.forward_flops + (l.flash ? core / 2 : 0);
  layer.recompute_flops = {0, core, layer.forward_flops};

  // Saved activations (header: Korthikanti et al. 2022 Sec. 4, adapted).
  const i64 sbh = tokens * l.h;
  const i64 e = l.e;
  const i64 scores = l.b * l.heads * l.s_full * l.s_full;  // one rank's a/(t*u) heads x s x s
  const i64 mask = 1;
  const bool attn_dropout = l.attn_dropout > 0, hidden_dropout = l.hidden_dropout > 0;
  const i64 outside = 2 * e * sbh                                   // norm1 input, q/k/v input
                      + 2 * e * sbh                                 // norm2 input, MLP input
                      + (hidden_dropout ? 2 * mask * sbh : 0);      // two residual-dropout masks
  const i64 inside = e * tokens * (l.ad + 2 * l.kd)                 // Q, K, V
                     + e * tokens * l.ad                            // o_proj input
                     + (swiglu ? 4 : 2) * e * tokens * l.f;         // MLP intermediates
  const i64 core_saved = l.flash ? 4 * l.b * l.heads * l.s_full  // fp32 log-sum-exp per query row and head
                               : e * scores + (attn_dropout ? (mask + e) * scores : 0);
  const i64 selective = l.replicated(outside) + inside;
  layer.saved_bytes = {selective + core_saved, selective, l.replicated(e * sbh)};

  // Collectives.
  const i64 x = e * sbh;
  add_tp_region(layer.collectives, l, x);  // attention
  if (l.u > 1) {
    for (auto phase : {CommPhase::forward, CommPhase::backward}) {
      add(layer.collectives, "all_to_all", "sp", e * tokens * l.ad, phase);  // q
      add(layer.collectives, "all_to_all", "sp", e * tokens * l.kd, phase);  // k
      add(layer.collectives, "all_to_all", "sp", e * tokens * l.kd, phase);  // v
      add(layer.collectives, "all_to_all", "sp", e * tokens * l.ad, phase);  // attention output
    }
  }
  add_tp_region(layer.collectives, l, x);  // MLP
  return layer;
}

LayerSpec final_norm_layer(const ModelConfig& m, const Local& l) {
  LayerSpec layer{.name = "final_norm", .kind = LayerKind::final_norm};
  add_norm(layer.params, "norm", m);
  const i64 saved = l.replicated(l.e * l.b * l.s * l.h);
  layer.saved_bytes = {saved, saved, saved};
  return layer;
}

LayerSpec lm_head_layer(const ModelConfig& m, const Local& l) {
  LayerSpec layer{.name = "lm_head", .kind = LayerKind::lm_head};
  if (!m.tie_word_embeddings) layer.params.push_back({"lm_head.weight", {l.vocab, l.h}});
  const i64 tokens = l.b * l.s;
  layer.forward_flops = 2 * tokens * l.h * l.vocab;
  layer.backward_flops = 2 * layer.forward_flops;
  const i64 x = l.e * tokens * l.h;
  const i64 saved = l.replicated(x);
  layer.saved_bytes = {saved, saved, saved};
  if (l.t > 1) {
    if (l.tp_sp) {
      add(layer.collectives, "all_gather", "tp", x, CommPhase::forward);
      add(layer.collectives, "all_gather", "tp", x, CommPhase::backward);
      add(layer.collectives, "reduce_scatter", "tp", x, CommPhase::backward);
    } else {
      add(layer.collectives, "all_reduce", "tp", x, CommPhase::backward);
    }
  }
  return layer;
}

}  // namespace

std::int64_t LayerSpec::param_count() const {
  std::int64_t n = 0;
  for (const auto& p : params) n += p.numel();
  return n;
}

std::int64_t total_param_count(const std::vector<LayerSpec>& layers) {
  std::int64_t n = 0;
  for (const auto& layer : layers) n += layer.param_count();
  return n;
}

std::vector<LayerSpec> build_layer_specs(const ModelConfig& model, const SpecOptions& options) {
  const Local l = local_sizes(model, options);
  std::vector<LayerSpec> layers;
  layers.reserve(static_cast<std::size_t>(model.num_layers) + 3);
  layers.push_back(embedding_layer(model, l));
  for (i64 i = 0; i < model.num_layers; ++i) layers.push_back(block_layer(model, l, i));
  layers.push_back(final_norm_layer(model, l));
  layers.push_back(lm_head_layer(model, l));
  return layers;
}

}  // namespace twinspeed
