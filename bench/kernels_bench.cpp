// Bandwidth of the CPU kernels (kernels/cpu/flat_ops) against the machine's limit and against
// LibTorch, in one run (issue 7's figures):
//   - BM_Triad: STREAM triad a = b + s*c, 12 bytes per element, on the kernels' thread pool;
//   - BM_TorchAdam vs BM_FusedAdam on 1M, 16M, 128M fp32 parameters, Adam counted as 28 bytes
//     per parameter (reads p, g, m, v; writes p, m, v);
//   - BM_UnscaleOverflow (8 bytes per element), BM_L2Norm and BM_SumOfSquares (4), BM_Scale (8),
//     BM_Copy (8), BM_Bf16ToFp32Copy (6).
// Every benchmark reports bytes/s and elements/s; kernel benchmarks also report of_triad (their
// bytes/s over the triad's at the same thread count, measured earlier in the same run) and the
// fused Adam x_torch (torch::optim::Adam's time over the fused kernel's). Arguments are
// {elements, threads}. Memory: 128M parameters hold 2 GiB for the fused Adam and about 2.5 GiB
// for LibTorch's (its own tensors and temporaries), one at a time.
//
//   build/bench/kernels_bench --benchmark_counters_tabular=true

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>
#include <map>
#include <utility>
#include <vector>

#include "kernels/kernels.hpp"

