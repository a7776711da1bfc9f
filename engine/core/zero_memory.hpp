#pragma once
// ZeRO's per-rank memory formula (Rajbhandari et al., "ZeRO", section 5), in BYTES, with the
// padding exactly as engine/core/partition.hpp lays the buffers out, so it can be compared byte for
// byte with what an engine allocates. For a model of Psi elements, N ranks, K optimizer bytes per
// element, mixed precision (2-byte params and grads, fp32 master):
//   stage 0: params 2Psi, grads 2Psi, master 4Psi, states K*Psi          (all replicated)
//   stage 1: params 2Psi, grads 2Psi, master 4Psi/N, states K*Psi/N   (grads: padded layout)
//   stage 2: params 2Psi, grads 2Psi/N, master 4Psi/N, states K*Psi/N
//   stage 3: everything /N
// where "Psi" means the padded flat buffer of each group (stages 1-2) or the sum of the padded
// per-parameter shards (stage 3). What is counted, per stage:
//   params         stage 0: the model's parameters, unpadded; stages 1-2: each group's whole padded
//                  flat buffer; stage 3: each parameter's ceil(numel/N) shard (gathered copies are
//                  transient and not counted).
//   grads          stage 0: the parameters' gradients, unpadded; stage 1: every group's whole padded
//                  flat buffer (the gradients share the parameters' layout, so the rank's partition
//                  is a contiguous view; DeepSpeed instead keeps each .grad plus a contiguous copy
//                  of the partition's: about the same bytes); stage 2: the rank's padded partition
//                  of every group; stage 3: the per-parameter shards.
//                  Stages 2-3 also hold short-lived gradients of the layers in backward, and
//                  mixed-precision steps fp32 gradients of the partition during the step: not
//                  steady state, not counted.
//   master_params  stage 0: the whole model in master_dtype when param_dtype differs from it (else
//                  the optimizer updates the parameters in place: 0); stages 1-3: always the rank's
//                  partition in master_dtype (DeepSpeed clones the partition even for fp32).
//   optimizer_states  the same elements as the master copy (stage 0: the whole model),
//                  optimizer_state_bytes_per_element each (Adam: 8, two fp32 moments).
// Not counted here: communication buckets, activations, temporaries (other tags).

#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/dtype.hpp"
#include "engine/core/memory_tag.hpp"

namespace twinspeed {

struct ZeroMemorySpec {
  int stage = 0;  // 0..3
  int world = 1;  // data-parallel ranks
  DType param_dtype = DType::f32;
  DType grad_dtype = DType::f32;
  DType master_dtype = DType::f32;
  std::int64_t optimizer_state_bytes_per_element = 8;  // Adam/AdamW: exp_avg + exp_avg_sq in fp32
};

// Bytes on one rank per memory tag.
struct ZeroRankBytes {
  std::int64_t params = 0;
  std::int64_t grads = 0;
  std::int64_t master_params = 0;
  std::int64_t optimizer_states = 0;
  std::int64_t total() const { return params + grads + master_params + optimizer_states; }
  // Bytes of one of the four tags above; 0 for any other tag.
  std::int64_t bytes(MemoryTag tag) const;
  friend bool operator==(const ZeroRankBytes&, const ZeroRankBytes&) = default;
};

// Per-rank bytes of a model whose parameter groups hold the given numels (each group in flat
// order). Every rank gets the same bytes (partitions are equal), so `rank` only validates.
// Throws twinspeed::Error on a stage outside 0..3, world < 1, a rank outside [0, world), a
// negative numel or negative optimizer bytes.
ZeroRankBytes zero_memory_per_rank(std::span<const std::vector<std::int64_t>> param_groups,
                                   const ZeroMemorySpec& spec, int rank);

}  // namespace twinspeed
