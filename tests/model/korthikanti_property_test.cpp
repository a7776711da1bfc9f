// Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models"),
// Table 2, for generated GPT shapes: the saved-activation bytes of the L transformer blocks of
// engine/model/spec/layer_spec.hpp, 2-byte activations, 1-byte dropout masks, dropout on:
//   no parallelism               sbhL (34 + 5as/h)
//   tensor parallel t            sbhL (10 + 24/t + 5as/(ht))            (Eq. 2)
//   tensor + sequence parallel   sbhL (34/t + 5as/(ht))                 (Eq. 3-4)
//   selective recompute          sbhL (10 + 24/t); with sequence parallel sbhL 34/t
//   full recompute               2 sbhL; with sequence parallel 2 sbhL / t (the block input is
//                                sequence-sharded, as Megatron keeps it; the paper's table gives 2)
#include <cstdint>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "engine/model/spec/layer_spec.hpp"

namespace twinspeed {
namespace {

using i64 = std::int64_t;

struct GptShape {
  i64 heads, head_dim, layers, tp, micro_batch, seq;
};

rc::Gen<GptShape> gen_gpt_shape() {
  return rc::gen::mapcat(rc::gen::element<i64>(1, 2, 4, 8), [](i64 tp) {
    return rc::gen::apply(
        [tp](i64 heads_per_rank, i64 head_dim, i64 layers, i64 b, i64 seq_per_rank) {
          return GptShape{heads_per_rank * tp, head_dim, layers, tp, b, seq_per_rank * tp};
        },
        rc::gen::inRange<i64>(1, 9), rc::gen::element<i64>(8, 16, 64, 128), rc::gen::inRange<i64>(1, 5),
        rc::gen::inRange<i64>(1, 9), rc::gen::inRange<i64>(1, 257));
  });
}

ModelConfig gpt(const GptShape& g) {
  const nlohmann::json j = {{"model_type", "gpt2"},      {"n_embd", g.heads * g.head_dim}, {"n_layer", g.layers},
                            {"n_head", g.heads},         {"n_positions", g.seq},          {"vocab_size", 1000},
                            {"attn_pdrop", 0.1},         {"resid_pdrop", 0.1},            {"embd_pdrop", 0.1}};
  return parse_hf_config(j, "generated gpt2");
}

// Saved bytes of all blocks in one recompute mode.
i64 blocks_bytes(const ModelConfig& m, const GptShape& g, bool tp_sp, RecomputeMode mode) {
  const auto layers = build_layer_specs(
      m, {.micro_batch = g.micro_batch, .seq_len = g.seq, .tp = g.tp, .tp_sp = tp_sp, .dtype_bytes = 2});
  i64 total = 0;
  for (const auto& layer : layers) {
    if (layer.kind == LayerKind::block) total += layer.activation_bytes(mode);
  }
  return total;
}

RC_GTEST_PROP(KorthikantiProperty, BlockActivationBytesEqualTable2ForTpAndTpSpInEveryRecomputeMode, ()) {
  const GptShape g = *gen_gpt_shape();
  const ModelConfig m = gpt(g);
  const i64 s = g.seq, b = g.micro_batch, h = m.hidden_size, a = g.heads, t = g.tp, L = g.layers;
  const i64 sbhL = s * b * h * L;
  const i64 core = 5 * a * s * s * b * L;  // sbhL * 5as/h, kept integral

  RC_ASSERT(blocks_bytes(m, g, false, RecomputeMode::none) == 10 * sbhL + 24 * sbhL / t + core / t);
  RC_ASSERT(blocks_bytes(m, g, false, RecomputeMode::selective) == 10 * sbhL + 24 * sbhL / t);
  RC_ASSERT(blocks_bytes(m, g, false, RecomputeMode::full) == 2 * sbhL);
  RC_ASSERT(blocks_bytes(m, g, true, RecomputeMode::none) == 34 * sbhL / t + core / t);
  RC_ASSERT(blocks_bytes(m, g, true, RecomputeMode::selective) == 34 * sbhL / t);
  RC_ASSERT(blocks_bytes(m, g, true, RecomputeMode::full) == 2 * sbhL / t);
  if (t == 1) RC_ASSERT(blocks_bytes(m, g, false, RecomputeMode::none) == 34 * sbhL + core);  // Eq. 1
}

}  // namespace
}  // namespace twinspeed
