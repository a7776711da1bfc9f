#pragma once
// The CUDA backend (kernels::cuda) of the kernels in kernels/operations.hpp, on CUDA device
// memory (Buffer::memory_space() == cuda). Callers use kernels/kernels.hpp, which routes here.
// Plain C++ (no CUDA headers): the dispatch and host tests include it.
//
// Every kernel calls kernels/common's per-element functions, compiled with --fmad=false so the
// device rounds each operation as the CPU does. Element-wise kernels are grid-stride loops;
// reductions give each block of kBlockElements elements to one thread block (a fixed-order
// shared-memory tree in fp32, or double for sum_of_squares) and add the block sums in order on
// the host, as the CPU does. Kernels run on the default stream; functions returning a value
// (norms, overflow flags, LAMB's ratio) wait for it, the others return once launched.
// Failures throw CudaError.

#include <cstdint>
#include <span>

#include "engine/core/buffer.hpp"
#include "engine/core/errors.hpp"
#include "kernels/common/adagrad.hpp"
#include "kernels/common/adam.hpp"
#include "kernels/common/lamb.hpp"
#include "kernels/common/lion.hpp"
#include "kernels/common/sgd.hpp"

namespace twinspeed::kernels::cuda {

// A CUDA runtime call or launch failed: "kernels::cuda::<kernel>: <call>: <cudaGetErrorName>:
// <cudaGetErrorString>".
class CudaError : public Error {
 public:
  using Error::Error;
};

#include "kernels/operations.hpp"

}  // namespace twinspeed::kernels::cuda
