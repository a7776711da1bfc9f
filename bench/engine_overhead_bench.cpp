// What the simulated cluster costs over plain LibTorch training, in the same run, at the same
// thread count (issue: numeric overhead at most 1.25x; host memory within 1.5x of what the
// simulation accounts for).
//
//   build/bench/engine_overhead_bench --benchmark_counters_tabular=true
//
//   BM_PlainLoop/<threads>       8 sequential iterations of whole-model forward + causal-LM loss +
//                                backward + torch::optim::Adam on gpt-bench (6 layers, hidden 512,
//                                8 heads, vocab 8192), micro-batch 4, seq 256, fp32, dropout on. The
//                                model and optimizer are built (and warmed by one step) untimed.
//   BM_SimulatedZero2/<threads>  one optimizer step (gradient accumulation 1) of the Engine with
//                                ZeRO-2 fp32 AdamW on 8 simulated ranks in numeric fidelity, each
//                                rank running the model zoo's runner: everything is timed (cluster,
//                                8 model builds, 8 engines, the step). Counter x_plain = its time /
//                                BM_PlainLoop's mean time at the same thread count in this run.
//   BM_GlooEngine/<threads>      the Engine training for real in this process on the Gloo backend
//                                (world 1): 8 optimizer steps (one micro-batch each) of the same
//                                config and runner, built and warmed untimed; x_plain as above.
//   BM_SimulatedZero2Setup/1     the same without the step (cluster, models, engines): what of the
//                                above is setup.
//   BM_SimulationHostMemory      peak RSS of a child process running BM_SimulatedZero2's work minus
//                                the peak RSS of a child that only loaded LibTorch (rss_growth),
//                                against device_peak (sum over ranks of each device's peak bytes,
//                                all tags) + torch_peak (LibTorch's peak live bytes, every rank,
//                                from CountingCpuAllocator). x_accounted = rss_growth / that sum.
//                                held_peak is device_peak without the activation bytes the runner
//                                charges (LibTorch holds those, torch_peak counts them):
//                                x_held = rss_growth / (held_peak + torch_peak), the stricter ratio.
// Threads: LibTorch intra-op threads are set on every rank's thread, OpenBLAS's process-wide.

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "bench/torch_bench_support.hpp"
#include "engine/comm/registry.hpp"
#include "engine/config/config.hpp"
#include "engine/core/errors.hpp"
#include "engine/model/torch_counting_allocator.hpp"
#include "engine/runtime/engine.hpp"
#include "engine/runtime/engine_settings.hpp"
#include "sim/cluster.hpp"
#include "sim/scheduler.hpp"

namespace twinspeed {
namespace {

using bench::use_threads;

constexpr int kWorld = 8;
constexpr std::int64_t kMicroBatch = 4;
constexpr std::int64_t kDatasetSize = 1024;
constexpr std::string_view kProbeFlag = "--memory-probe=";

struct Workload {
  ModelConfig model = load_model_preset("gpt-bench");
  std::int64_t seq = default_seq_len(model);
  SyntheticTokenDataset data{kDatasetSize, seq, model.vocab_size, 1};
};
const Workload& workload() {
  static const Workload w;
  return w;
}

// configs/zero2_fp32.json with one micro-step per optimizer step.
nlohmann::json zero2_fp32_config() {
  return {{"train_micro_batch_size_per_gpu", kMicroBatch},
          {"gradient_accumulation_steps", 1},
          {"gradient_clipping", 1.0},
          {"optimizer",
           {{"type", "AdamW"}, {"params", {{"lr", 3e-4}, {"betas", {0.9, 0.95}}, {"eps", 1e-8}, {"weight_decay", 0.1}}}}},
          {"scheduler",
           {{"type", "WarmupDecayLR"},
            {"params",
             {{"warmup_min_lr", 0}, {"warmup_max_lr", 3e-4}, {"warmup_num_steps", 1000}, {"total_num_steps", 100000}}}}},
          {"zero_optimization",
           {{"stage", 2},
            {"reduce_bucket_size", 500000000},
            {"allgather_bucket_size", 500000000},
            {"overlap_comm", true},
            {"contiguous_gradients", true},
            {"reduce_scatter", true}}}};
}

struct Simulated {
  std::int64_t device_peak = 0;  // sum over ranks of total_peak_bytes
  std::int64_t held_peak = 0;    // the same without the charged activation bytes
  int rank_threads = 0;          // at::get_num_threads() on a rank's thread
};

// Builds a cluster of kWorld ranks, each with its zoo runner and Engine, and runs `steps`
// optimizer steps (0: setup only).
Simulated simulate(int threads, int steps) {
  const Workload& w = workload();
  const EngineSettings settings = engine_settings_from(Config::from_json(zero2_fp32_config(), {.world = kWorld}));
  sim::SimCluster cluster({.world = kWorld});
  Simulated out;
  cluster.run([&](comm::Backend& backend) {
    use_threads(threads);
    if (backend.rank() == 0) out.rank_threads = at::get_num_threads();
    auto runner = make_torch_model_runner(
        w.model, {.spec = {.micro_batch = kMicroBatch, .seq_len = w.seq, .dtype_bytes = 4}, .dropout_seed = 1234});
    Engine engine(EngineParts{.backend = std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}),
                              .settings = settings,
                              .runner = runner});
    for (int step = 0; step < steps; ++step) {
      const Batch b = w.data.micro_batch(step, backend.rank(), kWorld, kMicroBatch);
      Activation loss = engine.forward(wrap_tensor(b.inputs), wrap_tensor(b.labels));
      engine.backward(loss);
      engine.step();
    }
  });
  for (int r = 0; r < kWorld; ++r) {
    const comm::MemoryStats m = cluster.memory(r);
    out.device_peak += m.total_peak_bytes;
    out.held_peak += m.total_peak_bytes - m.at_peak(MemoryTag::activations);
  }
  return out;
}

