#pragma once
// Reductions of collectives, shared by every backend that reduces on the host (the simulator,
// Gloo's 16-bit path): 16-bit floats are upcast to fp32, combined in the order given, and rounded
// once at the end. AVG is not here: it is SUM followed by scale(), in shared comm code.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/core/dtype.hpp"

namespace twinspeed::kernels {

enum class Reduction : std::uint8_t { sum, min, max };

// Element i of out = contributions[0][i] (op) contributions[1][i] (op) ... in that order, for n
// elements of dtype; contributions and out are raw element arrays of that dtype (out may alias
// none of them). Floating types accumulate in fp32 (fp64 in fp64); integers in their own type.
void reduce(std::span<const void* const> contributions, void* out, DType dtype, std::int64_t n, Reduction op);

// reduce() for contributions that arrive one at a time, in order, with the same bits: acc holds n
// accumulators of accumulator_size(dtype) bytes (fp32 for 16-bit floats, the dtype itself
// otherwise); reduce_into folds one contribution in (first: acc = contribution), reduce_finish
// writes the result as dtype to out (which may not alias acc unless the sizes are equal).
std::size_t accumulator_size(DType dtype);
void reduce_into(void* acc, const void* contribution, DType dtype, std::int64_t n, Reduction op, bool first);
void reduce_finish(const void* acc, void* out, DType dtype, std::int64_t n);

// Fills n elements of dtype with quiet NaN (integers: with a 0xAA byte pattern): what output
// memory reads as until a collective is waited on.
void fill_poison(void* data, DType dtype, std::int64_t n);

}  // namespace twinspeed::kernels
