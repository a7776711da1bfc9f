// The library is compiled with -fno-math-errno -fno-trapping-math (kernels/cpu/CMakeLists.txt),
// and a flag such as -ffinite-math-only would let the compiler assume no inf or NaN exists and
// delete the checks. These tests run the built library: inf and NaN at every SIMD lane, in the
// scalar tail, in a later block, on one and two threads, in every floating dtype, must be seen.

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "engine/core/errors.hpp"
#include "kernel_test_support.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed {
namespace {

using kernels_test::HostBuffer;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

// Positions: each lane of the first vectors, the scalar tail, and inside the second block.
std::vector<std::int64_t> positions(std::int64_t n) {
  std::vector<std::int64_t> out = {0, 1, 2, 3, 4, 5, 6, 7, n - 1, n - 2, n - 3};
  if (n > kernels::kBlockElements) out.push_back(kernels::kBlockElements + 5);
  return out;
}

TEST(KernelsBinary, InfAndNanAreDetectedAtEveryPositionDtypeAndThreadCount) {
  for (int threads : {1, 2}) {
    kernels::set_num_threads(threads);
    for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
      for (std::int64_t n : {std::int64_t{11}, kernels::kBlockElements + 11}) {
        for (float bad : {kInf, -kInf, kNan, -kNan}) {
          for (std::int64_t at : positions(n)) {
            HostBuffer x(dtype, std::vector<float>(static_cast<std::size_t>(n), 0.5f));
            ASSERT_FALSE(kernels::has_inf_or_nan(x.all()));
            x.set(at, bad);
            SCOPED_TRACE(testing::Message() << dtype_name(dtype) << " n=" << n << " at=" << at << " value=" << bad
                                            << " threads=" << threads);
            EXPECT_TRUE(kernels::has_inf_or_nan(x.all()));
            const BufferView views[] = {x.all()};
            EXPECT_FALSE(std::isfinite(kernels::l2_norm(views)));
            EXPECT_FALSE(std::isfinite(kernels::sum_of_squares(x.all())));
            EXPECT_TRUE(kernels::unscale_and_check_overflow(x.all(), 0.25));
          }
        }
      }
    }
  }
  kernels::set_num_threads(0);
}

TEST(KernelsBinary, UnscaleFlagsAProductThatOverflowsTheStoredDtype) {
  HostBuffer f32(DType::f32, std::vector<float>(9, 1e30f));
  EXPECT_TRUE(kernels::unscale_and_check_overflow(f32.all(), 1e10));
  HostBuffer f16(DType::f16, std::vector<float>(9, 60000.0f));
  EXPECT_TRUE(kernels::unscale_and_check_overflow(f16.all(), 2.0));  // 120000 > fp16 max
  HostBuffer fine(DType::f16, std::vector<float>(9, 60000.0f));
  EXPECT_FALSE(kernels::unscale_and_check_overflow(fine.all(), 0.5));
  EXPECT_EQ(fine.get(8), 30000.0f);
}

TEST(KernelsBinary, AdamPropagatesANanGradientToItsParameterOnly) {
  const std::int64_t n = 13;
  HostBuffer p(DType::f32, std::vector<float>(n, 1.0f)), g(DType::f32, std::vector<float>(n, 0.1f));
  HostBuffer m(DType::f32, n), v(DType::f32, n);
  g.set(6, kNan);
  kernels::adam_step(p.all(), g.all(), m.all(), v.all(), {});
  for (std::int64_t i = 0; i < n; ++i) EXPECT_EQ(std::isnan(p.get(i)), i == 6) << i;
}

TEST(KernelsBinary, EveryKernelDoesNothingOnViewsWithoutData) {
  // Shape-only simulation: Buffers with a size and no memory.
  Buffer shape(nullptr, MemoryTag::grads, DType::f32, 1 << 20, nullptr, 0);
  Buffer half(nullptr, MemoryTag::grads, DType::bf16, 1 << 20, nullptr, 0);
  const BufferView x = shape.all();
  kernels::fill_zero(x);
  kernels::scale(x, 2.0);
  EXPECT_FALSE(kernels::unscale_and_check_overflow(x, 2.0));
  kernels::copy(x, half.all());
  kernels::accumulate(x, half.all());
  EXPECT_EQ(kernels::sum_of_squares(x), 0.0);
  EXPECT_FALSE(kernels::has_inf_or_nan(half.all()));
  const BufferView views[] = {x, half.all()};
  EXPECT_EQ(kernels::l2_norm(views), 0.0);
  kernels::adam_step(x, x, half.all(), half.all(), {});
  kernels::sgd_step(x, x, x, {.momentum = 0.9});
}

TEST(KernelsBinary, ViewsOfDifferentLengthsAreRejected) {
  HostBuffer a(DType::f32, 4), b(DType::f32, 5);
  EXPECT_THROW(kernels::copy(a.all(), b.all()), Error);
  EXPECT_THROW(kernels::accumulate(a.all(), b.all()), Error);
  EXPECT_THROW(kernels::adam_step(a.all(), b.all(), a.all(), a.all(), {}), Error);
}

TEST(KernelsThreads, ThreadCountIsConfigurableAndZeroRestoresTheDefault) {
  kernels::set_num_threads(3);
  EXPECT_EQ(kernels::num_threads(), 3);
  kernels::set_num_threads(0);
  EXPECT_GE(kernels::num_threads(), 1);
}

}  // namespace
}  // namespace twinspeed
