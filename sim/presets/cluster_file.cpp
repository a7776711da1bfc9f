#include "sim/presets/cluster_file.hpp"

#include "engine/config/json_parse.hpp"
#include "engine/core/trace_file.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include "engine/core/errors.hpp"
#include "engine/core/text.hpp"
#include "sim/cost/collective_cost.hpp"
#include "sim/presets/presets.hpp"

namespace twinspeed::sim {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr std::array kIntraKinds = {std::string_view("nvswitch"), std::string_view("nvlink"), std::string_view("pcie"),
                                    std::string_view("loopback")};
constexpr std::array kInterKinds = {std::string_view("infiniband"), std::string_view("roce"),
                                    std::string_view("ethernet"), std::string_view("none")};
constexpr std::array kAlgorithms = {CollectiveAlgorithm::automatic, CollectiveAlgorithm::ring,
                                    CollectiveAlgorithm::tree, CollectiveAlgorithm::nvls};

std::string value_text(const json& value) { return value.dump(); }

// Reads one JSON object: every key must be one of `keys` (else a ConfigError with the closest),
// and each accessor checks its value's type and range and names the JSON path when it fails.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path, std::vector<std::string_view> keys)
      : object_(object), path_(std::move(path)), keys_(std::move(keys)) {
    if (!object_.is_object()) throw ConfigError(path_.empty() ? "(document)" : path_, value_text(object_), "must be an object");
    for (const auto& [key, value] : object_.items()) {
      if (std::find(keys_.begin(), keys_.end(), key) != keys_.end()) continue;
      std::optional<std::string> closest = closest_match(key, std::span<const std::string_view>(keys_));
      std::string rule = closest ? fmt::format("unknown key; did you mean \"{}\"?", *closest) : "unknown key";
      throw ConfigError(child(key), value_text(value), rule, fmt::format("valid keys: {}", fmt::join(keys_, ", ")));
    }
  }

  std::string child(std::string_view key) const { return path_.empty() ? std::string(key) : path_ + "." + std::string(key); }
  bool has(std::string_view key) const { return object_.contains(key); }

  const json& required(std::string_view key) const {
    auto it = object_.find(key);
    if (it == object_.end()) throw ConfigError(child(key), "", "missing (required)");
    return *it;
  }

  std::string string(std::string_view key, bool is_required = true) const {
    if (!is_required && !has(key)) return {};
    const json& v = required(key);
    if (!v.is_string()) throw ConfigError(child(key), value_text(v), "must be a string");
    return v.get<std::string>();
  }

  // A number in [low, high]; low_open excludes low.
  double number(std::string_view key, double low, double high, bool low_open = false) const {
    const json& v = required(key);
    if (!v.is_number()) throw ConfigError(child(key), value_text(v), "must be a number");
    double x = v.get<double>();
    bool ok = (low_open ? x > low : x >= low) && x <= high;
    if (!ok) throw ConfigError(child(key), value_text(v), range_rule(low, high, low_open));
    return x;
  }

  std::int64_t integer(std::string_view key, std::int64_t low, std::int64_t high) const {
    const json& v = required(key);
    if (!v.is_number_integer()) throw ConfigError(child(key), value_text(v), "must be an integer");
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(high)) {
      throw ConfigError(child(key), value_text(v), fmt::format("must be <= {}", high));
    }
    std::int64_t x = v.get<std::int64_t>();
    if (x < low || x > high) {
      throw ConfigError(child(key), value_text(v), fmt::format("must be in [{}, {}]", low, high));
    }
    return x;
  }

  template <std::size_t N>
  std::string one_of(std::string_view key, const std::array<std::string_view, N>& choices) const {
    std::string s = string(key);
    if (std::find(choices.begin(), choices.end(), s) == choices.end()) {
      throw ConfigError(child(key), value_text(required(key)), fmt::format("must be one of {}", fmt::join(choices, ", ")));
    }
    return s;
  }

 private:
  static std::string range_rule(double low, double high, bool low_open) {
    if (high == std::numeric_limits<double>::max()) return fmt::format("must be {} {}", low_open ? ">" : ">=", low);
    return fmt::format("must be in {}{}, {}]", low_open ? "(" : "[", low, high);
  }

  const json& object_;
  std::string path_;
  std::vector<std::string_view> keys_;
};

constexpr double kUnbounded = std::numeric_limits<double>::max();
constexpr std::int64_t kMaxInt = std::numeric_limits<int>::max();
constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();

