#pragma once
// LAMB per element, as DeepSpeed's FusedLamb (csrc/lamb/fused_lamb_cuda_kernel.cu) computes it:
// Adam moments, the bias corrections applied to m and v themselves (m / (1 - beta1^t),
// v / (1 - beta2^t), divisions in fp32), eps outside the square root unless eps_inside_sqrt,
// weight decay added to the direction (update = m_hat / denom + decay * p), and the step
// p -= lr * trust_ratio * update. The trust ratio ||p|| / ||update|| of one tensor is clamped to
// [min_coeff, max_coeff] and is 1 when either norm is 0 (lamb_trust_ratio). One definition for
// the CPU kernels (scalar and SIMD) and CUDA.

#include <cmath>
#include <cstdint>

#include "kernels/common/element_math.hpp"

namespace twinspeed::kernels {

struct LambParams {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double max_coeff = 10.0;
  double min_coeff = 0.01;
  bool bias_correction = true;
  bool eps_inside_sqrt = false;
  std::int64_t step = 1;  // 1-based step count after increment
};

// The fp32 constants of one step, computed once on the host.
struct LambCoefficients {
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float eps, decay, lr;
  float bias_correction1, bias_correction2;  // 1 - beta^step in fp32 (1 without bias correction)
  float max_coeff, min_coeff;
  bool eps_inside_sqrt;
};

inline LambCoefficients lamb_coefficients(const LambParams& a) {
  LambCoefficients c{};
  c.beta1 = static_cast<float>(a.beta1);
  c.beta2 = static_cast<float>(a.beta2);
  c.one_minus_beta1 = 1.0f - c.beta1;
  c.one_minus_beta2 = 1.0f - c.beta2;
  c.eps = static_cast<float>(a.eps);
  c.decay = static_cast<float>(a.weight_decay);
  c.lr = static_cast<float>(a.lr);
  // FusedLamb: 1 - std::pow(beta, step) with beta in fp32, the power in double, rounded to fp32.
  const auto step = static_cast<double>(a.step);
  c.bias_correction1 = a.bias_correction ? static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta1), step)) : 1.0f;
  c.bias_correction2 = a.bias_correction ? static_cast<float>(1.0 - std::pow(static_cast<double>(c.beta2), step)) : 1.0f;
  c.max_coeff = static_cast<float>(a.max_coeff);
  c.min_coeff = static_cast<float>(a.min_coeff);
  c.eps_inside_sqrt = a.eps_inside_sqrt;
  return c;
}

// The update direction from the (already updated) moments m, v and the parameter p.
template <typename F>
TS_HOST_DEVICE inline F lamb_direction(F p, F m, F v, const LambCoefficients& c) {
  const F m_hat = m / c.bias_correction1;
  const F v_hat = v / c.bias_correction2;
  const F denom = c.eps_inside_sqrt ? ElementMath<F>::sqrt(v_hat + c.eps) : ElementMath<F>::sqrt(v_hat) + c.eps;
  return m_hat / denom + c.decay * p;
}

// Phase 1 of a step: updates the moments from gradient g and returns the direction, whose squares
// (with p's) give the trust ratio.
template <typename F>
TS_HOST_DEVICE inline F lamb_moments(F p, F g, F& m, F& v, const LambCoefficients& c) {
  m = c.beta1 * m + c.one_minus_beta1 * g;
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  return lamb_direction(p, m, v, c);
}

// Phase 2: the parameter step with the tensor's trust ratio (the direction recomputed from the
// stored moments, as FusedLamb's third kernel does).
template <typename F>
TS_HOST_DEVICE inline void lamb_apply(F& p, F m, F v, float trust_ratio, const LambCoefficients& c) {
  const F update = lamb_direction(p, m, v, c);
  p = p - (c.lr * trust_ratio) * update;
}

// FusedLamb's lamb_coeff from the tensor's sums of squares (fp32 square roots).
TS_HOST_DEVICE inline float lamb_trust_ratio(float weight_sq, float update_sq, const LambCoefficients& c) {
  const float w = std::sqrt(weight_sq);
  const float u = std::sqrt(update_sq);
  float ratio = 1.0f;
  if (w != 0.0f && u != 0.0f) {
    ratio = w / u;
    if (ratio > c.max_coeff) ratio = c.max_coeff;
    if (ratio < c.min_coeff) ratio = c.min_coeff;
  }
  return ratio;
}

}  // namespace twinspeed::kernels
