#include "engine/config/overrides.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "engine/core/errors.hpp"

namespace twinspeed::config_detail {

using nlohmann::json;

namespace {

enum class Write {
  always,      // create the key (and its parents) when missing
  in_section,  // only when the first path segment is an object in the file
  if_present,  // only when the key itself is in the file
};

// One LoadOptions field and the DeepSpeed path it sets. The table also answers "which option
// resolves an "auto" at this path".
struct Target {
  std::string_view path;
  std::string_view option;  // LoadOptions field; the CLI flag is the same name with dashes
  Write write;
  std::optional<json> (*value)(const LoadOptions&);
};

template <typename T>
std::optional<json> as_json(const std::optional<T>& v) {
  if (!v) return std::nullopt;
  return json(*v);
}

const std::vector<Target>& targets() {
  static const std::vector<Target> t = {
      {"train_batch_size", "global_batch", Write::always, [](const LoadOptions& o) { return as_json(o.global_batch); }},
      {"train_micro_batch_size_per_gpu", "micro_batch", Write::always,
       [](const LoadOptions& o) { return as_json(o.micro_batch); }},
      {"gradient_accumulation_steps", "gradient_accumulation", Write::always,
       [](const LoadOptions& o) { return as_json(o.gradient_accumulation); }},
      {"gradient_clipping", "gradient_clipping", Write::always,
       [](const LoadOptions& o) { return as_json(o.gradient_clipping); }},
      {"tensor_parallel.autotp_size", "tp", Write::always, [](const LoadOptions& o) { return as_json(o.tp); }},
      {"pipeline.stages", "pp", Write::always, [](const LoadOptions& o) { return as_json(o.pp); }},
      {"sequence_parallel_size", "sp", Write::always, [](const LoadOptions& o) { return as_json(o.sp); }},
      {"zero_optimization.stage", "zero_stage", Write::always,
       [](const LoadOptions& o) { return as_json(o.zero_stage); }},
      {"bf16.enabled", "precision", Write::always,
       [](const LoadOptions& o) { return o.precision ? std::optional<json>(*o.precision == "bf16") : std::nullopt; }},
      {"fp16.enabled", "precision", Write::always,
       [](const LoadOptions& o) { return o.precision ? std::optional<json>(*o.precision == "fp16") : std::nullopt; }},
      {"optimizer.params.lr", "lr", Write::in_section, [](const LoadOptions& o) { return as_json(o.lr); }},
      {"optimizer.params.weight_decay", "weight_decay", Write::in_section,
       [](const LoadOptions& o) { return as_json(o.weight_decay); }},
      {"optimizer.params.eps", "adam_eps", Write::in_section, [](const LoadOptions& o) { return as_json(o.adam_eps); }},
      {"optimizer.params.betas", "adam_betas", Write::in_section,
       [](const LoadOptions& o) { return as_json(o.adam_betas); }},
      {"scheduler.params.warmup_max_lr", "lr", Write::if_present, [](const LoadOptions& o) { return as_json(o.lr); }},
      {"scheduler.params.warmup_num_steps", "warmup_steps", Write::if_present,
       [](const LoadOptions& o) { return as_json(o.warmup_steps); }},
      {"scheduler.params.total_num_steps", "total_steps", Write::if_present,
       [](const LoadOptions& o) { return as_json(o.total_steps); }},
  };
  return t;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    auto dot = path.find('.', start);
    parts.emplace_back(path.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

// The object that holds the last segment of path, created as needed when `create`; null when the
// path runs through something that is not an object (validation reports that later).
json* parent_of(json& root, const std::vector<std::string>& parts, bool create) {
  json* node = &root;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!node->is_object()) return nullptr;
    if (!node->contains(parts[i])) {
      if (!create) return nullptr;
      (*node)[parts[i]] = json::object();
    }
    node = &(*node)[parts[i]];
  }
  return node->is_object() ? node : nullptr;
}

// A batch key left "auto" while the other two come from the options is resolved by the batch rule
// from them (as the Trainer would compute it): it is removed here and derived later.
void derive_auto_batch_key(json& user, const LoadOptions& options) {
  struct Key {
    const char* name;
    bool others_given;
  };
  const Key keys[] = {
      {"train_batch_size", options.micro_batch && options.gradient_accumulation},
      {"train_micro_batch_size_per_gpu", options.global_batch && options.gradient_accumulation},
      {"gradient_accumulation_steps", options.global_batch && options.micro_batch},
  };
  for (const Key& k : keys) {
    if (k.others_given && user.contains(k.name) && user[k.name] == "auto") user.erase(k.name);
  }
}

}  // namespace

std::vector<ConfigOverride> apply_flag_overrides(json& user, const LoadOptions& options) {
  if (options.precision && *options.precision != "bf16" && *options.precision != "fp16" && *options.precision != "fp32") {
    throw ConfigError("precision", *options.precision, "must be bf16, fp16 or fp32");
  }
  std::vector<ConfigOverride> applied;
  for (const Target& t : targets()) {
    std::optional<json> value = t.value(options);
    if (!value) continue;
    auto parts = split_path(t.path);
    bool section_exists = user.is_object() && user.contains(parts.front()) && user[parts.front()].is_object();
    if (t.write == Write::in_section && !section_exists) continue;
    json* parent = parent_of(user, parts, t.write != Write::if_present);
    if (!parent) continue;
    bool present = parent->contains(parts.back());
    if (t.write == Write::if_present && !present) continue;
    json before = present ? (*parent)[parts.back()] : json();
    (*parent)[parts.back()] = *value;
    applied.push_back({std::string(t.path), std::move(before), *value});
  }
  derive_auto_batch_key(user, options);
  return applied;
}

void throw_auto_placeholder(const std::string& path) {
  const auto& all = targets();
  auto it = std::find_if(all.begin(), all.end(), [&](const Target& t) { return t.path == path; });
  std::string fix = "write a value in the file";
  if (it != all.end()) {
    std::string flag(it->option);
    std::replace(flag.begin(), flag.end(), '_', '-');
    fix += fmt::format(", or give it as an override (LoadOptions::{}; --{} where a twinspeed command offers it)",
                       it->option, flag);
  }
  throw ConfigError(path, "\"auto\"", "\"auto\" is a Hugging Face Trainer placeholder, not a value DeepSpeed can use here",
                    fmt::format("The Trainer replaces \"auto\" with its own arguments before DeepSpeed reads the "
                                "file; DeepSpeed only accepts \"auto\" inside the sections it validates, where it "
                                "means the default. To fix: {}.",
                                fix));
}

void reject_auto_inside(const json& value, const std::string& path) {
  if (value.is_string() && value.get_ref<const std::string&>() == "auto") throw_auto_placeholder(path);
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) reject_auto_inside(child, path + "." + key);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) reject_auto_inside(value[i], fmt::format("{}[{}]", path, i));
  }
}

}  // namespace twinspeed::config_detail
