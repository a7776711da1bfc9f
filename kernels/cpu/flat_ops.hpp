#pragma once
// The engine's own math on flat Buffers: zeroing, scaling, norms, optimizer updates, on the CPU.
// The per-element arithmetic is kernels/common's (shared with CUDA); here it runs as explicit
// SIMD (kernels/cpu/simd.hpp) over blocks of kBlockElements shared among num_threads() threads
// (kernels/cpu/parallel.hpp). Results never depend on the thread count. Operands may be fp32,
// bf16 or fp16 (16-bit ones go through fp32 and are rounded back to nearest even); other dtypes
// throw NotImplemented. Every function does nothing on a view without data (shape-only
// simulation); views of different lengths throw Error.

#include <cstdint>
#include <span>

#include "engine/core/buffer.hpp"
#include "kernels/common/adam.hpp"
#include "kernels/common/sgd.hpp"
#include "kernels/cpu/parallel.hpp"

namespace twinspeed::kernels {

void fill_zero(BufferView x);
// x *= float(factor).
void scale(BufferView x, double factor);
// Unscale with overflow check, in one pass: x *= float(factor), and true when any result (as
// stored, so a 16-bit overflow counts) is inf or NaN. An inf or NaN input always gives one.
bool unscale_and_check_overflow(BufferView x, double factor);
// dst = src, converting between floating dtypes. Same element count; same-dtype views may overlap.
void copy(BufferView dst, BufferView src);
// dst += src, converting as copy does (the sum is formed in fp32, then rounded to dst's dtype).
void accumulate(BufferView dst, BufferView src);
// Sum of x^2 in double (each fp32 square is exact in double; blocks combined in order).
double sum_of_squares(BufferView x);
// True when any element is inf or NaN (a bit test: no floating-point flag can remove it).
bool has_inf_or_nan(BufferView x);

// Multi-tensor L2 norm as DeepSpeed's multi_tensor_l2norm accumulates it: the squares of each
// block of kBlockElements elements of each view are summed in fp32, and the block sums are added
// in (view, block) order in double. Identical for any thread count. squared_l2_norm is the sum
// before the square root (what is all-reduced across ranks).
double squared_l2_norm(std::span<const BufferView> views);
double l2_norm(std::span<const BufferView> views);

// DeepSpeed FusedAdam's update (kernels/common/adam.hpp), fused: one pass over the four operands.
void adam_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const AdamParams& p);

// torch.optim.SGD's update (kernels/common/sgd.hpp); momentum_buffer is read only when momentum != 0.
void sgd_step(BufferView params, BufferView grads, BufferView momentum_buffer, const SgdParams& p);

}  // namespace twinspeed::kernels
