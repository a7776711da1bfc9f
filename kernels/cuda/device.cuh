#pragma once
// Device-side helpers of the CUDA kernels (nvcc only): operands of any floating dtype read and
// written as fp32 through kernels/common/convert.hpp, launch shapes, the fixed-order block sum,
// scratch device memory, and the error check that turns a cudaError_t into a CudaError.

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "engine/core/buffer.hpp"
#include "kernels/common/blocks.hpp"
#include "kernels/common/convert.hpp"
#include "kernels/common/element_math.hpp"
#include "kernels/cuda/ops.hpp"

namespace twinspeed::kernels::cuda::detail {

// Throws CudaError naming the kernel and the call when error is not cudaSuccess.
inline void check(cudaError_t error, const char* kernel, const char* call) {
  if (error == cudaSuccess) return;
  throw CudaError("kernels::cuda::" + std::string(kernel) + ": " + call + ": " + cudaGetErrorName(error) + ": " +
                  cudaGetErrorString(error));
}

// After a launch: a bad configuration shows here; a fault inside the kernel shows at the next
// synchronising call (a download), as with every asynchronous CUDA API.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel, "launch"); }

// One operand as the device sees it: its first element and its dtype (fp32, bf16 or fp16; the
// host checks that before launching). Read and written as fp32, 16-bit values rounded to nearest
// even by the same functions the CPU uses.
struct Operand {
  void* data;
  DType dtype;
};

inline Operand operand(BufferView v) { return {v.data(), v.dtype()}; }

__device__ inline float load(const Operand& x, std::int64_t i) {
  switch (x.dtype) {
    case DType::f32: return static_cast<const float*>(x.data)[i];
    case DType::bf16: return bf16_to_float(static_cast<const std::uint16_t*>(x.data)[i]);
    default: return fp16_to_float(static_cast<const std::uint16_t*>(x.data)[i]);
  }
}

// Stores v and returns whether the stored value is inf or NaN (a bit test on what was written,
// so a 16-bit overflow counts).
__device__ inline bool store(const Operand& x, std::int64_t i, float v) {
  switch (x.dtype) {
    case DType::f32: {
      static_cast<float*>(x.data)[i] = v;
      return nonfinite_float_bits(__float_as_uint(v));
    }
    case DType::bf16: {
      const std::uint16_t h = float_to_bf16(v);
      static_cast<std::uint16_t*>(x.data)[i] = h;
      return nonfinite_bf16_bits(h);
    }
    default: {
      const std::uint16_t h = float_to_fp16(v);
      static_cast<std::uint16_t*>(x.data)[i] = h;
      return nonfinite_fp16_bits(h);
    }
  }
}

// Threads per block of every kernel; the block sum's tree assumes a power of two.
constexpr int kThreads = 256;
static_assert((kThreads & (kThreads - 1)) == 0);

// Blocks of a grid-stride launch over n elements: enough to fill a large GPU, at most one
// element per thread.
inline unsigned grid_for(std::int64_t n) {
  constexpr std::int64_t kMaxBlocks = 4096;
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? (blocks > 0 ? blocks : 1) : kMaxBlocks);
}

#define TS_GRID_STRIDE(i, n)                                                                     \
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

// The sum of every thread's value in a block of kThreads threads, in a fixed tree order (so the
// same inputs give the same bits on every run). Valid in thread 0; all threads must call it.
template <typename Acc>
__device__ Acc block_sum(Acc value) {
  __shared__ Acc shared[kThreads];
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (static_cast<int>(threadIdx.x) < stride) shared[threadIdx.x] = shared[threadIdx.x] + shared[threadIdx.x + stride];
    __syncthreads();
  }
  return shared[0];
}

// Device scratch memory of n elements of T, freed on destruction (cudaFree synchronises, so the
// results have been read by then).
template <typename T>
class DeviceArray {
 public:
  DeviceArray(std::int64_t n, const char* kernel) : kernel_(kernel) {
    if (n > 0) check(cudaMalloc(&data_, static_cast<std::size_t>(n) * sizeof(T)), kernel, "cudaMalloc");
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (data_ != nullptr) cudaFree(data_);
  }
  T* get() const { return data_; }
  // Copies the first n elements to host memory (synchronising with the default stream).
  void download(T* host, std::int64_t n) const {
    if (n > 0) {
      check(cudaMemcpy(host, data_, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost), kernel_,
            "cudaMemcpy to host");
    }
  }

 private:
  T* data_ = nullptr;
  const char* kernel_;
};

// A device int that any thread may set to 1 (all writers store the same value, so the race is
// benign): the overflow and inf/NaN flags.
class DeviceFlag {
 public:
  explicit DeviceFlag(const char* kernel) : array_(1, kernel) {
    check(cudaMemset(array_.get(), 0, sizeof(int)), kernel, "cudaMemset");
  }
  int* get() const { return array_.get(); }
  bool read() const {
    int value = 0;
    array_.download(&value, 1);
    return value != 0;
  }

 private:
  DeviceArray<int> array_;
};

}  // namespace twinspeed::kernels::cuda::detail

namespace twinspeed::kernels::cuda {
// The vocabulary of the .cu files of kernels/cuda (this header is theirs alone).
using detail::check;
using detail::check_launch;
using detail::grid_for;
using detail::kThreads;
using detail::load;
using detail::Operand;
using detail::operand;
using detail::store;
}  // namespace twinspeed::kernels::cuda
