#pragma once
// The kernels' unit of work and of reduction, the same for every backend: a flat buffer is cut
// into blocks of kBlockElements elements. The CPU shares blocks among threads; CUDA gives each
// block to one thread block. Reductions (the L2 norm, LAMB's norms, sum_of_squares) sum each block
// on its own and add the block sums in order on the host, so results do not depend on how many
// threads (or which backend's scheduling) computed them.

#include <cstdint>
#include <span>

namespace twinspeed::kernels {

// 2^16 elements: the L2 norm's accumulation block (issue 7), and the unit of work of every kernel.
inline constexpr std::int64_t kBlockElements = std::int64_t{1} << 16;

inline constexpr std::int64_t block_count(std::int64_t numel) { return (numel + kBlockElements - 1) / kBlockElements; }

// A reduction's per-block sums added in block order, in double: the one way every backend
// combines them (on the host), so CPU and CUDA results differ only inside a block.
template <typename T>
inline double sum_blocks_in_order(std::span<const T> block_sums) {
  double sum = 0.0;
  for (const T s : block_sums) sum += static_cast<double>(s);
  return sum;
}

}  // namespace twinspeed::kernels
