#pragma once
// Layer specs: a ModelConfig as the ordered list of layers the engine runs (embedding, N
// transformer blocks, final norm, LM head), each with what ONE rank holds and does under tensor
// parallelism (tp), Megatron sequence parallelism (tp_sp) and DeepSpeed-Ulysses sequence
// parallelism (sp): parameter shapes, FLOPs, saved-activation bytes per recompute mode and the
// collectives it issues. One source of truth for these formulas: engine, sim and planner call it.
//
// Notation: B micro-batch, s sequence length, h hidden, a heads, k kv heads, d head dim,
// f intermediate size, V vocabulary, L layers, e activation dtype bytes, t = tp, u = sp.
//
// PARAMETERS (Megatron-LM sharding, Shoeybi et al. 2019): column-parallel q/k/v (GPT-2: fused
// qkv) and fc1 / gate / up split their output dim by t; row-parallel o_proj and fc2 / down split
// their input dim by t (their biases are replicated); the token embedding and an untied LM head
// are vocab-parallel, the vocabulary padded up to a multiple of t (Megatron pads to 128*t; the
// smallest multiple keeps t = 1 counts equal to HF's); norms and GPT-2's position table are
// replicated. A tied LM head has no parameters of its own. Weights are [out, in] (nn.Linear).
//
// FLOPS count matmuls only (2 FLOPs per multiply-add), as Megatron's model-FLOPs formula does
// (Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters", App.):
//   per block forward: q 2Bs*h*ad + k, v 2Bs*h*kd each + scores QK^T 2B*s^2*ad + context 2B*s^2*ad
//                      + o_proj 2Bs*ad*h + MLP (gelu: 2 matmuls, 4Bshf; swiglu: 3 matmuls, 6Bshf)
//   LM head forward:   2BshV (tied or not); embedding, norms, softmax, activations: 0.
// For GPT (k = a, ad = h, f = 4h, gelu) a block is 24Bsh^2 + 4Bs^2h = 24Bsh^2 (1 + s/(6h)).
// Backward is 2x forward for every matmul (grad of input + grad of weight, or of both operands).
// Recomputation repeats forward work in backward (recompute_flops): full recompute a block's whole
// forward, selective recompute its attention core (the two s^2 products, 4B*s^2*ad).
// So a step without recompute is 3 * (24BsLh^2 (1 + s/(6h)) + 2BshV)
//   = 72 BsLh^2 (1 + s/(6h) + V/(12Lh)), and with full recompute (blocks run forward twice,
// the head does not) 96 BsLh^2 (1 + s/(6h) + V/(16Lh)): Megatron's closed form.
// Causal masking is not discounted (Megatron counts the full s^2), nor is Mistral's sliding
// window (exact for s <= sliding_window). Per rank: the same with the
// local sizes: linear layers see Bs/u tokens and ad/t, kd/t, f/t, V/t outputs; the attention core
// sees all s tokens of a/(t*u) heads, so every term is the model's divided by t*u.
//
// SAVED ACTIVATIONS follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
// Transformer Models", Sec. 4): what autograd keeps for backward with standard (non-fused)
// attention; dropout masks 1 byte per element; per-token norm statistics (mean/rstd) and RoPE's
// cos/sin tables are ignored, as there. Per block, with no recompute:
//   norm1 input e*sbh, q/k/v input e*sbh, Q e*sb*ad, K and V e*sb*kd each,
//   softmax output e*a*s^2*b, attention-dropout mask a*s^2*b and its output e*a*s^2*b (only
//   when attention dropout > 0; else the softmax output feeds attention-over-V),
//   o_proj input e*sb*ad, residual-dropout mask sbh (hidden dropout > 0),
//   norm2 input e*sbh, MLP input e*sbh,
//   gelu: fc1 output (GeLU input) e*sbf and fc2 input e*sbf;
//   swiglu: gate output (silu input) e*sbf, silu output e*sbf, up output e*sbf, product e*sbf
//   (what PyTorch autograd saves for down(silu(gate(x)) * up(x))),
//   residual-dropout mask sbh (hidden dropout > 0).
// For GPT with e = 2 and dropout: sbh (34 + 5as/h), Korthikanti's Eq. (1). K and V are saved
// with k heads (a GQA kernel that does not materialise repeat_kv).
// Selective recompute drops the attention core (softmax, its dropout, their outputs): the 5as^2b
// terms, leaving 34 sbh for GPT. Full recompute keeps only the block input: e*sbh.
// FLASH ATTENTION (AttentionKernel::flash: FlashAttention-2, Dao 2023, and kernels that save what
// it saves, such as PyTorch SDPA's flash and memory-efficient backends) never materialises the
// scores: the core saves its output (the o_proj input, already counted), Q, K, V (counted) and the
// softmax's log-sum-exp, 4 bytes (fp32) per query row and head: 4*a*s*b instead of the 5as^2b
// terms (the attention-dropout mask is regenerated from the RNG state). Its backward recomputes
// the scores QK^T (2B*s^2*ad more FLOPs, in backward_flops but not in model FLOPs). Selective
// recompute drops the log-sum-exp and recomputes the core as with standard attention.
// Tensor parallelism divides the tensors inside the tp region (Q, K, V, attention core, o_proj
// input, MLP intermediates) by t; with tp_sp the rest (norm inputs, q/k/v and MLP inputs,
// dropout masks, the block input under full recompute) is divided by t too (Korthikanti Eq. 2-4:
// sbh(10 + 24/t + 5as/(ht)) and sbh/t (34 + 5as/h)). Ulysses divides everything by u (Bs/u
// tokens outside attention, a/u heads of all s tokens inside). Other layers save the same in
// every mode: the embedding its dropout mask (sbh, GPT-2), the final norm and the LM head their
// input (e*sbh; divided by t with tp_sp); token ids and the loss's logits are not counted.
//
// COLLECTIVES per block (bytes per rank = the full-size tensor each rank contributes or
// receives: for all_gather its output, for reduce_scatter its input; X = e*B*(s/u)*h):
//   tp > 1, no tp_sp: forward all_reduce X after o_proj and after fc2/down; backward all_reduce X
//     of the gradient of the attention input and of the MLP input (Megatron's f/g operators).
//   tp_sp: forward all_gather X before q/k/v and before fc1 and reduce_scatter X after o_proj and
//     fc2; backward reduce_scatter X for each of the two all_gathers, all_gather X for each of the
//     two reduce_scatters, and all_gather X twice to re-gather the inputs that the weight
//     gradients need (Megatron saves the sequence-sharded input).
//   sp > 1 (Ulysses, Jacobs et al. 2023): forward all_to_all of q, k, v before attention
//     (e*B*(s/u)*ad/t, e*B*(s/u)*kd/t each) and of the attention output after (e*B*(s/u)*ad/t);
//     backward the same four all_to_alls of the gradients.
// The embedding (vocab-parallel) all_reduces X forward (reduce_scatter with tp_sp, and then
// all_gathers the gradient backward); the LM head all_reduces the input gradient backward (tp_sp:
// all_gather forward, reduce_scatter + re-gather backward). The vocab-parallel cross-entropy's
// small reductions belong to the loss. Recomputation re-issues forward collectives in backward;
// that is the engine's schedule, not listed here.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/model/layer_runner.hpp"
#include "engine/model/spec/model_config.hpp"

