// LAMB, Lion and Adagrad (kernels/cpu/optimizer_ops) against scalar references written out here in
// plain fp32, over generated sizes (0, 1, odd, several 2^16 blocks), values (inf, NaN, subnormals,
// huge), dtypes, hyper-parameters and thread counts. Tolerances: Lion and Adagrad are bit-exact
// (the same fp32 operations in the same order); LAMB's moments are bit-exact and its parameters
// are within 1e-4 of the step (plus 2 ulps) of a reference with norms summed in double: the kernel
// sums each 2^16 block in fp32, which moves the trust ratio by a few 1e-6 relative.

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernel_property_support.hpp"
#include "kernel_test_support.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed {
namespace {

using kernels_test::assert_same;
using kernels_test::gen_float_dtype;
using kernels_test::HostBuffer;
using kernels_test::Threads;
using kernels_test::round_to;
using kernels_test::same_float;

rc::Gen<std::int64_t> gen_size() {
  return rc::gen::weightedOneOf<std::int64_t>({{2, rc::gen::element<std::int64_t>(0, 1, 2, 3, 4, 5, 7, 8, 9)},
                                               {6, rc::gen::inRange<std::int64_t>(10, 3000)},
                                               {1, rc::gen::inRange<std::int64_t>(kernels::kBlockElements - 5,
                                                                                  2 * kernels::kBlockElements + 7)}});
}

std::vector<float> gen_values(std::int64_t n, bool special) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> out(static_cast<std::size_t>(n));
  const float base = static_cast<float>(*rc::gen::inRange(-1000, 1001)) * 1e-3f;
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = base + static_cast<float>(i % 97) * 0.013f - 0.6f;
  const auto count = *rc::gen::inRange<std::size_t>(0, std::min<std::size_t>(out.size(), 12) + 1);
  for (std::size_t k = 0; k < count; ++k) {
    out[*rc::gen::inRange<std::size_t>(0, out.size())] =
        special ? *rc::gen::element(inf, -inf, std::numeric_limits<float>::quiet_NaN(), 1e-40f, -3e-42f, 3e38f,
                                    -3.4e38f, 0.0f, -0.0f)
                : *rc::gen::element(0.0f, -0.0f, 1e-40f, 1e-30f, 50.0f, -70.0f);
  }
  return out;
}

// ---- references (DeepSpeed's formulas, element by element) ------------------------------------

void reference_lion(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& m, const kernels::LionParams& a) {
  const auto b1 = static_cast<float>(a.beta1), b2 = static_cast<float>(a.beta2), lr = static_cast<float>(a.lr);
  const float after_decay = 1.0f - lr * static_cast<float>(a.weight_decay);
  for (std::size_t i = 0; i < p.size(); ++i) {
    const float c = b1 * m[i] + (1.0f - b1) * g[i];
    p[i] = p[i] * after_decay + (c > 0.0f ? -lr : lr);
    m[i] = b2 * m[i] + (1.0f - b2) * g[i];
  }
}

void reference_adagrad(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& s,
                       const kernels::AdagradParams& a) {
  const auto clr = static_cast<float>(a.lr / (1.0 + static_cast<double>(a.step - 1) * a.lr_decay));
  const auto wd = static_cast<float>(a.weight_decay), eps = static_cast<float>(a.eps);
  for (std::size_t i = 0; i < p.size(); ++i) {
    const float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
    s[i] = s[i] + d * d;
    p[i] = p[i] - clr * ((a.decayed_numerator ? d : g[i]) / (std::sqrt(s[i]) + eps));
  }
}

struct LambReference {
  std::vector<float> p, m, v;
  float ratio;
};

// FusedLamb on one tensor; the moments are rounded to the state dtype between the two passes as the
// kernel stores them.
LambReference reference_lamb(std::vector<float> p, const std::vector<float>& g, std::vector<float> m,
                             std::vector<float> v, const kernels::LambParams& a, DType state_dtype) {
  const auto b1 = static_cast<float>(a.beta1), b2 = static_cast<float>(a.beta2);
  const auto eps = static_cast<float>(a.eps), wd = static_cast<float>(a.weight_decay), lr = static_cast<float>(a.lr);
  const auto bc1 = a.bias_correction ? static_cast<float>(1.0 - std::pow(static_cast<double>(b1), static_cast<double>(a.step))) : 1.0f;
  const auto bc2 = a.bias_correction ? static_cast<float>(1.0 - std::pow(static_cast<double>(b2), static_cast<double>(a.step))) : 1.0f;
  auto direction = [&](float pi, float mi, float vi) {
    const float mh = mi / bc1, vh = vi / bc2;
    const float denom = a.eps_inside_sqrt ? std::sqrt(vh + eps) : std::sqrt(vh) + eps;
    return mh / denom + wd * pi;
  };
  double w2 = 0, u2 = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    const float u = direction(p[i], m[i], v[i]);
    // Squares in fp32 as FusedLamb forms them (a subnormal weight squares to 0), summed in double.
    w2 += static_cast<double>(p[i] * p[i]);
    u2 += static_cast<double>(u * u);
    m[i] = round_to(state_dtype, m[i]);
    v[i] = round_to(state_dtype, v[i]);
  }
  const auto w = static_cast<float>(std::sqrt(w2)), un = static_cast<float>(std::sqrt(u2));
  float ratio = 1.0f;
  if (w != 0.0f && un != 0.0f) ratio = std::clamp(w / un, static_cast<float>(a.min_coeff), static_cast<float>(a.max_coeff));
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = p[i] - (lr * ratio) * direction(p[i], m[i], v[i]);
  return {std::move(p), std::move(m), std::move(v), ratio};
}

