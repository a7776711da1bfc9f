// Bandwidth of the reference flat-buffer kernels (kernels/cpu/flat_ops). The kernels issue
// replaces them with vectorised, threaded ones; this program is the baseline it compares to.
// 2^16 elements stay in cache; 2^25 (128 MiB per buffer) measure memory bandwidth.
//
//   build/bench/flat_ops_bench --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/cpu/flat_ops.hpp"

namespace twinspeed {
namespace {

// A Buffer over caller-owned host memory (the benchmark owns the vectors).
struct HostOwner final : BufferOwner {
  void release(Buffer&) noexcept override {}
};

struct HostBuffer {
  HostOwner owner;
  std::vector<float> data;
  Buffer buffer;
  explicit HostBuffer(std::int64_t n, float value)
      : data(static_cast<std::size_t>(n), value), buffer(&owner, MemoryTag::temporaries, DType::f32, n, data.data(), 0) {}
};

void set_bandwidth(benchmark::State& state, std::int64_t bytes_per_iteration) {
  state.SetBytesProcessed(state.iterations() * bytes_per_iteration);
  state.counters["elements/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)), benchmark::Counter::kIsRate);
}

void BM_AdamStep(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  HostBuffer p(n, 0.5f), g(n, 0.01f), m(n, 0.0f), v(n, 0.0f);
  kernels::AdamParams params;
  for (auto _ : state) {
    ++params.step;
    kernels::adam_step(p.buffer.all(), g.buffer.all(), m.buffer.all(), v.buffer.all(), params);
    benchmark::DoNotOptimize(p.data.data());
  }
  // Reads p, g, m, v; writes p, m, v.
  set_bandwidth(state, 7 * 4 * n);
}
BENCHMARK(BM_AdamStep)->Arg(1 << 16)->Arg(1 << 25);

void BM_SumOfSquares(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  HostBuffer x(n, 0.25f);
  for (auto _ : state) benchmark::DoNotOptimize(kernels::sum_of_squares(x.buffer.all()));
  set_bandwidth(state, 4 * n);
}
BENCHMARK(BM_SumOfSquares)->Arg(1 << 16)->Arg(1 << 25);

void BM_Scale(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  HostBuffer x(n, 0.25f);
  for (auto _ : state) {
    kernels::scale(x.buffer.all(), 1.0000001);
    benchmark::DoNotOptimize(x.data.data());
  }
  set_bandwidth(state, 2 * 4 * n);
}
BENCHMARK(BM_Scale)->Arg(1 << 16)->Arg(1 << 25);

}  // namespace
}  // namespace twinspeed

BENCHMARK_MAIN();
