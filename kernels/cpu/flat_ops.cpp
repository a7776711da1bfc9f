#include "kernels/cpu/ops.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/core/errors.hpp"
#include "kernels/common/convert.hpp"
#include "kernels/common/reductions.hpp"
#include "kernels/cpu/operands.hpp"
#include "kernels/cpu/simd.hpp"

namespace twinspeed::kernels::cpu {

using simd::f32x4;
using simd::f64x2;
using simd::kLanes;
using detail::in_fp32;
using detail::require_floating;
using detail::require_same_numel;

namespace {

// ---- fp32 loops: SIMD body, scalar tail, the same kernels/common function in both -----------

void scale_fp32(float* x, std::int64_t n, float f) {
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) simd::store(x + i, scaled(simd::load(x + i), f));
  for (; i < n; ++i) x[i] = scaled(x[i], f);
}

bool unscale_fp32(float* x, std::int64_t n, float f) {
  simd::i32x4 bad{};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const f32x4 y = scaled(simd::load(x + i), f);
    simd::store(x + i, y);
    bad |= simd::nonfinite_mask(y);
  }
  bool tail_bad = false;
  for (; i < n; ++i) {
    x[i] = scaled(x[i], f);
    std::uint32_t bits;
    std::memcpy(&bits, &x[i], 4);
    tail_bad = tail_bad || nonfinite_float_bits(bits);
  }
  return simd::any(bad) || tail_bad;
}

bool nonfinite_fp32(const float* x, std::int64_t n) {
  simd::i32x4 bad{};
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) bad |= simd::nonfinite_mask(simd::load(x + i));
  bool tail_bad = false;
  for (; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &x[i], 4);
    tail_bad = tail_bad || nonfinite_float_bits(bits);
  }
  return simd::any(bad) || tail_bad;
}

template <bool (*Nonfinite)(std::uint16_t)>
bool nonfinite_16(const std::uint16_t* x, std::int64_t n) {
  unsigned bad = 0;  // an OR the compiler vectorises
  for (std::int64_t i = 0; i < n; ++i) bad |= Nonfinite(x[i]) ? 1u : 0u;
  return bad != 0;
}

void accumulate_fp32(float* d, const float* s, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) simd::store(d + i, simd::load(d + i) + simd::load(s + i));
  for (; i < n; ++i) d[i] = d[i] + s[i];
}

// Sums of squares of one block, fed in pieces: four vector accumulators (their lanes are fixed
// by position), a scalar one for the last elements, added in a fixed order at the end.
struct SquareSumF32 {
  f32x4 acc[4] = {};
  float tail = 0.0f;
  void add(const float* x, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
      for (int k = 0; k < 4; ++k) acc[k] = add_square(acc[k], simd::load(x + i + k * kLanes));
    }
    for (; i < n; ++i) tail = add_square(tail, x[i]);
  }
  float total() const {
    const f32x4 s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    return ((s[0] + s[1]) + (s[2] + s[3])) + tail;
  }
};

struct SquareSumF64 {
  f64x2 acc[4] = {};
  double tail = 0.0;
  void add(const float* x, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
      const f32x4 a = simd::load(x + i), b = simd::load(x + i + kLanes);
      acc[0] = add_square(acc[0], f64x2{a[0], a[1]});
      acc[1] = add_square(acc[1], f64x2{a[2], a[3]});
      acc[2] = add_square(acc[2], f64x2{b[0], b[1]});
      acc[3] = add_square(acc[3], f64x2{b[2], b[3]});
    }
    for (; i < n; ++i) tail = add_square(tail, x[i]);
  }
  double total() const {
    const f64x2 s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    return (s[0] + s[1]) + tail;
  }
};

// The sum of squares of x[begin, end) in Sum's accumulator, converting 16-bit chunks.
template <typename Sum>
auto block_square_sum(BufferView x, std::int64_t begin, std::int64_t end) {
  Sum sum;
  in_fp32<1>({x}, {false}, begin, end, [&](const std::array<float*, 1>& p, std::int64_t n) { sum.add(p[0], n); });
  return sum.total();
}

