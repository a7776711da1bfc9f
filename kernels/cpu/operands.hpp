#pragma once
// Operands of the CPU kernels: the fp32 view of a block of 16-bit operands
// (converted per chunk, rounded back to nearest even when written). Shared by flat_ops.cpp and
// optimizer_ops.cpp; not part of the kernels' interface.

#include <algorithm>
#include <array>
#include <cstring>

#include "engine/core/buffer.hpp"
#include "kernels/checks.hpp"
#include "kernels/common/convert.hpp"

namespace twinspeed::kernels::detail {

// Elements [at, at + n) of x converted to fp32 into out, and back (rounding to nearest even).
inline void load_fp32(BufferView x, std::int64_t at, std::int64_t n, float* out) {
  switch (x.dtype()) {
    case DType::f32: std::memcpy(out, x.data_as<float>() + at, static_cast<std::size_t>(n) * 4); return;
    case DType::bf16: {
      const auto* h = static_cast<const std::uint16_t*>(x.data()) + at;
      for (std::int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(h[i]);
      return;
    }
    default: {
      const auto* h = static_cast<const std::uint16_t*>(x.data()) + at;
      for (std::int64_t i = 0; i < n; ++i) out[i] = fp16_to_float(h[i]);
      return;
    }
  }
}

inline void store_fp32(BufferView x, std::int64_t at, std::int64_t n, const float* in) {
  switch (x.dtype()) {
    case DType::f32: std::memcpy(x.data_as<float>() + at, in, static_cast<std::size_t>(n) * 4); return;
    case DType::bf16: {
      auto* h = static_cast<std::uint16_t*>(x.data()) + at;
      for (std::int64_t i = 0; i < n; ++i) h[i] = float_to_bf16(in[i]);
      return;
    }
    default: {
      auto* h = static_cast<std::uint16_t*>(x.data()) + at;
      for (std::int64_t i = 0; i < n; ++i) h[i] = float_to_fp16(in[i]);
      return;
    }
  }
}

// Elements converted per chunk of a block when an operand is 16-bit (4 KiB of fp32 each).
constexpr std::int64_t kChunk = 1024;

// Calls fn(pointers, n) over [begin, end) with one fp32 pointer per view: the view's own memory
// when it is fp32, else a converted chunk that is rounded back afterwards if writes[k].
template <std::size_t N, typename Fn>
void in_fp32(const std::array<BufferView, N>& views, const std::array<bool, N>& writes, std::int64_t begin,
             std::int64_t end, Fn fn) {
  std::array<float*, N> ptr{};
  bool all_fp32 = true;
  for (std::size_t k = 0; k < N; ++k) all_fp32 = all_fp32 && views[k].dtype() == DType::f32;
  if (all_fp32) {
    for (std::size_t k = 0; k < N; ++k) ptr[k] = views[k].template data_as<float>() + begin;
    fn(ptr, end - begin);
    return;
  }
  float scratch[N][kChunk];
  for (std::int64_t at = begin; at < end; at += kChunk) {
    const std::int64_t n = std::min(kChunk, end - at);
    for (std::size_t k = 0; k < N; ++k) {
      if (views[k].dtype() == DType::f32) {
        ptr[k] = views[k].template data_as<float>() + at;
      } else {
        ptr[k] = scratch[k];
        load_fp32(views[k], at, n, scratch[k]);
      }
    }
    fn(ptr, n);
    for (std::size_t k = 0; k < N; ++k) {
      if (writes[k] && views[k].dtype() != DType::f32) store_fp32(views[k], at, n, scratch[k]);
    }
  }
}

}  // namespace twinspeed::kernels::detail
