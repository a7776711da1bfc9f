#pragma once
// Element conversions between fp32 and the 16-bit float formats, one definition for every kernel
// (plain inline under g++; __host__ __device__ when compiled by nvcc).

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/common/host_device.hpp"

namespace twinspeed::kernels {

// bf16 is the upper half of an fp32; conversion back rounds to nearest even, NaN stays NaN.
TS_HOST_DEVICE inline float bf16_to_float(std::uint16_t h) {
  std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

TS_HOST_DEVICE inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if (std::isnan(f)) return static_cast<std::uint16_t>((bits >> 16) | 0x40);
  std::uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

// IEEE binary16 -> fp32 (exact).
TS_HOST_DEVICE inline float fp16_to_float(std::uint16_t h) {
  std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1F;
  std::uint32_t mantissa = h & 0x3FF;
  std::uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000 | (mantissa << 13);  // inf / NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal: normalise.
    int shift = 0;
    while ((mantissa & 0x400) == 0) {
      mantissa <<= 1;
      ++shift;
    }
    mantissa &= 0x3FF;
    bits = sign | (static_cast<std::uint32_t>(113 - shift) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// fp32 -> IEEE binary16, round to nearest even; overflow gives inf, NaN stays NaN.
TS_HOST_DEVICE inline std::uint16_t float_to_fp16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000);
  std::uint32_t abs = bits & 0x7FFFFFFF;
  if (abs > 0x7F800000) return static_cast<std::uint16_t>(sign | 0x7E00);  // NaN
  if (abs >= 0x477FF000) return static_cast<std::uint16_t>(sign | 0x7C00);  // rounds to >= 65520: inf
  if (abs < 0x38800000) {
    // Subnormal or zero in fp16: scale into the subnormal range with round-to-nearest-even.
    if (abs < 0x33000000) return sign;  // below half the smallest subnormal
    std::uint32_t exponent = abs >> 23;
    std::uint32_t mantissa = (abs & 0x7FFFFF) | 0x800000;
    std::uint32_t shift = 126 - exponent;  // 14 + (127 - exponent) - 15 ... aligns to 2^-24 units
    std::uint32_t value = mantissa >> shift;
    std::uint32_t remainder = mantissa & ((1u << shift) - 1);
    std::uint32_t half = 1u << (shift - 1);
    if (remainder > half || (remainder == half && (value & 1))) ++value;
    return static_cast<std::uint16_t>(sign | value);
  }
  std::uint32_t rounded = abs + 0xFFF + ((abs >> 13) & 1);
  return static_cast<std::uint16_t>(sign | ((rounded - 0x38000000) >> 13));
}

}  // namespace twinspeed::kernels
