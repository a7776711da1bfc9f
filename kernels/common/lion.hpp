#pragma once
// Lion per element, as DeepSpeed's FusedLion (csrc/lion/multi_tensor_lion.cu):
//   c = beta1 * m + (1 - beta1) * g
//   p = p * (1 - lr * weight_decay) + (c > 0 ? -lr : lr)
//   m = beta2 * m + (1 - beta2) * g
// The step is -lr where c > 0 and +lr otherwise (c == 0 and NaN included, as FusedLion; the
// torch reference's sign() would give 0 for c == 0). One definition for CPU and CUDA.

#include <cstdint>

#include "kernels/common/element_math.hpp"

namespace twinspeed::kernels {

struct LionParams {
  double lr = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double weight_decay = 0.0;
};

struct LionCoefficients {
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float lr, after_decay;  // after_decay = 1 - lr * weight_decay, in fp32 as FusedLion
};

inline LionCoefficients lion_coefficients(const LionParams& a) {
  LionCoefficients c{};
  c.beta1 = static_cast<float>(a.beta1);
  c.beta2 = static_cast<float>(a.beta2);
  c.one_minus_beta1 = 1.0f - c.beta1;
  c.one_minus_beta2 = 1.0f - c.beta2;
  c.lr = static_cast<float>(a.lr);
  c.after_decay = 1.0f - c.lr * static_cast<float>(a.weight_decay);
  return c;
}

template <typename F>
TS_HOST_DEVICE inline void lion_update(F& p, F g, F& m, const LionCoefficients& c) {
  const F interpolated = c.beta1 * m + c.one_minus_beta1 * g;
  p = p * c.after_decay + ElementMath<F>::where_positive(interpolated, -c.lr, c.lr);
  m = c.beta2 * m + c.one_minus_beta2 * g;
}

}  // namespace twinspeed::kernels
