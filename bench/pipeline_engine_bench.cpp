// The pipeline engine in shape-only simulation: a 126-layer GPT (1.6B parameters) on 64 stages of
// a DGX H100 cluster, one batch of 512 micro-batches through DeepSpeed's 1F1B (TrainSchedule),
// every rank simulated. Baseline in the same run: the same model unpipelined on one rank for the
// same 512 micro-batches (the plain engine's forward / backward / step), so the figure reads as the
// cost of 64 ranks' instruction streams and p2p over one rank's compute walk.
#include <benchmark/benchmark.h>

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/comm/registry.hpp"
#include "engine/config/config.hpp"
#include "engine/model/spec/model_config.hpp"
#include "engine/model/spec/spec_layer_runner.hpp"
#include "engine/runtime/engine.hpp"
#include "engine/runtime/pipeline_engine.hpp"
#include "sim/cluster.hpp"
#include "sim/preset_costs.hpp"
#include "sim/presets/cluster_file.hpp"

namespace {

using namespace twinspeed;

constexpr int kMicroBatches = 512;

ModelConfig model() {
  return parse_hf_config({{"model_type", "gpt2"}, {"n_embd", 1024}, {"n_head", 16}, {"n_layer", 126},
                          {"n_positions", 1024}, {"vocab_size", 50257}, {"tie_word_embeddings", true}},
                         "pipeline_engine_bench");
}

Config config(int world, int stages) {
  return Config::from_json({{"train_micro_batch_size_per_gpu", 1},
                            {"gradient_accumulation_steps", kMicroBatches},
                            {"bf16", {{"enabled", true}}},
                            {"zero_optimization", {{"stage", 1}}},
                            {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 1e-4}}}}},
                            {"pipeline", {{"partition", "uniform"}}}},
                           {.world = world, .pp = stages});
}

void run(benchmark::State& state, int stages) {
  const ModelConfig m = model();
  const Config c = config(stages, stages);
  const SpecRunnerOptions spec{.spec = {.micro_batch = 1, .seq_len = 1024, .dtype_bytes = 2}, .dtype = DType::bf16};
  const sim::ClusterSpec cluster = sim::resolve_cluster("dgx-h100");
  for (auto _ : state) {
    sim::SimCluster sim_cluster(sim::cluster_options(cluster, stages, sim::Fidelity::shape, DType::bf16));
    sim_cluster.run([&](comm::Backend&) {
      std::shared_ptr<comm::Backend> backend = comm::create_backend("sim", {});
      auto runner = std::make_shared<SpecLayerRunner>(m, spec);
      const SpecLayerRunner::MicroBatch batch = runner->micro_batch();
      if (stages == 1) {
        Engine engine({.backend = backend, .settings = engine_settings_from(c), .runner = runner});
        for (int k = 0; k < kMicroBatches; ++k) {
          engine.backward(engine.forward(batch.inputs, batch.labels));
          engine.step();
        }
        return;
      }
      PipelineEngine engine({.backend = backend, .settings = engine_settings_from(c),
                             .module = {.model = runner, .partition_method = "uniform"}});
      engine.train_batch([&] { return MicroBatch{batch.inputs, batch.labels}; });
    });
  }
  state.counters["ranks"] = stages;
  state.counters["micro_batches"] = kMicroBatches;
}

void BM_Unpipelined1Rank(benchmark::State& state) { run(state, 1); }
void BM_Pipeline64Stages1F1B(benchmark::State& state) { run(state, 64); }

BENCHMARK(BM_Unpipelined1Rank)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Pipeline64Stages1F1B)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