// ---- properties ---------------------------------------------------------------------------------

RC_GTEST_PROP(OptimizerOpsProperty, LionStepIsBitIdenticalToFusedLionsFormulaInEveryDtypeAndThreadCount, ()) {
  const std::int64_t n = *gen_size();
  const Threads threads(*rc::gen::inRange(1, 5));
  kernels::LionParams a;
  a.lr = *rc::gen::element(1e-4, 1e-3, 0.1);
  a.beta1 = *rc::gen::element(0.9, 0.95, 0.0, 1.0);
  a.beta2 = *rc::gen::element(0.99, 0.98, 0.0);
  a.weight_decay = *rc::gen::element(0.0, 0.01, 1.0);
  const DType pt = *gen_float_dtype(), gt = *gen_float_dtype(), st = *gen_float_dtype();
  HostBuffer p(pt, gen_values(n, true)), g(gt, gen_values(n, true)), m(st, gen_values(n, false));
  std::vector<float> rp = p.values(), rm = m.values();
  reference_lion(rp, g.values(), rm, a);
  for (float& x : rp) x = round_to(pt, x);
  for (float& x : rm) x = round_to(st, x);
  kernels::lion_step(p.all(), g.all(), m.all(), a);
  assert_same(p.values(), rp);
  assert_same(m.values(), rm);
}

RC_GTEST_PROP(OptimizerOpsProperty, AdagradStepIsBitIdenticalToTorchsAndDeepSpeedCpuFormulasInEveryDtypeAndThreadCount,
              ()) {
  const std::int64_t n = *gen_size();
  const Threads threads(*rc::gen::inRange(1, 5));
  kernels::AdagradParams a;
  a.lr = *rc::gen::element(1e-2, 1e-3, 0.5);
  a.lr_decay = *rc::gen::element(0.0, 0.1);
  a.weight_decay = *rc::gen::element(0.0, 0.01);
  a.eps = *rc::gen::element(1e-10, 1e-8, 0.0);
  a.decayed_numerator = *rc::gen::arbitrary<bool>();
  a.step = *rc::gen::inRange<std::int64_t>(1, 100);
  const DType pt = *gen_float_dtype(), gt = *gen_float_dtype(), st = *gen_float_dtype();
  HostBuffer p(pt, gen_values(n, true)), g(gt, gen_values(n, true)), s(st, n);
  for (std::int64_t i = 0; i < n; ++i) s.set(i, static_cast<float>(*rc::gen::inRange(0, 1000)) * 0.01f);
  std::vector<float> rp = p.values(), rs = s.values();
  reference_adagrad(rp, g.values(), rs, a);
  for (float& x : rp) x = round_to(pt, x);
  for (float& x : rs) x = round_to(st, x);
  kernels::adagrad_step(p.all(), g.all(), s.all(), a);
  assert_same(p.values(), rp);
  assert_same(s.values(), rs);
}

RC_GTEST_PROP(OptimizerOpsProperty, LambMomentsAreExactAndItsStepFollowsTheClampedTrustRatioOfTheWholeTensor, ()) {
  const std::int64_t n = *gen_size();
  const Threads threads(*rc::gen::inRange(1, 5));
  kernels::LambParams a;
  a.lr = *rc::gen::element(1e-3, 1e-2, 0.1);
  a.beta1 = *rc::gen::element(0.9, 0.0);
  a.beta2 = *rc::gen::element(0.999, 0.9);
  a.eps = *rc::gen::element(1e-8, 1e-6);
  a.weight_decay = *rc::gen::element(0.0, 0.01);
  a.max_coeff = *rc::gen::element(10.0, 0.5);
  a.min_coeff = *rc::gen::element(0.01, 0.3);
  a.bias_correction = *rc::gen::arbitrary<bool>();
  a.eps_inside_sqrt = *rc::gen::arbitrary<bool>();
  a.step = *rc::gen::inRange<std::int64_t>(1, 50);
  const DType st = *gen_float_dtype();
  HostBuffer p(DType::f32, gen_values(n, false)), g(DType::f32, gen_values(n, false)), m(st, gen_values(n, false)), v(st, n);
  for (std::int64_t i = 0; i < n; ++i) v.set(i, static_cast<float>(*rc::gen::inRange(0, 1000)) * 0.01f);
  const std::vector<float> p0 = p.values();
  const LambReference want = reference_lamb(p0, g.values(), m.values(), v.values(), a, st);
  const float ratio = kernels::lamb_step(p.all(), g.all(), m.all(), v.all(), a);
  assert_same(m.values(), want.m);
  assert_same(v.values(), want.v);
  RC_ASSERT(std::abs(ratio - want.ratio) <= 1e-4f * want.ratio);
  const std::vector<float> got = p.values();
  for (std::size_t i = 0; i < got.size(); ++i) {
    const float step = std::abs(p0[i] - want.p[i]);
    const float tolerance = 1e-4f * step + 2.0f * std::numeric_limits<float>::epsilon() * std::abs(want.p[i]);
    if (!(std::abs(got[i] - want.p[i]) <= tolerance)) {
      RC_FAIL("element " + std::to_string(i) + ": " + std::to_string(got[i]) + " vs " + std::to_string(want.p[i]));
    }
  }
}

}  // namespace
}  // namespace twinspeed
