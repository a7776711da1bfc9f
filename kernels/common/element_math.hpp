#pragma once
// What the per-element math of kernels/common needs from its number type F beyond + - * /:
// ElementMath<F>::sqrt and where_positive. F is float here (host and CUDA device code); kernels/cpu/simd.hpp
// specialises it for its SIMD vectors, so one template body serves a scalar loop, a vector loop
// and a CUDA thread with the same operations in the same order (hence the same bits).

#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.hpp"

namespace twinspeed::kernels {

template <typename F>
struct ElementMath;

template <>
struct ElementMath<float> {
  TS_HOST_DEVICE static float sqrt(float x) { return std::sqrt(x); }
  // if_positive where x > 0, otherwise (0, negative, NaN) the other value.
  TS_HOST_DEVICE static float where_positive(float x, float if_positive, float otherwise) {
    return x > 0.0f ? if_positive : otherwise;
  }
};

// IEEE binary32 bits of an inf or NaN: the exponent is all ones. Works on a std::uint32_t (gives a
// bool) and on a SIMD vector of 32-bit integers (gives a lane mask). A bit test, not a float
// comparison, so no floating-point flag can fold it away.
inline constexpr std::uint32_t kFloatExponentBits = 0x7F800000u;
template <typename U>
TS_HOST_DEVICE inline auto nonfinite_float_bits(U bits) {
  return (bits & kFloatExponentBits) == kFloatExponentBits;
}

// The same test for the 16-bit formats' bits.
TS_HOST_DEVICE inline bool nonfinite_fp16_bits(std::uint16_t h) { return (h & 0x7C00u) == 0x7C00u; }
TS_HOST_DEVICE inline bool nonfinite_bf16_bits(std::uint16_t h) { return (h & 0x7F80u) == 0x7F80u; }

}  // namespace twinspeed::kernels
