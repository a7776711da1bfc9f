// How fast the simulated cluster simulates (DESIGN.md "The simulated cluster"):
//  - shape-only: simulated collectives per second and scheduler hand-offs per second at 8, 64 and
//    1,024 ranks, with ranks on OS threads and on fibers;
//  - numeric: bytes per second of an in-memory all-reduce, next to a plain memcpy of the same
//    bytes (the simulator snapshots, checksums, reduces and delivers; memcpy is the floor);
//  - symmetric-rank collapse: a shape-only training step of gpt2-small on 256 ranks (tp 4 x pp 4 x
//    dp 16), collapsed and with every rank simulated.
// Every iteration builds a fresh cluster (a cluster runs one program); BM_ClusterStartup measures
// that fixed cost on its own. Times are wall-clock: the ranks run on other threads.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/config/config.hpp"
#include "engine/core/busbw.hpp"
#include "engine/model/spec/model_config.hpp"
#include "sim/cluster.hpp"
#include "sim/planner/simulation.hpp"
#include "sim/presets/presets.hpp"

namespace {

using namespace twinspeed;

sim::RankExecution execution_of(const benchmark::State& state) {
  return state.range(1) == 0 ? sim::RankExecution::threads : sim::RankExecution::fibers;
}

void label(benchmark::State& state) {
  state.SetLabel(state.range(1) == 0 ? "threads" : "fibers");
}

// Enough collectives that the cluster's start-up is a small part of each iteration.
int collectives_for(int world) { return std::max(8, 32768 / world); }

void BM_ClusterStartup(benchmark::State& state) {
  const auto world = static_cast<int>(state.range(0));
  for (auto _ : state) {
    sim::SimCluster cluster({.world = world, .fidelity = sim::Fidelity::shape, .execution = execution_of(state)});
    cluster.run([](comm::Backend&) {});
  }
  state.counters["ranks/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * world,
                                                 benchmark::Counter::kIsRate);
  label(state);
}

// Every rank all-reduces a 1 KiB gradient buffer (no data: shape-only) over the world, waiting
// for each before the next. Small on purpose: until the simulator stops copying shape-only
// inputs and freeing nothing (tests/sim/memory_test.cpp, SimHostMemory.DISABLED_*), its host
// memory grows by the logical bytes of every collective.
void BM_ShapeCollectives(benchmark::State& state) {
  const auto world = static_cast<int>(state.range(0));
  const int collectives = collectives_for(world);
  for (auto _ : state) {
    sim::SimCluster cluster({.world = world, .fidelity = sim::Fidelity::shape, .execution = execution_of(state)});
    cluster.run([&](comm::Backend& backend) {
      Buffer grads = backend.device().allocate(DType::f32, 256, MemoryTag::grads);
      for (int i = 0; i < collectives; ++i) backend.world()->all_reduce(grads.all())->wait();
    });
  }
  const double done = static_cast<double>(state.iterations()) * collectives;
  state.counters["collectives/s"] = benchmark::Counter(done, benchmark::Counter::kIsRate);
  state.counters["rank_collectives/s"] = benchmark::Counter(done * world, benchmark::Counter::kIsRate);
  label(state);
}

// World barriers back to back: almost every wait blocks and hands the baton on, so this is the
// scheduler's hand-off rate. Hand-offs are counted exactly: a wait on an unfinished Work blocks.
void BM_SchedulerHandoffs(benchmark::State& state) {
  const auto world = static_cast<int>(state.range(0));
  const int barriers = collectives_for(world);
  std::int64_t handoffs = 0;
  for (auto _ : state) {
    sim::SimCluster cluster({.world = world, .fidelity = sim::Fidelity::shape, .execution = execution_of(state)});
    std::vector<std::int64_t> blocked(static_cast<std::size_t>(world), 0);
    cluster.run([&](comm::Backend& backend) {
      for (int i = 0; i < barriers; ++i) {
        comm::WorkPtr work = backend.world()->barrier();
        blocked[static_cast<std::size_t>(backend.rank())] += work->is_completed() ? 0 : 1;
        work->wait();
      }
    });
    for (std::int64_t b : blocked) handoffs += b;
  }
  state.counters["handoffs/s"] = benchmark::Counter(static_cast<double>(handoffs), benchmark::Counter::kIsRate);
  state.counters["handoffs_per_barrier"] =
      static_cast<double>(handoffs) / (static_cast<double>(state.iterations()) * barriers);
  label(state);
}

constexpr int kNumericRepeats = 4;

// Numeric all-reduce of `bytes` per rank over `world` ranks (threads). Bytes counted: every rank's
// input, world x bytes per all-reduce; only the all-reduces are timed, not the set-up.
void BM_NumericAllReduce(benchmark::State& state) {
  const auto world = static_cast<int>(state.range(0));
  const std::int64_t bytes = state.range(1);
  double timed_seconds = 0;
  for (auto _ : state) {
    sim::SimCluster cluster({.world = world, .fidelity = sim::Fidelity::numeric});
    using Clock = std::chrono::steady_clock;
    Clock::time_point start{}, end{};
    cluster.run([&](comm::Backend& backend) {
      Buffer x = backend.device().allocate(DType::f32, bytes / 4, MemoryTag::grads);
      for (std::int64_t i = 0; i < x.numel(); ++i) x.data_as<float>()[i] = static_cast<float>(i % 7);
      backend.world()->barrier()->wait();
      // One rank runs at a time: the first past the barrier starts the clock, the last to finish
      // stops it.
      if (start == Clock::time_point{}) start = Clock::now();
      for (int i = 0; i < kNumericRepeats; ++i) backend.world()->all_reduce(x.all())->wait();
      end = Clock::now();
    });
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
    timed_seconds += std::chrono::duration<double>(end - start).count();
  }
  state.SetBytesProcessed(state.iterations() * kNumericRepeats * world * bytes);
  // nccl-tests' figures, from the one busbw table (engine/core/busbw.hpp): per all-reduce of
  // `bytes`, algbw = bytes / time and busbw = algbw x 2(n-1)/n.
  const double seconds_per_op = timed_seconds / static_cast<double>(state.iterations() * kNumericRepeats);
  state.counters["algbw_GBps"] = algorithm_bandwidth(static_cast<double>(bytes), seconds_per_op) / 1e9;
  state.counters["busbw_GBps"] =
      bus_bandwidth(CollectiveKind::all_reduce, world, static_cast<double>(bytes), seconds_per_op) / 1e9;
}

// The floor for the same bytes: one memcpy of world x bytes per all-reduce.
void BM_Memcpy(benchmark::State& state) {
  const auto total = static_cast<std::size_t>(state.range(0) * state.range(1));
  std::vector<char> src(total, 1), dst(total, 0);
  for (auto _ : state) {
    for (int i = 0; i < kNumericRepeats; ++i) {
      std::memcpy(dst.data(), src.data(), total);
      benchmark::ClobberMemory();
    }
  }
  benchmark::DoNotOptimize(dst.data());
  state.SetBytesProcessed(state.iterations() * kNumericRepeats * static_cast<std::int64_t>(total));
}

// One optimizer step (8 micro-batches through 1F1B) of gpt2-small in bf16 on 256 ranks of DGX
// H100 nodes, tp 4 x pp 4 x dp 16, at ZeRO stage range(0), collapsed (range(1) == 0: 4 simulated
// ranks, one per pipeline stage) or with every rank (range(1) == 1).
// ranks/s counts the world's ranks, simulated or represented.
void BM_CollapsedShapeRun(benchmark::State& state) {
  constexpr int kWorld = 256;
  const auto stage = static_cast<int>(state.range(0));
  const bool all_ranks = state.range(1) != 0;
  const ModelConfig model = load_model_preset("gpt2-small");
  const Config config = Config::from_json({{"train_micro_batch_size_per_gpu", 1},
                                           {"gradient_accumulation_steps", 8},
                                           {"bf16", {{"enabled", true}}},
                                           {"zero_optimization", {{"stage", stage}}},
                                           {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 1e-4}}}}}},
                                          {.world = kWorld, .tp = 4, .pp = 4});
  std::size_t simulated = 0;
  for (auto _ : state) {
    const planner::SimulateResult result = planner::run_simulation({.config = &config,
                                                                    .model = &model,
                                                                    .cluster = sim::cluster_preset("dgx-h100"),
                                                                    .steps = 1,
                                                                    .seq_len = 1024,
                                                                    .fidelity = sim::Fidelity::shape,
                                                                    .make_model = planner::make_shape_rank_model,
                                                                    .all_ranks = all_ranks});
    simulated = result.simulated_ranks.size();
    benchmark::DoNotOptimize(result.total_time_ns);
  }
  state.counters["ranks/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * kWorld,
                                                 benchmark::Counter::kIsRate);
  state.counters["simulated_ranks"] = static_cast<double>(simulated);
  state.SetLabel(all_ranks ? "all ranks" : "collapsed");
}

void shape_sizes(benchmark::internal::Benchmark* b) {
  for (int world : {8, 64, 1024}) {
    for (int fibers : {0, 1}) b->Args({world, fibers});
  }
  b->ArgNames({"ranks", "fibers"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

void numeric_sizes(benchmark::internal::Benchmark* b) {
  for (int world : {2, 8}) {
    for (std::int64_t bytes : {1 << 20, 8 << 20}) b->Args({world, bytes});
  }
  b->ArgNames({"ranks", "bytes"})->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_ClusterStartup)->Apply(shape_sizes);
BENCHMARK(BM_ShapeCollectives)->Apply(shape_sizes);
BENCHMARK(BM_SchedulerHandoffs)->Apply(shape_sizes);
BENCHMARK(BM_NumericAllReduce)->Apply(numeric_sizes)->UseManualTime();
BENCHMARK(BM_Memcpy)->Apply(numeric_sizes)->UseRealTime();
BENCHMARK(BM_CollapsedShapeRun)
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->ArgNames({"zero", "all_ranks"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
