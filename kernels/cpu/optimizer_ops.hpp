#pragma once
// The optimizer updates beyond Adam and SGD (flat_ops.hpp) on the CPU: LAMB, Lion and Adagrad,
// with the per-element math of kernels/common, explicit SIMD over blocks of kBlockElements shared
// among num_threads() threads, as flat_ops. Operands may be fp32, bf16 or fp16 (through fp32);
// every result is identical for any thread count. Views of different lengths throw Error; a view
// without data does nothing.

#include "engine/core/buffer.hpp"
#include "kernels/common/adagrad.hpp"
#include "kernels/common/lamb.hpp"
#include "kernels/common/lion.hpp"

namespace twinspeed::kernels {

// One LAMB step of one tensor (FusedLamb's unit: a parameter, or a ZeRO partition) and its trust
// ratio. Two passes: the moments and the sums of squares of p and of the update direction (fp32
// per block, blocks added in order in double, as squared_l2_norm), then the parameter step.
// Returns the trust ratio used (1 for an empty tensor).
float lamb_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const LambParams& p);

// DeepSpeed FusedLion's update in one pass over params, grads and exp_avg.
void lion_step(BufferView params, BufferView grads, BufferView exp_avg, const LionParams& p);

// Adagrad (torch.optim.Adagrad, or DeepSpeedCPUAdagrad with decayed_numerator false) in one pass
// over params, grads and the running sum of squares.
void adagrad_step(BufferView params, BufferView grads, BufferView sum_of_squares, const AdagradParams& p);

}  // namespace twinspeed::kernels
