// `twinspeed demo`: the Quick start's main job. Trains a small MLP on a synthetic regression task
// through twinspeed::initialize() on 8 simulated ranks of a DGX H100 (ZeRO-2, fp32), prints the
// loss, learning rate, loss scale, gradient norm and simulated step time every --print-every steps,
// and writes the run's Chrome trace.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <twinspeed/torch.hpp>

#include "cli/command.hpp"
#include "cli/progress.hpp"
#include "cli/simulate_report.hpp"
#include "engine/core/trace_chrome.hpp"
#include "sim/cluster.hpp"
#include "sim/preset_costs.hpp"
#include "sim/presets/cluster_file.hpp"
#include "sim/sim_device.hpp"

namespace twinspeed::cli {

namespace {

// ZeRO-2 in fp32 (LibTorch's bf16 matmul is ~23x slower than fp32 on this kind of CPU). Small
// reduce buckets with overlap_comm, so the trace shows gradient buckets reduced during backward.
constexpr const char* kDemoConfig = R"({
  "train_micro_batch_size_per_gpu": 32,
  "gradient_accumulation_steps": 2,
  "optimizer": {"type": "AdamW", "params": {"lr": 0.003, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}},
  "scheduler": {"type": "WarmupDecayLR",
                "params": {"warmup_min_lr": 0.0, "warmup_max_lr": 0.003, "warmup_num_steps": 20, "total_num_steps": 200}},
  "gradient_clipping": 1.0,
  "zero_optimization": {"stage": 2, "reduce_bucket_size": 2048, "overlap_comm": true}
})";

struct DemoOptions {
  std::string config_path;
  std::int64_t steps = 200;
  std::int64_t print_every = 10;
  std::uint64_t seed = 42;
  std::int64_t samples = 4096;
  int world = 8;
  std::string cluster = "dgx-h100";
  std::string trace = "twinspeed-demo-trace.json";
  bool no_trace = false;
  bool no_progress = false;
};

// y = sin(2 x.a) + tanh(x.b) + small noise, a and b unit vectors: smooth, non-linear, and
// learnable by a small MLP in a few hundred steps.
std::shared_ptr<TensorDataset> make_dataset(std::int64_t samples, std::int64_t features) {
  torch::Tensor x = torch::randn({samples, features});
  torch::Tensor a = torch::randn({features, 1});
  torch::Tensor b = torch::randn({features, 1});
  a /= a.norm();
  b /= b.norm();
  torch::Tensor y = torch::sin(2.0 * x.matmul(a)) + torch::tanh(x.matmul(b)) + 0.01 * torch::randn({samples, 1});
  return std::make_shared<TensorDataset>(x, y);
}

// What one rank saw at each optimizer step.
struct StepRecord {
  double loss_sum = 0;  // over the step's micro-batches
  double lr = 0;
  double loss_scale = 1;
  double grad_norm = 0;
  std::int64_t end_ns = 0;  // the rank's compute clock after the step
};

struct RankRecord {
  std::vector<StepRecord> steps;
  std::int64_t micro_per_step = 1;
  std::int64_t samples = 0;
};

