#pragma once
// Cluster files, schema "twinspeed.cluster/1" (docs/CLUSTER.md): a ClusterSpec as JSON. The loader
// checks every key and value and throws ConfigError(JSON path, value, rule) -- unknown keys with the
// closest valid key; the writer emits every field, so load(write(x)) == x for every ClusterSpec.

#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sim/cost/hardware.hpp"

namespace twinspeed::sim {

inline constexpr std::string_view kClusterSchema = "twinspeed.cluster/1";

// A cluster from a parsed document. source names the file in errors about the document as a whole.
// "device" may be a device preset name instead of an object.
ClusterSpec cluster_from_json(const nlohmann::json& document);
// Parses text (plain JSON) first; a syntax error is a ConfigError naming source, line and column.
ClusterSpec parse_cluster(std::string_view text, const std::string& source = "cluster file");
ClusterSpec load_cluster_file(const std::filesystem::path& file);

// What a `--cluster` argument names: a twinspeed.cluster/1 file when it looks like a path (has a
// '/' or ends in .json), else a preset (ConfigError at `option` with "did you mean" when unknown).
ClusterSpec resolve_cluster(const std::string& preset_or_file, const std::string& option = "--cluster");

// The document, keys in the order of docs/CLUSTER.md ("schema" first, "warnings": [] last).
nlohmann::ordered_json cluster_to_json(const ClusterSpec& cluster);
nlohmann::ordered_json device_to_json(const DeviceSpec& device);
std::string write_cluster(const ClusterSpec& cluster);  // cluster_to_json(...).dump(2) + "\n"
// Writes to a temporary name beside file, then renames (nothing existing is damaged by a failure).
void save_cluster_file(const ClusterSpec& cluster, const std::filesystem::path& file);

}  // namespace twinspeed::sim