DeviceSpec device_from_json(const json& value, const std::string& path) {
  if (value.is_string()) return device_preset(value.get<std::string>(), path);
  ObjectReader r(value, path, {"name", "description", "memory", "compute", "memory_bandwidth", "efficiency"});
  DeviceSpec d;
  d.name = r.string("name");
  if (d.name.empty()) throw ConfigError(r.child("name"), "\"\"", "must not be empty");
  d.description = r.string("description", false);

  ObjectReader memory(r.required("memory"), r.child("memory"), {"capacity_bytes", "reserved_bytes", "source"});
  d.capacity_bytes = memory.integer("capacity_bytes", 1, kMaxInt64);
  d.reserved_bytes = memory.integer("reserved_bytes", 0, d.capacity_bytes - 1);
  d.memory_source = memory.string("source", false);

  ObjectReader compute(r.required("compute"), r.child("compute"), {"matmul_peak_tflops", "vector_peak_tflops", "source"});
  ObjectReader peaks(compute.required("matmul_peak_tflops"), compute.child("matmul_peak_tflops"),
                     {"fp32", "fp16", "bf16", "fp64"});
  d.matmul_peak_tflops = {.fp32 = peaks.number("fp32", 0, kUnbounded),
                          .fp16 = peaks.number("fp16", 0, kUnbounded),
                          .bf16 = peaks.number("bf16", 0, kUnbounded),
                          .fp64 = peaks.number("fp64", 0, kUnbounded)};
  d.vector_peak_tflops = compute.number("vector_peak_tflops", 0, kUnbounded, true);
  d.compute_source = compute.string("source", false);

  ObjectReader bandwidth(r.required("memory_bandwidth"), r.child("memory_bandwidth"), {"GBps", "source"});
  d.memory_bandwidth_GBps = bandwidth.number("GBps", 0, kUnbounded, true);
  d.memory_bandwidth_source = bandwidth.string("source", false);

  ObjectReader eff(r.required("efficiency"), r.child("efficiency"),
                   {"matmul_max", "matmul_half_gflop", "attention_relative", "memory", "launch_overhead_ns",
                    "host_overhead_ns", "source"});
  d.matmul_max_efficiency = eff.number("matmul_max", 0, 1, true);
  d.matmul_half_efficiency_gflop = eff.number("matmul_half_gflop", 0, kUnbounded);
  d.attention_relative_efficiency = eff.number("attention_relative", 0, 1, true);
  d.memory_efficiency = eff.number("memory", 0, 1, true);
  d.launch_overhead_ns = eff.integer("launch_overhead_ns", 0, kMaxInt64);
  // Optional: cluster files written before it existed load with no host floor.
  d.host_overhead_ns = eff.has("host_overhead_ns") ? eff.integer("host_overhead_ns", 0, kMaxInt64) : 0;
  d.efficiency_source = eff.string("source", false);
  return d;
}

std::vector<EfficiencyPoint> efficiency_from_json(const json& value, const std::string& path) {
  if (!value.is_array()) throw ConfigError(path, value_text(value), "must be an array of [size_bytes, efficiency]");
  std::vector<EfficiencyPoint> curve;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const json& point = value[i];
    const std::string at = fmt::format("{}[{}]", path, i);
    if (!point.is_array() || point.size() != 2 || !point[0].is_number_integer() || !point[1].is_number()) {
      throw ConfigError(at, value_text(point), "must be [size_bytes (integer), efficiency (number)]");
    }
    EfficiencyPoint p{point[0].get<std::int64_t>(), point[1].get<double>()};
    if (p.size_bytes <= 0 || (!curve.empty() && p.size_bytes <= curve.back().size_bytes)) {
      throw ConfigError(at, value_text(point), "sizes must be > 0 and strictly increasing");
    }
    if (!(p.efficiency > 0.0 && p.efficiency <= 1.0)) {
      throw ConfigError(at, value_text(point), "efficiency must be in (0, 1]");
    }
    curve.push_back(p);
  }
  return curve;
}

IntraNodeLink intra_from_json(const json& value, const std::string& path) {
  ObjectReader r(value, path,
                 {"kind", "busbw_GBps", "nvls_busbw_GBps", "ring_step_latency_us", "tree_step_latency_us", "efficiency",
                  "source"});
  IntraNodeLink link;
  link.kind = r.one_of("kind", kIntraKinds);
  link.busbw_GBps = r.number("busbw_GBps", 0, kUnbounded, true);
  link.nvls_busbw_GBps = r.number("nvls_busbw_GBps", 0, kUnbounded);
  link.ring_step_latency_us = r.number("ring_step_latency_us", 0, kUnbounded);
  link.tree_step_latency_us = r.number("tree_step_latency_us", 0, kUnbounded);
  if (r.has("efficiency")) link.efficiency = efficiency_from_json(r.required("efficiency"), r.child("efficiency"));
  link.source = r.string("source", false);
  return link;
}

