// Every CPU kernel against its scalar reference (kernel_test_support.hpp) over generated sizes
// (0, 1, odd, several 2^16 blocks), values (inf, NaN, subnormals, huge), dtypes, hyper-parameters
// and thread counts. Tolerances: Adam, SGD, scale, unscale, copy, accumulate and the overflow
// checks are bit-exact (same fp32 operations in the same order); sum_of_squares (double,
// reordered) within 1e-12 relative; the L2 norm (fp32 per block) within 3e-4 relative, the
// bound of 4,096 fp32 additions per accumulator.

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

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
using kernels_test::same_float;

rc::Gen<std::int64_t> gen_size() {
  return rc::gen::weightedOneOf<std::int64_t>({{2, rc::gen::element<std::int64_t>(0, 1, 2, 3, 4, 5, 7, 8, 9)},
                                               {6, rc::gen::inRange<std::int64_t>(10, 3000)},
                                               {1, rc::gen::inRange<std::int64_t>(kernels::kBlockElements - 5,
                                                                                  3 * kernels::kBlockElements + 7)}});
}

// Finite values of every magnitude, and now and then inf, NaN, subnormals and huge ones.
rc::Gen<float> gen_value(bool special) {
  const float inf = std::numeric_limits<float>::infinity();
  auto finite = rc::gen::map(rc::gen::inRange(-1000000, 1000001), [](int k) { return static_cast<float>(k) * 1e-4f; });
  if (!special) return finite;
  return rc::gen::weightedOneOf<float>(
      {{40, finite},
       {1, rc::gen::element(inf, -inf, std::numeric_limits<float>::quiet_NaN(), 1e-40f, -3e-42f,
                            std::numeric_limits<float>::denorm_min(), 3e38f, -3.4e38f, 0.0f, -0.0f)}});
}

// n values: mostly uniform, with a few specials scattered when asked for.
std::vector<float> gen_values(std::int64_t n, bool special) {
  std::vector<float> out(static_cast<std::size_t>(n));
  const float base = *gen_value(false);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = base + static_cast<float>(i % 97) * 0.013f - 0.6f;
  const auto count = *rc::gen::inRange<std::size_t>(0, std::min<std::size_t>(out.size(), 12) + 1);
  for (std::size_t k = 0; k < count; ++k) out[*rc::gen::inRange<std::size_t>(0, out.size())] = *gen_value(special);
  return out;
}

RC_GTEST_PROP(FlatOpsProperty, AdamStepIsBitIdenticalToTheScalarReferenceInEveryDtypeAndThreadCount, ()) {
  const std::int64_t n = *gen_size();
  const Threads threads(*rc::gen::inRange(1, 5));
  kernels::AdamParams a;
  a.lr = *rc::gen::element(1e-3, 1e-2, 0.1, 3e-5);
  a.beta1 = *rc::gen::element(0.9, 0.8, 0.0);
  a.beta2 = *rc::gen::element(0.999, 0.95, 0.5);
  a.eps = *rc::gen::element(1e-8, 1e-6, 1e-12);
  a.weight_decay = *rc::gen::element(0.0, 0.01, 0.1);
  a.adam_w_mode = *rc::gen::arbitrary<bool>();
  a.bias_correction = *rc::gen::arbitrary<bool>();
  a.step = *rc::gen::inRange<std::int64_t>(1, 1000);
  const DType pt = *gen_float_dtype(), gt = *gen_float_dtype(), st = *gen_float_dtype();
  HostBuffer p(pt, gen_values(n, true)), g(gt, gen_values(n, true)), m(st, gen_values(n, false)), v(st, n);
  for (std::int64_t i = 0; i < n; ++i) v.set(i, std::abs(*gen_value(false)));
  std::vector<float> rp = p.values(), rg = g.values(), rm = m.values(), rv = v.values();
  kernels_test::reference_adam(rp, rg, rm, rv, a);
  for (auto* r : {&rp}) for (float& x : *r) x = kernels_test::round_to(pt, x);
  for (auto* r : {&rm, &rv}) for (float& x : *r) x = kernels_test::round_to(st, x);
  kernels::adam_step(p.all(), g.all(), m.all(), v.all(), a);
  assert_same(p.values(), rp);
  assert_same(m.values(), rm);
  assert_same(v.values(), rv);
}

RC_GTEST_PROP(FlatOpsProperty, ScaleAndUnscaleMultiplyByTheFp32FactorAndFlagExactlyTheNonFiniteResults, ()) {
  const std::int64_t n = *gen_size();
  const Threads threads(*rc::gen::inRange(1, 5));
  const DType dt = *gen_float_dtype();
  const double factor = *rc::gen::element(1.0 / 65536, 0.5, 1.0, 3.0, 1e30, 0.0);
  const std::vector<float> x = gen_values(n, true);
  HostBuffer a(dt, x), b(dt, x);
  std::vector<float> want = a.values();
  for (float& w : want) w = kernels_test::round_to(dt, w * static_cast<float>(factor));
  kernels::scale(a.all(), factor);
  const bool overflow = kernels::unscale_and_check_overflow(b.all(), factor);
  assert_same(a.values(), want);
  assert_same(b.values(), want);
  RC_ASSERT(overflow == kernels_test::reference_has_inf_or_nan(want));
}

