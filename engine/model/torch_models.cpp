#include "engine/model/torch_models.hpp"

#include <fmt/format.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>

#include "engine/core/errors.hpp"
#include "engine/model/spec/spec_layer_runner.hpp"

namespace twinspeed {
namespace {

using torch::Tensor;
namespace F = torch::nn::functional;

// Dropout as CUDA PyTorch runs it: at::native_dropout keeps a 1-byte mask for backward, where
// at::dropout on CPU keeps a mask of the input's dtype.
Tensor masked_dropout(const Tensor& x, double p, bool training) {
  if (!training || p == 0.0) return x;
  return std::get<0>(at::native_dropout(x, p, true));
}

// A layer whose parameters are created from its LayerSpec: "attn.qkv.weight" becomes parameter
// "weight" of child "qkv" of child "attn", so named_parameters() lists exactly the spec's names in
// the spec's order (children are visited in creation order). Shapes come from the spec, never
// from here.
class SpecLayer : public torch::nn::Module {
 public:
  explicit SpecLayer(const LayerSpec& spec) {
    for (const auto& p : spec.params) {
      torch::nn::Module* parent = this;
      std::string prefix;
      std::size_t start = 0;
      for (std::size_t dot = p.name.find('.'); dot != std::string::npos; dot = p.name.find('.', start)) {
        const std::string part = p.name.substr(start, dot - start);
        prefix += part + ".";
        auto& child = children_[prefix];
        if (!child) child = parent->register_module(part, std::make_shared<torch::nn::Module>());
        parent = child.get();
        start = dot + 1;
      }
      params_[p.name] = parent->register_parameter(p.name.substr(start), torch::empty(p.shape));
    }
  }

 protected:
  Tensor param(const std::string& name) const {
    auto it = params_.find(name);
    if (it == params_.end()) throw Error(fmt::format("model zoo: the layer spec has no parameter {}", name));
    return it->second;
  }
  // Undefined when the spec has no such parameter (biases of bias-free families).
  Tensor optional_param(const std::string& name) const {
    auto it = params_.find(name);
    return it == params_.end() ? Tensor() : it->second;
  }

 private:
  std::map<std::string, std::shared_ptr<torch::nn::Module>> children_;
  std::unordered_map<std::string, Tensor> params_;
};

Tensor norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const ModelConfig& c) {
  if (c.norm == NormType::layernorm) return torch::layer_norm(x, {x.size(-1)}, weight, bias, c.norm_eps);
  // HF LlamaRMSNorm: statistics in fp32, scaled in the input dtype.
  Tensor x32 = x.to(torch::kFloat32);
  Tensor normed = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + c.norm_eps);
  return weight * normed.to(x.scalar_type());
}

// [B, s, heads * d] -> [B, heads, s, d]
Tensor split_heads(const Tensor& x, std::int64_t heads, std::int64_t d) {
  return x.view({x.size(0), x.size(1), heads, d}).transpose(1, 2);
}

// Causal softmax attention over [B, heads, s, d] (k and v already have all heads), eager as HF:
// scores scaled by 1/sqrt(d), future positions masked, softmax in the activation dtype, dropout.
Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, double p, bool training) {
  const auto s = q.size(2);
  // An additive mask keeps nothing for backward (masked_fill / where would keep a bool mask).
  Tensor mask = torch::full({s, s}, -std::numeric_limits<float>::infinity(), q.options()).triu(1);
  Tensor scores = torch::matmul(q, k.transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(q.size(3)))) + mask;
  Tensor probs = masked_dropout(torch::softmax(scores, -1), p, training);
  Tensor ctx = torch::matmul(probs, v);
  return ctx.transpose(1, 2).reshape({q.size(0), s, q.size(1) * q.size(3)});
}

class EmbeddingLayer final : public SpecLayer {
 public:
  EmbeddingLayer(const LayerSpec& spec, const ModelConfig& c, bool training)
      : SpecLayer(spec), words_(param("word_embeddings.weight")),
        positions_(optional_param("position_embeddings.weight")), p_(c.embedding_dropout), training_(training) {}
  Tensor forward(Tensor ids) {
    Tensor h = F::embedding(ids, words_);
    if (positions_.defined()) {
      if (ids.size(1) > positions_.size(0)) {
        throw Error(fmt::format("sequence length {} exceeds the model's {} positions", ids.size(1), positions_.size(0)));
      }
      h = h + F::embedding(torch::arange(ids.size(1), ids.options()), positions_);
    }
    return masked_dropout(h, p_, training_);
  }

 private:
  Tensor words_, positions_;
  double p_;
  bool training_;
};