InterNodeLink inter_from_json(const json& value, const std::string& path, int nodes) {
  ObjectReader r(value, path,
                 {"kind", "nics_per_node", "nic_GBps", "ring_step_latency_us", "tree_step_latency_us", "source"});
  InterNodeLink link;
  link.kind = r.one_of("kind", kInterKinds);
  const bool none = link.kind == "none";
  if (none && nodes > 1) {
    throw ConfigError(r.child("kind"), "\"none\"", fmt::format("a cluster of {} nodes needs a network", nodes));
  }
  link.nics_per_node = static_cast<int>(r.integer("nics_per_node", none ? 0 : 1, kMaxInt));
  link.nic_GBps = r.number("nic_GBps", 0, kUnbounded, !none);
  link.ring_step_latency_us = r.number("ring_step_latency_us", 0, kUnbounded);
  link.tree_step_latency_us = r.number("tree_step_latency_us", 0, kUnbounded);
  link.source = r.string("source", false);
  return link;
}

NcclConstants nccl_from_json(const json& value, const std::string& path) {
  ObjectReader r(value, path,
                 {"ring_base_latency_us", "tree_base_latency_us", "nvls_latency_us", "tree_bandwidth_factor",
                  "algorithm", "source"});
  NcclConstants n;
  n.ring_base_latency_us = r.number("ring_base_latency_us", 0, kUnbounded);
  n.tree_base_latency_us = r.number("tree_base_latency_us", 0, kUnbounded);
  n.nvls_latency_us = r.number("nvls_latency_us", 0, kUnbounded);
  n.tree_bandwidth_factor = r.number("tree_bandwidth_factor", 0, 1, true);
  std::array<std::string_view, kAlgorithms.size()> names{};
  std::transform(kAlgorithms.begin(), kAlgorithms.end(), names.begin(), collective_algorithm_name);
  const std::string algorithm = r.one_of("algorithm", names);
  for (CollectiveAlgorithm a : kAlgorithms) {
    if (collective_algorithm_name(a) == algorithm) n.algorithm = a;
  }
  n.source = r.string("source", false);
  return n;
}

HostSpec host_from_json(const json& value, const std::string& path) {
  ObjectReader r(value, path, {"memory_bytes", "memory_bandwidth_GBps", "pcie_GBps", "source"});
  HostSpec h;
  h.memory_bytes = r.integer("memory_bytes", 0, std::numeric_limits<std::int64_t>::max());
  h.memory_bandwidth_GBps = r.number("memory_bandwidth_GBps", 0, kUnbounded);
  h.pcie_GBps = r.number("pcie_GBps", 0, kUnbounded);
  h.source = r.string("source", false);
  return h;
}

ordered_json sourced(ordered_json object, const std::string& source) {
  object["source"] = source;
  return object;
}

}  // namespace

ClusterSpec cluster_from_json(const json& document) {
  ObjectReader r(document, "",
                 {"schema", "name", "description", "nodes", "devices_per_node", "device", "intra_node", "inter_node",
                  "nccl", "host", "warnings"});
  const std::string schema = r.string("schema");
  if (schema != kClusterSchema) {
    throw ConfigError("schema", value_text(r.required("schema")), fmt::format("must be \"{}\"", kClusterSchema));
  }
  if (r.has("warnings") && !r.required("warnings").is_array()) {
    throw ConfigError("warnings", value_text(r.required("warnings")), "must be an array (it is ignored)");
  }
  ClusterSpec c;
  c.name = r.string("name");
  if (c.name.empty()) throw ConfigError("name", "\"\"", "must not be empty");
  c.description = r.string("description", false);
  c.nodes = static_cast<int>(r.integer("nodes", 1, 1 << 20));
  c.devices_per_node = static_cast<int>(r.integer("devices_per_node", 1, 1 << 16));
  c.device = device_from_json(r.required("device"), "device");
  c.intra_node = intra_from_json(r.required("intra_node"), "intra_node");
  c.inter_node = inter_from_json(r.required("inter_node"), "inter_node", c.nodes);
  c.nccl = nccl_from_json(r.required("nccl"), "nccl");
  if (r.has("host")) c.host = host_from_json(r.required("host"), "host");
  return c;
}

