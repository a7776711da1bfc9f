#pragma once
// Explicit SIMD for the CPU kernels through GCC/Clang vector extensions: 128-bit vectors, the
// width every x86-64 (SSE2) and AArch64 (NEON) CPU has, so the library needs no -march flag.
// Operations on these types are element-wise IEEE operations, so a kernel gives the same bits
// as the scalar loop over the same kernels/common function. Loads and stores are unaligned.

#include <cstdint>
#include <cstring>

#include "kernels/common/element_math.hpp"

#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace twinspeed::kernels::simd {

using f32x4 = float __attribute__((vector_size(16)));
using u32x4 = std::uint32_t __attribute__((vector_size(16)));
using i32x4 = std::int32_t __attribute__((vector_size(16)));
using f64x2 = double __attribute__((vector_size(16)));
inline constexpr int kLanes = 4;

inline f32x4 load(const float* p) {
  f32x4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, f32x4 v) { std::memcpy(p, &v, sizeof v); }
inline f32x4 splat(float x) { return f32x4{x, x, x, x}; }

// Lane mask (all ones) where the lane holds inf or NaN: the bit test of kernels/common.
inline i32x4 nonfinite_mask(f32x4 x) { return nonfinite_float_bits(reinterpret_cast<u32x4>(x)); }
inline bool any(i32x4 mask) { return (mask[0] | mask[1] | mask[2] | mask[3]) != 0; }

}  // namespace twinspeed::kernels::simd

namespace twinspeed::kernels {

template <>
struct ElementMath<simd::f32x4> {
  static simd::f32x4 sqrt(simd::f32x4 x) {
#if defined(__SSE__)
    return reinterpret_cast<simd::f32x4>(_mm_sqrt_ps(reinterpret_cast<__m128>(x)));
#else
    return simd::f32x4{std::sqrt(x[0]), std::sqrt(x[1]), std::sqrt(x[2]), std::sqrt(x[3])};
#endif
  }
  static simd::f32x4 where_positive(simd::f32x4 x, float if_positive, float otherwise) {
    return x > simd::splat(0.0f) ? simd::splat(if_positive) : simd::splat(otherwise);
  }
};

}  // namespace twinspeed::kernels
