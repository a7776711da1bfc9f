#pragma once
// How a PipelineModule's layers are split into stages: DeepSpeed 0.19.6's partition methods
// (pipe/module.py _partition_layers, runtime/utils.py partition_uniform / partition_balanced),
// as pure functions. A partition is DeepSpeed's `parts` vector: S + 1 ascending layer indices,
// stage s owning layers [parts[s], parts[s + 1]).
//
//  - "uniform": partition_uniform(L, S): chunks of L / S layers, the first L % S stages one more;
//    with L <= S, stage s gets layer s (or nothing).
//  - "parameters": partition_balanced over each layer's parameter count.
//  - "type:REGEX": partition_balanced over weights 1 for layers whose type name matches REGEX
//    (searched, case-insensitive, as Python's re.search with re.IGNORECASE), 0 otherwise; no
//    match is DeepSpeed's error.
// partition_balanced is DeepSpeed's dynamic programme for the linear partition problem: over all
// splits into S contiguous parts it minimises (heaviest part - lightest part), and among equal
// costs keeps the one with the latest split point (DeepSpeed's `>=` comparison). With L <= S it
// falls back to partition_uniform.
//
// Method names are matched case-insensitively ("Parameters", "TYPE:block"); "profile" and
// anything else are NotImplemented (as in DeepSpeed).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace twinspeed {

// Throws ConfigError (path "pipeline.stages") unless parts >= 1; items may be 0.
std::vector<std::int64_t> partition_uniform(std::int64_t items, int parts);

// Throws ConfigError unless parts >= 1; weights must be >= 0 (Error otherwise).
std::vector<std::int64_t> partition_balanced(std::span<const double> weights, int parts);

struct LayerInfo {
  std::string type_name;      // what "type:REGEX" matches (the layer's class or kind)
  std::int64_t parameters = 0;  // trainable parameter count
};

// The parts vector of `method` ("uniform", "parameters", "type:REGEX") for these layers over
// `stages` stages. Throws ConfigError (path "partition_method") for a REGEX that does not
// compile or matches no layer, NotImplemented for an unknown method.
std::vector<std::int64_t> partition_layers(std::string_view method, std::span<const LayerInfo> layers, int stages);

}  // namespace twinspeed