void run_demo(const DemoOptions& o) {
  constexpr std::int64_t kFeatures = 16, kHidden = 64;
  torch::manual_seed(o.seed);
  auto dataset = make_dataset(o.samples, kFeatures);
  const sim::ClusterSpec cluster = sim::cluster_for_world(sim::resolve_cluster(o.cluster), o.world);
  sim::SimCluster sim_cluster(sim::cluster_options(cluster, o.world, sim::Fidelity::numeric, DType::f32));

  std::vector<RankRecord> ranks(static_cast<std::size_t>(o.world));
  std::string header;
  ProgressBar progress(o.steps, !o.no_progress);
  const auto start = std::chrono::steady_clock::now();
  sim_cluster.run([&](comm::Backend& backend) {
    const int rank = backend.rank();
    // Every rank builds the same model from the same seed, as every DeepSpeed process does.
    torch::manual_seed(o.seed + 1);
    Model model(torch::nn::Sequential(torch::nn::Linear(kFeatures, kHidden), torch::nn::ReLU(),
                                      torch::nn::Linear(kHidden, kHidden), torch::nn::ReLU(),
                                      torch::nn::Linear(kHidden, 1)),
                [](const torch::Tensor& out, const torch::Tensor& labels) { return torch::mse_loss(out, labels); });
    InitializeArgs args{.model = std::move(model), .training_data = dataset};
    if (o.config_path.empty()) {
      args.config = ConfigSource::from_text(kDemoConfig);
    } else {
      args.config = o.config_path;
    }
    auto [engine, optimizer, loader, scheduler] = initialize(std::move(args));
    const Engine& core = engine->core();
    RankRecord& record = ranks[static_cast<std::size_t>(rank)];
    record.micro_per_step = core.settings().gradient_accumulation_steps;
    if (rank == 0) {
      for (const auto& w : engine->config().warnings()) {
        std::fprintf(stderr, "%s: %s%s%s\n", w.note ? "note" : "warning", w.path.c_str(), w.path.empty() ? "" : ": ",
                     w.message.c_str());
      }
      const auto& s = core.settings();
      header = fmt::format(
          "twinspeed demo: MLP {}-{}-{}-1 ({} parameters), {} samples, {} simulated ranks of {} ({})\n"
          "config: {}; ZeRO-{} {}, micro-batch {} x accumulation {} x dp {} = batch {}, optimizer {}{}\n",
          kFeatures, kHidden, kHidden, core.model_layout().params.empty() ? 0 : [&] {
            std::int64_t n = 0;
            for (const auto& p : core.model_layout().params) n += p.numel;
            return n;
          }(), o.samples, o.world, cluster.name, cluster.device.name,
          o.config_path.empty() ? "built-in" : o.config_path, s.zero_stage, dtype_name(core.compute_dtype()),
          s.micro_batch_per_gpu, s.gradient_accumulation_steps, s.mesh.dp, s.train_batch_size,
          optimizer->name(), scheduler ? fmt::format(", scheduler {}", scheduler->name()) : "");
    }
    auto* device = dynamic_cast<sim::SimDevice*>(&backend.device());
    StepRecord current;
    while (engine->global_steps() < o.steps) {
      for (auto& batch : *loader) {
        torch::Tensor loss = engine->forward(batch);
        engine->backward(loss);
        const bool boundary = engine->is_gradient_accumulation_boundary();
        // The learning rate this step's update uses (the scheduler moves it after the step).
        current.lr = engine->get_lr().empty() ? 0.0 : engine->get_lr()[0];
        engine->step();
        current.loss_sum += loss.item<double>();
        if (!boundary) continue;
        current.loss_scale = engine->loss_scale();
        current.grad_norm = core.last_gradient_norm();
        current.end_ns = device ? device->compute().clock_ns() : 0;
        record.steps.push_back(current);
        current = {};
        if (rank == 0) progress.update(engine->global_steps(), "");
        if (engine->global_steps() >= o.steps) break;
      }
    }
    record.samples = core.global_samples();
  });
  progress.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::fputs(header.c_str(), stdout);
  std::printf("\n%6s  %12s  %12s  %10s  %10s  %13s\n", "step", "loss", "lr", "loss scale", "grad norm", "sim step time");
  std::printf("%6s  %12s\n", "", fmt::format("(mean of {})", o.print_every).c_str());
  double first_loss = -1, last_loss = 0, interval = 0;
  std::int64_t interval_steps = 0;
  for (std::int64_t step = 1; step <= o.steps; ++step) {
    const auto i = static_cast<std::size_t>(step - 1);
    // The loss averaged over the data-parallel ranks and the step's micro-batches.
    double mean = 0;
    for (const auto& r : ranks) mean += r.steps[i].loss_sum / static_cast<double>(r.micro_per_step);
    interval += mean / static_cast<double>(ranks.size());
    ++interval_steps;
    if (step % o.print_every != 0 && step != o.steps) continue;
    const double shown = interval / static_cast<double>(interval_steps);
    interval = 0;
    interval_steps = 0;
    if (first_loss < 0) first_loss = shown;
    last_loss = shown;
    const StepRecord& r0 = ranks[0].steps[i];
    const std::int64_t previous = i == 0 ? 0 : ranks[0].steps[i - 1].end_ns;
    std::printf("%6lld  %12.5f  %12.6g  %10g  %10.4f  %10.3f us\n", static_cast<long long>(step), shown, r0.lr,
                r0.loss_scale, r0.grad_norm, static_cast<double>(r0.end_ns - previous) / 1e3);
  }
  const std::int64_t samples = ranks[0].samples;
  std::printf("\nloss %.5f -> %.5f over %lld steps (%lld samples, %.0f samples/s of wall time)\n", first_loss,
              last_loss, static_cast<long long>(o.steps), static_cast<long long>(samples),
              static_cast<double>(samples) / std::max(seconds, 1e-9));
  std::int64_t peak = 0;
  int worst = 0;
  for (int r = 0; r < o.world; ++r) {
    const auto m = sim_cluster.memory(r);
    if (m.total_peak_bytes > peak) peak = m.total_peak_bytes, worst = r;
  }
  const std::int64_t reserved = sim_cluster.memory(worst).current(MemoryTag::reserved);
  std::printf("simulated: %.3f ms of virtual time; peak device memory %s on rank %d (%s reserved by the runtime, "
              "%s for training)\n",
              static_cast<double>(ranks[0].steps.back().end_ns) / 1e6, format_bytes(peak).c_str(), worst,
              format_bytes(reserved).c_str(), format_bytes(peak - reserved).c_str());
  if (!o.no_trace) {
    write_chrome_trace_file(sim_cluster.trace_document(), o.trace);
    std::printf("trace: %s (open it in https://ui.perfetto.dev or chrome://tracing)\n", o.trace.c_str());
  }
}

}  // namespace

