// Every CUDA kernel against the CPU kernel on the same inputs (upload, run through the dispatch,
// download, compare), for fp32, bf16 and fp16 operands over several blocks of kBlockElements and
// a tail. Registered always; skipped with the runtime's reason where no GPU is visible.
//
// Tolerances, per kernel (ts_kernels_cuda builds with --fmad=false, so the device rounds each
// operation as the CPU does, through the same kernels/common functions):
//   fill_zero, scale, unscale_and_check_overflow, copy/convert, accumulate, has_inf_or_nan,
//   adam_step, sgd_step, lion_step, adagrad_step: bit-exact (every stored byte and every flag).
//   LAMB's moments: bit-exact.
//   sum_of_squares (double per block, blocks in order): relative 1e-10.
//   squared_l2_norm and LAMB's trust ratio (fp32 per block, summed in another order than the
//   CPU's four-lane accumulators): relative 1e-4, the bound of an fp32 sum of 2^16 terms split
//   as the CPU splits it (typically ~1e-6 apart). LAMB's parameters: within 1e-4 of the CPU's
//   step plus one unit in the last place of the parameter's dtype.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "tests/kernels/kernel_test_support.hpp"

#if TWINSPEED_HAVE_CUDA
#include "kernels/cuda/memory.hpp"
#include "kernels/cuda/probe.hpp"
#endif

namespace twinspeed {
namespace {

#if TWINSPEED_HAVE_CUDA

namespace kc = kernels::cuda;
using kernels_test::HostBuffer;

constexpr std::int64_t kN = 3 * kernels::kBlockElements + 1234;
constexpr std::array<DType, 3> kDtypes{DType::f32, DType::bf16, DType::f16};

// Deterministic inputs in [-2, 2] (or [0, 2] when positive), from (seed, index).
std::vector<float> inputs(int seed, std::int64_t n, bool positive = false) {
  std::vector<float> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u ^ static_cast<std::uint32_t>(seed) * 0x9E3779B9u;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    const float v = static_cast<float>(h % 40001u) / 10000.0f - 2.0f;
    out[static_cast<std::size_t>(i)] = positive ? std::fabs(v) : v;
  }
  return out;
}

// The same values in host memory (for the CPU kernel) and in CUDA memory (for the CUDA one).
class Mirror {
 public:
  Mirror(DType dtype, const std::vector<float>& values)
      : host_(dtype, values), device_(kc::allocate(dtype, host_.numel())) {
    kc::upload(device_.all(), host_.all().data());
  }
  BufferView host() const { return host_.all(); }
  BufferView device() const { return device_.all(); }
  HostBuffer& host_buffer() { return host_; }
  // The device's bytes, in a host buffer of the same dtype.
  std::unique_ptr<HostBuffer> fetch() const {
    auto out = std::make_unique<HostBuffer>(host_.dtype(), host_.numel());
    kc::download(out->all().data(), device_.all());
    return out;
  }

 private:
  HostBuffer host_;
  Buffer device_;
};

// Every stored byte equal; on failure, how many elements differ and the first one.
void expect_same_bits(const Mirror& m, const char* what) {
  const auto device = m.fetch();
  const std::size_t size = dtype_size(m.host().dtype());
  std::int64_t wrong = 0, first = -1;
  for (std::int64_t i = 0; i < m.host().numel; ++i) {
    const auto at = static_cast<std::size_t>(i) * size;
    if (std::memcmp(device->bytes().data() + at, static_cast<const unsigned char*>(m.host().data()) + at, size) != 0) {
      if (first < 0) first = i;
      ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0) << what << " (" << dtype_name(m.host().dtype()) << "): " << wrong << " elements differ, first "
                      << first;
}

class CudaKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    static const cuda::ProbeResult probe = cuda::probe();
    if (probe.device_count == 0) GTEST_SKIP() << probe.error_text;
  }
};

TEST_F(CudaKernels, DeviceBuffersAreMarkedCudaAndRouteThere) {
  Mirror x(DType::f32, inputs(1, 16));
  EXPECT_EQ(x.device().memory_space(), MemorySpace::cuda);
  const std::array<BufferView, 1> views{x.device()};
  EXPECT_EQ(kernels::route("scale", views), MemorySpace::cuda);
  expect_same_bits(x, "upload/download round trip");
}

TEST_F(CudaKernels, FillZeroScaleAndAccumulateMatchTheCpuBitForBit) {
  for (DType t : kDtypes) {
    Mirror zero(t, inputs(2, kN)), scaled(t, inputs(3, kN)), acc(t, inputs(4, kN)), add(t, inputs(5, kN));
    kernels::fill_zero(zero.host());
    kernels::fill_zero(zero.device());
    expect_same_bits(zero, "fill_zero");
    kernels::scale(scaled.host(), 0.37);
    kernels::scale(scaled.device(), 0.37);
    expect_same_bits(scaled, "scale");
    kernels::accumulate(acc.host(), add.host());
    kernels::accumulate(acc.device(), add.device());
    expect_same_bits(acc, "accumulate");
  }
}

