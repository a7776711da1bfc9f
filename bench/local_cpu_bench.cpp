// Measures the numbers of the `local-cpu` preset (sim/presets/presets.cpp) on this kind of machine:
// one simulated rank is one core, so every benchmark runs on one thread.
//
//   build/bench/local_cpu_bench --benchmark_repetitions=5 --benchmark_counters_tabular=true
//
//   BM_Matmul/<dtype>/<n>   LibTorch's n x n x n matmul (what the numeric simulator runs): FLOP/s per
//                           size, from which the preset's peak and half-efficiency size are fitted
//                           (sim::fit_matmul_curve in sim/cost/measurement_fit.hpp)
//   BM_Triad                STREAM triad a = b + s*c over 3 x 64 MiB: memory bandwidth (bytes/s)
//   BM_VectorFma            a*x+y over an L1-resident array: the non-matrix FP32 peak (FLOP/s)
//   BM_LoopbackBandwidth    TCP over 127.0.0.1 between two threads (Gloo's path): bytes/s
//   BM_LoopbackPingPong     one byte there and back over 127.0.0.1: round-trip time
//
// The loopback benchmarks talk only to this process on the loopback address. `twinspeed calibrate`
// re-measures the same figures in a few seconds (one rank per core, and Gloo itself instead of a
// raw TCP stream) and writes them as a cluster file.

#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include <torch/torch.h>

// OpenBLAS (LibTorch's BLAS on Debian) runs its own thread pool, which at::set_num_threads does not
// reach. Weak: absent when another BLAS is installed.
extern "C" void openblas_set_num_threads(int threads) __attribute__((weak));

namespace {

void use_one_core() {
  at::set_num_threads(1);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
}

void BM_Matmul(benchmark::State& state, torch::ScalarType dtype) {
  use_one_core();
  const std::int64_t n = state.range(0);
  auto options = torch::TensorOptions().dtype(dtype);
  torch::Tensor a = torch::rand({n, n}, options), b = torch::rand({n, n}, options);
  for (auto _ : state) {
    torch::Tensor c = torch::matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP"] = 2.0 * n * n * n / 1e9;
}
BENCHMARK_CAPTURE(BM_Matmul, fp32, torch::kFloat)->RangeMultiplier(2)->Range(32, 2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Matmul, bf16, torch::kBFloat16)->RangeMultiplier(2)->Range(32, 1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Matmul, fp64, torch::kDouble)->RangeMultiplier(2)->Range(32, 1024)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Triad(benchmark::State& state) {
  const std::size_t n = std::size_t{16} << 20;  // 64 MiB of floats per array, far past the caches
  std::vector<float> a(n, 0.0f), b(n, 1.0f), c(n, 2.0f);
  const float s = 3.0f;
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
    benchmark::DoNotOptimize(a.data());
    benchmark::ClobberMemory();
  }
  // STREAM counts the bytes the program moves: read b, read c, write a.
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 3 * n * sizeof(float)));
}
BENCHMARK(BM_Triad)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_VectorFma(benchmark::State& state) {
  const std::size_t n = 2048;  // 8 KiB per array: stays in L1
  std::vector<float> x(n, 1.0f), y(n, 0.5f);
  const float a = 0.999f;
  for (auto _ : state) {
    for (int repeat = 0; repeat < 64; ++repeat) {
      for (std::size_t i = 0; i < n; ++i) y[i] = a * y[i] + x[i];
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * 64 * n, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_VectorFma)->UseRealTime();

// A connected TCP pair on 127.0.0.1 (an ephemeral port chosen by the kernel).
struct LoopbackPair {
  int client = -1, server = -1;
  LoopbackPair() {
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener, 1) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("loopback listener");
    }
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(client, reinterpret_cast<sockaddr*>(&address), length) != 0) throw std::runtime_error("connect");
    server = ::accept(listener, nullptr, nullptr);
    ::close(listener);
    int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~LoopbackPair() {
    ::close(client);
    ::close(server);
  }
};

void send_all(int fd, const char* data, std::size_t bytes) {
  while (bytes > 0) {
    ssize_t sent = ::send(fd, data, bytes, 0);
    if (sent <= 0) throw std::runtime_error("send");
    data += sent;
    bytes -= static_cast<std::size_t>(sent);
  }
}

void receive_all(int fd, char* data, std::size_t bytes) {
  while (bytes > 0) {
    ssize_t got = ::recv(fd, data, bytes, 0);
    if (got <= 0) throw std::runtime_error("recv");
    data += got;
    bytes -= static_cast<std::size_t>(got);
  }
}

void BM_LoopbackBandwidth(benchmark::State& state) {
  const std::size_t bytes = static_cast<std::size_t>(state.range(0));
  LoopbackPair pair;
  std::vector<char> out(bytes, 'x'), in(bytes);
  for (auto _ : state) {
    std::thread receiver([&] { receive_all(pair.server, in.data(), bytes); });
    send_all(pair.client, out.data(), bytes);
    receiver.join();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_LoopbackBandwidth)->Arg(1 << 20)->Arg(64 << 20)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LoopbackPingPong(benchmark::State& state) {
  LoopbackPair pair;
  std::atomic<bool> done{false};
  std::thread echo([&] {
    char byte = 0;
    while (::recv(pair.server, &byte, 1, 0) == 1 && byte != 'q') send_all(pair.server, &byte, 1);
    done = true;
  });
  char byte = 'p';
  for (auto _ : state) {
    send_all(pair.client, &byte, 1);
    receive_all(pair.client, &byte, 1);
  }
  char quit = 'q';
  send_all(pair.client, &quit, 1);
  echo.join();
}
BENCHMARK(BM_LoopbackPingPong)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
