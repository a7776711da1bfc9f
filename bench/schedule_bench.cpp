// Generating every stage's instruction stream of DeepSpeed's pipeline schedules
// (engine/pipeline/schedule.hpp): the cost the pipeline engine and the planner pay per batch.
// Reported: time per batch's streams and instructions per second.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "engine/pipeline/schedule.hpp"

namespace {

using twinspeed::pipeline::ScheduleKind;

void generate_all_streams(benchmark::State& state, ScheduleKind kind) {
  const int stages = static_cast<int>(state.range(0));
  const int micro_batches = static_cast<int>(state.range(1));
  std::int64_t instructions = 0;
  for (auto _ : state) {
    for (const auto& schedule : twinspeed::pipeline::make_schedules(kind, micro_batches, stages)) {
      for (const auto& step : schedule->steps()) instructions += static_cast<std::int64_t>(step.size());
    }
    benchmark::DoNotOptimize(instructions);
  }
  state.counters["instructions"] =
      benchmark::Counter(static_cast<double>(instructions) / static_cast<double>(state.iterations()));
  state.counters["instructions_per_s"] =
      benchmark::Counter(static_cast<double>(instructions), benchmark::Counter::kIsRate);
}

void BM_TrainScheduleAllStages(benchmark::State& state) { generate_all_streams(state, ScheduleKind::Train); }
void BM_InferenceScheduleAllStages(benchmark::State& state) { generate_all_streams(state, ScheduleKind::Inference); }

BENCHMARK(BM_TrainScheduleAllStages)->Args({64, 512})->Args({8, 64})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_InferenceScheduleAllStages)->Args({64, 512})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