namespace twinspeed {
namespace {

constexpr std::int64_t kM = std::int64_t{1} << 20;

struct HostOwner final : BufferOwner {
  void release(Buffer&) noexcept override {}
};

// A Buffer over memory the benchmark owns (touched at construction, so page faults are not timed).
struct HostBuffer {
  HostOwner owner;
  std::vector<float> data;
  Buffer buffer;
  HostBuffer(std::int64_t n, float value)
      : data(static_cast<std::size_t>(n), value), buffer(&owner, MemoryTag::temporaries, DType::f32, n, data.data(), 0) {}
  BufferView all() const { return buffer.all(); }
};

// Seconds per iteration of earlier benchmarks in this run, by {elements, threads}.
std::map<int, double> triad_bytes_per_s;                         // by threads
std::map<std::pair<std::int64_t, int>, double> torch_adam_seconds;  // by {elements, threads}

// Times the benchmark loop itself (for the ratio counters; Google Benchmark's own time is not
// visible inside the function).
class LoopClock {
 public:
  LoopClock() : start_(std::chrono::steady_clock::now()) {}
  double seconds_per_iteration(const benchmark::State& state) const {
    const std::chrono::duration<double> d = std::chrono::steady_clock::now() - start_;
    return d.count() / static_cast<double>(std::max<benchmark::IterationCount>(1, state.iterations()));
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// bytes/s and elements/s for Google Benchmark; returns this run's bytes/s.
double set_rates(benchmark::State& state, double bytes_per_element, double seconds_per_iteration) {
  const std::int64_t n = state.range(0);
  state.SetBytesProcessed(static_cast<std::int64_t>(static_cast<double>(state.iterations() * n) * bytes_per_element));
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["elements/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
  state.counters["threads"] = static_cast<double>(state.range(1));
  return static_cast<double>(n) * bytes_per_element / seconds_per_iteration;
}

void report_of_triad(benchmark::State& state, double bytes_per_s) {
  auto it = triad_bytes_per_s.find(static_cast<int>(state.range(1)));
  if (it != triad_bytes_per_s.end()) state.counters["of_triad"] = bytes_per_s / it->second;
}

void use_threads(benchmark::State& state) {
  kernels::set_num_threads(static_cast<int>(state.range(1)));
  at::set_num_threads(static_cast<int>(state.range(1)));
}

void BM_Triad(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  std::vector<float> a(static_cast<std::size_t>(n), 0.0f), b(a.size(), 1.0f), c(a.size(), 2.0f);
  const float s = 3.0f;
  const LoopClock clock;
  for (auto _ : state) {
    kernels::for_each_block(n, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
      float* __restrict ap = a.data();
      const float* __restrict bp = b.data();
      const float* __restrict cp = c.data();
      for (std::int64_t i = begin; i < end; ++i) ap[i] = bp[i] + s * cp[i];
    });
    benchmark::DoNotOptimize(a.data());
    benchmark::ClobberMemory();
  }
  triad_bytes_per_s[static_cast<int>(state.range(1))] = set_rates(state, 12, clock.seconds_per_iteration(state));
}

void BM_TorchAdam(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  torch::Tensor p = torch::full({n}, 0.5f).requires_grad_(true);
  p.mutable_grad() = torch::full({n}, 0.01f);
  torch::optim::Adam adam({p}, torch::optim::AdamOptions(1e-3));
  adam.step();  // allocates the moments outside the timed loop
  const LoopClock clock;
  for (auto _ : state) {
    adam.step();
    benchmark::DoNotOptimize(p.data_ptr());
  }
  const double seconds = clock.seconds_per_iteration(state);
  torch_adam_seconds[{n, static_cast<int>(state.range(1))}] = seconds;
  set_rates(state, 28, seconds);
}

void BM_FusedAdam(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  HostBuffer p(n, 0.5f), g(n, 0.01f), m(n, 0.0f), v(n, 0.0f);
  kernels::AdamParams params;
  const LoopClock clock;
  for (auto _ : state) {
    ++params.step;
    kernels::adam_step(p.all(), g.all(), m.all(), v.all(), params);
    benchmark::DoNotOptimize(p.data.data());
  }
  const double seconds = clock.seconds_per_iteration(state);
  report_of_triad(state, set_rates(state, 28, seconds));
  auto it = torch_adam_seconds.find({n, static_cast<int>(state.range(1))});
  if (it != torch_adam_seconds.end()) state.counters["x_torch"] = it->second / seconds;
}

// LAMB: two passes, STREAM-counted 40 bytes per parameter (pass 1 reads p, g, m, v and writes
// m, v; pass 2 reads p, m, v and writes p).
void BM_Lamb(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  HostBuffer p(n, 0.5f), g(n, 0.01f), m(n, 0.0f), v(n, 0.0f);
  kernels::LambParams params;
  const LoopClock clock;
  for (auto _ : state) {
    ++params.step;
    benchmark::DoNotOptimize(kernels::lamb_step(p.all(), g.all(), m.all(), v.all(), params));
  }
  report_of_triad(state, set_rates(state, 40, clock.seconds_per_iteration(state)));
}

// Lion: 20 bytes per parameter (reads p, g, m; writes p, m).
void BM_Lion(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  HostBuffer p(n, 0.5f), g(n, 0.01f), m(n, 0.0f);
  const kernels::LionParams params{.lr = 1e-4, .weight_decay = 0.01};
  const LoopClock clock;
  for (auto _ : state) {
    kernels::lion_step(p.all(), g.all(), m.all(), params);
    benchmark::DoNotOptimize(p.data.data());
  }
  report_of_triad(state, set_rates(state, 20, clock.seconds_per_iteration(state)));
}

// Adagrad: 20 bytes per parameter (reads p, g, sum; writes p, sum).
void BM_Adagrad(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  HostBuffer p(n, 0.5f), g(n, 0.01f), sums(n, 0.0f);
  kernels::AdagradParams params;
  const LoopClock clock;
  for (auto _ : state) {
    ++params.step;
    kernels::adagrad_step(p.all(), g.all(), sums.all(), params);
    benchmark::DoNotOptimize(p.data.data());
  }
  report_of_triad(state, set_rates(state, 20, clock.seconds_per_iteration(state)));
}

void BM_UnscaleOverflow(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  HostBuffer x(n, 0.25f);
  const LoopClock clock;
  bool overflow = false;
  int k = 0;
  for (auto _ : state) {
    // Alternating factors keep the values bounded over any number of iterations.
    overflow = kernels::unscale_and_check_overflow(x.all(), ++k % 2 == 0 ? 0.5 : 2.0) || overflow;
    benchmark::DoNotOptimize(x.data.data());
  }
  if (overflow) state.SkipWithError("unexpected overflow");
  report_of_triad(state, set_rates(state, 8, clock.seconds_per_iteration(state)));
}

void BM_L2Norm(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  // Eight tensors, as a multi-tensor norm over a model's gradients sees them.
  std::vector<std::unique_ptr<HostBuffer>> tensors;
  std::vector<BufferView> views;
  for (int t = 0; t < 8; ++t) {
    tensors.push_back(std::make_unique<HostBuffer>(n / 8, 0.25f));
    views.push_back(tensors.back()->all());
  }
  const LoopClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(kernels::l2_norm(views));
  report_of_triad(state, set_rates(state, 4, clock.seconds_per_iteration(state)));
}

void BM_SumOfSquares(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  HostBuffer x(n, 0.25f);
  const LoopClock clock;
  for (auto _ : state) benchmark::DoNotOptimize(kernels::sum_of_squares(x.all()));
  report_of_triad(state, set_rates(state, 4, clock.seconds_per_iteration(state)));
}

void BM_Scale(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  HostBuffer x(n, 0.25f);
  const LoopClock clock;
  int k = 0;
  for (auto _ : state) {
    kernels::scale(x.all(), ++k % 2 == 0 ? 0.5 : 2.0);
    benchmark::DoNotOptimize(x.data.data());
  }
  report_of_triad(state, set_rates(state, 8, clock.seconds_per_iteration(state)));
}

void BM_Bf16ToFp32Copy(benchmark::State& state) {
  use_threads(state);
  const std::int64_t n = state.range(0);
  HostOwner owner;
  std::vector<std::uint16_t> half(static_cast<std::size_t>(n), 0x3F80);
  Buffer src(&owner, MemoryTag::temporaries, DType::bf16, n, half.data(), 0);
  HostBuffer dst(n, 0.0f);
  const LoopClock clock;
  for (auto _ : state) {
    kernels::copy(dst.all(), src.all());
    benchmark::DoNotOptimize(dst.data.data());
  }
  report_of_triad(state, set_rates(state, 6, clock.seconds_per_iteration(state)));
}

// {elements, threads}: every size at 1 and 2 threads.
void sizes(benchmark::internal::Benchmark* b, std::initializer_list<std::int64_t> ns) {
  for (std::int64_t n : ns) {
    for (int threads : {1, 2}) b->Args({n, threads});
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_Triad)->Apply([](auto* b) { sizes(b, {32 * kM}); });
BENCHMARK(BM_TorchAdam)->Apply([](auto* b) { sizes(b, {kM, 16 * kM, 128 * kM}); });
BENCHMARK(BM_FusedAdam)->Apply([](auto* b) { sizes(b, {kM, 16 * kM, 128 * kM}); });
BENCHMARK(BM_Lamb)->Apply([](auto* b) { sizes(b, {kM, 16 * kM}); });
BENCHMARK(BM_Lion)->Apply([](auto* b) { sizes(b, {kM, 16 * kM}); });
BENCHMARK(BM_Adagrad)->Apply([](auto* b) { sizes(b, {kM, 16 * kM}); });
BENCHMARK(BM_UnscaleOverflow)->Apply([](auto* b) { sizes(b, {kM, 32 * kM}); });
BENCHMARK(BM_L2Norm)->Apply([](auto* b) { sizes(b, {kM, 32 * kM}); });
BENCHMARK(BM_SumOfSquares)->Apply([](auto* b) { sizes(b, {32 * kM}); });
BENCHMARK(BM_Scale)->Apply([](auto* b) { sizes(b, {32 * kM}); });
BENCHMARK(BM_Bf16ToFp32Copy)->Apply([](auto* b) { sizes(b, {32 * kM}); });

}  // namespace
}  // namespace twinspeed

BENCHMARK_MAIN();
