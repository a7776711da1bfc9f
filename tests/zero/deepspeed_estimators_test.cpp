// DeepSpeed 0.19.6's model-state memory estimators (engine/zero/deepspeed_estimators.hpp) against
// the example of DeepSpeed's documentation (docs/code-docs/source/memory.rst, "Memory
// Requirements": 2851M parameters, largest layer 32M, 1 node x 8 GPUs, the all_cold calls), in
// bytes worked out by hand from the formulas and in the GB figures DeepSpeed prints.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/core/errors.hpp"
#include "engine/model/spec/layer_spec.hpp"
#include "engine/model/spec/model_config.hpp"
#include "engine/zero/deepspeed_estimators.hpp"

namespace twinspeed {
namespace {

using i64 = std::int64_t;

constexpr i64 kDocParams = 2'851'000'000;  // total_params=2851e6
constexpr i64 kDocLargest = 32'000'000;    // largest_layer_params=32e6
const DeepSpeedEstimatorSetup kDocSetup{.gpus_per_node = 8, .nodes = 1};

TEST(DeepSpeedZero2Estimate, DocsExampleInBytes) {
  // offload: gpu 2P; cpu P * max(4 * 8, 16) * 1.5 = 48P.
  EXPECT_EQ(deepspeed_zero2_estimate(kDocParams, kDocSetup, true),
            (DeepSpeedMemEstimate{.cpu_bytes = 136'848'000'000, .gpu_bytes = 5'702'000'000}));
  // no offload: gpu 2P + int(18P / 8) = 5,702,000,000 + 6,414,750,000; cpu P * 4 * 8 * 1.5.
  EXPECT_EQ(deepspeed_zero2_estimate(kDocParams, kDocSetup, false),
            (DeepSpeedMemEstimate{.cpu_bytes = 136'848'000'000, .gpu_bytes = 12'116'750'000}));
}

// The docs print 15.93GB in the second row: that table predates DeepSpeed PR #5099 (2024-04), which
// replaced 4P + 16P/G by 2P + 18P/G; 0.19.6 computes 11.28GB. Every other figure is the docs'.
TEST(DeepSpeedZero2Estimate, DocsExampleTableAsDeepSpeedPrintsIt) {
  EXPECT_EQ(deepspeed_zero2_table(kDocParams, kDocSetup),
            "Estimated memory needed for params, optim states and gradients for a:\n"
            "HW: Setup with 1 node, 8 GPUs per node.\n"
            "SW: Model with 2851M total params.\n"
            "  per CPU  |  per GPU |   Options\n"
            "  127.45GB |   5.31GB | offload_optimizer=cpu \n"
            "  127.45GB |  11.28GB | offload_optimizer=none\n");
}

TEST(DeepSpeedZero3Estimate, DocsExampleInBytes) {
  const auto rows = deepspeed_zero3_rows(kDocParams, kDocLargest, kDocSetup);
  ASSERT_EQ(rows.size(), 6u);
  // largest_layer_memory = 4 * 32e6 = 128e6; int(2P / 8) = 712,750,000; int(18P / 8) = 6,414,750,000.
  const std::vector<DeepSpeedMemEstimate> expect = {
      {.cpu_bytes = 76'977'000'000, .gpu_bytes = 128'000'000},    // P * 18 * 1 * 1.5
      {.cpu_bytes = 136'848'000'000, .gpu_bytes = 128'000'000},   // P * max(32, 18) * 1.5
      {.cpu_bytes = 68'424'000'000, .gpu_bytes = 840'750'000},    // P * 16 * 1 * 1.5
      {.cpu_bytes = 136'848'000'000, .gpu_bytes = 840'750'000},   // P * max(32, 16) * 1.5
      {.cpu_bytes = 1'536'000'000, .gpu_bytes = 6'542'750'000},   // 32e6 * 4 * 8 * 1.5
      {.cpu_bytes = 136'848'000'000, .gpu_bytes = 6'542'750'000}, // P * 4 * 8 * 1.5
  };
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].mem, expect[i]) << rows[i].options;
  EXPECT_TRUE(rows[0].offload_optimizer && rows[0].offload_param && rows[0].zero_init);
  EXPECT_TRUE(rows[3].offload_optimizer && !rows[3].offload_param && !rows[3].zero_init);
  EXPECT_TRUE(!rows[4].offload_optimizer && !rows[4].offload_param && rows[4].zero_init);
  const auto one = deepspeed_zero3_estimate(kDocParams, kDocLargest, kDocSetup,
                                            {.cpu_offload = true, .cpu_offload_params = false, .zero_init = true});
  EXPECT_EQ(one, (DeepSpeedZero3Estimate{.mem = expect[2], .largest_layer_bytes = 128'000'000}));
}

TEST(DeepSpeedZero3Estimate, DocsExampleTableAsDeepSpeedPrintsIt) {
  EXPECT_EQ(deepspeed_zero3_table(kDocParams, kDocLargest, kDocSetup),
            "Estimated memory needed for params, optim states and gradients for a:\n"
            "HW: Setup with 1 node, 8 GPUs per node.\n"
            "SW: Model with 2851M total params, 32M largest layer params.\n"
            "  per CPU  |  per GPU |   Options\n"
            "   71.69GB |   0.12GB | offload_param=cpu , offload_optimizer=cpu , zero_init=1\n"
            "  127.45GB |   0.12GB | offload_param=cpu , offload_optimizer=cpu , zero_init=0\n"
            "   63.72GB |   0.78GB | offload_param=none, offload_optimizer=cpu , zero_init=1\n"
            "  127.45GB |   0.78GB | offload_param=none, offload_optimizer=cpu , zero_init=0\n"
            "    1.43GB |   6.09GB | offload_param=none, offload_optimizer=none, zero_init=1\n"
            "  127.45GB |   6.09GB | offload_param=none, offload_optimizer=none, zero_init=0\n");
}

// Several nodes: gpus_factor = 1 / nodes divides what one node's CPU holds; max() takes the
// partitioned term when it exceeds 4 bytes per GPU; int() truncates an inexact quotient.
TEST(DeepSpeedZero3Estimate, NodesGpusFactorMaxAndTruncationFollowPython) {
  const i64 p = 1'000'001, l = 1'000;
  const DeepSpeedEstimatorSetup two_nodes{.gpus_per_node = 7, .nodes = 2};
  // zero_init, both offloaded: 1,000,001 * 18 * 0.5 * 1.5 = 13,500,013.5 -> 13,500,013.
  EXPECT_EQ(deepspeed_zero3_estimate(p, l, two_nodes, {}).mem, (DeepSpeedMemEstimate{13'500'013, 4'000}));
  // Optimizer offloaded only: gpu 4,000 + int(2,000,002 / 14 = 142,857.28...) = 146,857.
  EXPECT_EQ(deepspeed_zero3_estimate(p, l, two_nodes, {.cpu_offload_params = false}).mem.gpu_bytes, 146'857);
  // Nothing offloaded: gpu 4,000 + int(18,000,018 / 14 = 1,285,715.57...) = 1,289,715.
  EXPECT_EQ(deepspeed_zero3_estimate(p, l, two_nodes, {.cpu_offload = false}).mem.gpu_bytes, 1'289'715);
  // One GPU on one node, no zero.Init: max(4, 18) = 18 -> P * 18 * 1.5 = 27,000,027.
  EXPECT_EQ(deepspeed_zero3_estimate(p, l, {}, {.zero_init = false}).mem.cpu_bytes, 27'000'027);
  // Eight GPUs: max(32, 18) = 32 -> P * 32 * 1.5 = 48,000,048.
  EXPECT_EQ(deepspeed_zero3_estimate(p, l, {.gpus_per_node = 8}, {.zero_init = false}).mem.cpu_bytes, 48'000'048);
  // ZeRO-2 over 14 GPUs: max(4 * 14, 16) = 56 -> 84,000,084; gpu 2P + int(18P / 14).
  EXPECT_EQ(deepspeed_zero2_estimate(p, two_nodes, true), (DeepSpeedMemEstimate{84'000'084, 2'000'002}));
  EXPECT_EQ(deepspeed_zero2_estimate(p, two_nodes, false).gpu_bytes, 2'000'002 + 1'285'715);
  EXPECT_EQ(deepspeed_zero2_estimate(p, {.additional_buffer_factor = 1.0}, true).cpu_bytes, 16'000'016);
}

TEST(DeepSpeedEstimatorTable, PluralsFollowTheCounts) {
  const std::string one = deepspeed_zero2_table(5'000'000, {});
  EXPECT_NE(one.find("HW: Setup with 1 node, 1 GPU per node.\n"), std::string::npos) << one;
  EXPECT_NE(one.find("SW: Model with 5M total params.\n"), std::string::npos) << one;
  const std::string many = deepspeed_zero3_table(5'999'999, 1'999'999, {.gpus_per_node = 4, .nodes = 2});
  EXPECT_NE(many.find("HW: Setup with 2 nodes, 4 GPUs per node.\n"), std::string::npos) << many;
  EXPECT_NE(many.find("SW: Model with 5M total params, 1M largest layer params.\n"), std::string::npos) << many;
}

TEST(DeepSpeedEstimator, InvalidInputThrows) {
  EXPECT_THROW(deepspeed_zero2_estimate(1, {.gpus_per_node = 0}, true), Error);
  EXPECT_THROW(deepspeed_zero2_estimate(1, {.nodes = 0}, true), Error);
  EXPECT_THROW(deepspeed_zero2_estimate(-1, {}, true), Error);
  EXPECT_THROW(deepspeed_zero3_estimate(1, -1, {}, {}), Error);
  EXPECT_THROW(deepspeed_zero3_estimate(1, 1, {.additional_buffer_factor = 0}, {}), Error);
}

// model_to_params: one module's own parameters; weight and bias of one Linear are one module,
// modules of the same name in different layers are different modules.
TEST(DeepSpeedModelParams, LargestModuleGroupsByNameUpToTheLastDot) {
  std::vector<LayerSpec> layers(2);
  layers[0].name = "block.0";
  layers[0].params = {{"a.weight", {10, 10}}, {"a.bias", {10}}, {"b.weight", {105}}, {"scale", {7}}};
  layers[1].name = "block.1";
  layers[1].params = {{"b.weight", {105}}, {"c.weight", {60}}};
  EXPECT_EQ(deepspeed_model_params(layers), (DeepSpeedModelParams{.total_params = 387, .largest_layer_params = 110}));
  layers[0].params.pop_back();
  layers[0].params[1].shape = {4};  // a = 104 < b = 105
  EXPECT_EQ(deepspeed_model_params(layers).largest_layer_params, 105);
}

TEST(DeepSpeedModelParams, PresetsLargestModuleIsTheTokenEmbedding) {
  const auto llama = build_layer_specs(load_model_preset("llama2-7b"), {.seq_len = 128});
  EXPECT_EQ(deepspeed_model_params(llama),
            (DeepSpeedModelParams{.total_params = 6'738'415'616, .largest_layer_params = 32000 * 4096}));
  // GPT-2 (tied head: counted once): wte 50257 x 768; c_fc (fc1) 3072 x 768 + 3072 is smaller.
  const auto gpt2 = build_layer_specs(load_model_preset("gpt2-small"), {.seq_len = 128});
  EXPECT_EQ(deepspeed_model_params(gpt2),
            (DeepSpeedModelParams{.total_params = 124'439'808, .largest_layer_params = 50257 * 768}));
  // Under tp the specs hold one rank's shard: the vocab-parallel embedding 32000 / 8 x 4096.
  const auto tp8 = build_layer_specs(load_model_preset("llama2-7b"), {.seq_len = 128, .tp = 8});
  EXPECT_EQ(deepspeed_model_params(tp8).largest_layer_params, 4000 * 4096);
}

}  // namespace
}  // namespace twinspeed
