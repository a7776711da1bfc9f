#pragma once
// The reduction of a collective done on the host, shared by every backend that reduces there (the
// simulator, Gloo): contributions combined in group-rank order through kernels::reduce (16-bit
// floats through fp32, rounded once), then AVG as a scale by 1/group size. One source of truth, so
// a simulated and a Gloo run reduce to the same bits.

#include <cstdint>
#include <span>

#include "engine/comm/types.hpp"
#include "engine/core/dtype.hpp"
#include "kernels/cpu/reduce.hpp"

namespace twinspeed::comm {

// The kernel's combining function for op (AVG combines as SUM).
kernels::Reduction kernel_reduction(ReduceOp op);

// For AVG, scales numel elements of dtype at data by 1/group_size; nothing for the other ops.
void finish_average(ReduceOp op, void* data, DType dtype, std::int64_t numel, int group_size);

// out = contributions[0] (op) contributions[1] (op) ..., element-wise over numel elements of
// dtype, then finish_average with the number of contributions. out may alias none of them.
void reduce_contributions(std::span<const void* const> contributions, void* out, DType dtype, std::int64_t numel,
                          ReduceOp op);

}  // namespace twinspeed::comm
