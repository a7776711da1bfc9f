#include "sim/planner/simulation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/comm/registry.hpp"
#include "engine/core/errors.hpp"
#include "engine/core/zero_memory.hpp"
#include "engine/mesh/device_mesh.hpp"
#include "engine/runtime/engine.hpp"
#include "engine/runtime/pipeline_engine.hpp"
#include "engine/runtime/run_check.hpp"
#include "sim/cost/collective_cost.hpp"
#include "sim/preset_costs.hpp"
#include "sim/sim_device.hpp"

namespace twinspeed::planner {

namespace {

using i64 = std::int64_t;

sim::SimStream& compute_clock(comm::Backend& backend) {
  auto* device = dynamic_cast<sim::SimDevice*>(&backend.device());
  if (device == nullptr) throw Error("simulation: the rank's device is not a simulated device");
  return device->compute();
}

SpecOptions spec_sizes(const Config& config, std::int64_t seq_len, DType dtype, bool tp_sp = false,
                       AttentionKernel attention = AttentionKernel::standard) {
  return {.micro_batch = config.batch().train_micro_batch_size_per_gpu,
          .seq_len = seq_len,
          .tp = config.mesh().tp,
          .sp = config.mesh().sp,
          .tp_sp = tp_sp,
          .dtype_bytes = static_cast<i64>(dtype_size(dtype)),
          .attention = attention};
}

// A symmetric-rank collapse is exact only if the cost model cannot tell a rank from its
// representative. A collective's cost depends on where its group sits (ranks, nodes, most ranks on
// one node: sim::place_group), a transfer's on whether its two ends share a node. So every mesh
// group of a represented rank must be placed as its representative's is, and along its pipeline
// the ranks that share a node must follow its representative's pipeline's pattern (that covers
// sends and receives between stages and the "pp-tied" groups, which are subsets of a pipeline).
// Returns what differs, or nothing.
std::optional<std::string> placement_asymmetry(const sim::ClusterSpec& cluster, const DeviceMesh& mesh,
                                               const std::vector<int>& representative) {
  const int world = mesh.world();
  for (GroupKind kind : kGroupKindsInCreationOrder) {
    std::vector<sim::GroupPlacement> placement;
    for (const std::vector<int>& group : mesh.groups(kind)) placement.push_back(sim::place_group(cluster, group));
    for (int r = 0; r < world; ++r) {
      const int s = representative[static_cast<std::size_t>(r)];
      if (s != r && placement[static_cast<std::size_t>(mesh.group_index(kind, r))] !=
                        placement[static_cast<std::size_t>(mesh.group_index(kind, s))]) {
        return fmt::format("rank {}'s {} group is placed on the nodes unlike that of rank {}, which would represent it",
                           r, group_kind_name(kind), s);
      }
    }
  }
  // Each pipeline's stages as node labels numbered by first appearance (a node is
  // rank / devices_per_node, as place_group counts them).
  std::vector<std::vector<int>> pattern;
  for (const std::vector<int>& pipeline : mesh.groups(GroupKind::pp)) {
    std::vector<int> nodes, labels;
    for (int rank : pipeline) {
      const int node = rank / cluster.devices_per_node;
      const auto seen = std::find(nodes.begin(), nodes.end(), node);
      labels.push_back(static_cast<int>(seen - nodes.begin()));
      if (seen == nodes.end()) nodes.push_back(node);
    }
    pattern.push_back(std::move(labels));
  }
  for (int r = 0; r < world; ++r) {
    const int s = representative[static_cast<std::size_t>(r)];
    if (s != r && pattern[static_cast<std::size_t>(mesh.group_index(GroupKind::pp, r))] !=
                      pattern[static_cast<std::size_t>(mesh.group_index(GroupKind::pp, s))]) {
      return fmt::format("rank {}'s pipeline shares nodes between stages unlike that of rank {}, which would represent it",
                         r, s);
    }
  }
  return std::nullopt;
}

struct Collapse {
  std::vector<int> representative;  // empty: every rank simulated
  std::string refused;
};

Collapse choose_collapse(const SimulateRequest& request, const DeviceMesh& mesh) {
  if (request.fidelity != sim::Fidelity::shape || request.all_ranks) return {};
  std::vector<int> representative = symmetric_representatives(mesh.shape());
  const sim::ClusterSpec cluster = sim::cluster_for_world(request.cluster, mesh.world());
  if (std::optional<std::string> why = placement_asymmetry(cluster, mesh, representative)) {
    return {.representative = {}, .refused = fmt::format("every rank simulated: {}", *why)};
  }
  return {.representative = std::move(representative), .refused = {}};
}

}  // namespace

DType config_compute_dtype(const Config& config) {
  if (config.bf16().enabled) return DType::bf16;
  if (config.fp16().enabled) return DType::f16;
  return DType::f32;
}

RankModel make_shape_rank_model(const RankModelRequest& request) {
  auto runner = std::make_shared<SpecLayerRunner>(*request.model, request.spec);
  const SpecLayerRunner::MicroBatch batch = runner->micro_batch();
  return {.runner = runner, .batch = [batch](std::int64_t) { return std::make_pair(batch.inputs, batch.labels); }};
}

nlohmann::json run_description(const SimulateRequest& request) {
  const ModelConfig& m = *request.model;
  const nlohmann::json model = {{"model_type", m.model_type},
                                {"hidden_size", m.hidden_size},
                                {"num_layers", m.num_layers},
                                {"num_heads", m.num_heads},
                                {"num_kv_heads", m.num_kv_heads},
                                {"head_dim", m.head_dim},
                                {"intermediate_size", m.intermediate_size},
                                {"vocab_size", m.vocab_size},
                                {"max_positions", m.max_positions},
                                {"norm", static_cast<int>(m.norm)},
                                {"norm_eps", m.norm_eps},
                                {"activation", static_cast<int>(m.activation)},
                                {"tie_word_embeddings", m.tie_word_embeddings},
                                {"learned_positions", m.learned_positions},
                                {"rope", m.rope},
                                {"rope_theta", m.rope_theta},
                                {"qkv_bias", m.qkv_bias},
                                {"linear_bias", m.linear_bias},
                                {"embedding_dropout", m.embedding_dropout},
                                {"attention_dropout", m.attention_dropout},
                                {"hidden_dropout", m.hidden_dropout}};
  return {{"config", request.config->to_json()},
          {"model", model},
          {"steps", request.steps},
          {"seq_len", request.seq_len},
          {"seed", request.seed},
          {"recompute", static_cast<int>(request.recompute)},
          {"tp_sp", request.tp_sp},
          {"attention", static_cast<int>(request.attention)},
          {"partition_method", request.partition_method},
          {"fidelity", static_cast<int>(request.fidelity)}};
}

RankTimeline train_rank(const SimulateRequest& request, const std::shared_ptr<comm::Backend>& backend,
                        const std::function<std::int64_t()>& clock_ns) {
  if (request.run_check_timeout) check_same_run(*backend, run_description(request), *request.run_check_timeout);
  const Config& config = *request.config;
  const MeshShape& mesh = config.mesh();
  const DType dtype = config_compute_dtype(config);
  const EngineSettings settings = engine_settings_from(config);
  const i64 accumulation = settings.gradient_accumulation_steps;
  const SpecRunnerOptions spec{.spec = spec_sizes(config, request.seq_len, dtype, request.tp_sp, request.attention),
                               .dtype = dtype, .recompute = request.recompute};
  const int rank = backend->rank();
  const MeshCoordinates coord = DeviceMesh(mesh).coord_of(rank);
  RankModel model = request.make_model({.model = request.model, .spec = spec, .rank = rank, .dp_rank = coord.dp,
                                        .dp_size = mesh.dp, .seed = request.seed});
  RankTimeline t;
  i64 micro = 0;
  // What the report needs after each step, from the engine that took it.
  auto record_step = [&](int step, double mean_loss, double lr, const Engine& engine) {
    t.mean_loss.push_back(mean_loss);
    t.lr.push_back(lr);
    t.loss_scale.push_back(engine.loss_scale());
    t.skipped_steps.push_back(engine.skipped_steps());
    t.end_ns.push_back(clock_ns());
    if (rank == 0 && request.on_step) request.on_step(step + 1);
  };
  if (mesh.pp > 1) {
    // A PipelineModule of the model's layers: each rank runs its stage through the schedule.
    PipelineEngine engine(PipelineParts{.backend = backend,
                                        .settings = settings,
                                        .module = {.model = model.runner, .partition_method = request.partition_method}});
    t.setup_end_ns = clock_ns();
    for (int step = 0; step < request.steps; ++step) {
      // The LR this batch's step uses (the scheduler moves it after the step).
      const double lr = engine.core().get_lr().empty() ? 0.0 : engine.core().get_lr()[0];
      const double loss = engine.train_batch([&] {
        auto [inputs, labels] = model.batch(micro++);
        return MicroBatch{inputs, labels};
      });
      record_step(step, loss, lr, engine.core());
    }
    return t;
  }
  Engine engine(EngineParts{.backend = backend, .settings = settings, .runner = model.runner});
  t.setup_end_ns = clock_ns();
  for (int step = 0; step < request.steps; ++step) {
    double loss_sum = 0.0, lr = 0.0;
    for (i64 k = 0; k < accumulation; ++k) {
      auto [inputs, labels] = model.batch(micro++);
      Activation loss = engine.forward(inputs, labels);
      engine.backward(loss);
      // The LR this step's update uses (the scheduler moves it after the step).
      if (engine.is_gradient_accumulation_boundary() && !engine.get_lr().empty()) lr = engine.get_lr()[0];
      engine.step();
      loss_sum += engine.loss_value(loss);
    }
    record_step(step, loss_sum / static_cast<double>(accumulation), lr, engine);
  }
  return t;
}

SimulateResult run_simulation(const SimulateRequest& request) {
  const Config& config = *request.config;
  const MeshShape& mesh = config.mesh();
  const int world = mesh.world();
  const DType dtype = config_compute_dtype(config);
  // What the engine cannot run is refused before any rank starts.
  static_cast<void>(engine_settings_from(config));
  if (request.fidelity == sim::Fidelity::numeric && request.attention == AttentionKernel::flash) {
    throw NotImplemented("flash attention in numeric fidelity: the LibTorch model zoo runs standard attention "
                         "(flash attention is a shape-only model of what the kernel saves and computes)");
  }
  const SpecRunnerOptions spec{.spec = spec_sizes(config, request.seq_len, dtype, request.tp_sp, request.attention),
                               .dtype = dtype, .recompute = request.recompute};
  const DeviceMesh device_mesh(mesh);
  if (config.hybrid_engine().enabled) {
    // As initialize() routes it: the HybridEngine is not built.
    throw NotImplemented("hybrid_engine.enabled routes to the HybridEngine, which twinspeed does not implement yet");
  }

  SimulateResult result;
  result.compute_dtype = dtype;
  result.total_params = total_param_count(build_layer_specs(*request.model, spec.spec));
  Collapse collapse = choose_collapse(request, device_mesh);
  result.collapse_refused = std::move(collapse.refused);
  sim::ClusterOptions options = sim::cluster_options(request.cluster, world, request.fidelity, dtype);
  options.representative = std::move(collapse.representative);
  result.cluster = std::make_shared<sim::SimCluster>(std::move(options));
  result.simulated_ranks = result.cluster->simulated_ranks();

  // One timeline per simulated rank, in simulated_ranks order.
  std::vector<int> timeline_of(static_cast<std::size_t>(world), -1);
  for (std::size_t i = 0; i < result.simulated_ranks.size(); ++i) {
    timeline_of[static_cast<std::size_t>(result.simulated_ranks[i])] = static_cast<int>(i);
  }
  std::vector<RankTimeline> timelines(result.simulated_ranks.size());
  result.cluster->run([&](comm::Backend&) {
    // The ordinary way a rank finds its backend (inside run(), the calling rank's).
    std::shared_ptr<comm::Backend> backend = comm::create_backend("sim", {});
    sim::SimStream& clock = compute_clock(*backend);
    timelines[static_cast<std::size_t>(timeline_of[static_cast<std::size_t>(backend->rank())])] =
        train_rank(request, backend, [&clock] { return clock.clock_ns(); });
  });

  // One loss per data-parallel replica: its first tp/sp rank of the last pipeline stage (the
  // simulated ones: a represented replica's loss is its representative's).
  std::vector<int> replica_ranks;
  for (int r : result.simulated_ranks) {
    const MeshCoordinates c = device_mesh.coord_of(r);
    if (c.tp == 0 && c.sp == 0 && c.pp == mesh.pp - 1) replica_ranks.push_back(r);
  }
  i64 previous_end = 0;
  for (const RankTimeline& t : timelines) previous_end = std::max(previous_end, t.setup_end_ns);
  result.setup_time_ns = previous_end;
  for (int step = 0; step < request.steps; ++step) {
    const auto s = static_cast<std::size_t>(step);
    StepReport report{.step = step + 1};
    double loss = 0.0;
    for (int r : replica_ranks) loss += timelines[static_cast<std::size_t>(timeline_of[static_cast<std::size_t>(r)])].mean_loss[s];
    loss /= static_cast<double>(replica_ranks.size());
    if (std::isfinite(loss)) report.loss = loss;
    const RankTimeline& first = timelines.front();
    report.lr = first.lr[s];
    report.loss_scale = first.loss_scale[s];
    report.skipped_steps = first.skipped_steps[s];
    report.skipped = report.skipped_steps > (step == 0 ? 0 : first.skipped_steps[s - 1]);
    i64 end = 0;
    for (const RankTimeline& t : timelines) end = std::max(end, t.end_ns[s]);
    report.step_time_ns = end - previous_end;
    previous_end = end;
    result.steps.push_back(report);
  }
  result.total_time_ns = previous_end;
  for (int r = 0; r < world; ++r) result.memory.push_back(result.cluster->memory(r));
  for (int r = 0; r < world; ++r) result.host_memory.push_back(result.cluster->host_memory(r));
  return result;
}

std::int64_t estimate_numeric_host_bytes(const Config& config, const ModelConfig& model, std::int64_t seq_len,
                                         RecomputeMode recompute) {
  const DType dtype = config_compute_dtype(config);
  const auto specs = build_layer_specs(model, spec_sizes(config, seq_len, dtype));
  const std::vector<std::vector<i64>> groups{{total_param_count(specs)}};
  const MeshShape& mesh = config.mesh();
  const ZeroRankBytes zero = zero_memory_per_rank(groups,
                                                  {.stage = config.zero().stage,
                                                   .world = mesh.dp * mesh.sp,
                                                   .param_dtype = dtype,
                                                   .grad_dtype = dtype,
                                                   .master_dtype = DType::f32},
                                                  0);
  i64 activations = 0;
  for (const LayerSpec& layer : specs) activations += layer.activation_bytes(recompute);
  return (zero.total() + activations) * mesh.world();
}

std::optional<std::int64_t> host_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string key, unit;
    i64 value = 0;
    if (fields >> key >> value >> unit && key == "MemTotal:" && unit == "kB") return value * 1024;
  }
  return std::nullopt;
}

}  // namespace twinspeed::planner
