#pragma once
// Adam / AdamW per element, as DeepSpeed's FusedAdam (csrc/adam/multi_tensor_adam.cu) computes
// it, one definition for the CPU kernels (scalar and SIMD) and CUDA. The bias corrections are
// applied as multiplications by reciprocals computed once per step in double (FusedAdam
// divides): this keeps twinspeed's results as they were before the kernels were vectorised; the
// difference from a division is at most one rounding of fp32.

#include <cmath>
#include <cstdint>

#include "kernels/common/element_math.hpp"

namespace twinspeed::kernels {

// The step's hyper-parameters. adam_w_mode true applies decoupled weight decay (AdamW); false
// adds weight_decay * p to the gradient (L2, classic Adam).
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

// The fp32 constants of one step, computed once on the host.
struct AdamCoefficients {
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float eps, decay, lr;
  float inv_bias_correction1;       // 1 / (1 - beta1^step)
  float inv_sqrt_bias_correction2;  // 1 / sqrt(1 - beta2^step)
  bool adam_w_mode;
};

inline AdamCoefficients adam_coefficients(const AdamParams& a) {
  const double bc1 = a.bias_correction ? 1.0 - std::pow(a.beta1, static_cast<double>(a.step)) : 1.0;
  const double bc2 = a.bias_correction ? 1.0 - std::pow(a.beta2, static_cast<double>(a.step)) : 1.0;
  AdamCoefficients c{};
  c.beta1 = static_cast<float>(a.beta1);
  c.beta2 = static_cast<float>(a.beta2);
  c.one_minus_beta1 = 1.0f - c.beta1;
  c.one_minus_beta2 = 1.0f - c.beta2;
  c.eps = static_cast<float>(a.eps);
  c.decay = static_cast<float>(a.weight_decay);
  c.lr = static_cast<float>(a.lr);
  c.inv_bias_correction1 = static_cast<float>(1.0 / bc1);
  c.inv_sqrt_bias_correction2 = static_cast<float>(1.0 / std::sqrt(bc2));
  c.adam_w_mode = a.adam_w_mode;
  return c;
}

// One element (or one SIMD vector of elements) of parameter p, gradient g, first moment m and
// second moment v, all fp32.
template <typename F>
TS_HOST_DEVICE inline void adam_update(F& p, F g, F& m, F& v, const AdamCoefficients& c) {
  if (!c.adam_w_mode) g = g + c.decay * p;
  m = c.beta1 * m + c.one_minus_beta1 * g;
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  const F denom = ElementMath<F>::sqrt(v) * c.inv_sqrt_bias_correction2 + c.eps;
  F update = (m * c.inv_bias_correction1) / denom;
  if (c.adam_w_mode) update = update + c.decay * p;
  p = p - c.lr * update;
}

}  // namespace twinspeed::kernels
