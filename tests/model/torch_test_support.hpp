#pragma once
// Shared by the model-zoo tests: tiny HF configs, engine-like flat storage bound to a runner, and
// one training micro-step driven the way the engine drives it.

#include <twinspeed/torch.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/core/buffer.hpp"
#include "engine/model/spec/model_config.hpp"
#include "engine/model/torch_layer_runner.hpp"
#include "engine/model/torch_models.hpp"

namespace twinspeed::testing {

// 2 layers, hidden 64: small enough for exact comparisons, big enough for every code path.
inline ModelConfig tiny_gpt2(double dropout = 0.1) {
  return parse_hf_config(nlohmann::json{{"model_type", "gpt2"}, {"n_embd", 64}, {"n_layer", 2}, {"n_head", 4},
                                        {"n_positions", 32}, {"vocab_size", 96}, {"attn_pdrop", dropout},
                                        {"embd_pdrop", dropout}, {"resid_pdrop", dropout}},
                         "tiny-gpt2");
}

// Llama family with GQA (4 heads, 2 kv heads); qwen2 adds q/k/v biases.
inline ModelConfig tiny_llama(const std::string& model_type = "llama", bool tied = false) {
  return parse_hf_config(nlohmann::json{{"model_type", model_type}, {"hidden_size", 64}, {"num_hidden_layers", 2},
                                        {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                                        {"intermediate_size", 96}, {"vocab_size", 96},
                                        {"max_position_embeddings", 64}, {"rms_norm_eps", 1e-6},
                                        {"rope_theta", 10000.0}, {"tie_word_embeddings", tied}},
                         "tiny-" + model_type);
}

inline torch::ScalarType scalar_type(DType dtype) {
  switch (dtype) {
    case DType::f16: return torch::kFloat16;
    case DType::bf16: return torch::kBFloat16;
    default: return torch::kFloat32;
  }
}

// The engine's side of the contract, in miniature: one flat parameter and one flat gradient
// buffer of `dtype`, layer after layer, owned parameters only; initial values written by the
// runner, then bound.
class FlatStorage {
 public:
  FlatStorage(LayerRunner& runner, DType dtype) {
    std::int64_t total = 0;
    for (std::size_t l = 0; l < runner.layer_count(); ++l) {
      for (const auto& p : runner.parameters(l)) total += p.numel();
    }
    param_bytes_ = torch::zeros({total}, scalar_type(dtype));
    grad_bytes_ = torch::zeros({total}, scalar_type(dtype));
    params_ = Buffer(&owner_, MemoryTag::params, dtype, total, param_bytes_.data_ptr(), 0);
    grads_ = Buffer(&owner_, MemoryTag::grads, dtype, total, grad_bytes_.data_ptr(), 0);
    std::int64_t offset = 0;
    for (std::size_t l = 0; l < runner.layer_count(); ++l) {
      std::vector<BufferView> pv, gv;
      for (const auto& p : runner.parameters(l)) {
        pv.push_back(params_.view(offset, p.numel()));
        gv.push_back(grads_.view(offset, p.numel()));
        offset += p.numel();
      }
      runner.initial_parameters(l, pv);
      runner.bind_parameters(l, pv);
      runner.bind_gradients(l, gv);
      param_views_.push_back(pv);
      grad_views_.push_back(gv);
    }
  }
  // The flat gradient buffer (a torch view of it).
  const torch::Tensor& grads() const { return grad_bytes_; }
  const torch::Tensor& params() const { return param_bytes_; }
  const std::vector<BufferView>& param_views(std::size_t layer) const { return param_views_[layer]; }

 private:
  struct NoOwner final : BufferOwner {
    void release(Buffer&) noexcept override {}
  };
  NoOwner owner_;
  torch::Tensor param_bytes_, grad_bytes_;
  Buffer params_, grads_;
  std::vector<std::vector<BufferView>> param_views_, grad_views_;
};

// One micro-step as the engine runs it: every layer's forward, the loss, its backward with
// `scale`, every layer's backward in reverse. Returns the loss as the runner reports it.
inline double micro_step(LayerRunner& runner, const torch::Tensor& inputs, const torch::Tensor& labels,
                         double scale = 1.0) {
  Activation x = wrap_tensor(inputs);
  for (std::size_t l = 0; l < runner.layer_count(); ++l) x = runner.forward(l, x);
  Activation loss = runner.loss(x, wrap_tensor(labels));
  const double value = runner.scalar(loss);
  Activation grad = runner.loss_backward(loss, scale);
  for (std::size_t l = runner.layer_count(); l-- > 0;) grad = runner.backward(l, grad);
  runner.release_saved();
  return value;
}

// The zoo model of `c` (default init seed) as one autograd graph, dropout drawn from the stream a
// runner of rank 0 seeded with `dropout_seed` uses. Gradients per owned parameter, in runner
// (= engine) order: a tensor held by several layers counts once.
struct WholeModel {
  double loss = 0;
  std::vector<torch::Tensor> grads;
};
inline WholeModel whole_model(const ModelConfig& c, const Batch& batch, std::uint64_t dropout_seed) {
  Model m = build_torch_model(c);
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  const torch::Tensor outside = gen.get_state();
  gen.set_state(at::detail::createCPUGenerator(dropout_seed).get_state());
  torch::Tensor x = batch.inputs;
  for (auto& layer : m.layers) x = layer.module.forward(x);
  torch::Tensor loss = m.loss_fn(x, batch.labels);
  loss.backward();
  gen.set_state(outside);
  WholeModel out{loss.item<double>(), {}};
  std::unordered_set<const c10::TensorImpl*> seen;
  for (auto& layer : m.layers) {
    for (const auto& p : layer.module.ptr()->parameters()) {
      if (seen.insert(p.unsafeGetTensorImpl()).second) out.grads.push_back(p.grad());
    }
  }
  return out;
}

// Per-parameter slices of a flat buffer laid out like FlatStorage.
inline std::vector<torch::Tensor> split_flat(const LayerRunner& runner, const torch::Tensor& flat) {
  std::vector<torch::Tensor> out;
  std::int64_t offset = 0;
  for (std::size_t l = 0; l < runner.layer_count(); ++l) {
    for (const auto& p : runner.parameters(l)) {
      out.push_back(flat.slice(0, offset, offset + p.numel()).view(p.shape));
      offset += p.numel();
    }
  }
  return out;
}

// ||a - b|| / ||b|| in fp64.
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  return (a64 - b64).norm().item<double>() / std::max(b64.norm().item<double>(), 1e-30);
}

}  // namespace twinspeed::testing
