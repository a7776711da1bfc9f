#pragma once
// The engine's own math on flat Buffers: zeroing, scaling, norms, optimizer updates.
// Reference CPU implementations (scalar loops the compiler vectorises); the kernels issue adds
// explicit SIMD, threading and CUDA behind the same functions. Every function does nothing on a
// view without data (shape-only simulation).

#include <cstdint>

#include "engine/core/buffer.hpp"

namespace twinspeed::kernels {

void fill_zero(BufferView x);
// x *= factor. fp32, bf16 (through fp32) and fp16 (through fp32).
void scale(BufferView x, double factor);
// dst = src, converting between floating dtypes (fp32, bf16, fp16; 16-bit through fp32, round to
// nearest even). Same element count.
void copy(BufferView dst, BufferView src);
// dst += src, converting as copy does (the sum is formed in fp32, then rounded to dst's dtype).
void accumulate(BufferView dst, BufferView src);
// Sum of x^2, accumulated in double.
double sum_of_squares(BufferView x);
// True when any element is inf or NaN.
bool has_inf_or_nan(BufferView x);

// DeepSpeed FusedAdam's update (multi_tensor_adam): adam_w_mode true applies decoupled weight
// decay (AdamW); false adds weight_decay * p to the gradient (L2, classic Adam).
struct AdamParams {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool adam_w_mode = true;
  bool bias_correction = true;
  std::int64_t step = 1;  // 1-based step count after increment
};
// Any operand may be fp32, bf16 or fp16 (16-bit ones are updated through fp32 and rounded back).
void adam_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const AdamParams& p);

// torch.optim.SGD's update. momentum_buffer is used when momentum != 0; first_step initialises it.
struct SgdParams {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool first_step = true;
};
void sgd_step(BufferView params, BufferView grads, BufferView momentum_buffer, const SgdParams& p);

}  // namespace twinspeed::kernels
