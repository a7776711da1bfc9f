// The simulator against vTrain's measured iteration times (sim/planner/calibration.hpp):
//   - the CSV reader on both files' layouts and its errors;
//   - a row's DeepSpeed config and model;
//   - CI's accuracy check: the frozen 50-row subset of the held-out multi-node file
//     (tests/data/calibration/vtrain_multi_subset50.csv, written by `calibration_bench
//     --freeze-subset`) must stay within 1 point of the mean |error| recorded in its header. A
//     change to the cost model, the presets or the engine's schedule that makes the predictions
//     worse fails here; one that makes them better should re-freeze the subset (docs/CLUSTER.md
//     "Calibration").
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "engine/core/errors.hpp"
#include "sim/planner/calibration.hpp"
#include "sim/presets/presets.hpp"
#include "sim_cost/calibration_data.hpp"

namespace twinspeed::planner {
namespace {

constexpr const char* kSingleLayout =
    "# Source: a comment\n"
    "# GPUs,global batch,micro batch,hidden size,attention heads,# layers,sequence length,tensor parallelism,"
    "data parallelism,pipeline parallelism,iteration time (ms)\n"
    "8,32,4,1024,16,24,1024,2,2,2,219.732754\n";

constexpr const char* kMultiLayout =
    "# Source: a comment naming iteration times\n"
    "Parameters (billion),# GPUs,global batch,micro batch,hidden size,attention heads,# layers,sequence length,"
    "tensor parallelism,data parallelism,pipeline parallelism,iteration time (ms)\n"
    "175,512,1536,2,12288,96,96,2048,4,8,16,54255.9\n";

TEST(VTrainCsv, ReadsTheSingleNodeLayoutWhoseHeaderIsAComment) {
  const std::vector<VTrainRow> rows = parse_vtrain_csv(kSingleLayout, "single.csv");
  ASSERT_EQ(rows.size(), 1u);
  const VTrainRow& r = rows[0];
  EXPECT_EQ(r.line, 3);
  EXPECT_FALSE(r.params_billion.has_value());
  EXPECT_EQ(r.gpus, 8);
  EXPECT_EQ(r.global_batch, 32);
  EXPECT_EQ(r.micro_batch, 4);
  EXPECT_EQ(r.hidden, 1024);
  EXPECT_EQ(r.heads, 16);
  EXPECT_EQ(r.layers, 24);
  EXPECT_EQ(r.seq_len, 1024);
  EXPECT_EQ(r.tp, 2);
  EXPECT_EQ(r.dp, 2);
  EXPECT_EQ(r.pp, 2);
  EXPECT_DOUBLE_EQ(r.measured_ms, 219.732754);
  EXPECT_EQ(r.micro_batches(), 4);
}

TEST(VTrainCsv, ReadsTheMultiNodeLayout) {
  const std::vector<VTrainRow> rows = parse_vtrain_csv(kMultiLayout, "multi.csv");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].params_billion, 175.0);
  EXPECT_EQ(rows[0].gpus, 512);
  EXPECT_EQ(rows[0].pp, 16);
  EXPECT_EQ(rows[0].micro_batches(), 96);
}

