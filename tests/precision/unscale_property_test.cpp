// The fused unscale + overflow check (engine/precision/unscale.hpp) against DeepSpeed's two-pass
// order (check the scaled gradients; norm of the scaled gradients; one multiplication by
// 1 / combined), on random fp16 gradients converted to fp32 as the engine converts them.

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/precision/unscale.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed {
namespace {

Buffer host_view(DType dtype, std::int64_t numel, void* data) {
  return Buffer(nullptr, MemoryTag::grads, dtype, numel, data, 0);
}

// fp32 gradients holding finite fp16 values (subnormals and zeros included), through the kernels'
// own 16-bit -> fp32 conversion.
std::vector<float> fp16_gradients(const std::vector<std::uint16_t>& bits) {
  std::vector<std::uint16_t> half(bits);
  for (auto& h : half) {
    if ((h & 0x7c00u) == 0x7c00u) h &= 0xfbffu;  // inf/NaN exponent -> the largest finite binade
  }
  std::vector<float> out(half.size());
  kernels::copy(host_view(DType::f32, static_cast<std::int64_t>(out.size()), out.data()).all(),
                host_view(DType::f16, static_cast<std::int64_t>(half.size()), half.data()).all());
  return out;
}

struct Outcome {
  bool overflow = false;
  double scaled_norm = 0.0;
  std::vector<float> grads;
};

// DeepSpeed's order, as the engine ran it before the fusion.
Outcome two_passes(std::vector<float> g, double combined) {
  const Buffer b = host_view(DType::f32, static_cast<std::int64_t>(g.size()), g.data());
  Outcome o;
  o.overflow = kernels::has_inf_or_nan(b.all());
  const BufferView views[] = {b.all()};
  o.scaled_norm = std::sqrt(kernels::squared_l2_norm(views));
  if (combined != 1.0) kernels::scale(b.all(), 1.0 / combined);
  o.grads = std::move(g);
  return o;
}

Outcome fused(std::vector<float> g, double scale, double combined) {
  const Buffer b = host_view(DType::f32, static_cast<std::int64_t>(g.size()), g.data());
  const BufferView views[] = {b.all()};
  Outcome o;
  o.overflow = unscale_and_check_overflow(views, scale);
  o.scaled_norm = std::sqrt(kernels::squared_l2_norm(views)) * scale;
  finish_unscale_and_clip(views, scale, combined);
  o.grads = std::move(g);
  return o;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

RC_GTEST_PROP(FusedUnscale, APowerOfTwoScaleGivesTheBitsOfDeepSpeedsTwoPasses, ()) {
  const int k = *rc::gen::inRange(-24, 33);
  const double scale = std::ldexp(1.0, k);
  RC_ASSERT(fused_unscale_is_exact(scale, DType::f16, DType::f32));
  const auto bits = *rc::gen::container<std::vector<std::uint16_t>>(*rc::gen::inRange<std::size_t>(1, 300),
                                                                    rc::gen::arbitrary<std::uint16_t>());
  const std::vector<float> g = fp16_gradients(bits);
  // The scale after the update (unchanged, or doubled at the end of a window) times a clip
  // coefficient (1: no clipping).
  const double updated = *rc::gen::element(scale, 2.0 * scale);
  const double clip = *rc::gen::element(1.0, 1.0 + *rc::gen::inRange(1, 1'000'000) / 1000.0, 3.0e7);
  const double combined = updated * clip;
  const Outcome before = two_passes(g, combined);
  const Outcome after = fused(g, scale, combined);
  RC_ASSERT(!after.overflow);
  RC_ASSERT(after.overflow == before.overflow);
  RC_ASSERT(after.scaled_norm == before.scaled_norm);
  RC_ASSERT(same_bits(after.grads, before.grads));
}

RC_GTEST_PROP(FusedUnscale, AnInfOrNanAnywhereIsAnOverflow, ()) {
  const auto bits = *rc::gen::container<std::vector<std::uint16_t>>(*rc::gen::inRange<std::size_t>(1, 200),
                                                                    rc::gen::arbitrary<std::uint16_t>());
  std::vector<float> g = fp16_gradients(bits);
  g[*rc::gen::inRange<std::size_t>(0, g.size())] =
      *rc::gen::element(std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN());
  RC_ASSERT(fused(g, std::ldexp(1.0, *rc::gen::inRange(-24, 33)), 1.0).overflow);
}

TEST(FusedUnscale, OnlyScalesThatKeepEveryRoundingExactAreFused) {
  EXPECT_TRUE(fused_unscale_is_exact(1.0, DType::bf16, DType::f32));      // bf16: no loss scale
  EXPECT_TRUE(fused_unscale_is_exact(65536.0, DType::f16, DType::f32));   // the default 2^16
  EXPECT_TRUE(fused_unscale_is_exact(std::ldexp(1.0, -24), DType::f16, DType::f32));
  EXPECT_TRUE(fused_unscale_is_exact(std::ldexp(1.0, 32), DType::f16, DType::f32));
  EXPECT_FALSE(fused_unscale_is_exact(std::ldexp(1.0, 33), DType::f16, DType::f32));  // squares go subnormal
  EXPECT_FALSE(fused_unscale_is_exact(std::ldexp(1.0, -25), DType::f16, DType::f32));
  EXPECT_FALSE(fused_unscale_is_exact(1000.0, DType::f16, DType::f32));   // a static scale, not 2^k
  EXPECT_FALSE(fused_unscale_is_exact(128.0, DType::f16, DType::f16));    // unscaling in fp16 rounds
  EXPECT_FALSE(fused_unscale_is_exact(2.0, DType::bf16, DType::f32));     // bf16's range is fp32's
}

TEST(FusedUnscale, AScaleOutsideTheExactRangeWouldChangeBits) {
  // Why the range is bounded: small fp16 values unscaled by 2^60 square below fp32's subnormals
  // (to zero), and the norm no longer scales exactly.
  std::vector<float> g = fp16_gradients({0x0001, 0x0003, 0x0005});
  const double scale = std::ldexp(1.0, 60);
  EXPECT_NE(fused(g, scale, scale).scaled_norm, two_passes(g, scale).scaled_norm);
}

}  // namespace
}  // namespace twinspeed
