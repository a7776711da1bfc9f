// `twinspeed simulate --config FILE --model M --cluster C --world N --steps K [...]`: trains the model
// with the DeepSpeed config on a simulated cluster, one Engine per rank, and reports per-step loss,
// LR, loss scale, skipped steps and virtual step time, and per-rank peak memory by tag
// (docs/CLI.md "simulate"). The run is sim/planner/simulation.cpp; the numeric model is the only
// LibTorch part (cli/simulate_numeric.cpp).
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>

#include "cli/command.hpp"
#include "cli/progress.hpp"
#include "cli/simulate_numeric.hpp"
#include "cli/simulate_command.hpp"
#include "cli/simulate_report.hpp"
#include "sim/planner/plan.hpp"
#include "sim/planner/simulation.hpp"
#include "engine/core/errors.hpp"
#include "engine/core/trace_chrome.hpp"
#include "engine/mesh/device_mesh.hpp"
#include "sim/presets/cluster_file.hpp"
#include "sim/presets/presets.hpp"

namespace twinspeed::cli {

namespace {

// --seq, else the model's default (its training length, or its positions capped at 4096).
std::pair<std::int64_t, std::string> resolve_seq(const SimulateArgs& args, const ModelConfig& model) {
  if (args.seq) {
    if (model.learned_positions && *args.seq > model.max_positions) {
      throw ConfigError("--seq", std::to_string(*args.seq),
                        fmt::format("longer than the model's learned position table (n_positions {})",
                                    model.max_positions));
    }
    return {*args.seq, "--seq"};
  }
  DefaultSeqLen seq = default_seq_length(model);
  return {seq.value, std::move(seq.source)};
}

struct FidelityChoice {
  sim::Fidelity fidelity = sim::Fidelity::shape;
  std::string source;
  std::optional<std::string> note;
};

// Numeric unless the whole cluster's estimated host bytes exceed half the host's memory.
FidelityChoice choose_fidelity(const SimulateArgs& args, const Config& config, const ModelConfig& model,
                               std::int64_t seq_len) {
  if (args.fidelity == "numeric") return {sim::Fidelity::numeric, "--fidelity", {}};
  if (args.fidelity == "shape") return {sim::Fidelity::shape, "--fidelity", {}};
  const std::int64_t need = planner::estimate_numeric_host_bytes(config, model, seq_len, planner::parse_recompute(args.recompute));
  const std::optional<std::int64_t> host = planner::host_memory_bytes();
  const std::string estimate = fmt::format("numeric needs ~{} of host memory", format_bytes(need));
  if (!host) {
    return {sim::Fidelity::shape, "default: host memory unknown",
            "cannot read /proc/meminfo; running shape-only (--fidelity numeric to force)"};
  }
  if (need > *host / 2) {
    return {sim::Fidelity::shape, fmt::format("default: {}, more than half of {}", estimate, format_bytes(*host)),
            fmt::format("{}, more than half of the host's {}: running shape-only (--fidelity numeric to force)",
                        estimate, format_bytes(*host))};
  }
  return {sim::Fidelity::numeric, fmt::format("default: {}, within half of {}", estimate, format_bytes(*host)), {}};
}


}  // namespace

RunSetup prepare_run(const SimulateArgs& args) {
  RunSetup r{.config = Config::load(args.config, LoadOptions{.world = args.world, .pp = args.pp}),
             .model = load_model_preset(args.model)};
  std::tie(r.seq_len, r.seq_source) = resolve_seq(args, r.model);
  r.recompute = planner::parse_recompute(args.recompute);
  const PipelineConfig& pipe = r.config.pipeline();
  if (r.config.mesh().pp > 1 && pipe.activation_checkpoint_interval > 0 && r.recompute == RecomputeMode::none) {
    // DeepSpeed's PipelineModule checkpoints every `interval` layers; the zoo checkpoints blocks.
    r.recompute = RecomputeMode::full;
    r.checkpoint_note = fmt::format("activation_checkpoint_interval {}: the transformer blocks recompute their "
                                    "forward in backward (as --recompute full{})",
                                    pipe.activation_checkpoint_interval,
                                    pipe.activation_checkpoint_interval > 1 ? "; every block keeps its input, where "
                                                                              "DeepSpeed keeps one per interval" : "");
  }
  // DeepSpeed's PipelineModule takes its partition_method as an argument ("parameters" by
  // default); twinspeed reads pipeline.partition, whose DeepSpeed default "best" means that.
  r.partition = pipe.partition.empty() || pipe.partition == "best" ? "parameters" : pipe.partition;
  return r;
}

void run_simulate(const SimulateArgs& args) {
  const RunSetup setup = prepare_run(args);
  const Config& config = setup.config;
  const ModelConfig& model = setup.model;
  const std::int64_t seq_len = setup.seq_len;
  const std::string& seq_source = setup.seq_source;
  const RecomputeMode recompute = setup.recompute;
  const std::optional<std::string>& checkpoint_note = setup.checkpoint_note;
  const std::string& partition = setup.partition;
  const sim::ClusterSpec cluster = sim::resolve_cluster(args.cluster);
  if (cluster.inter_node.kind == "none" && args.world > cluster.devices_per_node) {
    // Growing the cluster to more nodes would need a network it does not have.
    throw ConfigError("--world", std::to_string(args.world),
                      fmt::format("cluster {} has no network between nodes: at most {} ranks (its devices per node)",
                                  cluster.name, cluster.devices_per_node));
  }
  const FidelityChoice fidelity = choose_fidelity(args, config, model, seq_len);
  if (recompute == RecomputeMode::selective && fidelity.fidelity == sim::Fidelity::numeric) {
    throw NotImplemented("--recompute selective: the model zoo recomputes whole blocks only (full); run it with "
                         "--fidelity shape");
  }

  SimulateReport report{.command = args.command, .config_path = args.config, .model_name = args.model, .cluster_name = cluster.name,
                        .config = &config, .model = &model, .cluster = &cluster, .seq_len = seq_len,
                        .seq_source = seq_source, .fidelity = fidelity.fidelity,
                        .fidelity_source = fidelity.source, .all_ranks = args.all_ranks,
                        .per_rank = args.per_rank, .seed = args.seed,
                        .recompute = checkpoint_note ? std::string("full") : args.recompute};
  for (const ConfigWarning& w : config.warnings()) report.warnings.push_back({w.path, w.message, w.note});
  if (fidelity.note) report.warnings.push_back({"fidelity", *fidelity.note, true});
  if (checkpoint_note) report.warnings.push_back({"pipeline.activation_checkpoint_interval", *checkpoint_note, true});
  if (args.all_ranks && fidelity.fidelity == sim::Fidelity::numeric) {
    report.warnings.push_back({"--all-ranks", "numeric fidelity simulates every rank anyway", true});
  }
  ProgressBar progress(args.steps, !args.no_progress);
  const auto wall_start = std::chrono::steady_clock::now();
  const planner::SimulateResult result = planner::run_simulation(
      {.config = &config, .model = &model, .cluster = cluster, .steps = args.steps, .seq_len = seq_len,
       .fidelity = fidelity.fidelity, .seed = args.seed, .recompute = recompute, .partition_method = partition,
       .make_model = fidelity.fidelity == sim::Fidelity::numeric
                         ? numeric_rank_model_factory({.source = args.data, .vocab_size = model.vocab_size,
                                                       .seq_len = seq_len,
                                                       .samples = args.steps * config.batch().train_batch_size})
                         : planner::RankModelFactory(planner::make_shape_rank_model),
       .on_step = [&](std::int64_t step) { progress.update(step, fmt::format("step {}", step)); },
       .all_ranks = args.all_ranks});
  progress.finish();
  if (!result.collapse_refused.empty()) report.warnings.push_back({"collapse", result.collapse_refused, true});
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  report.result = &result;
  // After the run, so that when it fails the error is the first line of stderr.
  for (const ReportWarning& w : report.warnings) print_warning(w);

  if (!args.trace.empty()) {
    const DeviceMesh mesh(config.mesh());
    write_chrome_trace_file(result.cluster->trace_document([&](int rank) { return mesh.coord_of(rank); }), args.trace);
    report.trace_path = args.trace;
  }
  if (args.json) {
    std::printf("%s\n", simulate_json(report).dump(2).c_str());
  } else {
    print_simulate_table(report);
  }
  // Wall time varies from run to run: stderr, so stdout stays identical for identical runs.
  std::fprintf(stderr, "note: %s: %d ranks x %d steps simulated in %.3f s wall time%s\n", args.command.c_str(),
               config.mesh().world(),
               args.steps, wall_s, args.trace.empty() ? "" : fmt::format("; trace written to {}", args.trace).c_str());
}

void register_simulate_command(CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  auto* cmd = app.add_subcommand(
      "simulate",
      "Train a model with a DeepSpeed config on a simulated cluster (one engine per rank) and report\n"
      "per-step loss, LR, loss scale, skipped steps and simulated step time, and per-rank peak memory\n"
      "with the bytes of each tag live at the peak (docs/CLI.md \"simulate\").");
  cmd->add_option("--config", args->config, "DeepSpeed JSON config")->required();
  cmd->add_option("--model", args->model,
                  fmt::format("Model preset ({}) or a Hugging Face config.json", fmt::join(model_preset_names(), ", ")))
      ->required();
  cmd->add_option("--cluster", args->cluster,
                  "Cluster preset (dgx-a100-80gb, dgx-h100, dgx-h200, vtrain-a100, local-cpu) or a cluster JSON file")
      ->required();
  cmd->add_option("--world", args->world, "Number of simulated ranks")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--pp", args->pp,
                  "Pipeline stages: the model's layers split across stages (PipelineEngine, 1F1B); overrides "
                  "pipeline.stages")
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--steps", args->steps, "Optimizer steps (accumulation boundaries) to run")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--seq", args->seq,
                  "Sequence length (default: the model's n_positions / max_position_embeddings, at most 4096)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--fidelity", args->fidelity,
                  "numeric (real CPU math on every rank) or shape (data-less buffers); default: numeric when the "
                  "estimate fits in half the host memory")
      ->check(CLI::IsMember({"numeric", "shape"}));
  cmd->add_option("--recompute", args->recompute,
                  "Activation recomputation of the transformer blocks: none, selective (attention core; shape "
                  "fidelity only) or full (activation checkpointing)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "selective", "full"}));
  cmd->add_flag("--all-ranks", args->all_ranks,
                "Shape fidelity: simulate every rank rather than one per class of symmetric ranks (same results, "
                "slower; numeric fidelity simulates every rank anyway)");
  cmd->add_option("--seed", args->seed, "Seed of the numeric model's initialisation and synthetic data")
      ->capture_default_str();
  cmd->add_option("--trace", args->trace, "Write the run's Chrome trace (Perfetto) to this file, atomically");
  cmd->add_flag("--json", args->json, "Print the JSON report (schema twinspeed.simulate/1) instead of the tables");
  cmd->add_flag("--per-rank", args->per_rank, "Print every rank's memory, not only min / median / max");
  cmd->add_flag("--no-progress", args->no_progress, "Never draw the progress bar (drawn on stderr only on a terminal)");
  cmd->callback([args] { run_simulate(*args); });
}

}  // namespace twinspeed::cli
