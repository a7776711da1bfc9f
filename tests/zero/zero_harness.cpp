#include "tests/zero/zero_harness.hpp"

#include "engine/config/config.hpp"
#include "engine/core/trace_chrome.hpp"
#include "engine/runtime/engine.hpp"
#include "sim/cluster.hpp"
#include "sim/cost_model.hpp"

namespace twinspeed::testing {

namespace {

class ToyCosts final : public sim::CostModel {
 public:
  std::int64_t compute_ns(int, const comm::ComputeCost& c) const override {
    return static_cast<std::int64_t>(c.flops) + (c.bytes_read + c.bytes_written) / 8;
  }
  std::int64_t collective_ns(comm::CollectiveOp, std::int64_t bytes, std::span<const int>) const override {
    return 500 + bytes / 4;
  }
  std::int64_t p2p_ns(std::int64_t bytes, int, int) const override { return 200 + bytes / 4; }
  std::int64_t host_copy_ns(int, std::int64_t bytes) const override { return 100 + bytes / 2; }
  std::int64_t host_compute_ns(int, const comm::ComputeCost& c) const override {
    return (c.bytes_read + c.bytes_written) / 4;
  }
};

}  // namespace

std::shared_ptr<sim::CostModel> toy_costs() { return std::make_shared<ToyCosts>(); }

nlohmann::json config_of(const RunSpec& spec) {
  nlohmann::json zero = {{"stage", spec.stage}};
  zero.update(spec.zero);
  nlohmann::json c = {{"train_micro_batch_size_per_gpu", spec.micro},
                      {"gradient_accumulation_steps", spec.gas},
                      {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 0.01}, {"weight_decay", 0.01}}}}},
                      {"zero_optimization", zero}};
  if (spec.precision == "bf16") c["bf16"] = {{"enabled", true}};
  if (spec.precision == "fp16") c["fp16"] = {{"enabled", true}, {"initial_scale_power", 8}};
  c.update(spec.config);
  return c;
}

void train_rank(const RunSpec& spec, const std::shared_ptr<comm::Backend>& backend, RunResult& out) {
  const Config config = Config::from_json(config_of(spec), {.world = spec.world});
  auto runner = std::make_shared<ToyRunner>(spec.model);
  for (const auto& [rank, micro, layer, index] : spec.overflows) runner->inject_overflow(rank, micro, layer, index);
  Engine engine({.backend = backend,
                 .settings = engine_settings_from(config),
                 .runner = runner,
                 .param_groups = spec.param_groups});
  const int r = backend->rank();
  out.memory_after_init.resize(static_cast<std::size_t>(spec.world));
  out.memory_after_run.resize(static_cast<std::size_t>(spec.world));
  out.memory_after_init[static_cast<std::size_t>(r)] = backend->device().memory();
  const std::int64_t in = spec.model.widths.front(), outs = spec.model.widths.back();
  for (int s = 0; s < spec.steps; ++s) {
    for (std::int64_t m = 0; m < spec.gas; ++m) {
      const std::int64_t data_step = static_cast<std::int64_t>(s) + spec.first_data_step;
      const std::int64_t first = ((data_step * spec.world + r) * spec.gas + m) * spec.micro;
      auto [x, t] = toy_batch(first, spec.micro, in, outs);
      Activation loss = engine.forward(x, t);
      if (r == 0) out.losses.push_back(engine.loss_value(loss));
      engine.backward(loss);
      engine.step();
    }
    std::vector<float> p = engine.full_parameters();  // collective under ZeRO-3
    if (r == 0) {
      out.params_per_step.push_back(p);
      out.loss_scales.push_back(engine.loss_scale());
      out.skipped.push_back(engine.last_step_skipped());
      out.lrs.push_back(engine.get_lr().at(0));
      out.grad_norms.push_back(engine.last_gradient_norm());
    }
  }
  if (r == 0) {
    out.params = engine.full_parameters();
    std::vector<std::int64_t> numels;
    for (const auto& p : engine.model_layout().params) numels.push_back(p.numel);
    out.numels = {numels};
  } else {
    engine.full_parameters();
  }
  out.memory_after_run[static_cast<std::size_t>(r)] = backend->device().memory();
  out.host_after_run.resize(static_cast<std::size_t>(spec.world));
  out.host_after_run[static_cast<std::size_t>(r)] = backend->host().memory();
  // The host memory is the node's: no rank may destroy its engine (returning its host bytes)
  // before the node's other ranks have read it.
  backend->world()->barrier()->wait();
}

RunResult run(const RunSpec& spec) {
  RunResult out;
  sim::SimCluster cluster(
      {.world = spec.world, .capacity_bytes = spec.capacity_bytes, .ranks_per_node = spec.ranks_per_node,
       .costs = toy_costs()});
  out.memory_after_init.resize(static_cast<std::size_t>(spec.world));
  out.memory_after_run.resize(static_cast<std::size_t>(spec.world));
  cluster.run([&](comm::Backend& backend) {
    train_rank(spec, std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}), out);
  });
  out.trace = write_chrome_trace(cluster.trace_document());
  out.events = cluster.tracer(0).events();
  return out;
}

}  // namespace twinspeed::testing