void register_demo_command(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  auto* demo = app.add_subcommand(
      "demo",
      "Train a small MLP through twinspeed::initialize() on 8 simulated ranks of a DGX H100 (ZeRO-2,\n"
      "fp32) and print the loss (mean over ranks and each --print-every steps), learning rate, loss\n"
      "scale, gradient norm and simulated step time; write the run's Chrome trace.\n"
      "Runs with no arguments; --config trains with your DeepSpeed JSON instead of the built-in one.");
  demo->add_option("--config", options->config_path,
                   "DeepSpeed JSON config to train with (default: a built-in ZeRO-2 AdamW + WarmupDecayLR config)")
      ->check(CLI::ExistingFile);
  demo->add_option("--steps", options->steps, "Optimizer steps to run")->capture_default_str()->check(CLI::Range(1, 100000));
  demo->add_option("--print-every", options->print_every, "Print one row per this many steps (mean loss over them)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  demo->add_option("--seed", options->seed, "Seed of the model initialisation and the synthetic data")
      ->capture_default_str();
  demo->add_option("--samples", options->samples, "Size of the synthetic dataset")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  demo->add_option("--world", options->world, "Simulated ranks")->capture_default_str()->check(CLI::Range(1, 1024));
  demo->add_option("--cluster", options->cluster, "Cluster preset the ranks run on (see `twinspeed presets`) or a cluster JSON file")
      ->capture_default_str();
  demo->add_option("--trace", options->trace, "Where to write the run's Chrome trace (written atomically)")
      ->capture_default_str();
  demo->add_flag("--no-trace", options->no_trace, "Write no trace");
  demo->add_flag("--no-progress", options->no_progress, "Never draw the progress bar on stderr");
  demo->callback([options] { run_demo(*options); });
}

}  // namespace twinspeed::cli
