// The batch rule, the device mesh, flag overrides and "auto" placeholders.
#include <gtest/gtest.h>

#include "config_test_support.hpp"

namespace twinspeed {
namespace {

using namespace config_test;

LoadOptions world(int n) {
  LoadOptions o;
  o.world = n;
  return o;
}

TEST(ConfigBatch, DerivesMissingValuesAsDeepSpeedDoes) {
  // train + micro: gas = train // micro // dp
  Config a = parse(R"({"train_batch_size": 24, "train_micro_batch_size_per_gpu": 3})", world(2));
  EXPECT_EQ(a.batch().gradient_accumulation_steps, 4);
  EXPECT_EQ(a.provenance("gradient_accumulation_steps"), Provenance::derived);
  // train + gas: micro = train // dp // gas
  Config b = parse(R"({"train_batch_size": 32, "gradient_accumulation_steps": 2})", world(4));
  EXPECT_EQ(b.batch().train_micro_batch_size_per_gpu, 4);
  // micro + gas: train = micro * gas * dp
  Config c = parse(R"({"train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 3})", world(5));
  EXPECT_EQ(c.batch().train_batch_size, 120);
  EXPECT_EQ(c.provenance("train_batch_size"), Provenance::derived);
  // train only: gas = 1, micro = train // dp
  Config d = parse(R"({"train_batch_size": 16})", world(4));
  EXPECT_EQ(d.batch().train_micro_batch_size_per_gpu, 4);
  EXPECT_EQ(d.batch().gradient_accumulation_steps, 1);
  // micro only: gas = 1, train = micro * dp
  Config e = parse(R"({"train_micro_batch_size_per_gpu": 2})", world(8));
  EXPECT_EQ(e.batch().train_batch_size, 16);
}

TEST(ConfigBatch, ImpossibleCombinationsStateTheNumbersAndTheDataParallelSize) {
  ConfigError e = error_of(R"({"train_batch_size": 24, "train_micro_batch_size_per_gpu": 3})", world(16));
  EXPECT_EQ(e.path(), "gradient_accumulation_steps");
  EXPECT_NE(e.rule().find("train_batch_size 24 != train_micro_batch_size_per_gpu 3 x gradient_accumulation_steps 0 x "
                          "data-parallel size 16"),
            std::string::npos)
      << e.rule();
  EXPECT_NE(e.details().find("data-parallel size 16 = world 16 / (tp 1 x pp 1 x sp 1)"), std::string::npos);
  EXPECT_NE(e.details().find("gradient_accumulation_steps = 24 // 3 // 16 = 0"), std::string::npos) << e.details();
  EXPECT_NE(e.details().find("holds for data-parallel sizes 1, 2, 4, 8"), std::string::npos) << e.details();

  ConfigError all_three = error_of(
      R"({"train_batch_size": 10, "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 2})");
  EXPECT_EQ(all_three.path(), "train_batch_size");
  EXPECT_TRUE(fails_at(R"({"gradient_accumulation_steps": 2})", "train_batch_size", "must be given"));
  EXPECT_TRUE(fails_at(R"({"train_batch_size": 0})", "train_batch_size", "> 0"));
  EXPECT_TRUE(fails_at(R"({"train_batch_size": 8, "train_micro_batch_size_per_gpu": -1})",
                       "train_micro_batch_size_per_gpu", "> 0"));
}

TEST(ConfigBatch, DataParallelSizeExcludesTensorPipelineAndSequenceParallelism) {
  LoadOptions o = world(16);
  o.tp = 2;
  o.pp = 2;
  Config c = parse(R"({"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1})", o);
  EXPECT_EQ(c.mesh().dp, 4);
  EXPECT_EQ(c.batch().train_batch_size, 4);
  ConfigError e = error_of(R"({"train_batch_size": 6, "gradient_accumulation_steps": 1})", o);
  EXPECT_NE(e.details().find("data-parallel size 4 = world 16 / (tp 2 x pp 2 x sp 1)"), std::string::npos)
      << e.details();
}

TEST(ConfigMesh, DegreesComeFromTheFileAndFlagsOverrideThem) {
  Config file = parse(R"({"train_batch_size": 8, "tensor_parallel": {"autotp_size": 2}, "sequence_parallel_size": 2,
                          "pipeline": {"stages": 2}})",
                      world(16));
  EXPECT_EQ(file.mesh(), (MeshShape{2, 2, 2, 2}));
  EXPECT_EQ(file.provenance("data_parallel_size"), Provenance::derived);

  LoadOptions o = world(16);
  o.tp = 4;
  Config flagged = parse(R"({"train_batch_size": 8, "tensor_parallel": {"autotp_size": 2}})", o);
  EXPECT_EQ(flagged.mesh().tp, 4);
  EXPECT_EQ(flagged.mesh().dp, 4);
  EXPECT_EQ(flagged.provenance("tensor_parallel.autotp_size"), Provenance::flag);
  ASSERT_EQ(flagged.overrides().size(), 1u);
  EXPECT_EQ(flagged.overrides()[0].path, "tensor_parallel.autotp_size");
  EXPECT_EQ(flagged.overrides()[0].file_value, 2);
  EXPECT_EQ(flagged.overrides()[0].flag_value, 4);
}