class Gpt2Block final : public SpecLayer {
 public:
  Gpt2Block(const LayerSpec& spec, const ModelConfig& c, bool training) : SpecLayer(spec), c_(c), training_(training) {}
  Tensor forward(Tensor x) {
    const auto h = c_.num_heads * c_.head_dim;
    Tensor a = norm(x, param("input_norm.weight"), param("input_norm.bias"), c_);
    auto qkv = F::linear(a, param("attn.qkv.weight"), param("attn.qkv.bias")).split(h, -1);
    Tensor ctx = causal_attention(split_heads(qkv[0], c_.num_heads, c_.head_dim),
                                  split_heads(qkv[1], c_.num_heads, c_.head_dim),
                                  split_heads(qkv[2], c_.num_heads, c_.head_dim), c_.attention_dropout, training_);
    x = x + masked_dropout(F::linear(ctx, param("attn.o.weight"), param("attn.o.bias")), c_.hidden_dropout, training_);
    Tensor m = norm(x, param("post_attention_norm.weight"), param("post_attention_norm.bias"), c_);
    m = torch::gelu(F::linear(m, param("mlp.fc1.weight"), param("mlp.fc1.bias")), "tanh");
    return x + masked_dropout(F::linear(m, param("mlp.fc2.weight"), param("mlp.fc2.bias")), c_.hidden_dropout, training_);
  }

 private:
  ModelConfig c_;
  bool training_;
};

Tensor rotate_half(const Tensor& x) {
  auto halves = x.chunk(2, -1);
  return torch::cat({-halves[1], halves[0]}, -1);
}

class LlamaBlock final : public SpecLayer {
 public:
  LlamaBlock(const LayerSpec& spec, const ModelConfig& c, bool training) : SpecLayer(spec), c_(c), training_(training) {}
  Tensor forward(Tensor x) {
    const auto s = x.size(1), d = c_.head_dim;
    Tensor a = norm(x, param("input_norm.weight"), {}, c_);
    Tensor q = split_heads(F::linear(a, param("attn.q.weight"), optional_param("attn.q.bias")), c_.num_heads, d);
    Tensor k = split_heads(F::linear(a, param("attn.k.weight"), optional_param("attn.k.bias")), c_.num_kv_heads, d);
    Tensor v = split_heads(F::linear(a, param("attn.v.weight"), optional_param("attn.v.bias")), c_.num_kv_heads, d);
    // HF LlamaRotaryEmbedding: angles in fp32, cos/sin cast to the activation dtype.
    auto fp32 = x.options().dtype(torch::kFloat32);
    Tensor inv_freq = 1.0 / torch::pow(c_.rope_theta, torch::arange(0, d, 2, fp32) / static_cast<double>(d));
    Tensor angles = torch::outer(torch::arange(s, fp32), inv_freq);
    Tensor emb = torch::cat({angles, angles}, -1);
    Tensor cos = emb.cos().to(x.scalar_type()), sin = emb.sin().to(x.scalar_type());
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    // HF repeat_kv: query head j attends with kv head j / (heads / kv_heads).
    const auto groups = c_.num_heads / c_.num_kv_heads;
    if (groups > 1) {
      k = k.repeat_interleave(groups, 1);
      v = v.repeat_interleave(groups, 1);
    }
    Tensor ctx = causal_attention(q, k, v, c_.attention_dropout, training_);
    x = x + F::linear(ctx, param("attn.o.weight"), optional_param("attn.o.bias"));
    Tensor m = norm(x, param("post_attention_norm.weight"), {}, c_);
    m = torch::silu(F::linear(m, param("mlp.gate.weight"))) * F::linear(m, param("mlp.up.weight"));
    return x + F::linear(m, param("mlp.down.weight"));
  }

 private:
  ModelConfig c_;
  bool training_;
};

class FinalNorm final : public SpecLayer {
 public:
  FinalNorm(const LayerSpec& spec, const ModelConfig& c) : SpecLayer(spec), c_(c) {}
  Tensor forward(Tensor x) { return norm(x, param("norm.weight"), optional_param("norm.bias"), c_); }

 private:
  ModelConfig c_;
};

class LmHead final : public SpecLayer {
 public:
  // tied: the embedding's word_embeddings tensor, registered here too (HF ties lm_head.weight the
  // same way); the runner then lists it as shared, not owned.
  LmHead(const LayerSpec& spec, const Tensor& tied) : SpecLayer(spec) {
    weight_ = tied.defined() ? register_parameter("weight", tied) : param("lm_head.weight");
  }
  Tensor forward(Tensor x) { return F::linear(x, weight_); }

 private:
  Tensor weight_;
};