void adam_fp32(float* p, const float* g, float* m, float* v, std::int64_t n, const AdamCoefficients& c) {
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    f32x4 pv = simd::load(p + i), mv = simd::load(m + i), vv = simd::load(v + i);
    adam_update(pv, simd::load(g + i), mv, vv, c);
    simd::store(p + i, pv);
    simd::store(m + i, mv);
    simd::store(v + i, vv);
  }
  for (; i < n; ++i) adam_update(p[i], g[i], m[i], v[i], c);
}

void sgd_fp32(float* p, const float* g, float* buf, std::int64_t n, const SgdCoefficients& c) {
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    f32x4 pv = simd::load(p + i);
    if (buf != nullptr) {
      f32x4 bv = simd::load(buf + i);
      sgd_update(pv, simd::load(g + i), &bv, c);
      simd::store(buf + i, bv);
    } else {
      sgd_update<f32x4>(pv, simd::load(g + i), nullptr, c);
    }
    simd::store(p + i, pv);
  }
  for (; i < n; ++i) sgd_update(p[i], g[i], buf != nullptr ? buf + i : nullptr, c);
}

}  // namespace

// ---- the kernels ----------------------------------------------------------------------------

void fill_zero(BufferView x) {
  if (x.has_data()) std::memset(x.data(), 0, static_cast<std::size_t>(x.bytes()));
}

void scale(BufferView x, double factor) {
  if (!x.has_data()) return;
  require_floating("scale", x);
  const auto f = static_cast<float>(factor);
  for_each_block(x.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    in_fp32<1>({x}, {true}, begin, end, [&](const std::array<float*, 1>& p, std::int64_t n) { scale_fp32(p[0], n, f); });
  });
}

bool unscale_and_check_overflow(BufferView x, double factor) {
  if (!x.has_data()) return false;
  require_floating("unscale_and_check_overflow", x);
  const auto f = static_cast<float>(factor);
  std::atomic<bool> overflow{false};
  for_each_block(x.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    bool bad = false;
    if (x.dtype() == DType::f32) {
      bad = unscale_fp32(x.data_as<float>() + begin, end - begin, f);
    } else {
      // Scale through fp32, then test the stored 16-bit values (a product above the format's
      // range is an overflow too).
      in_fp32<1>({x}, {true}, begin, end, [&](const std::array<float*, 1>& p, std::int64_t n) { scale_fp32(p[0], n, f); });
      const auto* h = static_cast<const std::uint16_t*>(x.data()) + begin;
      bad = x.dtype() == DType::bf16 ? nonfinite_16<nonfinite_bf16_bits>(h, end - begin)
                                     : nonfinite_16<nonfinite_fp16_bits>(h, end - begin);
    }
    if (bad) overflow.store(true, std::memory_order_relaxed);
  });
  return overflow.load();
}

void copy(BufferView dst, BufferView src) {
  require_same_numel("copy", dst, src);
  if (!dst.has_data() || !src.has_data()) return;
  if (dst.dtype() == src.dtype()) {
    const auto* s = static_cast<const char*>(src.data());
    auto* d = static_cast<char*>(dst.data());
    const auto bytes = static_cast<std::size_t>(dst.bytes());
    if (d < s + bytes && s < d + bytes) {
      std::memmove(d, s, bytes);  // overlapping: one thread, memmove's order
      return;
    }
    const std::size_t size = dtype_size(dst.dtype());
    for_each_block(dst.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
      std::memcpy(d + begin * size, s + begin * size, static_cast<std::size_t>(end - begin) * size);
    });
    return;
  }
  require_floating("copy", dst);
  require_floating("copy", src);
  for_each_block(dst.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    in_fp32<2>({dst, src}, {true, false}, begin, end,
               [&](const std::array<float*, 2>& p, std::int64_t n) { std::memcpy(p[0], p[1], static_cast<std::size_t>(n) * 4); });
  });
}

void accumulate(BufferView dst, BufferView src) {
  require_same_numel("accumulate", dst, src);
  if (!dst.has_data() || !src.has_data()) return;
  require_floating("accumulate", dst);
  require_floating("accumulate", src);
  for_each_block(dst.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    in_fp32<2>({dst, src}, {true, false}, begin, end,
               [&](const std::array<float*, 2>& p, std::int64_t n) { accumulate_fp32(p[0], p[1], n); });
  });
}

