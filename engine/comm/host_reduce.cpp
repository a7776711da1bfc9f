#include "engine/comm/host_reduce.hpp"

#include "kernels/kernels.hpp"

namespace twinspeed::comm {

kernels::Reduction kernel_reduction(ReduceOp op) {
  switch (op) {
    case ReduceOp::min: return kernels::Reduction::min;
    case ReduceOp::max: return kernels::Reduction::max;
    case ReduceOp::sum:
    case ReduceOp::avg: return kernels::Reduction::sum;
  }
  return kernels::Reduction::sum;
}

void finish_average(ReduceOp op, void* data, DType dtype, std::int64_t numel, int group_size) {
  if (op != ReduceOp::avg || data == nullptr || numel == 0) return;
  // A view over memory nobody owns through a Device: kernels take BufferViews.
  struct Unowned final : BufferOwner {
    void release(Buffer&) noexcept override {}
  } owner;
  Buffer view(&owner, MemoryTag::temporaries, dtype, numel, data, -1);
  kernels::scale(view.all(), 1.0 / static_cast<double>(group_size));
}

void reduce_contributions(std::span<const void* const> contributions, void* out, DType dtype, std::int64_t numel,
                          ReduceOp op) {
  kernels::reduce(contributions, out, dtype, numel, kernel_reduction(op));
  finish_average(op, out, dtype, numel, static_cast<int>(contributions.size()));
}

}  // namespace twinspeed::comm