// The plain baseline's mean seconds per iteration, by thread count, for x_plain.
std::map<int, std::pair<double, int>>& plain_seconds() {
  static std::map<int, std::pair<double, int>> seconds;
  return seconds;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void BM_PlainLoop(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  use_threads(threads);
  const Workload& w = workload();
  Model model = build_torch_model(w.model);
  std::vector<torch::Tensor> params;
  std::unordered_set<const c10::TensorImpl*> seen;  // a tied weight is one parameter
  for (auto& layer : model.layers) {
    for (const auto& p : layer.module.ptr()->parameters()) {
      if (seen.insert(p.unsafeGetTensorImpl()).second) params.push_back(p);
    }
  }
  torch::optim::Adam adam(params, torch::optim::AdamOptions(3e-4).betas({0.9, 0.95}).eps(1e-8));
  auto iteration = [&](std::int64_t i) {
    adam.zero_grad();
    const double loss = bench::whole_step(model, w.data.micro_batch(i, 0, 1, kMicroBatch));
    adam.step();
    return loss;
  };
  benchmark::DoNotOptimize(iteration(0));  // warm-up: gradient tensors, Adam state, allocator
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kWorld; ++i) benchmark::DoNotOptimize(iteration(i));
    const double s = seconds_since(start);
    state.SetIterationTime(s);
    auto& [sum, count] = plain_seconds()[threads];
    sum += s;
    ++count;
  }
  state.counters["threads"] = static_cast<double>(at::get_num_threads());
}

void simulated(benchmark::State& state, int steps) {
  const int threads = static_cast<int>(state.range(0));
  use_threads(threads);
  workload();  // the preset and dataset are the program's input, not the simulation's work
  double total = 0;
  Simulated last;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    last = simulate(threads, steps);
    const double s = seconds_since(start);
    state.SetIterationTime(s);
    total += s;
  }
  state.counters["threads"] = static_cast<double>(last.rank_threads);
  auto it = plain_seconds().find(threads);
  if (steps > 0 && it != plain_seconds().end() && it->second.second > 0) {
    state.counters["x_plain"] = total / static_cast<double>(state.iterations()) /
                                (it->second.first / static_cast<double>(it->second.second));
  }
}

void BM_SimulatedZero2(benchmark::State& state) { simulated(state, 1); }

// One process training for real on the Gloo backend (world 1, issue 8's engine overhead): the
// Engine with the same config and zoo runner, 8 optimizer steps per iteration as BM_PlainLoop's 8
// iterations, built and warmed by one step untimed. x_plain = its time / BM_PlainLoop's.
void BM_GlooEngine(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  use_threads(threads);
  const Workload& w = workload();
  std::shared_ptr<comm::Backend> backend;
  try {
    const nlohmann::json settings = {{"master_port", 20000 + getpid() % 20000}};
    backend = comm::create_backend("gloo", {.rank = 0, .world_size = 1, .settings_json = settings.dump()});
  } catch (const Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  const EngineSettings settings = engine_settings_from(Config::from_json(zero2_fp32_config(), {.world = 1}));
  auto runner = make_torch_model_runner(
      w.model, {.spec = {.micro_batch = kMicroBatch, .seq_len = w.seq, .dtype_bytes = 4}, .dropout_seed = 1234});
  Engine engine(EngineParts{.backend = backend, .settings = settings, .runner = runner});
  auto iteration = [&](std::int64_t i) {
    const Batch b = w.data.micro_batch(i, 0, 1, kMicroBatch);
    Activation loss = engine.forward(wrap_tensor(b.inputs), wrap_tensor(b.labels));
    engine.backward(loss);
    engine.step();
  };
  iteration(0);
  double total = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kWorld; ++i) iteration(i);
    const double s = seconds_since(start);
    state.SetIterationTime(s);
    total += s;
  }
  state.counters["threads"] = static_cast<double>(at::get_num_threads());
  auto it = plain_seconds().find(threads);
  if (it != plain_seconds().end() && it->second.second > 0) {
    state.counters["x_plain"] = total / static_cast<double>(state.iterations()) /
                                (it->second.first / static_cast<double>(it->second.second));
  }
}
void BM_SimulatedZero2Setup(benchmark::State& state) { simulated(state, 0); }

