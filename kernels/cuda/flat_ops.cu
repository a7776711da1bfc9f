// kernels::cuda: the flat operations (fill, scale, unscale with overflow check, copy/convert,
// accumulate, inf/NaN test, sums of squares, the multi-tensor L2 norm).
#include <algorithm>
#include <vector>

#include "kernels/checks.hpp"
#include "kernels/common/reductions.hpp"
#include "kernels/cuda/device.cuh"

namespace twinspeed::kernels::cuda {

using kernels::detail::require_floating;
using kernels::detail::require_same_numel;

namespace {

__global__ void scale_kernel(Operand x, std::int64_t n, float factor) {
  TS_GRID_STRIDE(i, n) { store(x, i, scaled(load(x, i), factor)); }
}

__global__ void unscale_kernel(Operand x, std::int64_t n, float factor, int* overflow) {
  bool bad = false;
  TS_GRID_STRIDE(i, n) { bad = store(x, i, scaled(load(x, i), factor)) || bad; }
  if (bad) *overflow = 1;
}

__global__ void convert_kernel(Operand dst, Operand src, std::int64_t n) {
  TS_GRID_STRIDE(i, n) { store(dst, i, load(src, i)); }
}

__global__ void accumulate_kernel(Operand dst, Operand src, std::int64_t n) {
  TS_GRID_STRIDE(i, n) { store(dst, i, load(dst, i) + load(src, i)); }
}

// A bit test on the stored bits, as the CPU's (no float comparison a flag could change).
__global__ void nonfinite_kernel(Operand x, std::int64_t n, int* found) {
  bool bad = false;
  TS_GRID_STRIDE(i, n) {
    switch (x.dtype) {
      case DType::f32: bad = nonfinite_float_bits(static_cast<const std::uint32_t*>(x.data)[i]) || bad; break;
      case DType::bf16: bad = nonfinite_bf16_bits(static_cast<const std::uint16_t*>(x.data)[i]) || bad; break;
      default: bad = nonfinite_fp16_bits(static_cast<const std::uint16_t*>(x.data)[i]) || bad; break;
    }
  }
  if (bad) *found = 1;
}

// Up to kMaxViews views in one launch, passed by value (the kernel parameter block): thread block
// b of the launch sums block b - first_block[v] of the view v with first_block[v] <= b <
// first_block[v + 1], and writes the sum to block_sums[b].
constexpr int kMaxViews = 32;
struct ViewList {
  Operand view[kMaxViews];
  std::int64_t numel[kMaxViews];
  std::int64_t first_block[kMaxViews + 1];
  int count;
};

template <typename Acc>
__global__ void square_sums_kernel(ViewList list, Acc* block_sums) {
  const std::int64_t b = blockIdx.x;
  int v = 0;
  while (b >= list.first_block[v + 1]) ++v;
  const std::int64_t begin = (b - list.first_block[v]) * kBlockElements;
  const std::int64_t end = begin + kBlockElements < list.numel[v] ? begin + kBlockElements : list.numel[v];
  Acc acc = 0;
  for (std::int64_t i = begin + threadIdx.x; i < end; i += kThreads) acc = add_square(acc, load(list.view[v], i));
  acc = detail::block_sum(acc);
  if (threadIdx.x == 0) block_sums[b] = acc;
}

// The per-block sums of squares of views (in (view, block) order), accumulated in Acc.
template <typename Acc>
std::vector<Acc> block_square_sums(std::span<const BufferView> views, const char* kernel) {
  std::vector<BufferView> with_data;
  std::int64_t blocks = 0;
  for (const BufferView& v : views) {
    if (!v.has_data() || v.numel == 0) continue;
    require_floating(kernel, v);
    with_data.push_back(v);
    blocks += block_count(v.numel);
  }
  std::vector<Acc> sums(static_cast<std::size_t>(blocks));
  if (blocks == 0) return sums;
  detail::DeviceArray<Acc> device_sums(blocks, kernel);
  std::int64_t written = 0;
  for (std::size_t first = 0; first < with_data.size(); first += kMaxViews) {
    ViewList list{};
    list.count = static_cast<int>(std::min<std::size_t>(kMaxViews, with_data.size() - first));
    for (int k = 0; k < list.count; ++k) {
      const BufferView& v = with_data[first + static_cast<std::size_t>(k)];
      list.view[k] = operand(v);
      list.numel[k] = v.numel;
      list.first_block[k + 1] = list.first_block[k] + block_count(v.numel);
    }
    // Unused entries end at the last block, so the view search stops at count - 1.
    for (int k = list.count + 1; k <= kMaxViews; ++k) list.first_block[k] = list.first_block[list.count];
    const std::int64_t launch_blocks = list.first_block[list.count];
    square_sums_kernel<Acc><<<static_cast<unsigned>(launch_blocks), kThreads>>>(list, device_sums.get() + written);
    check_launch(kernel);
    written += launch_blocks;
  }
  device_sums.download(sums.data(), blocks);
  return sums;
}

}  // namespace

void fill_zero(BufferView x) {
  if (!x.has_data()) return;
  // All-zero bits are +0 in every dtype.
  check(cudaMemset(x.data(), 0, static_cast<std::size_t>(x.bytes())), "fill_zero", "cudaMemset");
}

void scale(BufferView x, double factor) {
  if (!x.has_data() || x.numel == 0) return;
  require_floating("scale", x);
  scale_kernel<<<grid_for(x.numel), kThreads>>>(operand(x), x.numel, static_cast<float>(factor));
  check_launch("scale");
}

bool unscale_and_check_overflow(BufferView x, double factor) {
  if (!x.has_data() || x.numel == 0) return false;
  require_floating("unscale_and_check_overflow", x);
  detail::DeviceFlag overflow("unscale_and_check_overflow");
  unscale_kernel<<<grid_for(x.numel), kThreads>>>(operand(x), x.numel, static_cast<float>(factor), overflow.get());
  check_launch("unscale_and_check_overflow");
  return overflow.read();
}

void copy(BufferView dst, BufferView src) {
  require_same_numel("copy", dst, src);
  if (!dst.has_data() || !src.has_data() || dst.numel == 0) return;
  if (dst.dtype() == src.dtype()) {
    // cudaMemcpy's result is undefined for overlapping ranges; stage those through scratch.
    const auto bytes = static_cast<std::size_t>(dst.bytes());
    const auto* s = static_cast<const char*>(src.data());
    auto* d = static_cast<char*>(dst.data());
    if (d < s + bytes && s < d + bytes) {
      detail::DeviceArray<char> scratch(static_cast<std::int64_t>(bytes), "copy");
      check(cudaMemcpy(scratch.get(), s, bytes, cudaMemcpyDeviceToDevice), "copy", "cudaMemcpy");
      check(cudaMemcpy(d, scratch.get(), bytes, cudaMemcpyDeviceToDevice), "copy", "cudaMemcpy");
      return;
    }
    check(cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, cudaStreamLegacy), "copy", "cudaMemcpyAsync");
    return;
  }
  require_floating("copy", dst);
  require_floating("copy", src);
  convert_kernel<<<grid_for(dst.numel), kThreads>>>(operand(dst), operand(src), dst.numel);
  check_launch("copy");
}

void accumulate(BufferView dst, BufferView src) {
  require_same_numel("accumulate", dst, src);
  if (!dst.has_data() || !src.has_data() || dst.numel == 0) return;
  require_floating("accumulate", dst);
  require_floating("accumulate", src);
  accumulate_kernel<<<grid_for(dst.numel), kThreads>>>(operand(dst), operand(src), dst.numel);
  check_launch("accumulate");
}

double sum_of_squares(BufferView x) {
  const std::vector<double> sums = block_square_sums<double>(std::span<const BufferView>(&x, 1), "sum_of_squares");
  return sum_blocks_in_order<double>(sums);
}

bool has_inf_or_nan(BufferView x) {
  if (!x.has_data() || x.numel == 0) return false;
  require_floating("has_inf_or_nan", x);
  detail::DeviceFlag found("has_inf_or_nan");
  nonfinite_kernel<<<grid_for(x.numel), kThreads>>>(operand(x), x.numel, found.get());
  check_launch("has_inf_or_nan");
  return found.read();
}

double squared_l2_norm(std::span<const BufferView> views) {
  return sum_blocks_in_order<float>(block_square_sums<float>(views, "l2_norm"));
}

}  // namespace twinspeed::kernels::cuda
