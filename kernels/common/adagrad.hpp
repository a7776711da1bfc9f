#pragma once
// Adagrad per element. Config "adagrad" is torch.optim.Adagrad in DeepSpeed 0.19.6 (and
// DeepSpeedCPUAdagrad under ZeRO-Offload):
//   d = g + weight_decay * p;  sum += d * d;  p -= clr * n / (sqrt(sum) + eps)
// with clr = lr / (1 + (step - 1) * lr_decay) and n = d (torch). DeepSpeedCPUAdagrad divides the
// raw gradient instead (n = g; csrc/adagrad/cpu_adagrad.cpp keeps the pre-decay gradient as its
// numerator): decayed_numerator false. The two agree when weight_decay is 0. One definition for
// CPU and CUDA.

#include <cstdint>

#include "kernels/common/element_math.hpp"

namespace twinspeed::kernels {

struct AdagradParams {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double eps = 1e-10;
  bool decayed_numerator = true;  // torch.optim.Adagrad; false: DeepSpeedCPUAdagrad
  std::int64_t step = 1;          // 1-based step count after increment
};

struct AdagradCoefficients {
  float clr, eps, decay;
  bool decayed_numerator;
};

inline AdagradCoefficients adagrad_coefficients(const AdagradParams& a) {
  // torch forms clr in double and the kernel multiplies by it in fp32.
  const double clr = a.lr / (1.0 + static_cast<double>(a.step - 1) * a.lr_decay);
  return {.clr = static_cast<float>(clr),
          .eps = static_cast<float>(a.eps),
          .decay = static_cast<float>(a.weight_decay),
          .decayed_numerator = a.decayed_numerator};
}

template <typename F>
TS_HOST_DEVICE inline void adagrad_update(F& p, F g, F& sum, const AdagradCoefficients& c) {
  const F d = c.decay != 0.0f ? g + c.decay * p : g;  // torch adds the decay only when it is set
  sum = sum + d * d;
  const F denom = ElementMath<F>::sqrt(sum) + c.eps;
  p = p - c.clr * ((c.decayed_numerator ? d : g) / denom);
}

}  // namespace twinspeed::kernels
