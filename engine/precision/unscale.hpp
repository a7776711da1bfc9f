#pragma once
// Loss-scale unscaling fused with the overflow check, and the one place that decides when the
// fused order gives DeepSpeed's bits.
//
// DeepSpeed 0.19.6 (FP16_Optimizer.step, stage_1_and_2 / stage3 step, bf16_optimizer) checks the
// scaled 16-bit gradients for inf/NaN, all-reduces the flag, updates the scale, takes the norm of
// the scaled gradients, converts them to fp32 and multiplies them once by 1 / combined
// (unscale_and_clip_grads: combined = new scale x clip coefficient). That is two passes over the
// gradients. twinspeed's fused order converts to fp32 first, then in ONE pass
// (kernels::unscale_and_check_overflow) multiplies by 1 / S, S the scale the gradients were
// computed with, and tests for inf/NaN; the flag is all-reduced as before; if the step is not
// skipped, the norm is taken of the unscaled gradients (times S) and a second pass multiplies by
// S / combined only when that is not 1 (the scale grew, or clipping applies).
//
// Why it is the same bits (fused_unscale_is_exact says when):
//  - S = 1 (bf16, fp16 at scale 1): x * 1 = x; the fused pass is the check alone.
//  - S = 2^k and the fp32 gradients are fp16 values (an exact conversion: 11-bit significands,
//    |g| in [2^-24, 65504]): with -24 <= k <= 32, g / S, its square and every partial sum of
//    squares (at most 2^16 per fp32 block) stay normal fp32 numbers, so each rounding commutes
//    with the power of two: norm(g / S) * S == norm(g), bit for bit (the square root commutes
//    with powers of four). Not for any scale (a larger k pushes squares of small fp16 values into
//    fp32 subnormals), not for a static scale that is not a power of two (g / S rounds): those
//    keep DeepSpeed's order.
//  - The last pass: float(S / combined) == S * float(1 / combined) whenever both are normal fp32
//    numbers, and then (g / S) * float(S / combined) is the same real number as
//    g * float(1 / combined), so it rounds the same. finish_unscale_and_clip checks that equality
//    and otherwise multiplies by S (exact: restores g) and then by 1 / combined.

#include <span>

#include "engine/core/buffer.hpp"

namespace twinspeed {

// True when the fused order gives the bits of DeepSpeed's order for gradients of dtype `compute`
// converted to `master` and computed with loss scale `scale` (see above).
bool fused_unscale_is_exact(double scale, DType compute, DType master);

// The fused pass over every view: x *= float(1 / scale) and true when any result is inf or NaN.
bool unscale_and_check_overflow(std::span<const BufferView> grads, double scale);

// DeepSpeed's unscale_and_clip_grads on gradients already divided by `unscaled_by` (1: not yet):
// afterwards each holds g * float(1 / combined), g the gradient before any unscaling.
void finish_unscale_and_clip(std::span<const BufferView> grads, double unscaled_by, double combined);

}  // namespace twinspeed