ClusterSpec parse_cluster(std::string_view text, const std::string& source) {
  // The same reader as DeepSpeed configs: comments, trailing commas, duplicate keys rejected,
  // every failure a ConfigError with <source>:<line>:<column>.
  return cluster_from_json(config_detail::parse_config_text(text, source));
}

ClusterSpec load_cluster_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(file.string(), "", fmt::format("cannot read the cluster file: {}", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_cluster(text.str(), file.string());
}

ordered_json device_to_json(const DeviceSpec& d) {
  ordered_json j;
  j["name"] = d.name;
  j["description"] = d.description;
  j["memory"] = sourced({{"capacity_bytes", d.capacity_bytes}, {"reserved_bytes", d.reserved_bytes}}, d.memory_source);
  const MatmulPeakTflops& p = d.matmul_peak_tflops;
  j["compute"] = sourced({{"matmul_peak_tflops", {{"fp32", p.fp32}, {"fp16", p.fp16}, {"bf16", p.bf16}, {"fp64", p.fp64}}},
                          {"vector_peak_tflops", d.vector_peak_tflops}},
                         d.compute_source);
  j["memory_bandwidth"] = sourced({{"GBps", d.memory_bandwidth_GBps}}, d.memory_bandwidth_source);
  j["efficiency"] = sourced({{"matmul_max", d.matmul_max_efficiency},
                             {"matmul_half_gflop", d.matmul_half_efficiency_gflop},
                             {"attention_relative", d.attention_relative_efficiency},
                             {"memory", d.memory_efficiency},
                             {"launch_overhead_ns", d.launch_overhead_ns},
                             {"host_overhead_ns", d.host_overhead_ns}},
                            d.efficiency_source);
  return j;
}

ordered_json cluster_to_json(const ClusterSpec& c) {
  ordered_json j;
  j["schema"] = kClusterSchema;
  j["name"] = c.name;
  j["description"] = c.description;
  j["nodes"] = c.nodes;
  j["devices_per_node"] = c.devices_per_node;
  j["device"] = device_to_json(c.device);
  ordered_json curve = ordered_json::array();
  for (const EfficiencyPoint& p : c.intra_node.efficiency) curve.push_back({p.size_bytes, p.efficiency});
  j["intra_node"] = sourced({{"kind", c.intra_node.kind},
                             {"busbw_GBps", c.intra_node.busbw_GBps},
                             {"nvls_busbw_GBps", c.intra_node.nvls_busbw_GBps},
                             {"ring_step_latency_us", c.intra_node.ring_step_latency_us},
                             {"tree_step_latency_us", c.intra_node.tree_step_latency_us},
                             {"efficiency", curve}},
                            c.intra_node.source);
  j["inter_node"] = sourced({{"kind", c.inter_node.kind},
                             {"nics_per_node", c.inter_node.nics_per_node},
                             {"nic_GBps", c.inter_node.nic_GBps},
                             {"ring_step_latency_us", c.inter_node.ring_step_latency_us},
                             {"tree_step_latency_us", c.inter_node.tree_step_latency_us}},
                            c.inter_node.source);
  j["nccl"] = sourced({{"ring_base_latency_us", c.nccl.ring_base_latency_us},
                       {"tree_base_latency_us", c.nccl.tree_base_latency_us},
                       {"nvls_latency_us", c.nccl.nvls_latency_us},
                       {"tree_bandwidth_factor", c.nccl.tree_bandwidth_factor},
                       {"algorithm", collective_algorithm_name(c.nccl.algorithm)}},
                      c.nccl.source);
  if (c.host.described() || !c.host.source.empty()) {
    j["host"] = sourced({{"memory_bytes", c.host.memory_bytes},
                         {"memory_bandwidth_GBps", c.host.memory_bandwidth_GBps},
                         {"pcie_GBps", c.host.pcie_GBps}},
                        c.host.source);
  }
  j["warnings"] = ordered_json::array();
  return j;
}

std::string write_cluster(const ClusterSpec& cluster) { return cluster_to_json(cluster).dump(2) + "\n"; }

void save_cluster_file(const ClusterSpec& cluster, const std::filesystem::path& file) {
  write_file_atomically(file, write_cluster(cluster));
}

ClusterSpec resolve_cluster(const std::string& preset_or_file, const std::string& option) {
  const std::filesystem::path path(preset_or_file);
  if (preset_or_file.find('/') != std::string::npos || path.extension() == ".json") return load_cluster_file(path);
  return cluster_preset(preset_or_file, option);
}

}  // namespace twinspeed::sim
