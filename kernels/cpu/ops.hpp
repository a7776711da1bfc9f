#pragma once
// The CPU backend (kernels::cpu) of the kernels in kernels/operations.hpp, on host memory. Callers
// use kernels/kernels.hpp, which routes here when every operand is in host memory.
//
// The per-element arithmetic is kernels/common's (shared with CUDA); here it runs as explicit
// SIMD (kernels/cpu/simd.hpp) over blocks of kBlockElements shared among num_threads() threads
// (kernels/cpu/parallel.hpp); reductions add per-block results in block order, so results never
// depend on the thread count. flat_ops.cpp holds the flat operations, Adam and SGD;
// optimizer_ops.cpp LAMB, Lion and Adagrad.

#include <cstdint>
#include <span>

#include "engine/core/buffer.hpp"
#include "kernels/common/adagrad.hpp"
#include "kernels/common/adam.hpp"
#include "kernels/common/lamb.hpp"
#include "kernels/common/lion.hpp"
#include "kernels/common/sgd.hpp"
#include "kernels/cpu/parallel.hpp"

namespace twinspeed::kernels::cpu {

#include "kernels/operations.hpp"

}  // namespace twinspeed::kernels::cpu
