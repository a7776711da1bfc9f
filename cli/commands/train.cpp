// `twinspeed train --config FILE --model M --backend sim|gloo|nccl [...]`: the ready-made training
// program (docs/CLI.md "train"). With --backend sim it is `simulate --fidelity numeric` (every rank
// on the simulated cluster, in this process). With a real backend this process is one rank of a
// run started by `twinspeed launch` (or mpirun, srun: comm::discover_dist_env): it creates the
// backend by name, trains its rank with planner::train_rank, the same per-rank program the
// simulator runs, and rank 0 prints the report.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/progress.hpp"
#include "cli/simulate_command.hpp"
#include "cli/simulate_numeric.hpp"
#include "cli/simulate_report.hpp"
#include "engine/comm/dist_env.hpp"
#include "engine/comm/registry.hpp"
#include "engine/core/errors.hpp"
#include "engine/core/trace_chrome.hpp"
#include "engine/core/trace_file.hpp"
#include "engine/core/trace_merge.hpp"
#include "engine/mesh/device_mesh.hpp"
#include "sim/planner/simulation.hpp"

namespace twinspeed::cli {

namespace {

struct TrainArgs {
  SimulateArgs run;  // config, model, cluster, world, pp, steps, seq, recompute, seed, json, no_progress
  std::string backend;
  double timeout_s = 300.0;
};

using i64 = std::int64_t;

// Combines the ranks' timelines into the steps of the report, over the world group: the loss is
// the mean over data-parallel replicas (each replica's first tp/sp rank of the last pipeline
// stage, as simulate reports it), the step time the slowest rank's wall time since its previous
// step (CLOCK_MONOTONIC: comparable across the processes of one node only).
std::vector<planner::StepReport> combine_steps(comm::Backend& backend, const Config& config,
                                               const planner::RankTimeline& t) {
  const MeshShape& mesh = config.mesh();
  const MeshCoordinates me = DeviceMesh(mesh).coord_of(backend.rank());
  const bool reports_loss = me.tp == 0 && me.sp == 0 && me.pp == mesh.pp - 1;
  const auto steps = static_cast<i64>(t.mean_loss.size());
  comm::Device& device = backend.device();
  Buffer loss = device.allocate(DType::f64, steps, MemoryTag::temporaries);
  Buffer took = device.allocate(DType::f64, steps, MemoryTag::temporaries);
  for (i64 s = 0; s < steps; ++s) {
    const auto i = static_cast<std::size_t>(s);
    loss.data_as<double>()[s] = reports_loss ? t.mean_loss[i] : 0.0;
    took.data_as<double>()[s] = static_cast<double>(t.end_ns[i] - (s == 0 ? t.setup_end_ns : t.end_ns[i - 1]));
  }
  backend.world()->all_reduce(loss.all(), {.reduce_op = comm::ReduceOp::sum})->wait();
  backend.world()->all_reduce(took.all(), {.reduce_op = comm::ReduceOp::max})->wait();
  std::vector<planner::StepReport> out;
  for (i64 s = 0; s < steps; ++s) {
    const auto i = static_cast<std::size_t>(s);
    planner::StepReport r{.step = s + 1, .lr = t.lr[i], .loss_scale = t.loss_scale[i], .skipped_steps = t.skipped_steps[i]};
    const double mean = loss.data_as<double>()[s] / static_cast<double>(mesh.dp);
    if (std::isfinite(mean)) r.loss = mean;
    r.skipped = r.skipped_steps > (s == 0 ? 0 : t.skipped_steps[i - 1]);
    r.step_time_ns = static_cast<i64>(took.data_as<double>()[s]);
    out.push_back(r);
  }
  return out;
}

// --trace with a real backend: this rank's trace as a document of its own, taken when training
// ends (before the report's collectives, which the simulation does not issue).
TraceDocument rank_trace(comm::Backend& backend, const Config& config) {
  TraceDocument doc;
  doc.metadata.notes = {fmt::format("real run on the {} backend, {} processes: times are wall-clock ns since each rank "
                                    "left the start barrier",
                                    backend.name(), backend.world_size())};
  doc.add_recorder({.rank = backend.rank(), .mesh = DeviceMesh(config.mesh()).coord_of(backend.rank())},
                   backend.tracer());
  return doc;
}

// Every rank writes its own trace beside path (rank_trace_path) and posts it on the store; rank 0
// merges them into path, so no shared file system is needed.
void write_traces(comm::Backend& backend, const TraceDocument& mine, const std::filesystem::path& path,
                  std::chrono::milliseconds timeout) {
  const std::string text = write_chrome_trace(mine);
  write_file_atomically(rank_trace_path(path, backend.rank()), text);
  backend.store().set(fmt::format("ts/trace/{}", backend.rank()), std::vector<std::uint8_t>(text.begin(), text.end()));
  if (backend.rank() != 0) return;
  std::vector<TraceDocument> parts;
  for (int r = 0; r < backend.world_size(); ++r) {
    const std::vector<std::uint8_t> posted = backend.store().get(fmt::format("ts/trace/{}", r), timeout);
    parts.push_back(read_chrome_trace(std::string_view(reinterpret_cast<const char*>(posted.data()), posted.size())));
  }
  write_chrome_trace_file(merge_traces(std::move(parts)), path);
}

void run_real(const TrainArgs& args) {
  const std::optional<comm::DistEnv> env = comm::discover_dist_env(comm::process_env());
  if (!env) {
    throw UsageError(fmt::format("train --backend {}: this process has no rank (RANK and WORLD_SIZE are unset)", args.backend),
                     fmt::format("run it under the launcher: twinspeed launch --nproc-per-node N -- twinspeed train "
                                 "--backend {} ... (or mpirun, or srun)", args.backend));
  }
  SimulateArgs run = args.run;
  if (run.world != 1 && run.world != env->world_size) {
    throw ConfigError("--world", std::to_string(run.world),
                      fmt::format("must equal the launcher's world size {} ({} variables)", env->world_size, env->source));
  }
  run.world = env->world_size;
  const RunSetup setup = prepare_run(run);
  // The backend's collective timeout, also bounding the start-up run check and the trace gather.
  const std::chrono::milliseconds timeout(static_cast<i64>(args.timeout_s * 1000.0));
  const nlohmann::json settings = {{"master_addr", env->master_addr},
                                   {"master_port", env->master_port},
                                   {"timeout_ms", timeout.count()}};
  std::shared_ptr<comm::Backend> backend = comm::create_backend(
      args.backend, {.rank = env->rank, .world_size = env->world_size, .settings_json = settings.dump()});
  const bool reporter = backend->rank() == 0;
  ProgressBar progress(run.steps, reporter && !run.no_progress);
  const auto start = std::chrono::steady_clock::now();
  auto wall_ns = [start] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  };
  const planner::RankTimeline timeline = planner::train_rank(
      {.config = &setup.config, .model = &setup.model, .steps = run.steps, .seq_len = setup.seq_len,
       .fidelity = sim::Fidelity::numeric, .seed = run.seed, .recompute = setup.recompute,
       .partition_method = setup.partition,
       .make_model = numeric_rank_model_factory({.source = run.data, .vocab_size = setup.model.vocab_size,
                                                 .seq_len = setup.seq_len,
                                                 .samples = run.steps * setup.config.batch().train_batch_size}),
       .on_step = [&](i64 step) { progress.update(step, fmt::format("step {}", step)); },
       .run_check_timeout = timeout},
      backend, wall_ns);
  progress.finish();
  std::optional<TraceDocument> trace;
  if (!run.trace.empty()) trace = rank_trace(*backend, setup.config);
  const std::vector<planner::StepReport> steps = combine_steps(*backend, setup.config, timeline);
  if (trace) write_traces(*backend, *trace, run.trace, timeout);
  if (!reporter) return;
  for (const ConfigWarning& w : setup.config.warnings()) print_warning({w.path, w.message, w.note});
  const MeshShape& m = setup.config.mesh();
  if (run.json) {
    nlohmann::ordered_json out = {{"schema", "twinspeed.train/1"},
                                  {"backend", args.backend},
                                  {"world", m.world()},
                                  {"mesh", {{"pp", m.pp}, {"dp", m.dp}, {"sp", m.sp}, {"tp", m.tp}}},
                                  {"config", run.config},
                                  {"model", run.model},
                                  {"seq_len", setup.seq_len},
                                  {"seed", run.seed},
                                  {"steps", steps_json(steps)},
                                  {"setup_time_s", static_cast<double>(timeline.setup_end_ns) * 1e-9},
                                  {"trace", run.trace.empty() ? nlohmann::ordered_json(nullptr)
                                                              : nlohmann::ordered_json(run.trace)},
                                  {"warnings", nlohmann::ordered_json::array()}};
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("twinspeed train: %s on %d %s ranks = pp %d x dp %d x sp %d x tp %d; config %s; seq %lld (%s)\n",
              run.model.c_str(), m.world(), args.backend.c_str(), m.pp, m.dp, m.sp, m.tp, run.config.c_str(),
              static_cast<long long>(setup.seq_len), setup.seq_source.c_str());
  print_step_rows(steps);
  std::printf("\nwall time %s of set-up; step times are the slowest rank's\n", seconds_text(timeline.setup_end_ns).c_str());
  if (!run.trace.empty()) {
    std::printf("trace written to %s (each rank's own beside it: %s, ...)\n", run.trace.c_str(),
                rank_trace_path(run.trace, 0).filename().c_str());
  }
}

void run_train(const TrainArgs& args) {
  if (args.backend == "sim") {
    if (args.run.cluster.empty()) {
      throw UsageError("train --backend sim needs --cluster C and --world N (the simulated cluster)");
    }
    SimulateArgs run = args.run;
    run.command = "train";
    run.fidelity = "numeric";
    run_simulate(run);
    return;
  }
  run_real(args);
}

}  // namespace

void register_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand(
      "train",
      "Train a model with a DeepSpeed config: --backend sim runs every rank on the simulated cluster in\n"
      "this process (as simulate --fidelity numeric); a real backend (gloo) runs this process's rank of\n"
      "a run started by `twinspeed launch` (docs/CLI.md \"train\").\n"
      "  twinspeed launch --nproc-per-node 2 -- twinspeed train --backend gloo --config configs/zero2_fp32.json \\\n"
      "      --model gpt-bench --steps 5");
  SimulateArgs& run = args->run;
  cmd->add_option("--config", run.config, "DeepSpeed JSON config")->required();
  cmd->add_option("--model", run.model,
                  fmt::format("Model preset ({}) or a Hugging Face config.json", fmt::join(model_preset_names(), ", ")))
      ->required();
  cmd->add_option("--backend", args->backend,
                  fmt::format("sim, or a real backend registered in this build ({})",
                              fmt::join(comm::registered_backends(), ", ")))
      ->required();
  cmd->add_option("--cluster", run.cluster, "--backend sim: the simulated cluster (preset or cluster JSON)");
  cmd->add_option("--world", run.world,
                  "--backend sim: ranks to simulate; a real backend takes WORLD_SIZE from the launcher (a --world "
                  "given must match it)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--pp", run.pp, "Pipeline stages (overrides pipeline.stages)")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--steps", run.steps, "Optimizer steps")->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--seq", run.seq, "Sequence length (default: the model's training length, at most 4096)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--recompute", run.recompute, "Activation recomputation of the blocks: none or full")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "full"}));
  cmd->add_option("--data", run.data,
                  "Training data: synthetic (seeded random tokens) or a token file (TSTOK1 or raw uint16 .bin; "
                  "docs/CLI.md \"Token files\")")
      ->capture_default_str();
  cmd->add_option("--seed", run.seed, "Seed of the initial weights and the synthetic data")->capture_default_str();
  cmd->add_option("--timeout", args->timeout_s, "A real backend's collective timeout, seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--trace", run.trace,
                  "Write the run's Chrome trace to this file, atomically; with a real backend each rank also writes "
                  "its own beside it (out.rank<R>.json) and rank 0 merges them");
  cmd->add_flag("--json", run.json, "Print the JSON report (schema twinspeed.train/1) instead of the table");
  cmd->add_flag("--no-progress", run.no_progress, "Never draw the progress bar");
  cmd->callback([args] { run_train(*args); });
}

}  // namespace twinspeed::cli
