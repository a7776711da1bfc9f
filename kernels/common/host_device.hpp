#pragma once
// TS_HOST_DEVICE marks the per-element math in kernels/common: __host__ __device__ under nvcc, so
// CUDA kernels call the same functions as the CPU ones; nothing under a host compiler (the
// functions are plain inline there).

#if defined(__CUDACC__)
#define TS_HOST_DEVICE __host__ __device__
#else
#define TS_HOST_DEVICE
#endif
