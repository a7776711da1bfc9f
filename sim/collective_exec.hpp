#pragma once
// The numerics of the simulated collectives: given every participant's input snapshot (raw bytes,
// in group-rank order), what each participant's output holds. Reductions go through
// kernels::reduce in group-rank order (deterministic), AVG is SUM then a scale by 1/n.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/comm/types.hpp"
#include "engine/core/dtype.hpp"
#include "sim/host_block_pool.hpp"

namespace twinspeed::sim {

// A result several ranks receive unchanged (all-reduce, all-gather, broadcast) is shared, not copied.
using SharedBytes = std::shared_ptr<const HostBytes>;

struct CollectiveShape {
  comm::CollectiveOp op = comm::CollectiveOp::all_reduce;
  comm::ReduceOp reduce_op = comm::ReduceOp::sum;
  DType dtype = DType::f32;
  std::int64_t input_numel = 0;  // per rank
  int root = 0;                  // group rank, for reduce and broadcast
};

// results[r] is what group rank r's output receives; null when its output is untouched (reduce on
// a non-root rank, barrier). inputs are every rank's input as it was at issue, in group-rank order
// (empty where the collective does not read it: a broadcast's non-roots). Results are allocated
// from pool.
std::vector<SharedBytes> execute_collective(const CollectiveShape& shape,
                                            const std::vector<std::span<const std::byte>>& inputs,
                                            const std::shared_ptr<HostBlockPool>& pool);

// Reductions (all_reduce, reduce, reduce_scatter) can instead fold each input in as it is issued,
// in group-rank order, so no input needs a copy that waits for the others:
// fold_reduction_input folds one (first: allocates acc from pool), and finish_reduction gives the
// n ranks' results, the same bytes as execute_collective.
bool is_reduction(comm::CollectiveOp op);
void fold_reduction_input(const CollectiveShape& shape, HostBytes& acc, bool first, std::span<const std::byte> input,
                          const std::shared_ptr<HostBlockPool>& pool);
std::vector<SharedBytes> finish_reduction(const CollectiveShape& shape, int n, HostBytes acc,
                                          const std::shared_ptr<HostBlockPool>& pool);

}  // namespace twinspeed::sim
