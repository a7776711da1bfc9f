#pragma once
// Host buffers of any floating dtype and the scalar references every kernel is tested against.
// The references are written out element by element on purpose, without kernels/common or SIMD,
// so they check the shared math rather than repeat it.

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/core/buffer.hpp"
#include "kernels/common/convert.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed::kernels_test {

struct HostOwner final : BufferOwner {
  void release(Buffer&) noexcept override {}
};

// numel elements of dtype (f32, bf16, f16) in host memory, read and written as floats.
class HostBuffer {
 public:
  HostBuffer(DType dtype, std::int64_t numel)
      : bytes_(static_cast<std::size_t>(numel) * dtype_size(dtype) + 1),
        buffer_(&owner_, MemoryTag::temporaries, dtype, numel, bytes_.data(), 0) {}
  HostBuffer(DType dtype, const std::vector<float>& values) : HostBuffer(dtype, static_cast<std::int64_t>(values.size())) {
    for (std::size_t i = 0; i < values.size(); ++i) set(static_cast<std::int64_t>(i), values[i]);
  }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  BufferView all() const { return buffer_.all(); }
  std::int64_t numel() const { return buffer_.numel(); }
  DType dtype() const { return buffer_.dtype(); }
  float get(std::int64_t i) const {
    switch (dtype()) {
      case DType::f32: return reinterpret_cast<const float*>(bytes_.data())[i];
      case DType::bf16: return kernels::bf16_to_float(bits16(i));
      default: return kernels::fp16_to_float(bits16(i));
    }
  }
  void set(std::int64_t i, float v) {
    switch (dtype()) {
      case DType::f32: reinterpret_cast<float*>(bytes_.data())[i] = v; return;
      case DType::bf16: set16(i, kernels::float_to_bf16(v)); return;
      default: set16(i, kernels::float_to_fp16(v)); return;
    }
  }
  std::vector<float> values() const {
    std::vector<float> out(static_cast<std::size_t>(numel()));
    for (std::int64_t i = 0; i < numel(); ++i) out[static_cast<std::size_t>(i)] = get(i);
    return out;
  }
  // The stored bytes (to compare bit for bit).
  const std::vector<unsigned char>& bytes() const { return bytes_; }

 private:
  std::uint16_t bits16(std::int64_t i) const {
    std::uint16_t h;
    std::memcpy(&h, bytes_.data() + 2 * i, 2);
    return h;
  }
  void set16(std::int64_t i, std::uint16_t h) { std::memcpy(bytes_.data() + 2 * i, &h, 2); }
  HostOwner owner_;
  std::vector<unsigned char> bytes_;
  Buffer buffer_;
};

// Same value, NaN equal to NaN (any payload).
inline bool same_float(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

// The rounding a 16-bit buffer applies to a float stored in it.
inline float round_to(DType dtype, float v) {
  switch (dtype) {
    case DType::f32: return v;
    case DType::bf16: return kernels::bf16_to_float(kernels::float_to_bf16(v));
    default: return kernels::fp16_to_float(kernels::float_to_fp16(v));
  }
}

// DeepSpeed FusedAdam, one element at a time in fp32, as twinspeed computed it before the
// kernels were vectorised (reciprocal bias corrections in double, rounded to fp32).
inline void reference_adam(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& m,
                           std::vector<float>& v, const kernels::AdamParams& a) {
  const double bc1 = a.bias_correction ? 1.0 - std::pow(a.beta1, static_cast<double>(a.step)) : 1.0;
  const double bc2 = a.bias_correction ? 1.0 - std::pow(a.beta2, static_cast<double>(a.step)) : 1.0;
  const auto beta1 = static_cast<float>(a.beta1), beta2 = static_cast<float>(a.beta2);
  const auto eps = static_cast<float>(a.eps), decay = static_cast<float>(a.weight_decay);
  const auto lr = static_cast<float>(a.lr);
  const auto inv_bc1 = static_cast<float>(1.0 / bc1), inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  for (std::size_t i = 0; i < p.size(); ++i) {
    float grad = g[i];
    if (!a.adam_w_mode) grad += decay * p[i];
    m[i] = beta1 * m[i] + (1.0f - beta1) * grad;
    v[i] = beta2 * v[i] + (1.0f - beta2) * grad * grad;
    const float denom = std::sqrt(v[i]) * inv_sqrt_bc2 + eps;
    float update = (m[i] * inv_bc1) / denom;
    if (a.adam_w_mode) update += decay * p[i];
    p[i] -= lr * update;
  }
}

inline double reference_sum_of_squares(const std::vector<float>& x) {
  double sum = 0.0;
  for (float v : x) sum += static_cast<double>(v) * v;
  return sum;
}

inline bool reference_has_inf_or_nan(const std::vector<float>& x) {
  for (float v : x) {
    if (!std::isfinite(v)) return true;
  }
  return false;
}

}  // namespace twinspeed::kernels_test
