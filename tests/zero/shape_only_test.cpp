// Shape-only fidelity: the engine at every ZeRO stage on 8 simulated ranks with the SpecLayerRunner.
// This test binary does not link LibTorch, so these runs cannot create a LibTorch tensor.

#include <gtest/gtest.h>

#include "engine/config/config.hpp"
#include "engine/core/errors.hpp"
#include "engine/core/zero_memory.hpp"
#include "engine/model/spec/model_config.hpp"
#include "engine/model/spec/spec_layer_runner.hpp"
#include "engine/runtime/engine.hpp"
#include "sim/cluster.hpp"
#include "sim/preset_costs.hpp"
#include "sim/presets/presets.hpp"
#include "sim/sim_device.hpp"

namespace twinspeed {
namespace {

struct ShapeRun {
  std::vector<comm::MemoryStats> after_step;  // per rank, after the last step
  std::vector<std::int64_t> step_end_ns;      // rank 0's compute clock after each step
  std::vector<std::vector<std::int64_t>> numels;
};

ShapeRun run_shape(const ModelConfig& model, int stage, const std::string& precision, int world, int steps,
                   std::int64_t capacity = 0) {
  nlohmann::json config = {{"train_micro_batch_size_per_gpu", 2},
                           {"gradient_accumulation_steps", 2},
                           {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 1e-4}}}}},
                           {"zero_optimization", {{"stage", stage}, {"reduce_bucket_size", 2'000'000},
                                                  {"overlap_comm", true},
                                                  {"stage3_param_persistence_threshold", 0}}}};
  if (precision != "fp32") config[precision] = {{"enabled", true}};
  const DType dtype = precision == "fp32" ? DType::f32 : precision == "bf16" ? DType::bf16 : DType::f16;
  const Config resolved = Config::from_json(config, {.world = world});
  sim::ClusterOptions options =
      sim::cluster_options(sim::cluster_for_world(sim::cluster_preset("dgx-h100"), world), world, sim::Fidelity::shape, dtype);
  if (capacity > 0) options.capacity_bytes = capacity;
  options.reserved_bytes = 0;
  sim::SimCluster cluster(options);
  ShapeRun out;
  out.after_step.resize(static_cast<std::size_t>(world));
  cluster.run([&](comm::Backend& backend) {
    auto runner = std::make_shared<SpecLayerRunner>(
        model, SpecRunnerOptions{.spec = {.micro_batch = 2, .seq_len = 128}, .dtype = dtype});
    Engine engine({.backend = std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}),
                   .settings = engine_settings_from(resolved),
                   .runner = runner});
    auto* device = dynamic_cast<sim::SimDevice*>(&backend.device());
    for (int s = 0; s < steps; ++s) {
      for (int m = 0; m < 2; ++m) {
        auto batch = runner->micro_batch();
        Activation loss = engine.forward(batch.inputs, batch.labels);
        engine.backward(loss);
        engine.step();
      }
      if (backend.rank() == 0) out.step_end_ns.push_back(device->compute().clock_ns());
    }
    out.after_step[static_cast<std::size_t>(backend.rank())] = backend.device().memory();
    if (backend.rank() == 0) {
      std::vector<std::int64_t> numels;
      for (const auto& p : engine.model_layout().params) numels.push_back(p.numel);
      out.numels = {numels};
    }
  });
  return out;
}

TEST(ShapeOnly, StagesZeroToThreeOnEightRanksHoldTheZeroFormulaPerTagWithoutLibTorch) {
  const ModelConfig model = load_model_preset("gpt-bench");
  for (int stage = 0; stage <= 3; ++stage) {
    for (const char* precision : {"fp32", "bf16"}) {
      const ShapeRun run = run_shape(model, stage, precision, 8, 3);
      const DType dtype = std::string(precision) == "fp32" ? DType::f32 : DType::bf16;
      const ZeroRankBytes expected =
          zero_memory_per_rank(run.numels, {.stage = stage, .world = 8, .param_dtype = dtype, .grad_dtype = dtype}, 0);
      for (const auto& m : run.after_step) {
        for (MemoryTag tag : {MemoryTag::params, MemoryTag::grads, MemoryTag::master_params, MemoryTag::optimizer_states}) {
          EXPECT_EQ(m.current(tag), expected.bytes(tag)) << "stage " << stage << " " << precision << " " << memory_tag_name(tag);
        }
        // Activations are charged in forward and returned in backward.
        EXPECT_GT(m.peak(MemoryTag::activations), 0);
        EXPECT_EQ(m.current(MemoryTag::activations), 0);
      }
      // Steps after the first take the same virtual time: nothing is left over between steps.
      ASSERT_EQ(run.step_end_ns.size(), 3u);
      EXPECT_GT(run.step_end_ns[0], 0);
      EXPECT_EQ(run.step_end_ns[2] - run.step_end_ns[1], run.step_end_ns[1] - run.step_end_ns[0]);
    }
  }
}

TEST(ShapeOnly, AModelThatDoesNotFitAtStageZeroFailsWithTheBreakdownAndFitsAtStageThree) {
  const ModelConfig model = load_model_preset("gpt2-small");
  // gpt2-small (124M parameters) in bf16 with AdamW needs ~16 bytes per parameter at stage 0
  // (~2 GB); a 1 GiB device holds it only partitioned.
  constexpr std::int64_t kCapacity = 1LL << 30;
  try {
    run_shape(model, 0, "bf16", 8, 1, kCapacity);
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.context().capacity_bytes, kCapacity);
    EXPECT_NE(e.details().find("params"), std::string::npos) << e.details();
  }
  EXPECT_NO_THROW(run_shape(model, 3, "bf16", 8, 1, kCapacity));
}

}  // namespace
}  // namespace twinspeed
