// kernels::cuda::allocate / upload / download.
#include "kernels/cuda/memory.hpp"

#include "kernels/cuda/device.cuh"

namespace twinspeed::kernels::cuda {
namespace {

// Frees what allocate() took. Stateless, so one instance serves every thread.
class CudaOwner final : public BufferOwner {
 public:
  void release(Buffer& buffer) noexcept override {
    if (buffer.data() != nullptr) cudaFree(buffer.data());
  }
};

CudaOwner& owner() {
  static CudaOwner instance;
  return instance;
}

}  // namespace

Buffer allocate(DType dtype, std::int64_t numel, MemoryTag tag) {
  if (numel <= 0) return {};
  void* data = nullptr;
  detail::check(cudaMalloc(&data, static_cast<std::size_t>(numel) * dtype_size(dtype)), "allocate", "cudaMalloc");
  return Buffer(&owner(), tag, dtype, numel, data, /*device_rank=*/0, MemorySpace::cuda);
}

void upload(BufferView dst, const void* host) {
  if (!dst.has_data() || dst.numel == 0) return;
  detail::check(cudaMemcpy(dst.data(), host, static_cast<std::size_t>(dst.bytes()), cudaMemcpyHostToDevice), "upload",
                "cudaMemcpy");
}

void download(void* host, BufferView src) {
  if (!src.has_data() || src.numel == 0) return;
  detail::check(cudaMemcpy(host, src.data(), static_cast<std::size_t>(src.bytes()), cudaMemcpyDeviceToHost), "download",
                "cudaMemcpy");
}

}  // namespace twinspeed::kernels::cuda
