// PipelineEngine on the simulated cluster with the LibTorch-free toy model: S stages x D
// data-parallel ranks reach the parameters of the unpipelined run (tied weights included), the
// trace shows every instruction, and DeepSpeed's errors.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/config/config.hpp"
#include "engine/core/errors.hpp"
#include "engine/runtime/engine.hpp"
#include "engine/runtime/pipeline_engine.hpp"
#include "sim/cluster.hpp"
#include "tests/zero/toy_runner.hpp"
#include "tests/zero/zero_harness.hpp"

namespace twinspeed {
namespace {

using testing::ToyModel;
using testing::ToyRunner;


struct Case {
  int stages = 2;
  int dp = 1;
  int zero = 0;
  std::int64_t micro = 2;
  std::int64_t gas = 3;
  int steps = 2;
  double clipping = 0.0;
  std::string partition = "uniform";
  ToyModel model;
};

nlohmann::json config_json(const Case& c) {
  return {{"train_micro_batch_size_per_gpu", c.micro},
          {"gradient_accumulation_steps", c.gas},
          {"gradient_clipping", c.clipping},
          {"optimizer", {{"type", "AdamW"}, {"params", {{"lr", 0.01}, {"weight_decay", 0.01}}}}},
          {"zero_optimization", {{"stage", c.zero}}}};
}

// The toy batch of data-parallel rank d, micro-batch m of step s: the same samples in both runs.
std::pair<Activation, Activation> batch_of(const Case& c, int s, int d, std::int64_t m) {
  const std::int64_t first = ((static_cast<std::int64_t>(s) * c.dp + d) * c.gas + m) * c.micro;
  return testing::toy_batch(first, c.micro, c.model.widths.front(), c.model.widths.back());
}

struct Outcome {
  std::vector<float> params;   // whole model, runner order
  std::vector<double> losses;  // per step: the mean loss over micro-batches and dp ranks
};

// The unpipelined reference: D ranks, plain Engine.
Outcome reference(const Case& c) {
  Outcome out;
  const Config config = Config::from_json(config_json(c), {.world = c.dp});
  sim::SimCluster cluster({.world = c.dp, .costs = testing::toy_costs()});
  std::vector<double> sums(static_cast<std::size_t>(c.steps), 0.0);
  std::vector<std::vector<double>> per_rank(static_cast<std::size_t>(c.dp), sums);
  cluster.run([&](comm::Backend& backend) {
    Engine engine({.backend = std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}),
                   .settings = engine_settings_from(config),
                   .runner = std::make_shared<ToyRunner>(c.model)});
    const int d = backend.rank();
    for (int s = 0; s < c.steps; ++s) {
      for (std::int64_t m = 0; m < c.gas; ++m) {
        auto [x, t] = batch_of(c, s, d, m);
        Activation loss = engine.forward(x, t);
        per_rank[static_cast<std::size_t>(d)][static_cast<std::size_t>(s)] += engine.loss_value(loss);
        engine.backward(loss);
        engine.step();
      }
    }
    std::vector<float> p = engine.full_parameters();
    if (d == 0) out.params = p;
  });
  for (int s = 0; s < c.steps; ++s) {
    double total = 0.0;
    for (const auto& r : per_rank) total += r[static_cast<std::size_t>(s)];
    out.losses.push_back(total / static_cast<double>(c.gas * c.dp));
  }
  return out;
}

struct PipelineOutcome {
  // Per global rank: (model parameter id, value) of every parameter its stage holds.
  std::vector<std::vector<std::pair<std::size_t, float>>> params;
  std::vector<std::vector<double>> losses;  // per rank, per step
  std::vector<TraceEvent> events;           // every rank's
};

PipelineOutcome pipelined(const Case& c) {
  PipelineOutcome out;
  const int world = c.stages * c.dp;
  const Config config = Config::from_json(config_json(c), {.world = world, .pp = c.stages});
  sim::SimCluster cluster({.world = world, .costs = testing::toy_costs()});
  out.params.resize(static_cast<std::size_t>(world));
  out.losses.resize(static_cast<std::size_t>(world));
  cluster.run([&](comm::Backend& backend) {
    auto model = std::make_shared<ToyRunner>(c.model);
    PipelineEngine engine({.backend = std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}),
                           .settings = engine_settings_from(config),
                           .module = {.model = model, .partition_method = c.partition}});
    const int rank = backend.rank();
    const int d = DeviceMesh(config.mesh()).coord_of(rank).dp;
    for (int s = 0; s < c.steps; ++s) {
      std::int64_t m = 0;
      const double loss = engine.train_batch([&] {
        auto [x, t] = batch_of(c, s, d, m++);
        return MicroBatch{x, t};
      });
      out.losses[static_cast<std::size_t>(rank)].push_back(loss);
    }
    // Model parameter ids of the stage's parameters.
    std::vector<std::size_t> first_of_layer;
    std::size_t next = 0;
    for (std::size_t l = 0; l < model->layer_count(); ++l) {
      first_of_layer.push_back(next);
      next += model->parameters(l).size();
    }
    const pipeline::StageRunner& stage = engine.stage_runner();
    // A tied copy's parameters that no layer of the stage reads (GPT-2's position table next to
    // the tied word embeddings) are not compared: they never affect the stage.
    std::set<std::pair<std::size_t, std::size_t>> read_by_stage;
    for (std::size_t l = 0; l < stage.layer_count(); ++l) {
      for (const ParamRef& ref : stage.shared_parameters(l)) read_by_stage.emplace(ref.layer, ref.index);
    }
    const std::vector<float> values = engine.core().full_parameters();
    std::size_t at = 0;
    for (std::size_t l = 0; l < stage.layer_count(); ++l) {
      const std::size_t ml = stage.model_layer(l);
      const auto specs = stage.parameters(l);
      for (std::size_t k = 0; k < specs.size(); ++k) {
        const bool compared = !stage.is_tied_copy(l) || read_by_stage.contains({l, k});
        for (std::int64_t e = 0; e < specs[k].numel(); ++e, ++at) {
          if (compared) out.params[static_cast<std::size_t>(rank)].emplace_back(first_of_layer[ml] + k, values.at(at));
        }
      }
    }
  });
  for (int r = 0; r < world; ++r) {
    for (const TraceEvent& e : cluster.tracer(r).events()) out.events.push_back(e);
  }
  return out;
}

