#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <vector>

#include "kernels/kernels.hpp"

namespace twinspeed {
namespace {

struct HostOwner final : BufferOwner {
  void release(Buffer&) noexcept override {}
};

TEST(FlatOps, ReadOnlyKernelsLeaveEveryBitOfTheirInputAlone) {
  HostOwner owner;
  // bf16: 1.0, a signalling NaN (quiet bit clear) and 2.0.
  std::vector<std::uint16_t> bf16 = {0x3F80, 0x7F81, 0x4000};
  const std::vector<std::uint16_t> before = bf16;
  Buffer b(&owner, MemoryTag::grads, DType::bf16, 3, bf16.data(), 0);
  EXPECT_TRUE(kernels::has_inf_or_nan(b.all()));
  (void)kernels::sum_of_squares(b.all());
  EXPECT_EQ(bf16, before);
}

TEST(FlatOps, InfAndNanAreDetectedAndFiniteValuesAreNot) {
  HostOwner owner;
  std::vector<float> x = {1.0f, -2.0f, 3.0f};
  Buffer b(&owner, MemoryTag::grads, DType::f32, 3, x.data(), 0);
  EXPECT_FALSE(kernels::has_inf_or_nan(b.all()));
  EXPECT_DOUBLE_EQ(kernels::sum_of_squares(b.all()), 14.0);
  x[1] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(kernels::has_inf_or_nan(b.all()));
  x[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(kernels::has_inf_or_nan(b.all()));
}

}  // namespace
}  // namespace twinspeed
