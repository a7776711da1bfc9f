// `twinspeed calibrate [--out FILE] [--force] [--ranks N] [--quick] [--json] [--no-progress]`:
// re-measures the local-cpu preset on this machine (cli/calibrate_probes.hpp, cli/calibrate_gloo.hpp),
// writes the cluster file "local-cpu-calibrated" (docs/CLUSTER.md "Calibrating local-cpu") and prints
// it against the shipped preset. The hidden `calibrate-worker` subcommand is one rank of the Gloo probe.
#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/calibrate_gloo.hpp"
#include "cli/calibrate_probes.hpp"
#include "cli/calibration.hpp"
#include "cli/command.hpp"
#include "cli/progress.hpp"
#include "sim/presets/cluster_file.hpp"
#include "sim/presets/presets.hpp"

namespace twinspeed::cli {

namespace {

namespace fs = std::filesystem;

struct CalibrateArgs {
  std::string out = "local-cpu-calibrated.json";
  bool force = false;
  int ranks = 0;  // 0: the cores this process may run on
  bool quick = false;
  bool json = false;
  bool no_progress = false;
};

struct WorkerArgs {
  std::string sizes;
  int iterations = 10;
};

// What each probe runs: the default (15-25 s here under load) or --quick (~3 s, for tests).
struct ProbePlan {
  ProbeTiming timing;
  std::vector<std::int64_t> fp32_sizes, bf16_sizes, fp64_sizes;
  std::int64_t triad_elements = 0;
  std::vector<std::int64_t> all_reduce_bytes;
  int all_reduce_iterations = 0;
};

ProbePlan probe_plan(bool quick) {
  if (quick) {
    return {.timing = {.samples = 3, .min_sample_s = 0.003},
            .fp32_sizes = {32, 64, 128, 256},
            .bf16_sizes = {32, 64, 128},
            .fp64_sizes = {32, 64, 128},
            .triad_elements = std::int64_t{4} << 20,
            .all_reduce_bytes = {4 << 10, 64 << 10, 1 << 20},
            .all_reduce_iterations = 5};
  }
  // The sizes of bench/local_cpu_bench's BM_Matmul (bf16 and fp64 stop earlier: slower), its triad
  // arrays (64 MiB each, far past the caches) and gloo_bench's all_reduce sizes.
  return {.timing = {.samples = 5, .min_sample_s = 0.05},
          .fp32_sizes = {32, 64, 128, 256, 512, 1024},
          .bf16_sizes = {32, 64, 128, 256, 512},
          .fp64_sizes = {32, 64, 128, 256, 512},
          .triad_elements = std::int64_t{16} << 20,
          .all_reduce_bytes = {4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20},
          .all_reduce_iterations = 10};
}

int cores_available() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// Before measuring: the file must be new (or --force) and its directory must exist and be
// writable, so a bad --out fails in a second, not after the probes.
void check_out(const CalibrateArgs& args) {
  const fs::path out(args.out);
  std::error_code error;
  if (fs::exists(out, error) && !args.force) {
    throw UsageError(fmt::format("--out = \"{}\": the file exists; pass --force to replace it", args.out));
  }
  if (fs::is_directory(out, error)) throw UsageError(fmt::format("--out = \"{}\": is a directory", args.out));
  const fs::path directory = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  if (!fs::is_directory(directory, error)) {
    throw UsageError(fmt::format("--out = \"{}\": directory \"{}\" does not exist", args.out, directory.string()));
  }
  if (::access(directory.c_str(), W_OK) != 0) {
    throw UsageError(fmt::format("--out = \"{}\": directory \"{}\" is not writable", args.out, directory.string()));
  }
}

std::vector<std::int64_t> parse_sizes(const std::string& text) {
  std::vector<std::int64_t> sizes;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const std::int64_t bytes = std::stoll(item);
    if (bytes <= 0 || bytes % 4 != 0) throw UsageError("--sizes = " + item + ": must be a positive multiple of 4");
    sizes.push_back(bytes);
  }
  return sizes;
}

std::string method(const CalibrateArgs& args, int ranks) {
  char date[16] = "";
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  std::strftime(date, sizeof date, "%Y-%m-%d", ::gmtime_r(&now, &utc));
  return fmt::format("twinspeed calibrate{} --ranks {} ({})", args.quick ? " --quick" : "", ranks, date);
}

void run_calibrate(const CalibrateArgs& args) {
  if (args.ranks < 0) throw UsageError(fmt::format("--ranks = {}: must be in [1, 256], or 0 for every core", args.ranks));
  const int ranks = args.ranks > 0 ? args.ranks : cores_available();
  if (ranks < 1 || ranks > 256) throw UsageError(fmt::format("--ranks = {}: must be in [1, 256]", ranks));
  check_out(args);
  const auto begin = std::chrono::steady_clock::now();
  const ProbePlan plan = probe_plan(args.quick);
  const bool gloo = ranks > 1 && gloo_available();
  ProgressBar progress(gloo ? 6 : 5, !args.no_progress && ::isatty(2) != 0);

  CalibrationMeasurements m;
  m.ranks = ranks;
  m.method = method(args, ranks);
  m.cpu_model = cpu_model_name();
  m.host_memory_bytes = host_memory_bytes();
  std::int64_t step = 0;
  for (const auto& [dtype, sizes] : {std::pair{"fp32", &plan.fp32_sizes}, std::pair{"bf16", &plan.bf16_sizes},
                                     std::pair{"fp64", &plan.fp64_sizes}}) {
    progress.update(step++, fmt::format("matmul {}", dtype));
    for (MatmulTiming& t : time_matmuls(dtype, *sizes, plan.timing)) m.matmuls.push_back(std::move(t));
  }
  progress.update(step++, "STREAM triad");
  m.triad_bytes_per_s = triad_bytes_per_s(plan.triad_elements, plan.timing);
  progress.update(step++, "vector FMA");
  m.vector_fma_flops_per_s = vector_fma_flops_per_s(plan.timing);
  if (gloo) {
    progress.update(step++, fmt::format("Gloo all_reduce on {} processes", ranks));
    m.all_reduces = measure_gloo_all_reduce(ranks, plan.all_reduce_bytes, plan.all_reduce_iterations);
  }
  progress.finish();
  m.load_average = load_average();

  const sim::ClusterSpec& preset = sim::cluster_preset("local-cpu");
  std::vector<CalibrationWarning> warnings;
  const sim::ClusterSpec calibrated = calibrated_cluster(m, preset, warnings);
  // The probes took a while: check again that nothing appeared at --out meanwhile.
  check_out(args);
  sim::save_cluster_file(calibrated, args.out);
  const double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  for (const CalibrationWarning& w : warnings) {
    std::fprintf(stderr, "warning: %s: %s\n", w.path.c_str(), w.message.c_str());
  }
  if (args.json) {
    std::printf("%s\n", calibrate_report_json(m, preset, calibrated, args.out, elapsed_s, warnings).dump(2).c_str());
  } else {
    std::printf("%s", calibrate_report_table(m, preset, calibrated, args.out, elapsed_s).c_str());
  }
}

}  // namespace