// --- host memory, measured in child processes -------------------------------------------------

std::int64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:  123 kB"
  }
  return -1;
}

// The child's side: prints "<peak rss> <device peak> <held peak> <torch peak>" on stdout.
int memory_probe(std::string_view what) {
  use_threads(1);
  benchmark::DoNotOptimize(torch::ones({8}).sum().item<float>());  // LibTorch loaded and initialised
  Simulated sim;
  std::int64_t torch_peak = 0;
  if (what == "simulation") {
    CountingCpuAllocator counting;
    sim = simulate(1, 1);
    torch_peak = CountingCpuAllocator::peak();
  } else if (what != "empty") {
    std::fprintf(stderr, "unknown memory probe '%.*s' (simulation or empty)\n", static_cast<int>(what.size()), what.data());
    return 2;
  }
  std::printf("%lld %lld %lld %lld\n", static_cast<long long>(peak_rss_bytes()), static_cast<long long>(sim.device_peak),
              static_cast<long long>(sim.held_peak), static_cast<long long>(torch_peak));
  return 0;
}

// Runs this program as a memory probe child and returns its four numbers (all -1 on failure).
std::array<std::int64_t, 4> run_probe(std::string_view what) {
  std::array<std::int64_t, 4> out{-1, -1, -1, -1};
  std::array<char, 4096> self{};
  const ssize_t n = readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (n <= 0) return out;
  const std::string command =
      fmt::format("'{}' {}{}", std::string_view(self.data(), static_cast<std::size_t>(n)), kProbeFlag, what);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return out;
  long long v[4];
  if (std::fscanf(pipe.get(), "%lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3]) == 4) {
    for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = v[i];
  }
  return out;
}

void BM_SimulationHostMemory(benchmark::State& state) {
  std::array<std::int64_t, 4> sim{}, empty{};
  for (auto _ : state) {
    empty = run_probe("empty");
    sim = run_probe("simulation");
  }
  if (sim[0] < 0 || empty[0] < 0) {
    state.SkipWithError("a memory probe child failed");
    return;
  }
  const double growth = static_cast<double>(sim[0] - empty[0]);
  const double device = static_cast<double>(sim[1]), held = static_cast<double>(sim[2]);
  const double torch_peak = static_cast<double>(sim[3]);
  auto bytes = [](double b) { return benchmark::Counter(b, benchmark::Counter::kDefaults, benchmark::Counter::kIs1024); };
  state.counters["rss_growth"] = bytes(growth);
  state.counters["device_peak"] = bytes(device);
  state.counters["held_peak"] = bytes(held);
  state.counters["torch_peak"] = bytes(torch_peak);
  state.counters["x_accounted"] = growth / (device + torch_peak);
  state.counters["x_held"] = growth / (held + torch_peak);
}

BENCHMARK(BM_PlainLoop)->Arg(1)->Arg(2)->Iterations(3)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK(BM_SimulatedZero2)->Arg(1)->Arg(2)->Iterations(3)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK(BM_GlooEngine)->Arg(1)->Arg(2)->Iterations(3)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK(BM_SimulatedZero2Setup)->Arg(1)->Iterations(2)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK(BM_SimulationHostMemory)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace twinspeed

int main(int argc, char** argv) {
  // Before LibTorch's or OpenBLAS's worker threads allocate: every thread, simulated ranks
  // included, shares one malloc arena (what the simulator asks of a program that runs it).
  twinspeed::sim::share_one_malloc_arena();
  if (argc == 2 && std::string_view(argv[1]).starts_with(twinspeed::kProbeFlag)) {
    return twinspeed::memory_probe(std::string_view(argv[1]).substr(twinspeed::kProbeFlag.size()));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
