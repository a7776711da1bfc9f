// SpecLayerRunner on the shape-only simulated cluster: parameters and costs are the specs', saved
// activations are charged per recompute mode and returned by backward, and the tp/sp collectives
// of the specs appear in the trace with their bytes, in order.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <memory>
#include <numeric>

#include "engine/comm/backend.hpp"
#include "engine/comm/registry.hpp"
#include "engine/core/errors.hpp"
#include "engine/model/spec/spec_layer_runner.hpp"
#include "sim/cluster.hpp"

namespace twinspeed {
namespace {

using sim::Fidelity;
using sim::SimCluster;

SpecRunnerOptions options(std::int64_t tp = 1, std::int64_t sp = 1, bool tp_sp = false,
                          RecomputeMode recompute = RecomputeMode::none) {
  return {.spec = {.micro_batch = 2, .seq_len = 64, .tp = tp, .sp = sp, .tp_sp = tp_sp},
          .dtype = DType::bf16,
          .recompute = recompute};
}

ModelConfig gpt_bench() { return load_model_preset("gpt-bench"); }

// Owns one Buffer per parameter and binds it, as the engine does.
struct BoundModel {
  std::vector<std::vector<Buffer>> params;
  BoundModel(SpecLayerRunner& runner, comm::Device& device) {
    for (std::size_t i = 0; i < runner.layer_count(); ++i) {
      std::vector<Buffer> layer;
      std::vector<BufferView> views;
      for (const ParamSpec& p : runner.parameters(i)) layer.push_back(device.allocate(DType::f32, p.numel(), MemoryTag::params));
      for (const Buffer& b : layer) views.push_back(b.all());
      runner.initial_parameters(i, views);
      runner.bind_parameters(i, views);
      runner.bind_gradients(i, views);
      params.push_back(std::move(layer));
    }
  }
};

// One forward and backward over every layer, as the engine walks them.
void run_micro_batch(SpecLayerRunner& runner, std::int64_t* activations_after_forward = nullptr,
                     comm::Device* device = nullptr) {
  auto batch = runner.micro_batch();
  Activation x = batch.inputs;
  for (std::size_t i = 0; i < runner.layer_count(); ++i) x = runner.forward(i, x);
  Activation loss = runner.loss(x, batch.labels);
  if (activations_after_forward != nullptr) *activations_after_forward = device->memory().current(MemoryTag::activations);
  Activation grad = runner.loss_backward(loss, 1.0);
  for (std::size_t i = runner.layer_count(); i-- > 0;) grad = runner.backward(i, grad);
  runner.release_saved();
}

TEST(SpecLayerRunner, ParametersAndCostsAreTheSpecs) {
  const ModelConfig model = gpt_bench();
  SpecLayerRunner runner(model, options());
  const auto specs = build_layer_specs(model, options().spec);
  ASSERT_EQ(runner.layer_count(), specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(runner.layer_name(i), specs[i].name);
    ASSERT_EQ(runner.parameters(i).size(), specs[i].params.size()) << specs[i].name;
    for (std::size_t k = 0; k < specs[i].params.size(); ++k) {
      EXPECT_EQ(runner.parameters(i)[k].shape, specs[i].params[k].shape) << specs[i].params[k].name;
    }
    EXPECT_EQ(runner.forward_cost(i).op_class,
              specs[i].forward_flops > 0 ? comm::OpClass::matmul : comm::OpClass::elementwise);
    EXPECT_EQ(runner.forward_cost(i).flops, static_cast<double>(specs[i].forward_flops)) << specs[i].name;
    EXPECT_EQ(runner.backward_cost(i).flops, static_cast<double>(specs[i].backward_flops)) << specs[i].name;
    // FLOP-free layers still move bytes, so they take time.
    EXPECT_GT(runner.forward_cost(i).bytes_read + runner.forward_cost(i).bytes_written, 0) << specs[i].name;
  }
  // gpt-bench ties its LM head to the token embedding: no parameters of its own.
  const std::size_t head = specs.size() - 1;
  EXPECT_TRUE(runner.parameters(head).empty());
  EXPECT_EQ(runner.shared_parameters(head), (std::vector<ParamRef>{{.layer = 0, .index = 0}}));
  EXPECT_TRUE(runner.shared_parameters(1).empty());
}

TEST(SpecLayerRunner, SpecLayerCostsAreTheRunnersForEveryLayer) {
  const ModelConfig model = gpt_bench();
  const SpecRunnerOptions o = options(1, 1, false, RecomputeMode::full);
  SpecLayerRunner runner(model, o);
  const LayerCosts costs = spec_layer_costs(model, {.micro_batch = 2, .seq_len = 64, .dtype_bytes = 2},
                                                RecomputeMode::full);
  ASSERT_EQ(costs.forward.size(), runner.layer_count());
  ASSERT_EQ(costs.backward.size(), runner.layer_count());
  for (std::size_t i = 0; i < runner.layer_count(); ++i) {
    const auto same = [](const comm::ComputeCost& a, const comm::ComputeCost& b) {
      return a.op_class == b.op_class && a.flops == b.flops && a.bytes_read == b.bytes_read &&
             a.bytes_written == b.bytes_written;
    };
    EXPECT_TRUE(same(costs.forward[i], runner.forward_cost(i))) << runner.layer_name(i);
    EXPECT_TRUE(same(costs.recompute[i], runner.recompute_cost(i))) << runner.layer_name(i);
    EXPECT_TRUE(same(costs.backward[i], runner.backward_cost(i))) << runner.layer_name(i);
  }
  EXPECT_THROW(spec_layer_costs(model, {.micro_batch = 2, .seq_len = 64, .dtype_bytes = 3}, RecomputeMode::none),
               ConfigError);
}

TEST(SpecLayerRunner, UntiedHeadOwnsItsWeightAndSharesNothing) {
  ModelConfig model = gpt_bench();
  model.tie_word_embeddings = false;
  SpecLayerRunner runner(model, options());
  const std::size_t head = runner.layer_count() - 1;
  ASSERT_EQ(runner.parameters(head).size(), 1u);
  EXPECT_EQ(runner.parameters(head)[0].shape, (std::vector<std::int64_t>{8192, 512}));
  EXPECT_TRUE(runner.shared_parameters(head).empty());
}

TEST(SpecLayerRunner, RecomputeCostIsTheBlocksForwardOrAttentionCoreAndNeverInBackward) {
  const ModelConfig model = gpt_bench();
  SpecLayerRunner full(model, options(1, 1, false, RecomputeMode::full));
  SpecLayerRunner selective(model, options(1, 1, false, RecomputeMode::selective));
  SpecLayerRunner none(model, options(1, 1, false, RecomputeMode::none));
  const auto& specs = full.specs();
  const std::size_t head = specs.size() - 1;  // the head is not recomputed
  EXPECT_EQ(full.recompute_cost(1).flops, static_cast<double>(specs[1].forward_flops));
  EXPECT_EQ(full.recompute_cost(1).bytes_read, full.forward_cost(1).bytes_read);
  EXPECT_EQ(full.recompute_cost(head).flops, 0.0);
  EXPECT_EQ(full.backward_cost(1).flops, static_cast<double>(specs[1].backward_flops));
  // gpt-bench: B 2, s 64, a 8 heads of d 64: QK^T and attention-over-V, 2 FLOPs per multiply-add.
  const double core = 2.0 * 2 * 2 * 64 * 64 * 8 * 64;
  EXPECT_EQ(selective.recompute_cost(1).flops, core);
  EXPECT_EQ(selective.recompute_cost(1).op_class, comm::OpClass::attention);
  EXPECT_EQ(selective.recompute_cost(1).bytes_written,
            specs[1].activation_bytes(RecomputeMode::none) - specs[1].activation_bytes(RecomputeMode::selective));
  EXPECT_EQ(none.recompute_cost(1).flops, 0.0);
  EXPECT_EQ(none.recompute_cost(1).bytes_read + none.recompute_cost(1).bytes_written, 0);
}

TEST(SpecLayerRunner, ShapesFlowFromTokenIdsToAScalarLossWithNoValue) {
  SpecLayerRunner runner(gpt_bench(), options());
  SimCluster cluster({.world = 1, .fidelity = Fidelity::shape});
  cluster.run([&](comm::Backend& backend) {
    runner.attach({.device = &backend.device(), .group = {}, .rank = backend.rank()});
    BoundModel bound(runner, backend.device());
    auto batch = runner.micro_batch();
    EXPECT_EQ(batch.inputs.shape(), (std::vector<std::int64_t>{2, 64}));
    Activation x = runner.forward(0, batch.inputs);
    EXPECT_EQ(x.shape(), (std::vector<std::int64_t>{2, 64, 512}));
    for (std::size_t i = 1; i < runner.layer_count(); ++i) x = runner.forward(i, x);
    EXPECT_EQ(x.shape(), (std::vector<std::int64_t>{2, 64, 8192}));
    Activation loss = runner.loss(x, batch.labels);
    EXPECT_TRUE(loss.shape().empty());
    EXPECT_FALSE(loss.empty());
    EXPECT_TRUE(std::isnan(runner.scalar(loss)));
    Activation grad = runner.loss_backward(loss, 0.125);
    EXPECT_EQ(grad.shape(), x.shape());
    for (std::size_t i = runner.layer_count(); i-- > 1;) grad = runner.backward(i, grad);
    EXPECT_EQ(grad.shape(), (std::vector<std::int64_t>{2, 64, 512}));
    EXPECT_TRUE(runner.backward(0, grad).empty());  // token ids need no gradient
  });
}

// The activation peak of one micro-batch: everything saved; under recomputation, the last block's
// backward adds what it recomputes (full: its no-recompute bytes; selective: its attention core's)
// once the head's and final norm's saved bytes are returned.
std::int64_t expected_activation_peak(const std::vector<LayerSpec>& specs, RecomputeMode mode) {
  std::int64_t sum = 0;
  for (const LayerSpec& l : specs) sum += l.activation_bytes(mode);
  if (mode == RecomputeMode::none) return sum;
  const std::size_t n = specs.size();
  const LayerSpec& last_block = specs[n - 3];
  const std::int64_t recomputed = last_block.activation_bytes(RecomputeMode::none) -
                                  (mode == RecomputeMode::full ? 0 : last_block.activation_bytes(mode));
  return std::max(sum, sum - specs[n - 1].activation_bytes(mode) - specs[n - 2].activation_bytes(mode) + recomputed);
}

class SpecLayerRunnerMemory : public ::testing::TestWithParam<RecomputeMode> {};

TEST_P(SpecLayerRunnerMemory, SavedBytesAreTheSpecsAndBackwardReturnsThem) {
  const RecomputeMode mode = GetParam();
  SpecLayerRunner runner(gpt_bench(), options(1, 1, false, mode));
  std::int64_t expected = 0;
  for (const LayerSpec& layer : runner.specs()) expected += layer.activation_bytes(mode);
  std::int64_t after_forward = -1;
  SimCluster cluster({.world = 1, .fidelity = Fidelity::shape});
  cluster.run([&](comm::Backend& backend) {
    runner.attach({.device = &backend.device(), .group = {}, .rank = backend.rank()});
    BoundModel bound(runner, backend.device());
    run_micro_batch(runner, &after_forward, &backend.device());
    EXPECT_EQ(backend.device().memory().current(MemoryTag::activations), 0);
    // A second micro-batch charges and returns the same bytes.
    run_micro_batch(runner);
    EXPECT_EQ(backend.device().memory().current(MemoryTag::activations), 0);
    EXPECT_EQ(backend.device().memory().current(MemoryTag::temporaries), 0);
  });
  EXPECT_EQ(after_forward, expected);
  // Recomputation holds what it recomputes while a block's backward runs; the peak is at the last
  // block, when the head's and final norm's saved bytes are already returned.
  const std::int64_t peak = expected_activation_peak(runner.specs(), mode);
  if (mode == RecomputeMode::full) {
    EXPECT_GT(peak, expected);
  }
  EXPECT_EQ(cluster.memory(0).peak(MemoryTag::activations), peak);
}

INSTANTIATE_TEST_SUITE_P(AllModes, SpecLayerRunnerMemory,
                         ::testing::Values(RecomputeMode::none, RecomputeMode::selective, RecomputeMode::full));

TEST(SpecLayerRunner, ReleaseSavedAbandonsAMicroBatch) {
  SpecLayerRunner runner(gpt_bench(), options());
  SimCluster cluster({.world = 1, .fidelity = Fidelity::shape});
  cluster.run([&](comm::Backend& backend) {
    runner.attach({.device = &backend.device(), .group = {}, .rank = backend.rank()});
    BoundModel bound(runner, backend.device());
    Activation x = runner.forward(0, runner.micro_batch().inputs);
    x = runner.forward(1, x);
    EXPECT_GT(backend.device().memory().current(MemoryTag::activations), 0);
    runner.release_saved();
    EXPECT_EQ(backend.device().memory().current(MemoryTag::activations), 0);
    EXPECT_THROW(runner.backward(1, x), Error);  // nothing saved any more
  });
}

TEST(SpecLayerRunner, RefusesUnboundLayersWrongViewsAndWrongShapes) {
  SpecLayerRunner runner(gpt_bench(), options());
  auto backend = comm::create_backend("sim", {.rank = 0, .world_size = 1});
  runner.attach({.device = &backend->device(), .group = {}, .rank = 0});
  auto batch = runner.micro_batch();
  EXPECT_THROW(runner.forward(0, batch.inputs), Error);  // not bound
  Buffer one = backend->device().allocate(DType::f32, 4, MemoryTag::params);
  std::vector<BufferView> wrong_count{one.all()};
  EXPECT_THROW(runner.bind_parameters(1, wrong_count), Error);
  BoundModel bound(runner, backend->device());
  EXPECT_THROW(runner.forward(1, batch.inputs), Error);  // a block takes [B, s, h], not token ids
  // The tied head runs only while the embedding it reads is bound.
  runner.bind_parameters(0, {});
  Activation hidden = make_shape_activation(runner.input_shape(runner.layer_count() - 1));
  EXPECT_THROW(runner.forward(runner.layer_count() - 1, hidden), Error);
}

// One micro-batch on every rank of a world of tp x sp ranks with tp and sp groups: rank 0's comm
// events and every rank's memory.
struct MeshRun {
  std::vector<TraceEvent> events;
  std::vector<comm::MemoryStats> memory;
};

MeshRun run_on_mesh(const ModelConfig& model, const SpecRunnerOptions& o) {
  const int tp = static_cast<int>(o.spec.tp), sp = static_cast<int>(o.spec.sp);
  SimCluster cluster({.world = tp * sp, .fidelity = Fidelity::shape});
  cluster.run([&](comm::Backend& backend) {
    SpecLayerRunner runner(model, o);
    // tp inner, sp outer (DESIGN.md mesh order): tp groups are consecutive ranks.
    comm::CommPtr tp_group, sp_group;
    for (int s = 0; s < sp; ++s) {
      std::vector<int> ranks(static_cast<std::size_t>(tp));
      std::iota(ranks.begin(), ranks.end(), s * tp);
      if (auto g = backend.new_group(ranks, "tp")) tp_group = g;
    }
    for (int t = 0; t < tp; ++t) {
      std::vector<int> ranks;
      for (int s = 0; s < sp; ++s) ranks.push_back(s * tp + t);
      if (auto g = backend.new_group(ranks, "sp")) sp_group = g;
    }
    runner.attach({.device = &backend.device(),
                   .group = [&](GroupKind kind) -> comm::Comm* {
                     if (kind == GroupKind::tp) return tp_group.get();
                     if (kind == GroupKind::sp) return sp_group.get();
                     return nullptr;
                   },
                   .rank = backend.rank()});
    BoundModel bound(runner, backend.device());
    run_micro_batch(runner);
  });
  MeshRun run;
  for (const TraceEvent& e : cluster.tracer(0).events()) {
    if (e.category == TraceCategory::comm) run.events.push_back(e);
  }
  for (int r = 0; r < tp * sp; ++r) run.memory.push_back(cluster.memory(r));
  return run;
}

// What the specs say rank 0 issues, as the trace counts it: each layer's forward collectives in
// order, then each layer's backward collectives, layers in reverse and each layer's list reversed.
// The spec gives all_gather's output; traces (and the cost model) count what each rank passes in,
// the output's 1/group chunk.
std::vector<std::tuple<std::string, std::string, std::int64_t>> expected_collectives(const ModelConfig& model,
                                                                                     const SpecRunnerOptions& o) {
  SpecOptions spec = o.spec;
  spec.dtype_bytes = static_cast<std::int64_t>(dtype_size(o.dtype));
  const auto specs = build_layer_specs(model, spec);
  std::vector<std::tuple<std::string, std::string, std::int64_t>> out;
  auto add = [&](const CollectiveSpec& c) {
    const std::int64_t group = c.group == "tp" ? o.spec.tp : o.spec.sp;
    out.emplace_back(c.op, "comm-" + c.group, c.op == "all_gather" ? c.bytes / group : c.bytes);
  };
  for (const LayerSpec& l : specs) {
    for (const CollectiveSpec& c : l.collectives) {
      if (c.phase == CommPhase::forward) add(c);
    }
  }
  for (auto l = specs.rbegin(); l != specs.rend(); ++l) {
    // Full recompute runs a block's forward again, with its collectives, before its backward.
    if (o.recompute == RecomputeMode::full && l->kind == LayerKind::block) {
      for (const CollectiveSpec& c : l->collectives) {
        if (c.phase == CommPhase::forward) add(c);
      }
    }
    for (auto c = l->collectives.rbegin(); c != l->collectives.rend(); ++c) {
      if (c->phase == CommPhase::backward) add(*c);
    }
  }
  return out;
}

std::vector<std::tuple<std::string, std::string, std::int64_t>> traced(const std::vector<TraceEvent>& events) {
  std::vector<std::tuple<std::string, std::string, std::int64_t>> out;
  for (const TraceEvent& e : events) out.emplace_back(e.op, e.lane, e.bytes);
  return out;
}

void expect_trace_matches_specs(const SpecRunnerOptions& o) {
  const MeshRun run = run_on_mesh(gpt_bench(), o);
  const auto expected = expected_collectives(gpt_bench(), o);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(traced(run.events), expected);
  for (const comm::MemoryStats& m : run.memory) EXPECT_EQ(m.current(MemoryTag::temporaries), 0);
}

TEST(SpecLayerRunnerCollectives, TensorParallelAllReducesAppearWithTheSpecBytes) {
  expect_trace_matches_specs(options(2));
}

TEST(SpecLayerRunnerCollectives, MegatronSequenceParallelGathersAndScattersAppearWithTheSpecBytes) {
  expect_trace_matches_specs(options(2, 1, true));
}

TEST(SpecLayerRunnerCollectives, UlyssesAllToAllsAppearWithTheSpecBytes) {
  expect_trace_matches_specs(options(1, 2));
}

// A Llama-family model small enough to run often: GQA (4 kv heads of 8), SwiGLU, RMSNorm, no dropout.
ModelConfig tiny_llama() {
  return parse_hf_config(nlohmann::json{{"model_type", "llama"}, {"hidden_size", 128}, {"num_hidden_layers", 2},
                                        {"num_attention_heads", 8}, {"num_key_value_heads", 4},
                                        {"intermediate_size", 256}, {"vocab_size", 1000},
                                        {"max_position_embeddings", 512}},
                         "tiny-llama");
}

RC_GTEST_PROP(SpecLayerRunnerProperty, EveryMeshAndModeChargesTheSpecsAndIssuesTheirCollectives, ()) {
  const bool llama = *rc::gen::arbitrary<bool>();
  const ModelConfig model = llama ? tiny_llama() : gpt_bench();
  const int sp = *rc::gen::element(1, 2);
  const int tp = *rc::gen::element(1, 2, 4);
  RC_PRE(tp * sp <= (llama ? 4 : 8));  // heads and kv heads split over tp x sp
  const SpecRunnerOptions o{.spec = {.micro_batch = *rc::gen::inRange(1, 4),
                                     .seq_len = 16 * *rc::gen::inRange(1, 5),
                                     .tp = tp,
                                     .sp = sp,
                                     .tp_sp = tp > 1 && *rc::gen::arbitrary<bool>()},
                            .dtype = *rc::gen::element(DType::bf16, DType::f32),
                            .recompute = *rc::gen::element(RecomputeMode::none, RecomputeMode::selective,
                                                           RecomputeMode::full)};
  const MeshRun run = run_on_mesh(model, o);
  RC_ASSERT(traced(run.events) == expected_collectives(model, o));
  SpecOptions spec = o.spec;
  spec.dtype_bytes = static_cast<std::int64_t>(dtype_size(o.dtype));
  const std::int64_t peak = expected_activation_peak(build_layer_specs(model, spec), o.recompute);
  for (const comm::MemoryStats& m : run.memory) {
    RC_ASSERT(m.current(MemoryTag::activations) == 0);
    RC_ASSERT(m.current(MemoryTag::temporaries) == 0);
    RC_ASSERT(m.peak(MemoryTag::activations) == peak);
  }
}

TEST(SpecLayerRunnerCollectives, AMissingGroupIsAnErrorNamingTheLayer) {
  // The cluster outlives the runner: the runner's Buffers return to the cluster's device.
  SimCluster cluster({.world = 1, .fidelity = Fidelity::shape});
  SpecLayerRunner runner(gpt_bench(), options(2));
  try {
    cluster.run([&](comm::Backend& backend) {
      runner.attach({.device = &backend.device(), .group = {}, .rank = 0});
      BoundModel bound(runner, backend.device());
      runner.forward(0, runner.micro_batch().inputs);
    });
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("embedding"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tp group"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace twinspeed
