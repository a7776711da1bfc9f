// Config: the order in which a DeepSpeed config is resolved.
//   1. parse (comments, trailing commas, duplicate keys)     json_parse.cpp
//   2. legacy forms ("zero_optimization": true)              here
//   3. flag overrides and "auto" placeholders                overrides.cpp
//   4. every key against its section table                   schema_apply.cpp + schema_tables.cpp
//   5. optimizer/scheduler names, cross-key rules            names.cpp, rules.cpp
//   6. device mesh, then the batch rule on its dp            here, batch.cpp
#include "engine/config/config.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/config/batch.hpp"
#include "engine/config/json_parse.hpp"
#include "engine/config/overrides.hpp"
#include "engine/config/rules.hpp"
#include "engine/config/schema_apply.hpp"
#include "engine/config/values.hpp"
#include "engine/core/errors.hpp"

namespace twinspeed {

using nlohmann::json;
using namespace config_detail;

std::string_view to_string(Provenance p) {
  switch (p) {
    case Provenance::file: return "file";
    case Provenance::default_value: return "default";
    case Provenance::derived: return "derived";
    case Provenance::alias: return "alias";
    case Provenance::deprecated: return "deprecated";
    case Provenance::flag: return "flag";
  }
  return "unknown";
}

namespace {

// zero/config.py read_zero_config_deprecated: "zero_optimization": true|false means stage 1|0,
// with the top-level "allgather_size" as the allgather bucket.
bool normalize_legacy_zero(json& user, Resolution& r) {
  bool legacy = user.contains("zero_optimization") && user["zero_optimization"].is_boolean();
  if (legacy) {
    bool on = user["zero_optimization"].get<bool>();
    r.warn("zero_optimization", "the boolean form is deprecated; write {\"stage\": N} (DeepSpeed reads true as stage 1)");
    json zero = {{"stage", on ? 1 : 0}};
    if (on && user.contains("allgather_size")) zero["allgather_bucket_size"] = user["allgather_size"];
    user["zero_optimization"] = zero;
  } else if (user.contains("allgather_size")) {
    r.warn("allgather_size", "only read with the deprecated boolean \"zero_optimization\"; ignored");
  }
  user.erase("allgather_size");
  return legacy;
}

int degree(const json& value, const char* path) {
  auto v = value.get<std::int64_t>();
  if (v > INT_MAX) throw ConfigError(path, std::to_string(v), "too large for a parallel degree");
  return static_cast<int>(v);
}

std::string source_of(const ProvenanceMap& p, const std::string& path) {
  auto it = p.find(path);
  return it == p.end() ? std::string("default") : std::string(to_string(it->second));
}

// tp from tensor_parallel.autotp_size (0 = off), pp from pipeline.stages ("auto" = 1), sp from
// sequence_parallel_size; dp derived, and checked against data_parallel_size when given.
MeshShape resolve_mesh(json& c, const LoadOptions& options, Resolution& r) {
  if (options.tp && *options.tp < 1) {
    throw ConfigError("tp", std::to_string(*options.tp), "a parallel degree must be >= 1");
  }
  MeshRequest request;
  request.world = options.world;
  request.tp = std::max(1, degree(c["tensor_parallel"]["autotp_size"], "tensor_parallel.autotp_size"));
  const json& stages = c["pipeline"]["stages"];
  request.pp = stages.is_number() ? degree(stages, "pipeline.stages") : 1;
  request.sp = degree(c["sequence_parallel_size"], "sequence_parallel_size");
  if (!c["data_parallel_size"].is_null()) request.dp = degree(c["data_parallel_size"], "data_parallel_size");
  MeshShape shape;
  try {
    shape = resolve_mesh_shape(request);
  } catch (const ConfigError& e) {
    throw ConfigError(e.path(), e.value(), e.rule(),
                      fmt::format("world {} (given by the caller), tp {} from tensor_parallel.autotp_size ({}), pp {} "
                                  "from pipeline.stages ({}), sp {} from sequence_parallel_size ({})",
                                  request.world, *request.tp, source_of(r.provenance, "tensor_parallel.autotp_size"),
                                  *request.pp, source_of(r.provenance, "pipeline.stages"), *request.sp,
                                  source_of(r.provenance, "sequence_parallel_size")));
  }
  if (c["data_parallel_size"].is_null()) {
    c["data_parallel_size"] = shape.dp;
    r.provenance["data_parallel_size"] = Provenance::derived;
  }
  return shape;
}

std::optional<std::int64_t> optional_int(const json& v) {
  if (v.is_null()) return std::nullopt;
  return v.get<std::int64_t>();
}

void apply_batch_rule(json& c, const MeshShape& mesh, Resolution& r) {
  BatchInputs in{optional_int(c["train_batch_size"]), optional_int(c["train_micro_batch_size_per_gpu"]),
                 optional_int(c["gradient_accumulation_steps"])};
  BatchResolution b = resolve_batch(in, mesh);
  auto write = [&](const char* key, std::int64_t value, bool derived) {
    c[key] = value;
    if (derived) r.provenance[key] = Provenance::derived;
  };
  write("train_batch_size", b.batch.train_batch_size, b.train_derived);
  write("train_micro_batch_size_per_gpu", b.batch.train_micro_batch_size_per_gpu, b.micro_derived);
  write("gradient_accumulation_steps", b.batch.gradient_accumulation_steps, b.gas_derived);
}

}  // namespace

Config Config::load(const std::filesystem::path& file, const LoadOptions& options) {
  return from_json(read_json(file), options);
}

nlohmann::json Config::read_json(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(file.string(), "", fmt::format("cannot read the config file: {}", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config_text(text.str(), file.string());
}

Config Config::parse(std::string_view text, const LoadOptions& options, std::string source) {
  return from_json(parse_config_text(text, source), options);
}

Config Config::from_json(const json& given, const LoadOptions& options) {
  if (!given.is_object()) throw ConfigError("", value_text(given), "a DeepSpeed config must be a JSON object");
  json user = given;
  Resolution r;
  bool legacy_zero = normalize_legacy_zero(user, r);
  std::vector<ConfigOverride> overrides = apply_flag_overrides(user, options);

  Config config;
  json c = apply_section(*root_section(), user, "", Provenance::file, r);
  if (legacy_zero) r.provenance["zero_optimization.stage"] = Provenance::deprecated;
  for (const ConfigOverride& o : overrides) r.provenance[o.path] = Provenance::flag;
  resolve_named_sections(c, r);
  apply_cross_key_rules(c, r);
  config.mesh_ = resolve_mesh(c, options, r);
  apply_batch_rule(c, config.mesh_, r);
  if (!r.unacted.empty()) {
    r.warn("", fmt::format("read but not acted on by this version of twinspeed (accepted, no effect yet): {}",
                           fmt::join(r.unacted, ", ")));
  }

  config.resolved_ = std::move(c);
  config.provenance_ = std::move(r.provenance);
  config.warnings_ = std::move(r.warnings);
  config.overrides_ = std::move(overrides);
  config.fill_typed_sections();
  return config;
}

Provenance Config::provenance(std::string_view dotted_path) const {
  std::string path(dotted_path);
  while (true) {
    if (auto it = provenance_.find(path); it != provenance_.end()) return it->second;
    auto cut = path.find_last_of(".[");
    if (cut == std::string::npos) break;
    path.resize(cut);
  }
  throw ConfigError(std::string(dotted_path), "", "not a key of the resolved config");
}

}  // namespace twinspeed
