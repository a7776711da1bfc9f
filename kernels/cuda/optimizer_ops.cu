// kernels::cuda: the optimizer updates (Adam, SGD, LAMB, Lion, Adagrad), one fused grid-stride
// pass each (LAMB: two passes and its trust ratio between them, as FusedLamb).
#include <vector>

#include "kernels/checks.hpp"
#include "kernels/cuda/device.cuh"

namespace twinspeed::kernels::cuda {

using kernels::detail::require_operands;

namespace {

__global__ void adam_kernel(Operand p, Operand g, Operand m, Operand v, std::int64_t n, AdamCoefficients c) {
  TS_GRID_STRIDE(i, n) {
    float pi = load(p, i), mi = load(m, i), vi = load(v, i);
    adam_update(pi, load(g, i), mi, vi, c);
    store(p, i, pi);
    store(m, i, mi);
    store(v, i, vi);
  }
}

// with_momentum false: buf is not read (torch's momentum == 0).
__global__ void sgd_kernel(Operand p, Operand g, Operand buf, bool with_momentum, std::int64_t n, SgdCoefficients c) {
  TS_GRID_STRIDE(i, n) {
    float pi = load(p, i);
    if (with_momentum) {
      float bi = load(buf, i);
      sgd_update(pi, load(g, i), &bi, c);
      store(buf, i, bi);
    } else {
      sgd_update(pi, load(g, i), static_cast<float*>(nullptr), c);
    }
    store(p, i, pi);
  }
}

// The updates of one parameter, its gradient and one state (Lion's exp_avg, Adagrad's sum):
// Update is one of the functors below, holding the step's coefficients.
template <typename Update>
__global__ void one_state_kernel(Operand p, Operand g, Operand state, std::int64_t n, Update update) {
  TS_GRID_STRIDE(i, n) {
    float pi = load(p, i), si = load(state, i);
    update(pi, load(g, i), si);
    store(p, i, pi);
    store(state, i, si);
  }
}

struct LionUpdate {
  LionCoefficients c;
  __device__ void operator()(float& p, float g, float& m) const { lion_update(p, g, m, c); }
};

struct AdagradUpdate {
  AdagradCoefficients c;
  __device__ void operator()(float& p, float g, float& sum) const { adagrad_update(p, g, sum, c); }
};

// Checks the operands and runs one_state_kernel.
template <typename Update>
void one_state_step(const char* kernel, BufferView params, BufferView grads, BufferView state, const Update& update) {
  require_operands(kernel, params, {grads, state});
  if (!params.has_data() || params.numel == 0) return;
  one_state_kernel<<<grid_for(params.numel), kThreads>>>(operand(params), operand(grads), operand(state), params.numel,
                                                         update);
  check_launch(kernel);
}

// LAMB pass 1: one thread block per block of kBlockElements: the moments, and the block's fp32
// sums of p^2 and of the direction's squares.
__global__ void lamb_moments_kernel(Operand p, Operand g, Operand m, Operand v, std::int64_t n, LambCoefficients c,
                                    float* weight_sq, float* update_sq) {
  const std::int64_t begin = static_cast<std::int64_t>(blockIdx.x) * kBlockElements;
  const std::int64_t end = begin + kBlockElements < n ? begin + kBlockElements : n;
  float w = 0.0f, u = 0.0f;
  for (std::int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
    const float pi = load(p, i);
    float mi = load(m, i), vi = load(v, i);
    const float d = lamb_moments(pi, load(g, i), mi, vi, c);
    store(m, i, mi);
    store(v, i, vi);
    w = w + pi * pi;
    u = u + d * d;
  }
  w = detail::block_sum(w);
  u = detail::block_sum(u);
  if (threadIdx.x == 0) {
    weight_sq[blockIdx.x] = w;
    update_sq[blockIdx.x] = u;
  }
}

__global__ void lamb_apply_kernel(Operand p, Operand m, Operand v, std::int64_t n, float ratio, LambCoefficients c) {
  TS_GRID_STRIDE(i, n) {
    float pi = load(p, i);
    lamb_apply(pi, load(m, i), load(v, i), ratio, c);
    store(p, i, pi);
  }
}

}  // namespace

void adam_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const AdamParams& a) {
  require_operands("adam_step", params, {grads, exp_avg, exp_avg_sq});
  if (!params.has_data() || params.numel == 0) return;
  adam_kernel<<<grid_for(params.numel), kThreads>>>(operand(params), operand(grads), operand(exp_avg),
                                                    operand(exp_avg_sq), params.numel, adam_coefficients(a));
  check_launch("adam_step");
}

void sgd_step(BufferView params, BufferView grads, BufferView momentum_buffer, const SgdParams& s) {
  const bool with_momentum = s.momentum != 0.0;
  if (with_momentum) {
    require_operands("sgd_step", params, {grads, momentum_buffer});
  } else {
    require_operands("sgd_step", params, {grads});
  }
  if (!params.has_data() || params.numel == 0) return;
  const Operand buffer = with_momentum ? operand(momentum_buffer) : Operand{nullptr, DType::f32};
  sgd_kernel<<<grid_for(params.numel), kThreads>>>(operand(params), operand(grads), buffer, with_momentum,
                                                   params.numel, sgd_coefficients(s));
  check_launch("sgd_step");
}

float lamb_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const LambParams& a) {
  require_operands("lamb_step", params, {grads, exp_avg, exp_avg_sq});
  if (!params.has_data() || params.numel == 0) return 1.0f;
  const LambCoefficients c = lamb_coefficients(a);
  const std::int64_t blocks = block_count(params.numel);
  detail::DeviceArray<float> device_sums(2 * blocks, "lamb_step");
  lamb_moments_kernel<<<static_cast<unsigned>(blocks), kThreads>>>(operand(params), operand(grads), operand(exp_avg),
                                                                   operand(exp_avg_sq), params.numel, c,
                                                                   device_sums.get(), device_sums.get() + blocks);
  check_launch("lamb_step");
  std::vector<float> sums(static_cast<std::size_t>(2 * blocks));
  device_sums.download(sums.data(), 2 * blocks);
  const std::span<const float> all(sums);
  const float ratio = lamb_trust_ratio(static_cast<float>(sum_blocks_in_order(all.first(static_cast<std::size_t>(blocks)))),
                                       static_cast<float>(sum_blocks_in_order(all.last(static_cast<std::size_t>(blocks)))), c);
  lamb_apply_kernel<<<grid_for(params.numel), kThreads>>>(operand(params), operand(exp_avg), operand(exp_avg_sq),
                                                          params.numel, ratio, c);
  check_launch("lamb_step");
  return ratio;
}

void lion_step(BufferView params, BufferView grads, BufferView exp_avg, const LionParams& a) {
  one_state_step("lion_step", params, grads, exp_avg, LionUpdate{lion_coefficients(a)});
}

void adagrad_step(BufferView params, BufferView grads, BufferView sum_of_squares, const AdagradParams& a) {
  one_state_step("adagrad_step", params, grads, sum_of_squares, AdagradUpdate{adagrad_coefficients(a)});
}

}  // namespace twinspeed::kernels::cuda
