#include "engine/precision/unscale.hpp"

#include <cmath>

#include "kernels/kernels.hpp"

namespace twinspeed {

namespace {

// The powers of two for which fp16 gradients divided by the scale, their squares and the fp32
// block sums of those squares stay normal (unscale.hpp).
constexpr int kMinScaleExponent = -24;
constexpr int kMaxScaleExponent = 32;

bool is_power_of_two_within(double scale, int lo, int hi) {
  if (!(scale > 0.0) || !std::isfinite(scale)) return false;
  int exponent = 0;
  const double mantissa = std::frexp(scale, &exponent);  // scale = mantissa * 2^exponent, mantissa in [0.5, 1)
  return mantissa == 0.5 && exponent - 1 >= lo && exponent - 1 <= hi;
}

}  // namespace

bool fused_unscale_is_exact(double scale, DType compute, DType master) {
  if (scale == 1.0) return true;
  return compute == DType::f16 && master == DType::f32 &&
         is_power_of_two_within(scale, kMinScaleExponent, kMaxScaleExponent);
}

bool unscale_and_check_overflow(std::span<const BufferView> grads, double scale) {
  bool overflow = false;
  // Every view is unscaled (no early exit): an overflowed step is skipped, a clean one needs all.
  for (const BufferView& v : grads) overflow = kernels::unscale_and_check_overflow(v, 1.0 / scale) || overflow;
  return overflow;
}

void finish_unscale_and_clip(std::span<const BufferView> grads, double unscaled_by, double combined) {
  const auto scale_all = [&](double factor) {
    if (factor == 1.0) return;
    for (const BufferView& v : grads) kernels::scale(v, factor);
  };
  const double rest = unscaled_by / combined;
  const float target = static_cast<float>(1.0 / combined);
  if (unscaled_by == 1.0 || static_cast<double>(static_cast<float>(rest)) == unscaled_by * static_cast<double>(target)) {
    scale_all(rest);
    return;
  }
  scale_all(unscaled_by);  // back to g, exactly (unscaled_by is a power of two)
  scale_all(1.0 / combined);
}

}  // namespace twinspeed
