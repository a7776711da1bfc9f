// The CPU kernels against LibTorch: Adam and AdamW against torch::optim over 10 steps of lr
// 1e-2, and fp32 -> fp16/bf16 conversions bit for bit against Tensor::to (NaN: NaN).
// Adam tolerance: 2e-5 of the distance the steps can move a parameter (lr x steps) plus 1e-6
// relative. The formula is the same; the constants are not: DeepSpeed's FusedAdam (and
// twinspeed) form 1 - beta in fp32 (1 - 0.999f = 0.00099998713), torch in double, which moves
// the second moment by 1.3e-5 relative and each update by about 6e-6 relative; torch also
// divides by the bias corrections and applies AdamW's decay before the update.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernel_test_support.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed {
namespace {

using kernels_test::HostBuffer;

void check_against_torch(bool adam_w_mode, double weight_decay) {
  const std::int64_t n = 3 * kernels::kBlockElements + 5;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> p0(n);
  for (float& x : p0) x = normal(rng);
  HostBuffer p(DType::f32, p0), g(DType::f32, n), m(DType::f32, n), v(DType::f32, n);
  torch::Tensor tp = torch::tensor(p0).requires_grad_(true);
  const double lr = 1e-2;
  std::vector<torch::Tensor> params = {tp};
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (adam_w_mode) {
    opt = std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(lr).weight_decay(weight_decay).eps(1e-8));
  } else {
    opt = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(lr).weight_decay(weight_decay).eps(1e-8));
  }
  kernels::AdamParams a{.lr = lr, .eps = 1e-8, .weight_decay = weight_decay, .adam_w_mode = adam_w_mode};
  for (int step = 1; step <= 10; ++step) {
    std::vector<float> grad(n);
    for (float& x : grad) x = normal(rng) * 0.1f;
    for (std::int64_t i = 0; i < n; ++i) g.set(i, grad[static_cast<std::size_t>(i)]);
    tp.mutable_grad() = torch::tensor(grad);
    opt->step();
    a.step = step;
    kernels::adam_step(p.all(), g.all(), m.all(), v.all(), a);
  }
  const float* want = tp.data_ptr<float>();
  std::int64_t wrong = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (std::abs(p.get(i) - want[i]) > 2e-5 * lr * 10 + 1e-6 * std::abs(want[i]) && wrong++ < 3) {
      ADD_FAILURE() << i << ": " << p.get(i) << " vs torch " << want[i] << " (from " << p0[static_cast<std::size_t>(i)] << ")";
    }
  }
  EXPECT_EQ(wrong, 0) << "of " << n;
}

TEST(TorchKernels, AdamStepMatchesTorchAdamWithL2WeightDecay) { check_against_torch(false, 0.01); }
TEST(TorchKernels, AdamStepMatchesTorchAdamWithoutWeightDecay) { check_against_torch(false, 0.0); }
TEST(TorchKernels, AdamWStepMatchesTorchAdamW) { check_against_torch(true, 0.01); }

// Adagrad against torch::optim::Adagrad over 10 steps: the same fp32 operations, but torch's
// vectorised addcdiv/addcmul may contract or reorder, so 1e-6 relative plus 1e-7 absolute.
void check_adagrad_against_torch(double lr_decay, double weight_decay, double initial) {
  const std::int64_t n = 2 * kernels::kBlockElements + 3;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> p0(n);
  for (float& x : p0) x = normal(rng);
  HostBuffer p(DType::f32, p0), g(DType::f32, n), sums(DType::f32, n);
  for (std::int64_t i = 0; i < n; ++i) sums.set(i, static_cast<float>(initial));
  torch::Tensor tp = torch::tensor(p0).requires_grad_(true);
  const double lr = 1e-2;
  torch::optim::Adagrad opt({tp}, torch::optim::AdagradOptions(lr)
                                       .lr_decay(lr_decay)
                                       .weight_decay(weight_decay)
                                       .initial_accumulator_value(initial)
                                       .eps(1e-10));
  kernels::AdagradParams a{.lr = lr, .lr_decay = lr_decay, .weight_decay = weight_decay, .eps = 1e-10};
  for (int step = 1; step <= 10; ++step) {
    std::vector<float> grad(n);
    for (float& x : grad) x = normal(rng) * 0.1f;
    for (std::int64_t i = 0; i < n; ++i) g.set(i, grad[static_cast<std::size_t>(i)]);
    tp.mutable_grad() = torch::tensor(grad);
    opt.step();
    a.step = step;
    kernels::adagrad_step(p.all(), g.all(), sums.all(), a);
  }
  const float* want = tp.data_ptr<float>();
  std::int64_t wrong = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (std::abs(p.get(i) - want[i]) > 1e-6 * std::abs(want[i]) + 1e-7 && wrong++ < 3) {
      ADD_FAILURE() << i << ": " << p.get(i) << " vs torch " << want[i];
    }
  }
  EXPECT_EQ(wrong, 0) << "of " << n;
}

TEST(TorchKernels, AdagradStepMatchesTorchAdagrad) { check_adagrad_against_torch(0.0, 0.0, 0.0); }
TEST(TorchKernels, AdagradStepMatchesTorchAdagradWithDecaysAndInitialAccumulator) {
  check_adagrad_against_torch(0.01, 0.01, 0.1);
}

// Random fp32 bit patterns (every exponent) and the edges of the 16-bit formats.
std::vector<float> conversion_inputs() {
  std::vector<float> out = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, 1e10f, -1e10f,
                            std::ldexp(1.0f, -24), std::ldexp(1.0f, -25), std::ldexp(1.5f, -25), std::ldexp(1.0f, -14),
                            std::numeric_limits<float>::max(), std::numeric_limits<float>::min(),
                            std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()};
  std::mt19937 rng(11);
  for (int i = 0; i < 200000; ++i) out.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(rng())));
  std::uniform_real_distribution<float> near(-70000.0f, 70000.0f);
  for (int i = 0; i < 100000; ++i) out.push_back(near(rng));
  return out;
}

template <typename Convert>
void expect_same_as_torch(torch::ScalarType type, Convert convert) {
  std::vector<float> in = conversion_inputs();
  const torch::Tensor t = torch::from_blob(in.data(), {static_cast<std::int64_t>(in.size())}).to(type);
  const auto* bits = static_cast<const std::uint16_t*>(t.data_ptr());
  std::int64_t wrong = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (std::isnan(in[i])) {
      if (!std::isnan(convert.back(convert.to(in[i])))) ++wrong;
    } else if (convert.to(in[i]) != bits[i]) {
      if (wrong++ < 5) ADD_FAILURE() << std::hex << std::bit_cast<std::uint32_t>(in[i]) << ": " << convert.to(in[i]) << " vs torch " << bits[i];
    }
  }
  EXPECT_EQ(wrong, 0) << "of " << in.size();
}

struct ToFp16 {
  std::uint16_t to(float f) const { return kernels::float_to_fp16(f); }
  float back(std::uint16_t h) const { return kernels::fp16_to_float(h); }
};
struct ToBf16 {
  std::uint16_t to(float f) const { return kernels::float_to_bf16(f); }
  float back(std::uint16_t h) const { return kernels::bf16_to_float(h); }
};

TEST(TorchKernels, Fp32ToFp16EqualsLibTorchBitForBit) { expect_same_as_torch(torch::kHalf, ToFp16{}); }
TEST(TorchKernels, Fp32ToBf16EqualsLibTorchBitForBit) { expect_same_as_torch(torch::kBFloat16, ToBf16{}); }

}  // namespace
}  // namespace twinspeed
