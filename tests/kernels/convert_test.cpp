// fp32 <-> fp16/bf16 conversions (kernels/common/convert.hpp), exhaustively over the 16-bit
// patterns, and a few fp32 -> 16-bit roundings worked out by hand (LibTorch's conversion is
// compared on random inputs in torch_kernels_test.cpp).

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/common/convert.hpp"

namespace twinspeed {
namespace {

TEST(Convert, EveryNonNanFp16PatternRoundTripsBitExactlyAndNanStaysNan) {
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float f = kernels::fp16_to_float(bits);
    const bool nan = (bits & 0x7C00) == 0x7C00 && (bits & 0x03FF) != 0;
    ASSERT_EQ(std::isnan(f), nan) << std::hex << h;
    const std::uint16_t back = kernels::float_to_fp16(f);
    if (nan) {
      ASSERT_EQ(back & 0x7C00, 0x7C00) << std::hex << h;
      ASSERT_NE(back & 0x03FF, 0) << std::hex << h;
    } else {
      ASSERT_EQ(back, bits) << std::hex << h;
    }
  }
}

TEST(Convert, EveryNonNanBf16PatternRoundTripsBitExactlyAndNanStaysNan) {
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float f = kernels::bf16_to_float(bits);
    const bool nan = (bits & 0x7F80) == 0x7F80 && (bits & 0x007F) != 0;
    ASSERT_EQ(std::isnan(f), nan) << std::hex << h;
    const std::uint16_t back = kernels::float_to_bf16(f);
    if (nan) {
      ASSERT_TRUE(std::isnan(kernels::bf16_to_float(back))) << std::hex << h;
    } else {
      ASSERT_EQ(back, bits) << std::hex << h;
    }
  }
}

TEST(Convert, Fp32ToFp16RoundsToNearestEvenAndSaturatesToInf) {
  EXPECT_EQ(kernels::float_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(kernels::float_to_fp16(65519.99f), 0x7BFF);
  EXPECT_EQ(kernels::float_to_fp16(65520.0f), 0x7C00);  // the tie rounds to even: inf
  EXPECT_EQ(kernels::float_to_fp16(-1e10f), 0xFC00);
  EXPECT_EQ(kernels::float_to_fp16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(kernels::float_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even: zero
  EXPECT_EQ(kernels::float_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(kernels::float_to_fp16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp: tie to even
  EXPECT_EQ(kernels::float_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie: even
  EXPECT_EQ(kernels::float_to_fp16(1.0f + std::ldexp(3.0f, -11)), 0x3C02);
  EXPECT_EQ(kernels::float_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(kernels::float_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
}

TEST(Convert, Fp32ToBf16RoundsToNearestEvenAndKeepsNanQuiet) {
  EXPECT_EQ(kernels::float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(kernels::float_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie: even
  EXPECT_EQ(kernels::float_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie: even (up)
  EXPECT_EQ(kernels::float_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(kernels::float_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds to inf
  EXPECT_EQ(kernels::float_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(kernels::float_to_bf16(std::bit_cast<float>(0x7F800001u)) & 0x7FC0, 0x7FC0);  // sNaN -> qNaN
}

}  // namespace
}  // namespace twinspeed