TEST_F(CudaKernels, UnscaleAndCheckOverflowMatchesValuesAndFlag) {
  for (DType t : kDtypes) {
    Mirror finite(t, inputs(6, kN));
    EXPECT_EQ(kernels::unscale_and_check_overflow(finite.device(), 0.125),
              kernels::unscale_and_check_overflow(finite.host(), 0.125));
    expect_same_bits(finite, "unscale_and_check_overflow");
    // 60000 * 4 overflows fp16 only; an inf in the last (tail) element overflows every dtype.
    std::vector<float> big = inputs(7, kN);
    big[5] = 60000.0f;
    Mirror overflow(t, big);
    const bool cpu = kernels::unscale_and_check_overflow(overflow.host(), 4.0);
    EXPECT_EQ(kernels::unscale_and_check_overflow(overflow.device(), 4.0), cpu);
    EXPECT_EQ(cpu, t == DType::f16);
    expect_same_bits(overflow, "unscale_and_check_overflow past fp16's range");
    big[static_cast<std::size_t>(kN - 1)] = std::numeric_limits<float>::infinity();
    Mirror inf(t, big);
    EXPECT_TRUE(kernels::unscale_and_check_overflow(inf.device(), 1.0));
  }
}

TEST_F(CudaKernels, HasInfOrNanFindsWhatTheCpuFinds) {
  for (DType t : kDtypes) {
    std::vector<float> values = inputs(8, kN);
    Mirror clean(t, values);
    EXPECT_FALSE(kernels::has_inf_or_nan(clean.device()));
    EXPECT_EQ(kernels::has_inf_or_nan(clean.device()), kernels::has_inf_or_nan(clean.host()));
    for (std::int64_t at : {std::int64_t{0}, kernels::kBlockElements, kN - 1}) {
      for (float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN()}) {
        std::vector<float> v = values;
        v[static_cast<std::size_t>(at)] = bad;
        Mirror m(t, v);
        EXPECT_TRUE(kernels::has_inf_or_nan(m.device())) << dtype_name(t) << " at " << at;
        EXPECT_TRUE(kernels::has_inf_or_nan(m.host()));
      }
    }
  }
}

TEST_F(CudaKernels, CopyConvertsBetweenEveryPairOfDtypesBitForBit) {
  for (DType from : kDtypes) {
    const std::vector<float> values = inputs(9, kN);
    Mirror src(from, values);
    for (DType to : kDtypes) {
      Mirror dst(to, inputs(10, kN));
      kernels::copy(dst.host(), src.host());
      kernels::copy(dst.device(), src.device());
      expect_same_bits(dst, "copy");
    }
  }
  // Overlapping same-dtype views (memmove semantics on the CPU, staged on the device).
  Mirror x(DType::f32, inputs(11, kN));
  kernels::copy(x.host().sub(0, kN - 7), x.host().sub(7, kN - 7));
  kernels::copy(x.device().sub(0, kN - 7), x.device().sub(7, kN - 7));
  expect_same_bits(x, "overlapping copy");
}

TEST_F(CudaKernels, SumOfSquaresAgreesWithinTheDoubleBound) {
  for (DType t : kDtypes) {
    Mirror x(t, inputs(12, kN));
    const double cpu = kernels::sum_of_squares(x.host());
    EXPECT_NEAR(kernels::sum_of_squares(x.device()), cpu, 1e-10 * cpu) << dtype_name(t);
  }
}

TEST_F(CudaKernels, MultiTensorL2NormOverManyViewsAgreesWithinTheFp32Bound) {
  // 40 views (more than one launch's list), of every dtype, sizes from 1 element to several
  // blocks, one without data (shape-only: contributes nothing on both sides).
  std::vector<std::unique_ptr<Mirror>> mirrors;
  for (int k = 0; k < 40; ++k) {
    const std::int64_t n = k % 10 == 0 ? kN : 1 + 997 * k;
    mirrors.push_back(std::make_unique<Mirror>(kDtypes[static_cast<std::size_t>(k) % 3], inputs(100 + k, n)));
  }
  const Buffer shape_only(nullptr, MemoryTag::grads, DType::f32, 64, nullptr, 0, MemorySpace::cuda);
  std::vector<BufferView> host, device;
  for (const auto& m : mirrors) {
    host.push_back(m->host());
    device.push_back(m->device());
  }
  device.push_back(shape_only.all());
  const double cpu = kernels::squared_l2_norm(host);
  EXPECT_GT(cpu, 0.0);
  EXPECT_NEAR(kernels::squared_l2_norm(device), cpu, 1e-4 * cpu);
  EXPECT_NEAR(kernels::l2_norm(device), std::sqrt(cpu), 1e-4 * std::sqrt(cpu));
  // Deterministic: the same bits on a second run.
  EXPECT_EQ(kernels::squared_l2_norm(device), kernels::squared_l2_norm(device));
}

