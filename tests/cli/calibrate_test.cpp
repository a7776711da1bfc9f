// `twinspeed calibrate` (docs/CLI.md "calibrate", docs/CLUSTER.md "Calibrating local-cpu"): the
// cluster it builds from measurements round-trips through the cluster-file reader; the built
// command writes a file `simulate --cluster` accepts, refuses to replace a file without --force,
// and fails on a bad --out before measuring. No test depends on how fast this machine is: measured
// values are only checked to be positive and finite.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/calibration.hpp"
#include "sim/presets/cluster_file.hpp"
#include "sim/presets/presets.hpp"

namespace twinspeed::cli {
namespace {

namespace fs = std::filesystem;

// Synthetic measurements on the Hockney curve and the ring model with known parameters.
CalibrationMeasurements synthetic(int ranks) {
  CalibrationMeasurements m;
  m.ranks = ranks;
  m.cpu_model = "Test CPU";
  m.host_memory_bytes = std::int64_t{24} << 30;
  m.load_average = 0.5;
  m.method = "twinspeed calibrate --ranks 2 (test)";
  for (auto [dtype, peak] : {std::pair{"fp32", 130e9}, std::pair{"bf16", 400e9}, std::pair{"fp64", 50e9}}) {
    for (std::int64_t n : {32, 64, 128, 256}) {
      MatmulTiming t{.dtype = dtype, .n = n};
      const double half_gflop = 1.2e-4 * peak / 130e9;  // the same ramp time in every dtype
      t.seconds = (t.gflop() + half_gflop) * 1e9 / peak;
      m.matmuls.push_back(t);
    }
  }
  m.triad_bytes_per_s = 30e9;
  m.vector_fma_flops_per_s = 55e9;
  for (std::int64_t bytes = 4096; bytes <= (16 << 20); bytes *= 4) {
    const double n = ranks;
    // Wall time: step 8 us, busbw 1.5 GB/s; CPU time: step 2 us, busbw 3 GB/s.
    m.all_reduces.push_back(
        {.bytes = bytes,
         .seconds = 2 * (n - 1) * 8e-6 + static_cast<double>(bytes) * 2 * (n - 1) / n / 1.5e9,
         .cpu_seconds = 2 * (n - 1) * 2e-6 + static_cast<double>(bytes) * 2 * (n - 1) / n / 3e9});
  }
  return m;
}

TEST(CalibratedCluster, RecoversTheMeasuredNumbersAndRoundTripsThroughTheReader) {
  std::vector<CalibrationWarning> warnings;
  const sim::ClusterSpec& preset = sim::cluster_preset("local-cpu");
  const sim::ClusterSpec c = calibrated_cluster(synthetic(4), preset, warnings);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(c.name, "local-cpu-calibrated");
  EXPECT_EQ(c.devices_per_node, 4);
  EXPECT_NEAR(c.device.matmul_peak_tflops.fp32, 0.130, 1e-9);
  EXPECT_NEAR(c.device.matmul_peak_tflops.bf16, 0.400, 1e-9);
  EXPECT_NEAR(c.device.matmul_peak_tflops.fp64, 0.050, 1e-9);
  EXPECT_EQ(c.device.matmul_peak_tflops.fp16, 0.0);
  // The fp32 ramp stated at the fastest (bf16) peak, as the preset states it.
  EXPECT_NEAR(c.device.matmul_half_efficiency_gflop, 1.2e-4 * 400 / 130, 1e-12);
  EXPECT_NEAR(c.device.memory_bandwidth_GBps, 30.0, 1e-9);
  EXPECT_NEAR(c.device.vector_peak_tflops, 0.055, 1e-12);
  EXPECT_EQ(c.device.capacity_bytes, (std::int64_t{22} << 30) / 4);
  EXPECT_NEAR(c.intra_node.busbw_GBps, 1.5, 1e-9);
  EXPECT_NEAR(c.intra_node.ring_step_latency_us, 8.0, 1e-9);
  for (const std::string* source : {&c.device.compute_source, &c.device.memory_bandwidth_source,
                                    &c.device.memory_source, &c.device.efficiency_source, &c.intra_node.source}) {
    EXPECT_EQ(source->rfind("measured: twinspeed calibrate", 0), 0u) << *source;
  }
  EXPECT_EQ(sim::parse_cluster(sim::write_cluster(c)), c);
}

TEST(CalibratedCluster, ABusyMachinesLinkIsFittedToCpuTime) {
  CalibrationMeasurements m = synthetic(2);
  m.load_average = 7.5;  // more runnable threads than the 2 ranks' cores
  std::vector<CalibrationWarning> warnings;
  const sim::ClusterSpec c = calibrated_cluster(m, sim::cluster_preset("local-cpu"), warnings);
  EXPECT_NEAR(c.intra_node.busbw_GBps, 3.0, 1e-9);
  EXPECT_NEAR(c.intra_node.ring_step_latency_us, 2.0, 1e-9);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].path, "intra_node");
  EXPECT_NE(warnings[0].message.find("busbw 1.5 GB/s, step 8 us"), std::string::npos) << warnings[0].message;
  EXPECT_NE(c.intra_node.source.find("CPU time"), std::string::npos);
}

TEST(CalibratedCluster, KeepsThePresetsLinkWhenNoAllReduceWasMeasured) {
  CalibrationMeasurements m = synthetic(1);
  m.all_reduces.clear();
  std::vector<CalibrationWarning> warnings;
  const sim::ClusterSpec& preset = sim::cluster_preset("local-cpu");
  const sim::ClusterSpec c = calibrated_cluster(m, preset, warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].path, "intra_node");
  EXPECT_EQ(c.intra_node.busbw_GBps, preset.intra_node.busbw_GBps);
  EXPECT_EQ(sim::parse_cluster(sim::write_cluster(c)), c);
}

