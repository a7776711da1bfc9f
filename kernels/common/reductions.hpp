#pragma once
// Per-element math of the unscale and norm kernels, one definition for every backend.

#include "kernels/common/host_device.hpp"

namespace twinspeed::kernels {

// Unscaling (and clipping) multiplies by one fp32 factor: x * float(factor).
template <typename F>
TS_HOST_DEVICE inline F scaled(F x, float factor) {
  return x * factor;
}

// One term of a sum of squares, accumulated in Acc (float for the L2 norm, double for
// sum_of_squares); x is converted to Acc before squaring.
template <typename Acc, typename F>
TS_HOST_DEVICE inline Acc add_square(Acc acc, F x) {
  const Acc y = static_cast<Acc>(x);
  return acc + y * y;
}

}  // namespace twinspeed::kernels