// The largest difference between a parameter a stage holds and the reference's value of that
// model parameter, over every rank.
float worst_parameter_difference(const Case& c, const Outcome& ref, const PipelineOutcome& pipe) {
  ToyRunner model(c.model);
  std::vector<std::size_t> offset;  // element offset of each model parameter in ref.params
  std::size_t at = 0;
  for (std::size_t l = 0; l < model.layer_count(); ++l) {
    for (const ParamSpec& p : model.parameters(l)) {
      offset.push_back(at);
      at += static_cast<std::size_t>(p.numel());
    }
  }
  if (at != ref.params.size()) throw std::logic_error("the reference holds another model");
  float worst = 0.0f;
  for (const auto& rank : pipe.params) {
    std::size_t previous = static_cast<std::size_t>(-1), element = 0;
    for (const auto& [id, value] : rank) {
      element = id == previous ? element + 1 : 0;
      previous = id;
      worst = std::max(worst, std::abs(value - ref.params[offset[id] + element]));
    }
  }
  return worst;
}

double worst_loss_difference(const Outcome& ref, const PipelineOutcome& pipe) {
  double worst = 0.0;
  for (const auto& losses : pipe.losses) {
    if (losses.size() != ref.losses.size()) return std::numeric_limits<double>::infinity();
    for (std::size_t s = 0; s < losses.size(); ++s) worst = std::max(worst, std::abs(losses[s] - ref.losses[s]));
  }
  return worst;
}

TEST(PipelineEngine, TwoStagesTrainAsTheUnpipelinedModelWithTiedWeightsAndClipping) {
  Case c{.stages = 2, .dp = 2, .zero = 1, .gas = 4, .clipping = 0.05,
         .model = {.widths = {3, 6, 5, 4, 2}, .shared_gain = true}};
  const Outcome ref = reference(c);
  const PipelineOutcome pipe = pipelined(c);
  EXPECT_LT(worst_parameter_difference(c, ref, pipe), 1e-5f);
  EXPECT_LT(worst_loss_difference(ref, pipe), 1e-5);
}

RC_GTEST_PROP(PipelineEngineProperty, SxDRanksReachTheUnpipelinedParameters, ()) {
  Case c;
  c.stages = *rc::gen::inRange(1, 5);
  c.dp = *rc::gen::inRange(1, 4);
  c.zero = *rc::gen::inRange(0, 2);
  c.micro = *rc::gen::inRange<std::int64_t>(1, 4);
  c.gas = *rc::gen::inRange<std::int64_t>(1, 7);
  c.steps = 2;
  c.clipping = *rc::gen::element(0.0, 0.05);
  c.partition = *rc::gen::element<std::string>("uniform", "parameters");
  const int hidden = *rc::gen::inRange(c.stages, 7);  // at least one layer per stage
  c.model.widths = {3};
  for (int i = 0; i < hidden; ++i) c.model.widths.push_back(*rc::gen::inRange<std::int64_t>(1, 6));
  c.model.shared_gain = *rc::gen::arbitrary<bool>();
  const Outcome ref = reference(c);
  const PipelineOutcome pipe = pipelined(c);
  RC_ASSERT(worst_parameter_difference(c, ref, pipe) <= 1e-4f);
  RC_ASSERT(worst_loss_difference(ref, pipe) <= 1e-4);
}