std::string error_of(const std::string& text) {
  try {
    parse_vtrain_csv(text, "bad.csv");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << text;
  return {};
}

TEST(VTrainCsv, ErrorsNameTheFileLineAndTheRule) {
  const std::string header = "GPUs,global batch,micro batch,hidden size,attention heads,# layers,sequence length,"
                             "tensor parallelism,data parallelism,pipeline parallelism,iteration time (ms)\n";
  EXPECT_EQ(error_of(header + "8,32,4,1024,16,24,1024,2,2,1,219.7\n"), "bad.csv:2: 8 GPUs is not tp 2 x dp 2 x pp 1");
  EXPECT_EQ(error_of(header + "8,30,4,1024,16,24,1024,2,2,2,219.7\n"),
            "bad.csv:2: global batch 30 is not a multiple of micro batch 4 x dp 2");
  EXPECT_EQ(error_of(header + "8,32,4,1024,16,24,1024,2,2,2,fast\n"),
            "bad.csv:2: iteration time (ms) \"fast\" is not a number");
  EXPECT_EQ(error_of("GPUs,global batch\n"), "bad.csv:1: the header has no column \"micro batch\"");
  EXPECT_EQ(error_of(header + "8,32,4\n"), "bad.csv:2: 3 fields, the header has at least 11");
  EXPECT_EQ(error_of("# only comments\n"), "bad.csv: no header line (the column names)");
}

TEST(VTrainCsv, TheShippedFilesRead) {
  EXPECT_EQ(read_vtrain_csv(test::calibration_file("vtrain_ground_truth_single_a100.csv")).size(), 1440u);
  EXPECT_EQ(read_vtrain_csv(test::calibration_file("vtrain_ground_truth_multi_a100.csv")).size(), 109u);
}

TEST(VTrainRun, ARowBecomesAnFp16ZeroZeroConfigAndAGptOfItsShape) {
  const VTrainRow row = parse_vtrain_csv(kMultiLayout, "multi.csv").at(0);
  const Config config = vtrain_config(row);
  EXPECT_EQ(config.mesh().tp, 4);
  EXPECT_EQ(config.mesh().dp, 8);
  EXPECT_EQ(config.mesh().pp, 16);
  EXPECT_EQ(config.batch().train_micro_batch_size_per_gpu, 2);
  EXPECT_EQ(config.gradient_accumulation_steps(), 96);
  EXPECT_TRUE(config.fp16().enabled);
  EXPECT_EQ(config.zero().stage, 0);
  const ModelConfig model = vtrain_model(row);
  EXPECT_EQ(model.model_type, "gpt2");
  EXPECT_EQ(model.hidden_size, 12288);
  EXPECT_EQ(model.num_heads, 96);
  EXPECT_EQ(model.num_layers, 96);
  EXPECT_EQ(model.vocab_size, 50257);
  EXPECT_EQ(model.max_positions, 2048);
  EXPECT_EQ(model.intermediate_size, 4 * 12288);
  EXPECT_TRUE(model.tie_word_embeddings);
}

TEST(VTrainRun, SummariesAreMeanAndWorstAbsolutePercent) {
  std::vector<VTrainRow> rows(2);
  rows[0].measured_ms = 100;
  rows[1].measured_ms = 200;
  const std::vector<double> predicted{110, 150};
  const ErrorSummary s = summarize_errors(predicted, rows);
  EXPECT_DOUBLE_EQ(s.mean_abs_percent, 17.5);
  EXPECT_DOUBLE_EQ(s.mean_signed_percent, -7.5);
  EXPECT_DOUBLE_EQ(s.worst_abs_percent, 25.0);
  EXPECT_EQ(s.worst_index, 1u);
  EXPECT_THROW(summarize_errors(std::vector<double>{1.0}, rows), std::invalid_argument);
}

// The value after "recorded_mean_abs_error_percent:" in the subset's header.
double recorded_error(const std::filesystem::path& file) {
  std::ifstream in(file);
  const std::string key = "# recorded_mean_abs_error_percent:";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size()));
  }
  throw std::runtime_error(file.string() + " records no mean error");
}

TEST(VTrainCalibration, TheFrozenMultiNodeSubsetStaysWithinOnePointOfItsRecordedError) {
  const std::filesystem::path file =
      test::repository_root() / "tests" / "data" / "calibration" / "vtrain_multi_subset50.csv";
  const std::vector<VTrainRow> rows = read_vtrain_csv(file);
  ASSERT_EQ(rows.size(), 50u);
  const double recorded = recorded_error(file);
  const sim::ClusterSpec& cluster = sim::cluster_preset("vtrain-a100");
  std::vector<double> predicted;
  std::printf("%5s %5s %6s %3s %3s %3s %3s %12s %12s %8s\n", "line", "GPUs", "hidden", "mb", "tp", "dp", "pp",
              "measured_ms", "predicted_ms", "error");
  for (const VTrainRow& r : rows) {
    predicted.push_back(predict_iteration_ms(r, cluster));
    std::printf("%5d %5d %6lld %3lld %3d %3d %3d %12.1f %12.1f %+7.1f%%\n", r.line, r.gpus,
                static_cast<long long>(r.hidden), static_cast<long long>(r.micro_batch), r.tp, r.dp, r.pp,
                r.measured_ms, predicted.back(), error_percent(predicted.back(), r.measured_ms));
  }
  const ErrorSummary s = summarize_errors(predicted, rows);
  std::printf("mean |error| %.2f%% (recorded %.2f%%), worst %.1f%% (line %d)\n", s.mean_abs_percent, recorded,
              s.worst_abs_percent, rows[s.worst_index].line);
  EXPECT_LE(s.mean_abs_percent, recorded + 1.0)
      << "the multi-node predictions got worse than recorded in " << file.string();
}

}  // namespace
}  // namespace twinspeed::planner
