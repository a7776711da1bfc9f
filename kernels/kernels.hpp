#pragma once
// The engine's own math on flat Buffers: zeroing, scaling, norms, optimizer updates. The one
// entry point: every function here routes by where its operands' memory is (Buffer::memory_space)
// to a backend, kernels::cpu (kernels/cpu: SIMD over blocks shared among num_threads() threads)
// or kernels::cuda (kernels/cuda: grid-stride and multi-tensor CUDA kernels on the default
// stream). Callers never name a backend. The per-element arithmetic of both is kernels/common's.
//
// Routing (route()): operands with data all in host memory -> cpu; all in CUDA memory -> cuda in
// a build with CUDA (TWINSPEED_CUDA), else NotImplemented naming the kernel and "built without
// CUDA"; host and CUDA operands mixed -> Error. One branch per call: nothing per element.
//
// Common contract: operands may be fp32, bf16 or fp16 (16-bit ones go through fp32 and are
// rounded back to nearest even); other dtypes throw NotImplemented. Every function does nothing
// on a view without data (shape-only simulation); views of different lengths throw Error.
// Results never depend on the CPU thread count. CUDA failures throw kernels::cuda::CudaError
// (an Error) with the runtime's text.

#include <cstdint>
#include <span>

#include "engine/core/buffer.hpp"
#include "kernels/common/adagrad.hpp"
#include "kernels/common/adam.hpp"
#include "kernels/common/blocks.hpp"
#include "kernels/common/lamb.hpp"
#include "kernels/common/lion.hpp"
#include "kernels/common/sgd.hpp"
#include "kernels/cpu/parallel.hpp"  // num_threads / set_num_threads: the CPU backend's threads

namespace twinspeed::kernels {

// True when this build has the CUDA backend (TWINSPEED_CUDA on).
bool built_with_cuda() noexcept;

// Where kernel `kernel` runs for these operands (views without data do not count; none with data
// gives host). Throws as described above; the kernels call it first, and tests call it alone.
MemorySpace route(const char* kernel, std::span<const BufferView> operands);

#include "kernels/operations.hpp"  // the kernels, declared in this namespace

double l2_norm(std::span<const BufferView> views);  // sqrt(squared_l2_norm(views))

}  // namespace twinspeed::kernels
