#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "engine/core/errors.hpp"
#include "sim/presets/cluster_file.hpp"
#include "sim/presets/presets.hpp"
#include "sim_cost/calibration_data.hpp"

namespace twinspeed::sim {
namespace {

TEST(Presets, TheClustersOfTheDesignExist) {
  for (const char* name : {"dgx-a100-80gb", "dgx-h100", "dgx-h200", "vtrain-a100", "local-cpu"}) {
    EXPECT_EQ(cluster_preset(name).name, name);
  }
  EXPECT_EQ(cluster_preset("dgx-h100").devices_per_node, 8);
  EXPECT_EQ(cluster_preset("dgx-h100").inter_node.nics_per_node, 8);
  EXPECT_EQ(cluster_preset("vtrain-a100").inter_node.nics_per_node * cluster_preset("vtrain-a100").inter_node.nic_GBps * 8,
            800);  // Gb/s per node, as vTrain's inter_node_bandwidth
}

TEST(Presets, DevicesAreNamedAsInHardwarePresetsCsv) {
  test::CsvTable t = test::read_calibration_csv("hardware_presets.csv");
  std::set<std::string> presets;
  for (const std::string& name : device_preset_names()) presets.insert(name);
  for (const auto& row : t.rows) EXPECT_TRUE(presets.count(row[t.column("name")])) << row[t.column("name")];
}

TEST(Presets, DatasheetNumbersMatchHardwarePresetsCsv) {
  test::CsvTable t = test::read_calibration_csv("hardware_presets.csv");
  for (const auto& row : t.rows) {
    const DeviceSpec& d = device_preset(row[t.column("name")]);
    SCOPED_TRACE(d.name);
    EXPECT_DOUBLE_EQ(d.memory_bandwidth_GBps, std::stod(row[t.column("hbm_bw_GBps")]));
    EXPECT_DOUBLE_EQ(d.matmul_peak_tflops.bf16, std::stod(row[t.column("bf16_dense_tflops")]));
    EXPECT_DOUBLE_EQ(d.matmul_peak_tflops.fp64, std::stod(row[t.column("fp64_tensor_tflops")]));
    const std::string usable = row[t.column("usable_GiB_observed")];
    if (!usable.empty()) {
      EXPECT_NEAR(static_cast<double>(d.capacity_bytes) / (1 << 30), std::stod(usable), 0.01);
    }
  }
}

TEST(Presets, CapacitiesAreUsableGibibytesBelowTheMarketingNumber) {
  for (const DeviceSpec& d : device_presets()) {
    SCOPED_TRACE(d.name);
    EXPECT_GT(d.capacity_bytes, d.reserved_bytes);
    EXPECT_GT(d.reserved_bytes, 0);
  }
  EXPECT_LT(device_preset("h100-sxm5-80gb").capacity_bytes, std::int64_t{80} << 30);
}

TEST(Presets, EveryFieldGroupSaysWhereItsNumbersComeFrom) {
  for (const ClusterSpec& c : cluster_presets()) {
    SCOPED_TRACE(c.name);
    for (const std::string* source : {&c.device.memory_source, &c.device.compute_source, &c.device.memory_bandwidth_source,
                                      &c.device.efficiency_source, &c.intra_node.source, &c.inter_node.source,
                                      &c.nccl.source}) {
      EXPECT_FALSE(source->empty());
    }
  }
}

TEST(Presets, DgxPresetsDescribeTheirHostSideForZeroOffloadWithSources) {
  for (const char* name : {"dgx-a100-80gb", "dgx-h100", "dgx-h200", "vtrain-a100"}) {
    SCOPED_TRACE(name);
    const HostSpec& h = cluster_preset(name).host;
    EXPECT_EQ(h.memory_bytes, 2'000'000'000'000);  // DGX datasheets: 2 TB system memory
    EXPECT_GT(h.memory_bandwidth_GBps, 0.0);
    EXPECT_FALSE(h.source.empty());
  }
  EXPECT_EQ(cluster_preset("dgx-h100").host.pcie_GBps, 64.0);       // PCIe Gen5 x16
  EXPECT_EQ(cluster_preset("dgx-a100-80gb").host.pcie_GBps, 32.0);  // PCIe Gen4 x16
  EXPECT_FALSE(cluster_preset("local-cpu").host.described());
}

TEST(Presets, LocalCpuNumbersAreMeasuredWithTheCommandThatMeasuredThem) {
  const ClusterSpec& c = cluster_preset("local-cpu");
  EXPECT_NE(c.device.compute_source.find("measured: build/bench/local_cpu_bench"), std::string::npos);
  EXPECT_NE(c.device.memory_bandwidth_source.find("measured: build/bench/local_cpu_bench"), std::string::npos);
  EXPECT_NE(c.intra_node.source.find("measured: build/bench/local_cpu_bench"), std::string::npos);
  EXPECT_GT(c.device.matmul_peak_tflops.fp32, 0.0);
  EXPECT_GT(c.device.memory_bandwidth_GBps, 0.0);
  EXPECT_GT(c.intra_node.busbw_GBps, 0.0);
}

TEST(Presets, AnUnknownNameIsAConfigErrorWithTheClosestName) {
  try {
    cluster_preset("dgx-a100");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "cluster");
    EXPECT_EQ(e.value(), "\"dgx-a100\"");
    EXPECT_NE(e.rule().find("did you mean \"dgx-a100-80gb\""), std::string::npos) << e.rule();
    EXPECT_NE(e.details().find("local-cpu"), std::string::npos);
  }
  EXPECT_THROW(device_preset("h100"), ConfigError);
}

TEST(ClusterFile, EveryPresetRoundTrips) {
  for (const ClusterSpec& c : cluster_presets()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(parse_cluster(write_cluster(c)), c);
  }
}

TEST(ClusterFile, SaveWritesAFileTheLoaderReadsBack) {
  const std::filesystem::path file = std::filesystem::temp_directory_path() / "twinspeed_presets_test_cluster.json";
  save_cluster_file(cluster_preset("dgx-h200"), file);
  EXPECT_EQ(load_cluster_file(file), cluster_preset("dgx-h200"));
  std::filesystem::remove(file);
  EXPECT_THROW(load_cluster_file(file), ConfigError);
}

TEST(ClusterFile, WhatPresetsShowJsonPrintedLoadsBack) {
  // tests/cli/golden/presets_show_dgx_a100_80gb.json is the CLI's output (golden test
  // cli.presets_show_json checks the CLI still prints exactly it).
  const std::filesystem::path printed =
      test::repository_root() / "tests" / "cli" / "golden" / "presets_show_dgx_a100_80gb.json";
  EXPECT_EQ(load_cluster_file(printed), cluster_preset("dgx-a100-80gb"));
}

TEST(ClusterFile, TheDeviceMayBeAPresetName) {
  nlohmann::json j = nlohmann::json::parse(write_cluster(cluster_preset("dgx-a100-80gb")));
  j["device"] = "a100-sxm4-40gb";
  EXPECT_EQ(cluster_from_json(j).device, device_preset("a100-sxm4-40gb"));
}

// The ConfigError a mutation of the dgx-a100-80gb file raises.
ConfigError error_of(const std::function<void(nlohmann::json&)>& mutate) {
  nlohmann::json j = nlohmann::json::parse(write_cluster(cluster_preset("dgx-a100-80gb")));
  mutate(j);
  try {
    cluster_from_json(j);
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no ConfigError for " << j.dump();
  return ConfigError("", "", "");
}

TEST(ClusterFile, ErrorsNameThePathTheValueAndTheRule) {
  ConfigError unknown = error_of([](auto& j) { j["intra_node"]["busbw_GBPS"] = 1; });
  EXPECT_EQ(unknown.path(), "intra_node.busbw_GBPS");
  EXPECT_NE(unknown.rule().find("did you mean \"busbw_GBps\""), std::string::npos);

  ConfigError missing = error_of([](auto& j) { j["device"]["memory"].erase("capacity_bytes"); });
  EXPECT_EQ(missing.path(), "device.memory.capacity_bytes");
  EXPECT_EQ(missing.rule(), "missing (required)");

  ConfigError range = error_of([](auto& j) { j["device"]["efficiency"]["matmul_max"] = 1.5; });
  EXPECT_EQ(range.path(), "device.efficiency.matmul_max");
  EXPECT_EQ(range.value(), "1.5");

  EXPECT_EQ(error_of([](auto& j) { j["schema"] = "twinspeed.cluster/2"; }).path(), "schema");
  EXPECT_EQ(error_of([](auto& j) { j["nodes"] = 2.5; }).rule(), "must be an integer");
  EXPECT_EQ(error_of([](auto& j) { j["nodes"] = 0; }).path(), "nodes");
  EXPECT_EQ(error_of([](auto& j) { j["inter_node"]["kind"] = "none"; }).path(), "inter_node.kind");
  EXPECT_EQ(error_of([](auto& j) { j["nccl"]["algorithm"] = "nccl"; }).path(), "nccl.algorithm");
  EXPECT_EQ(error_of([](auto& j) { j["device"] = "a100"; }).path(), "device");
  EXPECT_EQ(error_of([](auto& j) { j["intra_node"]["efficiency"][1][0] = 1; }).path(), "intra_node.efficiency[1]");
  EXPECT_EQ(error_of([](auto& j) { j["device"]["memory"]["reserved_bytes"] = j["device"]["memory"]["capacity_bytes"]; })
                .path(),
            "device.memory.reserved_bytes");
}

TEST(ClusterFile, HostOverheadIsOptionalAndZeroWhenAbsent) {
  // Cluster files written before the field existed load with no host floor.
  nlohmann::json j = nlohmann::json::parse(write_cluster(cluster_preset("dgx-a100-80gb")));
  j["device"]["efficiency"].erase("host_overhead_ns");
  EXPECT_EQ(cluster_from_json(j).device.host_overhead_ns, 0);
  EXPECT_EQ(error_of([](auto& j) { j["device"]["efficiency"]["host_overhead_ns"] = -1; }).path(),
            "device.efficiency.host_overhead_ns");
}

TEST(ClusterFile, TheExampleOfDocsClusterMdLoads) {
  ClusterSpec c = parse_cluster(R"({
      "schema": "twinspeed.cluster/1",
      "name": "my-cluster",
      "nodes": 2,
      "devices_per_node": 8,
      "device": "h100-sxm5-80gb",
      "intra_node": {"kind": "nvswitch", "busbw_GBps": 370, "nvls_busbw_GBps": 480,
                     "ring_step_latency_us": 3.4, "tree_step_latency_us": 4.0},
      "inter_node": {"kind": "roce", "nics_per_node": 8, "nic_GBps": 45,
                     "ring_step_latency_us": 14, "tree_step_latency_us": 14},
      "nccl": {"ring_base_latency_us": 8.4, "tree_base_latency_us": 8.4, "nvls_latency_us": 25,
               "tree_bandwidth_factor": 0.9, "algorithm": "auto"}
    })");
  EXPECT_EQ(c.world_size(), 16);
  EXPECT_TRUE(c.intra_node.efficiency.empty());
  EXPECT_EQ(c.device, device_preset("h100-sxm5-80gb"));
}

TEST(ClusterFile, SyntaxErrorsNameLineAndColumn) {
  try {
    parse_cluster("{\n  \"schema\": ,\n}", "my.json");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "my.json:2:13");
  }
}

}  // namespace
}  // namespace twinspeed::sim

namespace twinspeed::sim {
namespace {

TEST(ClusterFile, OverflowingNumbersAndDuplicateKeysAreConfigErrorsWithAPosition) {
  for (const char* text : {R"({"schema": "twinspeed.cluster/1", "nodes": 1e999})",
                           R"({"schema": "twinspeed.cluster/1", "nodes": 1, "nodes": 2})"}) {
    try {
      (void)parse_cluster(text, "my_cluster.json");
      FAIL() << text;
    } catch (const ConfigError& e) {
      // The position is on the first line or, for a duplicate key, in the details (both places).
      const std::string message = std::string(e.what()) + "\n" + e.details();
      EXPECT_NE(message.find("my_cluster.json:1:"), std::string::npos) << message;
    }
  }
}

}  // namespace
}  // namespace twinspeed::sim