double sum_of_squares(BufferView x) {
  if (!x.has_data()) return 0.0;
  require_floating("sum_of_squares", x);
  std::vector<double> partial(static_cast<std::size_t>(block_count(x.numel)));
  for_each_block(x.numel, [&](std::int64_t block, std::int64_t begin, std::int64_t end) {
    partial[static_cast<std::size_t>(block)] = block_square_sum<SquareSumF64>(x, begin, end);
  });
  return sum_blocks_in_order<double>(partial);
}

bool has_inf_or_nan(BufferView x) {
  if (!x.has_data()) return false;
  require_floating("has_inf_or_nan", x);
  std::atomic<bool> found{false};
  for_each_block(x.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    bool bad;
    switch (x.dtype()) {
      case DType::f32: bad = nonfinite_fp32(x.data_as<float>() + begin, end - begin); break;
      case DType::bf16:
        bad = nonfinite_16<nonfinite_bf16_bits>(static_cast<const std::uint16_t*>(x.data()) + begin, end - begin);
        break;
      default:
        bad = nonfinite_16<nonfinite_fp16_bits>(static_cast<const std::uint16_t*>(x.data()) + begin, end - begin);
        break;
    }
    if (bad) found.store(true, std::memory_order_relaxed);
  });
  return found.load();
}

double squared_l2_norm(std::span<const BufferView> views) {
  struct Block {
    BufferView view;
    std::int64_t begin, end;
  };
  std::vector<Block> blocks;
  for (const BufferView& v : views) {
    if (!v.has_data()) continue;
    require_floating("l2_norm", v);
    for (std::int64_t b = 0; b < block_count(v.numel); ++b) {
      blocks.push_back({v, b * kBlockElements, std::min(v.numel, (b + 1) * kBlockElements)});
    }
  }
  std::vector<float> partial(blocks.size());
  struct Context {
    const std::vector<Block>* blocks;
    std::vector<float>* partial;
  } context{&blocks, &partial};
  detail::run_tasks(
      static_cast<std::int64_t>(blocks.size()),
      [](void* c, std::int64_t i) {
        auto* ctx = static_cast<Context*>(c);
        const Block& b = (*ctx->blocks)[static_cast<std::size_t>(i)];
        (*ctx->partial)[static_cast<std::size_t>(i)] = block_square_sum<SquareSumF32>(b.view, b.begin, b.end);
      },
      &context);
  return sum_blocks_in_order<float>(partial);
}

void adam_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const AdamParams& a) {
  detail::require_operands("adam_step", params, {grads, exp_avg, exp_avg_sq});
  if (!params.has_data()) return;
  const AdamCoefficients c = adam_coefficients(a);
  for_each_block(params.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    in_fp32<4>({params, grads, exp_avg, exp_avg_sq}, {true, false, true, true}, begin, end,
               [&](const std::array<float*, 4>& p, std::int64_t n) { adam_fp32(p[0], p[1], p[2], p[3], n, c); });
  });
}

void sgd_step(BufferView params, BufferView grads, BufferView momentum_buffer, const SgdParams& s) {
  require_same_numel("sgd_step", params, grads);
  if (!params.has_data()) return;
  require_floating("sgd_step", params);
  require_floating("sgd_step", grads);
  const SgdCoefficients c = sgd_coefficients(s);
  if (s.momentum == 0.0) {
    for_each_block(params.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
      in_fp32<2>({params, grads}, {true, false}, begin, end,
                 [&](const std::array<float*, 2>& p, std::int64_t n) { sgd_fp32(p[0], p[1], nullptr, n, c); });
    });
    return;
  }
  require_same_numel("sgd_step", params, momentum_buffer);
  require_floating("sgd_step", momentum_buffer);
  for_each_block(params.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    in_fp32<3>({params, grads, momentum_buffer}, {true, false, true}, begin, end,
               [&](const std::array<float*, 3>& p, std::int64_t n) { sgd_fp32(p[0], p[1], p[2], n, c); });
  });
}

}  // namespace twinspeed::kernels::cpu
