// LAMB, Lion and Adagrad edge cases: empty tensors, the trust ratio's clamps and its 1 when a
// norm is 0, non-finite values propagating as in DeepSpeed's kernels, and views without data.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/core/errors.hpp"
#include "kernel_test_support.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed {
namespace {

using kernels_test::HostBuffer;

TEST(LambStep, EmptyTensorAndViewsWithoutDataDoNothingAndReportATrustRatioOfOne) {
  HostBuffer p(DType::f32, 0), g(DType::f32, 0), m(DType::f32, 0), v(DType::f32, 0);
  EXPECT_EQ(kernels::lamb_step(p.all(), g.all(), m.all(), v.all(), {}), 1.0f);
  BufferView none{nullptr, 0, 8};
  EXPECT_EQ(kernels::lamb_step(none, none, none, none, {}), 1.0f);
}

TEST(LambStep, TrustRatioIsOneForZeroWeightsAndClampedToMaxAndMinCoeff) {
  kernels::LambParams a;
  a.lr = 0.1;
  a.bias_correction = false;
  a.beta1 = 0.0;
  a.beta2 = 0.0;
  a.eps = 0.0;
  {  // zero weights: ratio 1, the step is lr * sign-like m / sqrt(v) = lr * g / |g|
    HostBuffer p(DType::f32, {0.0f, 0.0f}), g(DType::f32, {2.0f, -3.0f}), m(DType::f32, 2), v(DType::f32, 2);
    EXPECT_EQ(kernels::lamb_step(p.all(), g.all(), m.all(), v.all(), a), 1.0f);
    EXPECT_FLOAT_EQ(p.get(0), -0.1f);
    EXPECT_FLOAT_EQ(p.get(1), 0.1f);
  }
  {  // ||p|| = 1000, ||update|| = sqrt(2): clamped to max_coeff 10
    HostBuffer p(DType::f32, {1000.0f, 0.0f}), g(DType::f32, {1.0f, 1.0f}), m(DType::f32, 2), v(DType::f32, 2);
    EXPECT_EQ(kernels::lamb_step(p.all(), g.all(), m.all(), v.all(), a), 10.0f);
    EXPECT_FLOAT_EQ(p.get(0), 1000.0f - 1.0f);
  }
  {  // ||p|| = 1e-6: clamped to min_coeff 0.01
    HostBuffer p(DType::f32, {1e-6f, 0.0f}), g(DType::f32, {1.0f, 1.0f}), m(DType::f32, 2), v(DType::f32, 2);
    EXPECT_FLOAT_EQ(kernels::lamb_step(p.all(), g.all(), m.all(), v.all(), a), 0.01f);
  }
}

TEST(LambStep, ANanGradientPoisonsTheWholeTensorAsFusedLambDoes) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  HostBuffer p(DType::f32, {1.0f, 2.0f, 3.0f}), g(DType::f32, {0.1f, nan, 0.2f}), m(DType::f32, 3), v(DType::f32, 3);
  EXPECT_TRUE(std::isnan(kernels::lamb_step(p.all(), g.all(), m.all(), v.all(), {})));
  for (float x : p.values()) EXPECT_TRUE(std::isnan(x));
}

TEST(LionStep, AZeroOrNanInterpolationStepsByPlusLrAsFusedLion) {
  kernels::LionParams a;
  a.lr = 0.5;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  HostBuffer p(DType::f32, {1.0f, 1.0f, 1.0f, 1.0f, 1.0f}), g(DType::f32, {0.0f, nan, 1.0f, -1.0f, 1e-40f}),
      m(DType::f32, 5);
  kernels::lion_step(p.all(), g.all(), m.all(), a);
  EXPECT_EQ(p.values(), (std::vector<float>{1.5f, 1.5f, 0.5f, 1.5f, 0.5f}));
  EXPECT_TRUE(std::isnan(m.get(1)));
}

TEST(AdagradStep, InfGradientGivesNanAndSubnormalGradientsStayFinite) {
  const float inf = std::numeric_limits<float>::infinity();
  HostBuffer p(DType::f32, {1.0f, 1.0f}), g(DType::f32, {inf, 1e-40f}), s(DType::f32, 2);
  kernels::adagrad_step(p.all(), g.all(), s.all(), {});
  EXPECT_TRUE(std::isnan(p.get(0)));  // inf / inf
  EXPECT_TRUE(std::isfinite(p.get(1)));
  EXPECT_EQ(s.get(0), inf);
}

TEST(OptimizerOps, MismatchedViewsThrow) {
  HostBuffer p(DType::f32, 3), g(DType::f32, 2), m(DType::f32, 3);
  EXPECT_THROW(kernels::lion_step(p.all(), g.all(), m.all(), {}), Error);
  EXPECT_THROW(kernels::adagrad_step(p.all(), g.all(), m.all(), {}), Error);
  EXPECT_THROW((void)kernels::lamb_step(p.all(), g.all(), m.all(), m.all(), {}), Error);
}

}  // namespace
}  // namespace twinspeed