namespace twinspeed {

enum class RecomputeMode { none = 0, selective = 1, full = 2 };
enum class AttentionKernel { standard, flash };  // see FLASH ATTENTION in the header
enum class LayerKind { embedding, block, final_norm, lm_head };
enum class CommPhase { forward, backward };

struct SpecOptions {
  std::int64_t micro_batch = 1;
  std::int64_t seq_len = 1;
  std::int64_t tp = 1;
  std::int64_t sp = 1;        // DeepSpeed-Ulysses sequence parallelism
  bool tp_sp = false;         // Megatron sequence parallelism inside tp
  std::int64_t dtype_bytes = 2;  // activation element size
  AttentionKernel attention = AttentionKernel::standard;
};

struct CollectiveSpec {
  std::string op;          // "all_reduce", "all_gather", "reduce_scatter", "all_to_all"
  std::string group;       // "tp" or "sp"
  std::int64_t bytes = 0;  // per rank, see the header comment
  CommPhase phase = CommPhase::forward;
  bool operator==(const CollectiveSpec&) const = default;
};

struct LayerSpec {
  std::string name;  // "embedding", "block.0", ..., "final_norm", "lm_head"
  LayerKind kind = LayerKind::block;
  std::vector<ParamSpec> params;  // as held by one tp rank
  std::int64_t forward_flops = 0;   // per rank, one micro-batch
  std::int64_t backward_flops = 0;  // 2x forward (+ flash attention's recomputed scores)
  std::array<std::int64_t, 3> recompute_flops{};  // per rank, indexed by RecomputeMode (see header)
  std::array<std::int64_t, 3> saved_bytes{};  // per rank, indexed by RecomputeMode
  std::vector<CollectiveSpec> collectives;

  std::int64_t activation_bytes(RecomputeMode mode) const { return saved_bytes[static_cast<int>(mode)]; }
  std::int64_t param_count() const;
};

// Throws ConfigError (path "tp", "sp", "seq_len", "micro_batch", "dtype_bytes") when a size is
// not positive or does not divide what it must: heads and kv heads by t*u, s by u (and by u*t with
// tp_sp), f by t.
std::vector<LayerSpec> build_layer_specs(const ModelConfig& model, const SpecOptions& options);

// Sum of param_count() over layers: the model's parameters held by one tp rank.
std::int64_t total_param_count(const std::vector<LayerSpec>& layers);

}  // namespace twinspeed