RC_GTEST_PROP(FlatOpsProperty, HasInfOrNanIsTrueExactlyWhenAnElementIsInfOrNan, ()) {
  const std::int64_t n = *gen_size();
  const Threads threads(*rc::gen::inRange(1, 5));
  HostBuffer x(*gen_float_dtype(), gen_values(n, true));
  RC_ASSERT(kernels::has_inf_or_nan(x.all()) == kernels_test::reference_has_inf_or_nan(x.values()));
}

RC_GTEST_PROP(FlatOpsProperty, CopyAndAccumulateRoundTheFp32ResultOnceToTheDestinationDtype, ()) {
  const std::int64_t n = *gen_size();
  const Threads threads(*rc::gen::inRange(1, 5));
  const DType dt = *gen_float_dtype(), st = *gen_float_dtype();
  HostBuffer src(st, gen_values(n, true)), dst(dt, gen_values(n, true)), copied(dt, n);
  std::vector<float> want = dst.values();
  const std::vector<float> s = src.values();
  for (std::size_t i = 0; i < want.size(); ++i) want[i] = kernels_test::round_to(dt, want[i] + s[i]);
  kernels::accumulate(dst.all(), src.all());
  assert_same(dst.values(), want);
  kernels::copy(copied.all(), src.all());
  std::vector<float> want_copy = s;
  for (float& w : want_copy) w = kernels_test::round_to(dt, w);
  assert_same(copied.values(), want_copy);
}

RC_GTEST_PROP(FlatOpsProperty, SgdStepMatchesTorchSgdElementByElement, ()) {
  const std::int64_t n = *gen_size();
  const Threads threads(*rc::gen::inRange(1, 5));
  kernels::SgdParams s;
  s.lr = *rc::gen::element(1e-3, 0.1);
  s.momentum = *rc::gen::element(0.0, 0.9);
  s.dampening = *rc::gen::element(0.0, 0.1);
  s.weight_decay = *rc::gen::element(0.0, 0.01);
  s.nesterov = *rc::gen::arbitrary<bool>();
  s.first_step = *rc::gen::arbitrary<bool>();
  HostBuffer p(DType::f32, gen_values(n, true)), g(DType::f32, gen_values(n, true)), buf(DType::f32, gen_values(n, false));
  std::vector<float> rp = p.values(), rb = buf.values();
  const std::vector<float> rg = g.values();
  const auto lr = static_cast<float>(s.lr), mom = static_cast<float>(s.momentum);
  const auto damp = static_cast<float>(s.dampening), wd = static_cast<float>(s.weight_decay);
  for (std::size_t i = 0; i < rp.size(); ++i) {
    float d = rg[i] + wd * rp[i];
    if (s.momentum != 0.0) {
      rb[i] = s.first_step ? d : mom * rb[i] + (1.0f - damp) * d;
      d = s.nesterov ? d + mom * rb[i] : rb[i];
    }
    rp[i] -= lr * d;
  }
  kernels::sgd_step(p.all(), g.all(), buf.all(), s);
  assert_same(p.values(), rp);
  assert_same(buf.values(), rb);
}

RC_GTEST_PROP(FlatOpsProperty, SumOfSquaresIsTheDoubleSumWithin1e12Relative, ()) {
  const std::int64_t n = *gen_size();
  const Threads threads(*rc::gen::inRange(1, 5));
  HostBuffer x(*gen_float_dtype(), gen_values(n, false));
  const double want = kernels_test::reference_sum_of_squares(x.values());
  const double got = kernels::sum_of_squares(x.all());
  RC_ASSERT(std::abs(got - want) <= 1e-12 * want);
}

RC_GTEST_PROP(FlatOpsProperty, L2NormIsBitIdenticalFor1To4ThreadsAndWithin3e4OfTheDoubleNorm, ()) {
  const auto tensors = *rc::gen::inRange(0, 5);
  std::vector<std::unique_ptr<HostBuffer>> buffers;
  std::vector<BufferView> views;
  double want = 0.0;
  for (int t = 0; t < tensors; ++t) {
    buffers.push_back(std::make_unique<HostBuffer>(*gen_float_dtype(), gen_values(*gen_size(), false)));
    views.push_back(buffers.back()->all());
    want += kernels_test::reference_sum_of_squares(buffers.back()->values());
  }
  double first = 0.0;
  for (int threads : {1, 2, 4}) {
    const Threads use(threads);
    const double got = kernels::squared_l2_norm(views);
    if (threads == 1) first = got;
    RC_ASSERT(std::bit_cast<std::uint64_t>(got) == std::bit_cast<std::uint64_t>(first));
  }
  RC_ASSERT(std::abs(first - want) <= 3e-4 * want);
  RC_ASSERT(kernels::l2_norm(views) == std::sqrt(first));
}

}  // namespace
}  // namespace twinspeed