// A loaded machine (or a --quick run) can time a bigger matmul or all_reduce no slower than a
// smaller one: nothing to fit. The command still writes a cluster: the best measured matmul rate
// as the peak, the preset's link, and a warning for each.
TEST(CalibratedCluster, TimesThatDoNotGrowWithTheSizeGiveTheBestRateAndThePresetsLinkWithWarnings) {
  CalibrationMeasurements m = synthetic(2);
  for (MatmulTiming& t : m.matmuls) {
    if (t.dtype == "fp32") t.seconds = 1e-3;  // every size in the same time: the last is the fastest rate
  }
  for (AllReduceTiming& t : m.all_reduces) t.seconds = t.cpu_seconds = 1e-3;
  std::vector<CalibrationWarning> warnings;
  const sim::ClusterSpec& preset = sim::cluster_preset("local-cpu");
  const sim::ClusterSpec c = calibrated_cluster(m, preset, warnings);
  EXPECT_NEAR(c.device.matmul_peak_tflops.fp32, 2.0 * 256 * 256 * 256 / 1e-3 / 1e12, 1e-12);
  EXPECT_EQ(c.device.matmul_half_efficiency_gflop, 0.0);
  EXPECT_NEAR(c.device.matmul_peak_tflops.bf16, 0.400, 1e-9);  // its times do grow: fitted
  EXPECT_EQ(c.intra_node.busbw_GBps, preset.intra_node.busbw_GBps);
  std::vector<std::string> paths;
  for (const CalibrationWarning& w : warnings) paths.push_back(w.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"device.compute.matmul_peak_tflops.fp32", "intra_node"}));
  EXPECT_EQ(sim::parse_cluster(sim::write_cluster(c)), c);
}

// ---- the built binary ------------------------------------------------------------------------

struct CommandRun {
  int exit_code = -1;
  std::string out, err;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs `twinspeed ARGS` from the source directory (the shipped configs are relative to it).
CommandRun run_twinspeed(const std::string& args, const fs::path& scratch) {
  const fs::path out = scratch / "stdout", err = scratch / "stderr";
  const std::string command = std::string("cd '") + TWINSPEED_SOURCE_DIR + "' && '" + TWINSPEED_BINARY + "' " + args +
                              " > '" + out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(command.c_str());
  return {.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1, .out = read_file(out), .err = read_file(err)};
}

class CalibrateCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    scratch_ = fs::temp_directory_path() /
               ("twinspeed-calibrate-test-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(scratch_);
  }
  void TearDown() override { fs::remove_all(scratch_); }
  fs::path scratch_;
};

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

TEST_F(CalibrateCommand, QuickRunWritesAClusterFileThatSimulateAccepts) {
  const fs::path file = scratch_ / "calibrated.json";
  const CommandRun run =
      run_twinspeed("calibrate --quick --json --no-progress --ranks 2 --out '" + file.string() + "'", scratch_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report.at("schema"), "twinspeed.calibrate/1");
  EXPECT_TRUE(report.at("warnings").is_array());
  for (const nlohmann::json& row : report.at("comparison")) {
    const double measured = row.at("measured").get<double>();
    // The two intercepts of the fits are clamped to 0 (with a warning) when a loaded machine's
    // timings fit a negative one; every rate and size is positive.
    const std::string key = row.at("key");
    const bool intercept = key == "intra_node.ring_step_latency_us" || key == "device.efficiency.matmul_half_gflop";
    EXPECT_TRUE(std::isfinite(measured) && (intercept ? measured >= 0.0 : measured > 0.0)) << row.dump();
  }
  const sim::ClusterSpec cluster = sim::load_cluster_file(file);
  EXPECT_EQ(cluster.name, "local-cpu-calibrated");
  EXPECT_EQ(cluster.devices_per_node, 2);
  EXPECT_EQ(sim::cluster_from_json(report.at("cluster")), cluster);  // the report carries the file's cluster

  const CommandRun simulate = run_twinspeed(
      "simulate --config configs/zero2_fp32.json --model gpt-bench --world 2 --steps 1 --fidelity shape --json "
      "--cluster '" + file.string() + "'",
      scratch_);
  ASSERT_EQ(simulate.exit_code, 0) << simulate.err;
  const nlohmann::json simulated = nlohmann::json::parse(simulate.out);
  EXPECT_EQ(simulated.at("cluster").at("name"), "local-cpu-calibrated");
  EXPECT_GT(simulated.at("steps").at(0).at("step_time_ns").get<std::int64_t>(), 0);
}

TEST_F(CalibrateCommand, RefusesToReplaceAFileWithoutForce) {
  const fs::path file = scratch_ / "existing.json";
  std::ofstream(file) << "keep me\n";
  const CommandRun run = run_twinspeed("calibrate --quick --no-progress --out '" + file.string() + "'", scratch_);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(first_line(run.err).rfind("error: --out = ", 0), 0u) << run.err;
  EXPECT_NE(first_line(run.err).find("--force"), std::string::npos) << run.err;
  EXPECT_TRUE(run.out.empty());
  EXPECT_EQ(read_file(file), "keep me\n");
}

TEST_F(CalibrateCommand, FailsOnAMissingDirectoryBeforeMeasuring) {
  const fs::path file = scratch_ / "no-such-directory" / "calibrated.json";
  const CommandRun run = run_twinspeed("calibrate --quick --no-progress --out '" + file.string() + "'", scratch_);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(first_line(run.err).rfind("error: --out = ", 0), 0u) << run.err;
  EXPECT_NE(first_line(run.err).find("does not exist"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(file.parent_path()));
}

}  // namespace
}  // namespace twinspeed::cli