TEST(PipelineEngine, EvalBatchGivesTheUnpipelinedMeanLossAndLeavesParametersAlone) {
  Case c{.stages = 3, .dp = 2, .gas = 5, .steps = 1, .model = {.widths = {3, 4, 5, 2}, .shared_gain = true}};
  // The reference's first step's mean loss is taken before any update: the eval loss of batch 0.
  const double expected = reference(c).losses.at(0);
  const Config config = Config::from_json(config_json(c), {.world = 6, .pp = 3});
  sim::SimCluster cluster({.world = 6, .costs = testing::toy_costs()});
  cluster.run([&](comm::Backend& backend) {
    PipelineEngine engine({.backend = std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}),
                           .settings = engine_settings_from(config),
                           .module = {.model = std::make_shared<ToyRunner>(c.model), .partition_method = "uniform"}});
    const int d = DeviceMesh(config.mesh()).coord_of(backend.rank()).dp;
    const std::vector<float> before = engine.core().full_parameters();
    for (int repeat = 0; repeat < 2; ++repeat) {
      std::int64_t m = 0;
      const double loss = engine.eval_batch([&] {
        auto [x, t] = batch_of(c, 0, d, m++);
        return MicroBatch{x, t};
      });
      EXPECT_NEAR(loss, expected, 1e-6) << "rank " << backend.rank();
    }
    EXPECT_EQ(engine.core().full_parameters(), before);
    EXPECT_EQ(engine.global_steps(), 0);
  });
}

TEST(PipelineEngine, TheTraceShowsEveryInstructionWithItsStageAndMicroBatchAndFlows) {
  Case c{.stages = 3, .dp = 1, .gas = 4, .steps = 1, .model = {.widths = {3, 4, 4, 2}, .shared_gain = true}};
  const PipelineOutcome pipe = pipelined(c);
  auto pipe_stage_of = [](int rank) { return rank; };  // dp 1: rank r is stage r
  std::set<std::string> ops;
  std::set<std::int64_t> flows_out, flows_in;
  for (const TraceEvent& e : pipe.events) {
    ops.insert(e.instruction);
    if (!e.instruction.empty()) {
      EXPECT_EQ(e.stage, pipe_stage_of(e.rank)) << e.name;
      // Buffer instructions work on one micro-batch; the batch-end ones on none.
      const bool batch_end = e.instruction == "ReduceTiedGrads" || e.instruction == "ReduceGrads" ||
                             e.instruction == "OptimizerStep";
      EXPECT_EQ(e.micro_batch >= 0, !batch_end) << e.instruction << " " << e.name;
    }
    if (e.flow_out >= 0) flows_out.insert(e.flow_out);
    if (e.flow_in >= 0) flows_in.insert(e.flow_in);
  }
  for (const char* op : {"ForwardPass", "BackwardPass", "SendActivation", "RecvActivation", "SendGrad", "RecvGrad",
                         "ReduceTiedGrads", "ReduceGrads", "OptimizerStep"}) {
    EXPECT_TRUE(ops.contains(op)) << op;
  }
  // Stage pairs (0,1) and (1,2) exchange 4 activations and 4 gradients each: 16 flows.
  EXPECT_EQ(flows_out.size(), 16u);
  EXPECT_EQ(flows_out, flows_in);
}

void expect_error_running(const Case& c, const std::string& fragment) {
  try {
    pipelined(c);
    ADD_FAILURE() << "no error; expected one containing: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(PipelineEngine, RejectsZeroStage2And3WithDeepSpeedsError) {
  for (int stage : {2, 3}) {
    expect_error_running({.zero = stage, .model = {.widths = {3, 4, 2}}}, "ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism");
  }
}

TEST(PipelineEngine, RejectsATypeRegexMatchingNoLayer) {
  expect_error_running({.partition = "type:attention", .model = {.widths = {3, 4, 2}}}, "attention");
}

TEST(PipelineEngine, RejectsStagesThatDoNotDivideTheWorld) {
  try {
    Config::from_json(config_json({}), {.world = 3, .pp = 2});
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("world"), std::string::npos) << e.what();
  }
}

TEST(PipelineEngine, ForwardBackwardAndStepPointToTrainBatch) {
  Case c{.stages = 1, .model = {.widths = {3, 2}}};
  const Config config = Config::from_json(config_json(c), {.world = 1});
  sim::SimCluster cluster({.world = 1, .costs = testing::toy_costs()});
  cluster.run([&](comm::Backend& backend) {
    PipelineEngine engine({.backend = std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}),
                           .settings = engine_settings_from(config),
                           .module = {.model = std::make_shared<ToyRunner>(c.model)}});
    EXPECT_THROW(engine.forward(), UsageError);
    EXPECT_THROW(engine.backward(), UsageError);
    EXPECT_THROW(engine.step(), UsageError);
    try {
      engine.forward();
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("train_batch()"), std::string::npos);
    }
  });
}

TEST(PipelineEngine, APlainEngineRefusesAPipelineMesh) {
  Case c{.stages = 2, .model = {.widths = {3, 2}}};
  const Config config = Config::from_json(config_json(c), {.world = 2, .pp = 2});
  sim::SimCluster cluster({.world = 2, .costs = testing::toy_costs()});
  EXPECT_THROW(cluster.run([&](comm::Backend& backend) {
    Engine engine({.backend = std::shared_ptr<comm::Backend>(&backend, [](comm::Backend*) {}),
                   .settings = engine_settings_from(config),
                   .runner = std::make_shared<ToyRunner>(c.model)});
  }),
               ConfigError);
}

}  // namespace
}  // namespace twinspeed
