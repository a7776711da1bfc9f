// The dispatch of kernels/kernels.hpp: where each call goes by the operands' memory space. These
// never touch memory marked cuda unless a real CUDA backend allocated it (tests/gpu does that):
// a Buffer marked cuda here holds a host array, so a wrong route to CUDA is caught by the routing
// function alone, and the kernels themselves are called on it only where they must throw first.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/errors.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed {
namespace {

// A Buffer over vector memory, in the memory space asked for (the storage is host memory either
// way: a "cuda" one must never be dereferenced, and these tests make sure it is not).
class MarkedBuffer {
 public:
  MarkedBuffer(std::vector<float> values, MemorySpace space)
      : values_(std::move(values)),
        buffer_(nullptr, MemoryTag::temporaries, DType::f32, static_cast<std::int64_t>(values_.size()), values_.data(), 0,
                space) {}
  BufferView all() const { return buffer_.all(); }
  const std::vector<float>& values() const { return values_; }

 private:
  std::vector<float> values_;
  Buffer buffer_;
};

// A shape-only Buffer (no data), as the simulator's shape mode allocates.
Buffer shape_only(std::int64_t numel, MemorySpace space) {
  return Buffer(nullptr, MemoryTag::temporaries, DType::f32, numel, nullptr, 0, space);
}

TEST(KernelDispatch, BuffersAreHostMemoryUnlessTheirDeviceSaysOtherwise) {
  float x = 1.0f;
  const Buffer b(nullptr, MemoryTag::grads, DType::f32, 1, &x, 0);
  EXPECT_EQ(b.memory_space(), MemorySpace::host);
  EXPECT_EQ(b.all().memory_space(), MemorySpace::host);
  EXPECT_EQ(BufferView{}.memory_space(), MemorySpace::host);
  Buffer marked(nullptr, MemoryTag::grads, DType::f32, 1, &x, 0, MemorySpace::cuda);
  const Buffer moved = std::move(marked);  // the space moves with the memory
  EXPECT_EQ(moved.memory_space(), MemorySpace::cuda);
}

TEST(KernelDispatch, HostOperandsRunOnTheCpuWithTheCpuKernelsBits) {
  MarkedBuffer dispatched({1.5f, -2.0f, 3.25f}, MemorySpace::host);
  MarkedBuffer direct({1.5f, -2.0f, 3.25f}, MemorySpace::host);
  const std::array<BufferView, 1> views{dispatched.all()};
  EXPECT_EQ(kernels::route("scale", views), MemorySpace::host);
  kernels::scale(dispatched.all(), 0.5);
  kernels::cpu::scale(direct.all(), 0.5);
  EXPECT_EQ(dispatched.values(), direct.values());
  EXPECT_EQ(dispatched.values(), (std::vector<float>{0.75f, -1.0f, 1.625f}));
}

TEST(KernelDispatch, CudaOperandsRouteToCudaOnlyWhenBuiltWithIt) {
  MarkedBuffer device({1.0f, 2.0f}, MemorySpace::cuda);
  const std::array<BufferView, 1> views{device.all()};
  if (kernels::built_with_cuda()) {
    EXPECT_EQ(kernels::route("scale", views), MemorySpace::cuda);
    return;  // calling the kernel would hand host memory to CUDA
  }
  try {
    kernels::scale(device.all(), 2.0);
    FAIL() << "scale on CUDA memory in a build without CUDA did not throw";
  } catch (const NotImplemented& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("kernels::scale"), std::string::npos) << what;
    EXPECT_NE(what.find("built without CUDA"), std::string::npos) << what;
  }
  EXPECT_EQ(device.values(), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_THROW(kernels::route("adam_step", views), NotImplemented);
}

TEST(KernelDispatch, MixedHostAndCudaOperandsThrowAnErrorThatIsNotNotImplemented) {
  MarkedBuffer p({1.0f}, MemorySpace::host), g({0.5f}, MemorySpace::cuda), m({0.0f}, MemorySpace::host),
      v({0.0f}, MemorySpace::host);
  // route() throws before either backend runs, with or without CUDA: safe on the fake buffer.
  try {
    kernels::adam_step(p.all(), g.all(), m.all(), v.all(), kernels::AdamParams{});
    FAIL() << "adam_step on mixed memory spaces did not throw";
  } catch (const NotImplemented& e) {
    FAIL() << "mixed spaces reported as NotImplemented: " << e.what();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("kernels::adam_step"), std::string::npos) << what;
    EXPECT_NE(what.find("mixed"), std::string::npos) << what;
  }
  EXPECT_EQ(p.values(), std::vector<float>{1.0f});
  const std::array<BufferView, 2> copy_operands{p.all(), g.all()};
  EXPECT_THROW(kernels::route("copy", copy_operands), Error);
  EXPECT_THROW(kernels::copy(p.all(), g.all()), Error);
}

TEST(KernelDispatch, ViewsWithoutDataDoNotCountAndDoNothing) {
  const Buffer shape = shape_only(4, MemorySpace::cuda);
  MarkedBuffer host({1.0f, 2.0f, 3.0f, 4.0f}, MemorySpace::host);
  const std::array<BufferView, 2> operands{host.all(), shape.all()};
  EXPECT_EQ(kernels::route("accumulate", operands), MemorySpace::host);
  const std::array<BufferView, 1> none{shape.all()};
  EXPECT_EQ(kernels::route("scale", none), MemorySpace::host);
  kernels::scale(shape.all(), 2.0);
  kernels::accumulate(host.all(), shape.all());
  EXPECT_EQ(host.values(), (std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f}));
  EXPECT_EQ(kernels::squared_l2_norm(none), 0.0);
  EXPECT_FALSE(kernels::has_inf_or_nan(shape.all()));
}

}  // namespace
}  // namespace twinspeed
