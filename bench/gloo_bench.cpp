// The Gloo backend's collectives across local processes over loopback TCP, nccl-tests style:
// all_reduce, reduce_scatter and all_gather of fp32 on 2 and 4 processes, 4 KiB to 64 MiB
// (nccl-tests' S: the whole array; engine/core/busbw.hpp has the factors).
//
//   build/bench/gloo_bench --benchmark_counters_tabular=true
//
// The benchmark process is rank 0; it starts the other ranks as copies of itself
// (--gloo-worker ...) that run the same fixed number of operations, one warm-up untimed. Counters:
// algbw_GBps = S / t, busbw_GBps = algbw x the op's factor, per operation.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/backends/gloo/gloo_backend.hpp"
#include "engine/backends/tcp_store.hpp"
#include "engine/core/busbw.hpp"

extern char** environ;

namespace {

using namespace twinspeed;

constexpr int kWarmup = 1;

std::int64_t iterations_for(std::int64_t bytes) {
  return std::clamp<std::int64_t>((std::int64_t{256} << 20) / bytes, 4, 200);
}


// One rank's buffers for an op on `bytes` (nccl-tests' S) and the call.
struct Op {
  CollectiveKind kind;
  Buffer input, output;
  Op(comm::Backend& b, CollectiveKind k, std::int64_t bytes) : kind(k) {
    const int n = b.world_size();
    const std::int64_t whole = bytes / 4, chunk = whole / n;
    comm::Device& d = b.device();
    switch (k) {
      case CollectiveKind::all_reduce: input = d.allocate(DType::f32, whole, MemoryTag::temporaries); break;
      case CollectiveKind::reduce_scatter:
        input = d.allocate(DType::f32, chunk * n, MemoryTag::temporaries);
        output = d.allocate(DType::f32, chunk, MemoryTag::temporaries);
        break;
      default:
        input = d.allocate(DType::f32, chunk, MemoryTag::temporaries);
        output = d.allocate(DType::f32, chunk * n, MemoryTag::temporaries);
    }
    std::memset(input.data(), 0, static_cast<std::size_t>(input.bytes()));
  }
  void run(comm::Backend& b) {
    comm::Comm& world = *b.world();
    switch (kind) {
      case CollectiveKind::all_reduce: world.all_reduce(input.all())->wait(); break;
      case CollectiveKind::reduce_scatter: world.reduce_scatter(input.all(), output.all())->wait(); break;
      default: world.all_gather(input.all(), output.all())->wait();
    }
  }
};

std::unique_ptr<comm::Backend> start_rank(int rank, int world, int port) {
  backends::GlooOptions o;
  o.rank = rank;
  o.world_size = world;
  o.master_port = port;
  return backends::make_gloo_backend(o);
}

void run_ops(comm::Backend& b, CollectiveKind kind, std::int64_t bytes, std::int64_t count) {
  Op op(b, kind, bytes);
  for (std::int64_t i = 0; i < count; ++i) op.run(b);
}

int worker_main(char** argv) {
  const int rank = std::stoi(argv[2]), world = std::stoi(argv[3]), port = std::stoi(argv[4]);
  const auto kind = static_cast<CollectiveKind>(std::stoi(argv[5]));
  const std::int64_t bytes = std::stoll(argv[6]);
  auto backend = start_rank(rank, world, port);
  run_ops(*backend, kind, bytes, kWarmup + iterations_for(bytes));
  return 0;
}

void BM_Gloo(benchmark::State& state, CollectiveKind kind) {
  const int world = static_cast<int>(state.range(0));
  const std::int64_t bytes = state.range(1);
  const int port = backends::unused_loopback_port();
  std::vector<pid_t> workers;
  for (int r = 1; r < world; ++r) {
    std::vector<std::string> args = {"/proc/self/exe", "--gloo-worker", std::to_string(r), std::to_string(world),
                                     std::to_string(port), std::to_string(static_cast<int>(kind)),
                                     std::to_string(bytes)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) {
      state.SkipWithError("posix_spawn failed");
      return;
    }
    workers.push_back(pid);
  }
  {
    auto backend = start_rank(0, world, port);
    Op op(*backend, kind, bytes);
    for (int i = 0; i < kWarmup; ++i) op.run(*backend);
    for (auto _ : state) op.run(*backend);
  }
  for (pid_t pid : workers) waitpid(pid, nullptr, 0);
  // Per operation: kIsIterationInvariantRate multiplies by the iterations and divides by the time.
  const double size = static_cast<double>(bytes);
  state.counters["algbw_GBps"] = benchmark::Counter(size / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["busbw_GBps"] = benchmark::Counter(size * bus_bandwidth_factor(kind, world) / 1e9,
                                                    benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(state.iterations() * bytes);
}

void register_all() {
  for (auto [name, kind] : {std::pair{"all_reduce", CollectiveKind::all_reduce},
                            std::pair{"reduce_scatter", CollectiveKind::reduce_scatter},
                            std::pair{"all_gather", CollectiveKind::all_gather}}) {
    for (int world : {2, 4}) {
      for (std::int64_t bytes = 4 << 10; bytes <= (64 << 20); bytes *= 4) {
        benchmark::RegisterBenchmark(fmt::format("BM_Gloo/{}", name).c_str(), BM_Gloo, kind)
            ->Args({world, bytes})
            ->ArgNames({"ranks", "bytes"})
            ->Iterations(iterations_for(bytes))
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 7 && std::strcmp(argv[1], "--gloo-worker") == 0) return worker_main(argv);
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