TEST(ConfigMesh, WorldMustDivideAndDataParallelSizeMustAgree) {
  LoadOptions o = world(6);
  o.tp = 4;
  ConfigError e = error_of(R"({"train_batch_size": 8})", o);
  EXPECT_EQ(e.path(), "world");
  EXPECT_NE(e.details().find("tp 4 from tensor_parallel.autotp_size (flag)"), std::string::npos) << e.details();
  EXPECT_TRUE(fails_at(R"({"train_batch_size": 8, "data_parallel_size": 2})", "data_parallel_size", "disagrees",
                       world(4)));
  EXPECT_EQ(parse(R"({"train_batch_size": 8, "data_parallel_size": 4})", world(4)).mesh().dp, 4);
  LoadOptions zero_tp;
  zero_tp.tp = 0;
  EXPECT_TRUE(fails_at(R"({"train_batch_size": 8})", "tp", ">= 1", zero_tp));
  EXPECT_TRUE(fails_at(R"({"train_batch_size": 8})", "world", ">= 1", world(0)));
}

TEST(ConfigAuto, BatchAutoIsAnErrorExplainingTheHuggingFacePlaceholder) {
  ConfigError e = error_of(R"({"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto"})");
  EXPECT_EQ(e.path(), "train_batch_size");
  EXPECT_NE(e.rule().find("Hugging Face Trainer placeholder"), std::string::npos);
  EXPECT_NE(e.details().find("--global-batch"), std::string::npos) << e.details();
  EXPECT_TRUE(fails_at(R"({"train_batch_size": 4, "gradient_clipping": "auto"})", "gradient_clipping", "placeholder"));
  EXPECT_TRUE(fails_at(R"({"train_batch_size": 4, "optimizer": {"type": "AdamW", "params": {"lr": "auto"}}})",
                       "optimizer.params.lr", "placeholder"));
  EXPECT_TRUE(fails_at(R"({"train_batch_size": 4, "wall_clock_breakdown": "auto"})", "wall_clock_breakdown",
                       "placeholder"));
}

TEST(ConfigAuto, FlagsResolveAutoAndRecordTheOverride) {
  LoadOptions o = world(2);
  o.micro_batch = 4;
  o.gradient_accumulation = 2;
  o.gradient_clipping = 0.5;
  o.lr = 1e-3;
  o.adam_betas = std::array<double, 2>{0.9, 0.95};
  o.warmup_steps = 100;
  Config c = parse(R"({"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto",
                       "gradient_accumulation_steps": "auto", "gradient_clipping": "auto",
                       "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": "auto"}},
                       "scheduler": {"type": "WarmupLR", "params": {"warmup_max_lr": "auto", "warmup_num_steps": "auto"}}})",
                   o);
  EXPECT_EQ(c.batch().train_micro_batch_size_per_gpu, 4);
  EXPECT_EQ(c.batch().gradient_accumulation_steps, 2);
  EXPECT_EQ(c.batch().train_batch_size, 16);  // "auto" left for the batch rule: derived with dp 2
  EXPECT_EQ(c.provenance("train_batch_size"), Provenance::derived);
  EXPECT_DOUBLE_EQ(c.gradient_clipping(), 0.5);
  EXPECT_EQ(c.provenance("gradient_clipping"), Provenance::flag);
  EXPECT_DOUBLE_EQ(c.optimizer().params["lr"].get<double>(), 1e-3);
  EXPECT_EQ(c.provenance("optimizer.params.lr"), Provenance::flag);
  EXPECT_DOUBLE_EQ(c.scheduler().params["warmup_max_lr"].get<double>(), 1e-3);
  EXPECT_EQ(c.scheduler().params["warmup_num_steps"], 100);
}

TEST(ConfigAuto, FlagsOverrideExplicitValuesToo) {
  LoadOptions o;
  o.micro_batch = 2;
  Config c = parse(R"({"train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 1})", o);
  EXPECT_EQ(c.batch().train_micro_batch_size_per_gpu, 2);
  ASSERT_EQ(c.overrides().size(), 1u);
  EXPECT_EQ(c.overrides()[0].file_value, 8);
  // Optimizer parameters are only set when the file has an optimizer.
  o.lr = 0.1;
  EXPECT_FALSE(parse(R"({"train_batch_size": 2})", o).to_json().contains("optimizer"));
}

TEST(ConfigOverrides, ZeroStageAndPrecisionOverrideTheFileAndAreListed) {
  LoadOptions o = world(8);
  o.zero_stage = 3;
  o.precision = "fp16";
  Config c = parse(R"({"train_batch_size": 8, "bf16": {"enabled": true}, "zero_optimization": {"stage": 1}})", o);
  EXPECT_EQ(c.zero().stage, 3);
  EXPECT_FALSE(c.bf16().enabled);
  EXPECT_TRUE(c.fp16().enabled);
  ASSERT_EQ(c.overrides().size(), 3u);
  EXPECT_EQ(c.overrides()[0].path, "zero_optimization.stage");
  EXPECT_EQ(c.overrides()[0].file_value, 1);
  EXPECT_EQ(c.overrides()[1].path, "bf16.enabled");
  EXPECT_EQ(c.overrides()[1].file_value, true);
  EXPECT_EQ(c.overrides()[2].path, "fp16.enabled");
  EXPECT_TRUE(c.overrides()[2].file_value.is_null());
  o.precision = "fp32";
  Config fp32 = parse(R"({"train_batch_size": 8, "bf16": {"enabled": true}})", o);
  EXPECT_FALSE(fp32.bf16().enabled || fp32.fp16().enabled);
  o.precision = "int8";
  EXPECT_TRUE(fails_at(R"({"train_batch_size": 8})", "precision", "bf16, fp16 or fp32", o));
}

}  // namespace
}  // namespace twinspeed