// HF _init_weights, in the specs' parameter order (a tied head has none of its own).
void init_weights(const std::vector<LayerSpec>& specs, const std::vector<Layer>& layers, const ModelConfig& c,
                  const TorchModelOptions& options) {
  at::Generator gen = at::detail::createCPUGenerator(options.init_seed);
  torch::NoGradGuard no_grad;
  const double scaled = options.initializer_range / std::sqrt(2.0 * static_cast<double>(c.num_layers));
  for (std::size_t i = 0; i < specs.size(); ++i) {
    auto params = layers[i].module.ptr()->named_parameters(/*recurse=*/true);
    for (const auto& p : specs[i].params) {
      Tensor t = params[p.name];
      const bool is_norm = p.name.find("norm.") != std::string::npos;
      if (p.name.ends_with(".bias")) {
        t.zero_();
      } else if (is_norm) {
        t.fill_(1.0);
      } else {
        const bool gpt2_projection = c.model_type == "gpt2" && (p.name == "attn.o.weight" || p.name == "mlp.fc2.weight");
        t.normal_(0.0, gpt2_projection ? scaled : options.initializer_range, gen);
      }
    }
  }
}

template <typename Module, typename... Args>
Layer make_layer(const LayerSpec& spec, Args&&... args) {
  return Layer{spec.name, torch::nn::AnyModule(std::make_shared<Module>(spec, std::forward<Args>(args)...))};
}

}  // namespace

Model build_torch_model(const ModelConfig& config, const TorchModelOptions& options) {
  const auto specs = build_layer_specs(config, SpecOptions{});
  std::vector<Layer> layers;
  layers.reserve(specs.size());
  Tensor words;
  for (const auto& spec : specs) {
    switch (spec.kind) {
      case LayerKind::embedding: {
        auto module = std::make_shared<EmbeddingLayer>(spec, config, options.training);
        words = module->named_parameters()["word_embeddings.weight"];
        layers.push_back(Layer{spec.name, torch::nn::AnyModule(module)});
        break;
      }
      case LayerKind::block:
        if (config.model_type == "gpt2") {
          layers.push_back(make_layer<Gpt2Block>(spec, config, options.training));
        } else {
          layers.push_back(make_layer<LlamaBlock>(spec, config, options.training));
        }
        break;
      case LayerKind::final_norm: layers.push_back(make_layer<FinalNorm>(spec, config)); break;
      case LayerKind::lm_head:
        layers.push_back(make_layer<LmHead>(spec, config.tie_word_embeddings ? words : Tensor()));
        break;
    }
  }
  init_weights(specs, layers, config, options);
  return Model(std::move(layers), causal_lm_loss);
}

torch::Tensor causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  if (logits.dim() != 3 || labels.dim() != 2 || logits.size(0) != labels.size(0) || logits.size(1) != labels.size(1)) {
    throw Error(fmt::format("causal_lm_loss: logits {} and labels {} must be [B, s, V] and [B, s]",
                            shape_string(logits.sizes()), shape_string(labels.sizes())));
  }
  const auto vocab = logits.size(2);
  Tensor shifted = logits.slice(1, 0, -1).to(torch::kFloat32).reshape({-1, vocab});
  Tensor targets = labels.slice(1, 1).reshape({-1});
  return F::cross_entropy(shifted, targets, F::CrossEntropyFuncOptions().ignore_index(-100));
}

std::shared_ptr<TorchLayerRunner> make_torch_model_runner(const ModelConfig& config,
                                                          const TorchModelRunnerOptions& options) {
  if (options.spec.tp != 1 || options.spec.sp != 1) {
    throw NotImplemented(fmt::format("model zoo runner with tp = {}, sp = {}: the zoo's layers are not sharded",
                                     options.spec.tp, options.spec.sp));
  }
  Model model = build_torch_model(config, options.model);
  const RecomputeMode mode = options.recompute ? RecomputeMode::full : RecomputeMode::none;
  LayerCosts costs = spec_layer_costs(config, options.spec, mode);
  std::vector<bool> recompute;
  std::vector<std::array<std::int64_t, 2>> saved_bytes;
  for (const auto& spec : build_layer_specs(config, options.spec)) {
    if (options.recompute) recompute.push_back(spec.kind == LayerKind::block);
    saved_bytes.push_back({spec.activation_bytes(RecomputeMode::none), spec.activation_bytes(RecomputeMode::full)});
  }
  return std::make_shared<TorchLayerRunner>(
      std::move(model.layers), std::move(model.loss_fn),
      TorchRunnerOptions{.seed = options.dropout_seed, .costs = std::move(costs), .recompute = std::move(recompute),
                         .saved_bytes = std::move(saved_bytes)});
}

}  // namespace twinspeed
