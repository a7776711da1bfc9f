// `twinspeed plan` in-process, from parsed inputs (model preset, cluster preset) to the finished
// plan (make_plan: the collapsed shape-only runs, the breakdown, the figures; process start-up and
// printing excluded), on the two GPT-3 175B meshes, with the unextrapolated run as the
// baseline of the same binary. Peak RSS is reported as a counter (ru_maxrss of the process so far).
//
//   ./build/bench/plan_bench
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include "engine/model/spec/model_config.hpp"
#include "sim/planner/plan.hpp"
#include "sim/preset_costs.hpp"
#include "sim/presets/presets.hpp"

namespace {

using namespace twinspeed;

planner::PlanRequest gpt3_request(int world, bool extrapolate) {
  static const ModelConfig model = load_model_preset("gpt3-175b");
  planner::PlanRequest r{.model = &model,
                         .cluster = sim::cluster_for_world(sim::cluster_preset("dgx-a100-80gb"), world),
                         .world = world};
  r.options = {.tp = 8, .pp = 16, .zero_stage = 1, .micro_batch = 1, .global_batch = 1536};
  r.extrapolate = extrapolate;
  return r;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

void run(benchmark::State& state, int world, bool extrapolate) {
  const planner::PlanRequest request = gpt3_request(world, extrapolate);
  std::int64_t step_ns = 0;
  for (auto _ : state) {
    const planner::PlanResult plan = planner::make_plan(request);
    step_ns = plan.step_time_ns;
    benchmark::DoNotOptimize(step_ns);
  }
  state.counters["step_s"] = static_cast<double>(step_ns) * 1e-9;
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}

void BM_PlanGpt3On1024Gpus(benchmark::State& state) { run(state, 1024, true); }
void BM_PlanGpt3On4096Gpus(benchmark::State& state) { run(state, 4096, true); }
void BM_PlanGpt3On1024GpusWithoutExtrapolation(benchmark::State& state) { run(state, 1024, false); }

BENCHMARK(BM_PlanGpt3On1024Gpus)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlanGpt3On4096Gpus)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlanGpt3On1024GpusWithoutExtrapolation)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
