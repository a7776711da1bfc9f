#include "kernels/cpu/reduce.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/common/convert.hpp"

namespace twinspeed::kernels {

namespace {

// Element i of result: load(parts[0][i]) op load(parts[1][i]) op ... in rank order, then stored.
// Done a chunk at a time: the chunk's accumulators stay in L1 while every part streams past them
// once (the loops over a chunk vectorise), instead of an accumulator array as large as the input
// read and written once per part. Same per-element order, so the same bits.
template <typename Stored, typename Accumulator, typename Load, typename Store>
void reduce_as(std::span<const void* const> parts, void* out, std::int64_t n, Reduction op, Load load, Store store) {
  constexpr std::int64_t kChunk = 2048;
  auto run = [&](auto combine) {
    Accumulator acc[kChunk];
    for (std::int64_t begin = 0; begin < n; begin += kChunk) {
      const std::int64_t m = std::min(kChunk, n - begin);
      const auto* first = static_cast<const Stored*>(parts[0]) + begin;
      for (std::int64_t i = 0; i < m; ++i) acc[i] = load(first[i]);
      for (std::size_t r = 1; r < parts.size(); ++r) {
        const auto* part = static_cast<const Stored*>(parts[r]) + begin;
        for (std::int64_t i = 0; i < m; ++i) acc[i] = combine(acc[i], load(part[i]));
      }
      auto* result = static_cast<Stored*>(out) + begin;
      for (std::int64_t i = 0; i < m; ++i) result[i] = store(acc[i]);
    }
  };
  switch (op) {
    case Reduction::sum: run([](Accumulator x, Accumulator y) { return x + y; }); break;
    case Reduction::min: run([](Accumulator x, Accumulator y) { return std::min(x, y); }); break;
    case Reduction::max: run([](Accumulator x, Accumulator y) { return std::max(x, y); }); break;
  }
}

template <typename T>
void reduce_plain(std::span<const void* const> parts, void* out, std::int64_t n, Reduction op) {
  reduce_as<T, T>(parts, out, n, op, [](T v) { return v; }, [](T v) { return v; });
}

// acc[i] = load(part[i]) when first, else combine(acc[i], load(part[i])): one step of reduce_as.
template <typename Stored, typename Accumulator, typename Load>
void fold_as(Accumulator* acc, const void* contribution, std::int64_t n, Reduction op, bool first, Load load) {
  const auto* part = static_cast<const Stored*>(contribution);
  auto run = [&](auto combine) {
    for (std::int64_t i = 0; i < n; ++i) acc[i] = combine(acc[i], load(part[i]));
  };
  if (first) {
    for (std::int64_t i = 0; i < n; ++i) acc[i] = load(part[i]);
    return;
  }
  switch (op) {
    case Reduction::sum: run([](Accumulator x, Accumulator y) { return x + y; }); break;
    case Reduction::min: run([](Accumulator x, Accumulator y) { return std::min(x, y); }); break;
    case Reduction::max: run([](Accumulator x, Accumulator y) { return std::max(x, y); }); break;
  }
}

template <typename T>
void fold_plain(void* acc, const void* contribution, std::int64_t n, Reduction op, bool first) {
  fold_as<T, T>(static_cast<T*>(acc), contribution, n, op, first, [](T v) { return v; });
}

}  // namespace

std::size_t accumulator_size(DType dtype) {
  return dtype == DType::bf16 || dtype == DType::f16 ? sizeof(float) : dtype_size(dtype);
}

void reduce_into(void* acc, const void* contribution, DType dtype, std::int64_t n, Reduction op, bool first) {
  if (n == 0) return;
  switch (dtype) {
    case DType::f32: return fold_plain<float>(acc, contribution, n, op, first);
    case DType::f64: return fold_plain<double>(acc, contribution, n, op, first);
    case DType::i64: return fold_plain<std::int64_t>(acc, contribution, n, op, first);
    case DType::i32: return fold_plain<std::int32_t>(acc, contribution, n, op, first);
    case DType::u8: return fold_plain<std::uint8_t>(acc, contribution, n, op, first);
    case DType::bf16:
      return fold_as<std::uint16_t, float>(static_cast<float*>(acc), contribution, n, op, first, bf16_to_float);
    case DType::f16:
      return fold_as<std::uint16_t, float>(static_cast<float*>(acc), contribution, n, op, first, fp16_to_float);
  }
}

void reduce_finish(const void* acc, void* out, DType dtype, std::int64_t n) {
  if (n == 0) return;
  const auto* a = static_cast<const float*>(acc);
  auto* o = static_cast<std::uint16_t*>(out);
  switch (dtype) {
    case DType::bf16:
      for (std::int64_t i = 0; i < n; ++i) o[i] = float_to_bf16(a[i]);
      return;
    case DType::f16:
      for (std::int64_t i = 0; i < n; ++i) o[i] = float_to_fp16(a[i]);
      return;
    default: std::memmove(out, acc, static_cast<std::size_t>(n) * dtype_size(dtype)); return;
  }
}

void reduce(std::span<const void* const> parts, void* out, DType dtype, std::int64_t n, Reduction op) {
  if (parts.empty() || n == 0) return;
  switch (dtype) {
    case DType::f32: return reduce_plain<float>(parts, out, n, op);
    case DType::f64: return reduce_plain<double>(parts, out, n, op);
    case DType::i64: return reduce_plain<std::int64_t>(parts, out, n, op);
    case DType::i32: return reduce_plain<std::int32_t>(parts, out, n, op);
    case DType::u8: return reduce_plain<std::uint8_t>(parts, out, n, op);
    case DType::bf16:
      return reduce_as<std::uint16_t, float>(parts, out, n, op, bf16_to_float, float_to_bf16);
    case DType::f16:
      return reduce_as<std::uint16_t, float>(parts, out, n, op, fp16_to_float, float_to_fp16);
  }
}

void fill_poison(void* data, DType dtype, std::int64_t n) {
  switch (dtype) {
    case DType::f32: std::fill_n(static_cast<float*>(data), n, std::numeric_limits<float>::quiet_NaN()); return;
    case DType::f64: std::fill_n(static_cast<double*>(data), n, std::numeric_limits<double>::quiet_NaN()); return;
    case DType::bf16: std::fill_n(static_cast<std::uint16_t*>(data), n, std::uint16_t{0x7FC0}); return;
    case DType::f16: std::fill_n(static_cast<std::uint16_t*>(data), n, std::uint16_t{0x7E00}); return;
    default: std::memset(data, 0xAA, static_cast<std::size_t>(n) * dtype_size(dtype)); return;
  }
}

}  // namespace twinspeed::kernels
