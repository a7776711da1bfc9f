#pragma once
// torch.optim.SGD per element (momentum, dampening, nesterov, L2 weight decay), one definition
// for every backend.

#include "kernels/common/host_device.hpp"

namespace twinspeed::kernels {

// momentum_buffer is used when momentum != 0; first_step initialises it.
struct SgdParams {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool first_step = true;
};

struct SgdCoefficients {
  float lr, momentum, one_minus_dampening, decay;
  bool nesterov, first_step;
};

inline SgdCoefficients sgd_coefficients(const SgdParams& s) {
  return {.lr = static_cast<float>(s.lr),
          .momentum = static_cast<float>(s.momentum),
          .one_minus_dampening = 1.0f - static_cast<float>(s.dampening),
          .decay = static_cast<float>(s.weight_decay),
          .nesterov = s.nesterov,
          .first_step = s.first_step};
}

// Without momentum (buf == nullptr) the step is p -= lr * (g + decay * p).
template <typename F>
TS_HOST_DEVICE inline void sgd_update(F& p, F g, F* buf, const SgdCoefficients& c) {
  F d = g + c.decay * p;
  if (buf != nullptr) {
    *buf = c.first_step ? d : c.momentum * *buf + c.one_minus_dampening * d;
    d = c.nesterov ? d + c.momentum * *buf : *buf;
  }
  p = p - c.lr * d;
}

}  // namespace twinspeed::kernels