void register_calibrate_command(CLI::App& app) {
  auto args = std::make_shared<CalibrateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "Re-measure the local-cpu preset on this machine and write a cluster file (~20 s)");
  cmd->add_option("--out", args->out, "Cluster file to write (twinspeed.cluster/1); never replaced without --force")
      ->capture_default_str();
  cmd->add_flag("--force", args->force, "Replace --out if it exists (written atomically)");
  cmd->add_option("--ranks", args->ranks,
                  "Ranks (processes, one per core) of the cluster and of the Gloo probe; default: this process's "
                  "cores");
  cmd->add_flag("--quick", args->quick, "Fewer sizes and shorter samples (~3 s; for tests, noisier numbers)");
  cmd->add_flag("--json", args->json, "Print the twinspeed.calibrate/1 report instead of the table");
  cmd->add_flag("--no-progress", args->no_progress, "Never draw the progress bar");
  cmd->callback([args] { run_calibrate(*args); });

  auto worker = std::make_shared<WorkerArgs>();
  CLI::App* rank = app.add_subcommand(kCalibrateWorkerCommand, "One rank of calibrate's Gloo probe (internal)");
  rank->group("");  // hidden: started by calibrate through the launcher
  rank->add_option("--sizes", worker->sizes, "all_reduce sizes in bytes, comma-separated")->required();
  rank->add_option("--iterations", worker->iterations, "timed all_reduces per size")->check(CLI::Range(1, 10000));
  rank->callback([worker] { run_all_reduce_probe_rank(parse_sizes(worker->sizes), worker->iterations, stdout); });
}

}  // namespace twinspeed::cli