TEST_F(CudaKernels, AdamSgdLionAdagradMatchTheCpuBitForBit) {
  for (DType t : kDtypes) {
    {
      Mirror p(t, inputs(20, kN)), g(t, inputs(21, kN)), m(t, inputs(22, kN)), v(t, inputs(23, kN, true));
      kernels::AdamParams a;
      a.lr = 1e-2;
      a.weight_decay = 0.01;
      a.step = 3;
      for (bool adam_w : {true, false}) {
        a.adam_w_mode = adam_w;
        kernels::adam_step(p.host(), g.host(), m.host(), v.host(), a);
        kernels::adam_step(p.device(), g.device(), m.device(), v.device(), a);
      }
      expect_same_bits(p, "adam_step params");
      expect_same_bits(m, "adam_step exp_avg");
      expect_same_bits(v, "adam_step exp_avg_sq");
    }
    {
      Mirror p(t, inputs(30, kN)), g(t, inputs(31, kN)), buf(t, inputs(32, kN));
      kernels::SgdParams s;
      s.lr = 0.05;
      s.weight_decay = 1e-3;
      kernels::sgd_step(p.host(), g.host(), BufferView{}, s);  // no momentum: buf unused
      kernels::sgd_step(p.device(), g.device(), BufferView{}, s);
      s.momentum = 0.9;
      s.nesterov = true;
      for (bool first : {true, false}) {
        s.first_step = first;
        kernels::sgd_step(p.host(), g.host(), buf.host(), s);
        kernels::sgd_step(p.device(), g.device(), buf.device(), s);
      }
      expect_same_bits(p, "sgd_step params");
      expect_same_bits(buf, "sgd_step momentum");
    }
    {
      Mirror p(t, inputs(40, kN)), g(t, inputs(41, kN)), m(t, inputs(42, kN));
      kernels::LionParams l;
      l.weight_decay = 0.1;
      kernels::lion_step(p.host(), g.host(), m.host(), l);
      kernels::lion_step(p.device(), g.device(), m.device(), l);
      expect_same_bits(p, "lion_step params");
      expect_same_bits(m, "lion_step exp_avg");
    }
    for (bool decayed : {true, false}) {
      Mirror p(t, inputs(50, kN)), g(t, inputs(51, kN)), sum(t, inputs(52, kN, true));
      kernels::AdagradParams a;
      a.weight_decay = 0.01;
      a.lr_decay = 0.001;
      a.step = 4;
      a.decayed_numerator = decayed;
      kernels::adagrad_step(p.host(), g.host(), sum.host(), a);
      kernels::adagrad_step(p.device(), g.device(), sum.device(), a);
      expect_same_bits(p, "adagrad_step params");
      expect_same_bits(sum, "adagrad_step sum");
    }
  }
}

TEST_F(CudaKernels, LambMatchesTheCpuMomentsExactlyAndItsStepWithinTheNormBound) {
  for (DType t : kDtypes) {
    Mirror p(t, inputs(60, kN)), g(t, inputs(61, kN)), m(t, inputs(62, kN)), v(t, inputs(63, kN, true));
    const std::vector<float> before = p.host_buffer().values();
    kernels::LambParams a;
    a.lr = 1e-2;
    a.weight_decay = 0.01;
    a.step = 2;
    const float cpu_ratio = kernels::lamb_step(p.host(), g.host(), m.host(), v.host(), a);
    const float gpu_ratio = kernels::lamb_step(p.device(), g.device(), m.device(), v.device(), a);
    EXPECT_NEAR(gpu_ratio, cpu_ratio, 1e-4 * cpu_ratio) << dtype_name(t);
    expect_same_bits(m, "lamb_step exp_avg");
    expect_same_bits(v, "lamb_step exp_avg_sq");
    const std::vector<float> cpu = p.host_buffer().values(), gpu = p.fetch()->values();
    const float ulp = t == DType::f32 ? 0x1p-23f : (t == DType::bf16 ? 0x1p-7f : 0x1p-10f);
    std::int64_t wrong = 0;
    for (std::size_t i = 0; i < cpu.size(); ++i) {
      const float step = std::fabs(cpu[i] - before[i]);
      if (std::fabs(gpu[i] - cpu[i]) > 1e-4f * step + ulp * std::fabs(cpu[i])) ++wrong;
    }
    EXPECT_EQ(wrong, 0) << dtype_name(t) << ": LAMB parameters outside the tolerance";
  }
}

TEST_F(CudaKernels, ViewsWithoutDataDoNothingOnTheDeviceSideEither) {
  const Buffer shape_only(nullptr, MemoryTag::grads, DType::f32, 64, nullptr, 0, MemorySpace::cuda);
  kernels::scale(shape_only.all(), 2.0);
  EXPECT_FALSE(kernels::has_inf_or_nan(shape_only.all()));
  EXPECT_EQ(kernels::sum_of_squares(shape_only.all()), 0.0);
}

#else

TEST(CudaKernels, CompareEveryKernelWithTheCpu) {
  GTEST_SKIP() << "built without CUDA (nvcc not found, or TWINSPEED_CUDA=OFF)";
}

#endif

}  // namespace
}  // namespace twinspeed
