#include "kernels/cpu/ops.hpp"

#include <cmath>
#include <vector>

#include "kernels/cpu/operands.hpp"
#include "kernels/cpu/parallel.hpp"
#include "kernels/cpu/simd.hpp"

namespace twinspeed::kernels::cpu {

using simd::f32x4;
using simd::kLanes;
using detail::in_fp32;
using detail::require_operands;

namespace {

// fp32 sums of squares of one block, fed in pieces: one vector accumulator per quantity (lanes
// fixed by position) and a scalar one for the tail, added in a fixed order.
struct PairSquareSum {
  f32x4 weight{}, update{};
  float weight_tail = 0.0f, update_tail = 0.0f;
  static float total(f32x4 acc, float tail) { return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + tail; }
};

void lamb_moments_fp32(const float* p, const float* g, float* m, float* v, std::int64_t n, const LambCoefficients& c,
                       PairSquareSum& sums) {
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const f32x4 pv = simd::load(p + i);
    f32x4 mv = simd::load(m + i), vv = simd::load(v + i);
    const f32x4 u = lamb_moments(pv, simd::load(g + i), mv, vv, c);
    simd::store(m + i, mv);
    simd::store(v + i, vv);
    sums.weight += pv * pv;
    sums.update += u * u;
  }
  for (; i < n; ++i) {
    const float u = lamb_moments(p[i], g[i], m[i], v[i], c);
    sums.weight_tail += p[i] * p[i];
    sums.update_tail += u * u;
  }
}

void lamb_apply_fp32(float* p, const float* m, const float* v, std::int64_t n, float ratio, const LambCoefficients& c) {
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    f32x4 pv = simd::load(p + i);
    lamb_apply(pv, simd::load(m + i), simd::load(v + i), ratio, c);
    simd::store(p + i, pv);
  }
  for (; i < n; ++i) lamb_apply(p[i], m[i], v[i], ratio, c);
}

void lion_fp32(float* p, const float* g, float* m, std::int64_t n, const LionCoefficients& c) {
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    f32x4 pv = simd::load(p + i), mv = simd::load(m + i);
    lion_update(pv, simd::load(g + i), mv, c);
    simd::store(p + i, pv);
    simd::store(m + i, mv);
  }
  for (; i < n; ++i) lion_update(p[i], g[i], m[i], c);
}

void adagrad_fp32(float* p, const float* g, float* s, std::int64_t n, const AdagradCoefficients& c) {
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    f32x4 pv = simd::load(p + i), sv = simd::load(s + i);
    adagrad_update(pv, simd::load(g + i), sv, c);
    simd::store(p + i, pv);
    simd::store(s + i, sv);
  }
  for (; i < n; ++i) adagrad_update(p[i], g[i], s[i], c);
}

}  // namespace

float lamb_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const LambParams& a) {
  require_operands("lamb_step", params, {grads, exp_avg, exp_avg_sq});
  if (!params.has_data() || params.numel == 0) return 1.0f;
  const LambCoefficients c = lamb_coefficients(a);
  const auto blocks = static_cast<std::size_t>(block_count(params.numel));
  std::vector<float> weight_sq(blocks), update_sq(blocks);
  for_each_block(params.numel, [&](std::int64_t block, std::int64_t begin, std::int64_t end) {
    PairSquareSum sums;
    in_fp32<4>({params, grads, exp_avg, exp_avg_sq}, {false, false, true, true}, begin, end,
               [&](const std::array<float*, 4>& p, std::int64_t n) { lamb_moments_fp32(p[0], p[1], p[2], p[3], n, c, sums); });
    weight_sq[static_cast<std::size_t>(block)] = PairSquareSum::total(sums.weight, sums.weight_tail);
    update_sq[static_cast<std::size_t>(block)] = PairSquareSum::total(sums.update, sums.update_tail);
  });
  const float ratio = lamb_trust_ratio(static_cast<float>(sum_blocks_in_order<float>(weight_sq)),
                                       static_cast<float>(sum_blocks_in_order<float>(update_sq)), c);
  for_each_block(params.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    in_fp32<3>({params, exp_avg, exp_avg_sq}, {true, false, false}, begin, end,
               [&](const std::array<float*, 3>& p, std::int64_t n) { lamb_apply_fp32(p[0], p[1], p[2], n, ratio, c); });
  });
  return ratio;
}

void lion_step(BufferView params, BufferView grads, BufferView exp_avg, const LionParams& a) {
  require_operands("lion_step", params, {grads, exp_avg});
  if (!params.has_data()) return;
  const LionCoefficients c = lion_coefficients(a);
  for_each_block(params.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    in_fp32<3>({params, grads, exp_avg}, {true, false, true}, begin, end,
               [&](const std::array<float*, 3>& p, std::int64_t n) { lion_fp32(p[0], p[1], p[2], n, c); });
  });
}

void adagrad_step(BufferView params, BufferView grads, BufferView sum_of_squares, const AdagradParams& a) {
  require_operands("adagrad_step", params, {grads, sum_of_squares});
  if (!params.has_data()) return;
  const AdagradCoefficients c = adagrad_coefficients(a);
  for_each_block(params.numel, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    in_fp32<3>({params, grads, sum_of_squares}, {true, false, true}, begin, end,
               [&](const std::array<float*, 3>& p, std::int64_t n) { adagrad_fp32(p[0], p[1], p[2], n, c); });
  });
}

}  // namespace twinspeed::kernels::cpu
