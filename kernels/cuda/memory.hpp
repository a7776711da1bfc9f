#pragma once
// CUDA device memory as twinspeed Buffers (memory_space() == cuda), and copies between it and the
// host: what a CUDA device backend allocates with, and what the GPU tests upload and download
// through. Plain C++ (no CUDA headers). Failures throw kernels::cuda::CudaError.

#include <cstdint>

#include "engine/core/buffer.hpp"
#include "kernels/cuda/ops.hpp"

namespace twinspeed::kernels::cuda {

// Allocates with cudaMalloc on the current device and frees with cudaFree when the Buffer dies.
// Returns empty Buffers for numel 0. Thread-safe.
Buffer allocate(DType dtype, std::int64_t numel, MemoryTag tag = MemoryTag::temporaries);

// dst (CUDA memory) = dst.bytes() bytes at host; host = src.bytes() bytes of src (CUDA memory).
// Both synchronise with the default stream.
void upload(BufferView dst, const void* host);
void download(void* host, BufferView src);

}  // namespace twinspeed::kernels::cuda
