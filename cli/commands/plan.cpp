// `twinspeed plan --model M --cluster C --world N [...]`: does the model fit on the cluster with the
// DeepSpeed config, how fast is a step, and what one change makes it fit (docs/CLI.md "plan"). The
// plan runs twinspeed's own engine in shape-only simulation: sim/planner/plan.cpp.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "cli/command.hpp"
#include "cli/exit_codes.hpp"
#include "cli/plan_report.hpp"
#include "engine/core/errors.hpp"
#include "engine/core/trace_chrome.hpp"
#include "engine/mesh/device_mesh.hpp"
#include "sim/planner/plan.hpp"
#include "sim/preset_costs.hpp"
#include "sim/presets/cluster_file.hpp"
#include "sim/presets/presets.hpp"

namespace twinspeed::cli {

namespace {

struct PlanArgs {
  std::string model;
  std::string cluster;
  int world = 0;
  std::string config;
  std::optional<int> tp, pp, sp, zero;
  std::string tp_sp;  // "", "on", "off"
  bool all_ranks = false;
  std::optional<std::int64_t> micro_batch, global_batch, seq;
  std::string dtype;
  std::string recompute;
  std::string attention;
  bool json = false;
  std::string trace;
  bool require_fit = false;
  std::string estimator;
};

void run_plan(const PlanArgs& args) {
  const ModelConfig model = load_model_preset(args.model);
  const sim::ClusterSpec preset = sim::resolve_cluster(args.cluster);
  if (preset.inter_node.kind == "none" && args.world > preset.devices_per_node) {
    throw ConfigError("--world", std::to_string(args.world),
                      fmt::format("cluster {} has no network between nodes: at most {} ranks (its devices per node)",
                                  preset.name, preset.devices_per_node));
  }
  const sim::ClusterSpec cluster = sim::cluster_for_world(preset, args.world);
  if (args.seq && model.learned_positions && *args.seq > model.max_positions) {
    throw ConfigError("--seq", std::to_string(*args.seq),
                      fmt::format("longer than the model's learned position table (n_positions {})", model.max_positions));
  }
  planner::PlanRequest request{.model = &model, .cluster = cluster, .world = args.world};
  if (!args.config.empty()) {
    request.config = Config::read_json(args.config);
    request.config_source = args.config;
  }
  request.options.tp = args.tp;
  request.options.pp = args.pp;
  request.options.sp = args.sp;
  request.options.zero_stage = args.zero;
  request.options.micro_batch = args.micro_batch;
  request.options.global_batch = args.global_batch;
  if (!args.dtype.empty()) request.options.precision = args.dtype;
  if (!args.tp_sp.empty()) request.tp_sp = args.tp_sp == "on";
  request.seq_len = args.seq;
  if (!args.recompute.empty()) request.recompute = planner::parse_recompute(args.recompute);
  if (args.attention == "flash") request.attention = AttentionKernel::flash;
  request.all_ranks = args.all_ranks;
  request.keep_cluster = !args.trace.empty();

  const auto wall_start = std::chrono::steady_clock::now();
  const planner::PlanResult plan = planner::make_plan(request);
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  PlanReport report{.model_name = args.model,
                    .config_path = args.config.empty() ? std::string("default (bf16, ZeRO-1, micro-batch 1, AdamW)")
                                                       : args.config,
                    .model = &model,
                    .cluster = &cluster,
                    .plan = &plan,
                    .estimator = args.estimator == "deepspeed"};
  for (const ConfigWarning& w : plan.warnings) report.warnings.push_back({w.path, w.message, w.note});
  if (plan.parallelism.tp > 1 && !args.tp_sp.empty() && args.tp_sp == "off") {
    report.warnings.push_back({"--tp-sp", "off: activations inside the tensor-parallel region only are divided by tp",
                               true});
  }
  for (const ReportWarning& w : report.warnings) {
    std::fprintf(stderr, "%s: %s%s%s\n", w.note ? "note" : "warning", w.path.c_str(), w.path.empty() ? "" : ": ",
                 w.message.c_str());
  }
  if (!args.trace.empty()) {
    const DeviceMesh mesh = DeviceMesh(MeshShape{.pp = plan.parallelism.pp,
                                                 .dp = plan.parallelism.dp,
                                                 .sp = plan.parallelism.sp,
                                                 .tp = plan.parallelism.tp});
    write_chrome_trace_file(plan.cluster->trace_document([&](int rank) { return mesh.coord_of(rank); }), args.trace);
    report.trace_path = args.trace;
  }
  if (args.json) {
    std::printf("%s\n", plan_json(report).dump(2).c_str());
  } else {
    print_plan_report(report);
  }
  // Wall time varies from run to run: stderr, so stdout stays identical for identical runs.
  std::fprintf(stderr, "note: plan: %d ranks planned in %.3f s wall time\n", plan.parallelism.world, wall_s);
  if (args.require_fit && !plan.fits) {
    throw ExitStatus(kExitDoesNotFit,
                     fmt::format("the model does not fit: rank {} needs {} of {} usable", plan.peak_rank,
                                 format_bytes(plan.peak.total_peak_bytes), format_bytes(plan.capacity_bytes)),
                     "--require-fit: exit status 3");
  }
}

}  // namespace

void register_plan_command(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  auto* cmd = app.add_subcommand(
      "plan",
      "Plan a training run: does the model fit on the cluster with this DeepSpeed config, how fast\n"
      "is a step (broken into compute, recompute, optimizer, exposed communication, bubble), its\n"
      "tokens/s, TFLOP/s and MFU, and when it does not fit which rank and buffer overflow and which\n"
      "one change (ZeRO stage, micro-batch, recompute, tp, pp) would make it fit. Runs twinspeed's\n"
      "own engine in shape-only simulation, one rank per pipeline stage (docs/CLI.md \"plan\").");
  const std::string presets = fmt::format("{}", fmt::join(model_preset_names(), ", "));
  cmd->add_option("--model", args->model, fmt::format("Model preset ({}) or a Hugging Face config.json", presets))
      ->required();
  cmd->add_option("--cluster", args->cluster,
                  fmt::format("Cluster preset ({}) or a cluster JSON file", fmt::join(sim::cluster_preset_names(), ", ")))
      ->required();
  cmd->add_option("--world,--gpus", args->world, "Number of GPUs (ranks); the cluster grows to as many nodes as needed")
      ->required()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--config", args->config,
                  "DeepSpeed JSON config (default: bf16, ZeRO-1, micro-batch 1, AdamW); flags below override it");
  cmd->add_option("--tp", args->tp, "Tensor-parallel degree (tensor_parallel.autotp_size)")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--pp", args->pp, "Pipeline stages (pipeline.stages): PipelineEngine, 1F1B")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--sp", args->sp, "DeepSpeed-Ulysses sequence-parallel degree (sequence_parallel_size)")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--tp-sp", args->tp_sp, "Megatron sequence parallelism inside tp: on or off (default: on when tp > 1)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--zero", args->zero, "ZeRO stage 0-3 (zero_optimization.stage)")->check(CLI::Range(0, 3));
  cmd->add_option("--micro-batch", args->micro_batch, "Micro-batch per GPU (train_micro_batch_size_per_gpu)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--global-batch", args->global_batch,
                  "Global batch (train_batch_size; default: the config's, or micro-batch x dp)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seq", args->seq,
                  "Sequence length (default: the preset's training length, or min(max_position_embeddings, 4096))")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--dtype", args->dtype, "Training precision: bf16, fp16 or fp32 (default: the config's)")
      ->check(CLI::IsMember({"bf16", "fp16", "fp32"}));
  cmd->add_option("--recompute", args->recompute,
                  "Activation recomputation of the transformer blocks: none, selective (attention core) or full")
      ->check(CLI::IsMember({"none", "selective", "full"}));
  cmd->add_option("--attention", args->attention,
                  "What the model's attention saves: standard (the s x s scores, Korthikanti et al.; the default, "
                  "as the numeric model zoo runs) or flash (FlashAttention-2 / PyTorch SDPA: the log-sum-exp only, "
                  "the scores recomputed in backward)")
      ->check(CLI::IsMember({"standard", "flash"}));
  cmd->add_flag("--all-ranks", args->all_ranks, "Simulate every rank rather than one per pipeline stage");
  cmd->add_option("--estimator", args->estimator,
                  "Also show what another estimator says: deepspeed (its ZeRO-2/ZeRO-3 model-state estimators)")
      ->check(CLI::IsMember({"deepspeed"}));
  cmd->add_option("--trace", args->trace, "Write the simulated step's Chrome trace (Perfetto) to this file, atomically");
  cmd->add_flag("--json", args->json, "Print the JSON report (schema twinspeed.plan/1) instead of the tables");
  cmd->add_flag("--require-fit", args->require_fit, "Exit with status 3 when the model does not fit");
  cmd->callback([args] { run_plan(*args); });
}

}  // namespace twinspeed::cli
