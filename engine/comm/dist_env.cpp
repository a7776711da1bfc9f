#include "engine/comm/dist_env.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>

#include "engine/core/errors.hpp"

namespace twinspeed::comm {

namespace {

int parse_int(std::string_view name, const std::string& value, int min) {
  int out = 0;
  const char* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, out);
  if (ec != std::errc{} || ptr != end) throw ConfigError(std::string(name), value, "must be an integer");
  if (out < min) throw ConfigError(std::string(name), value, fmt::format("must be >= {}", min));
  return out;
}

std::optional<int> read_int(const EnvLookup& env, std::string_view name, int min) {
  std::optional<std::string> v = env(name);
  if (!v) return std::nullopt;
  return parse_int(name, *v, min);
}

int require_int(const EnvLookup& env, std::string_view name, int min, std::string_view source) {
  std::optional<int> v = read_int(env, name, min);
  if (!v) throw ConfigError(std::string(name), "(unset)", fmt::format("is required with the {} variables", source));
  return *v;
}

// The master's address and port: MASTER_ADDR / MASTER_PORT override `default_addr`.
void read_master(const EnvLookup& env, DistEnv& d, std::optional<std::string> default_addr) {
  if (std::optional<std::string> addr = env("MASTER_ADDR"); addr && !addr->empty()) {
    d.master_addr = *addr;
  } else if (default_addr) {
    d.master_addr = *default_addr;
  } else {
    throw ConfigError("MASTER_ADDR", "(unset)",
                      fmt::format("is required with the {} variables (the host of rank 0)", d.source));
  }
  if (std::optional<int> port = read_int(env, "MASTER_PORT", 1)) {
    if (*port > 65535) throw ConfigError("MASTER_PORT", std::to_string(*port), "must be a TCP port (1-65535)");
    d.master_port = *port;
  }
}

void check_ranks(const DistEnv& d, std::string_view rank_var, std::string_view local_var) {
  if (d.rank >= d.world_size) {
    throw ConfigError(std::string(rank_var), std::to_string(d.rank),
                      fmt::format("must be below the world size {}", d.world_size));
  }
  if (d.local_rank >= d.local_world_size) {
    throw ConfigError(std::string(local_var), std::to_string(d.local_rank),
                      fmt::format("must be below the local world size {}", d.local_world_size));
  }
}

// SLURM_TASKS_PER_NODE: "2(x3),1" -> 2 2 2 1.
std::vector<int> expand_tasks_per_node(const std::string& value) {
  std::vector<int> counts;
  std::size_t at = 0;
  while (at <= value.size()) {
    const std::size_t comma = std::min(value.find(',', at), value.size());
    const std::string item = value.substr(at, comma - at);
    const std::size_t paren = item.find("(x");
    const int count = parse_int("SLURM_TASKS_PER_NODE", item.substr(0, paren), 0);
    int repeat = 1;
    if (paren != std::string::npos) {
      if (item.back() != ')') throw ConfigError("SLURM_TASKS_PER_NODE", value, "must look like 2(x3),1");
      repeat = parse_int("SLURM_TASKS_PER_NODE", item.substr(paren + 2, item.size() - paren - 3), 1);
    }
    counts.insert(counts.end(), static_cast<std::size_t>(repeat), count);
    at = comma + 1;
  }
  return counts;
}

std::optional<DistEnv> from_torchrun(const EnvLookup& env) {
  if (!env("RANK") && !env("WORLD_SIZE")) return std::nullopt;
  DistEnv d{.source = "torchrun"};
  d.rank = require_int(env, "RANK", 0, d.source);
  d.world_size = require_int(env, "WORLD_SIZE", 1, d.source);
  d.local_rank = read_int(env, "LOCAL_RANK", 0).value_or(d.rank);
  d.local_world_size = read_int(env, "LOCAL_WORLD_SIZE", 1).value_or(d.world_size);
  read_master(env, d, "127.0.0.1");
  check_ranks(d, "RANK", "LOCAL_RANK");
  return d;
}

std::optional<DistEnv> from_openmpi(const EnvLookup& env) {
  if (!env("OMPI_COMM_WORLD_RANK")) return std::nullopt;
  DistEnv d{.source = "openmpi"};
  d.rank = require_int(env, "OMPI_COMM_WORLD_RANK", 0, d.source);
  d.world_size = require_int(env, "OMPI_COMM_WORLD_SIZE", 1, d.source);
  d.local_rank = read_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0).value_or(0);
  d.local_world_size = read_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", 1).value_or(1);
  read_master(env, d, d.world_size == d.local_world_size ? std::optional<std::string>("127.0.0.1") : std::nullopt);
  check_ranks(d, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK");
  return d;
}

std::optional<DistEnv> from_slurm(const EnvLookup& env) {
  if (!env("SLURM_PROCID")) return std::nullopt;
  DistEnv d{.source = "slurm"};
  d.rank = require_int(env, "SLURM_PROCID", 0, d.source);
  d.world_size = require_int(env, "SLURM_NTASKS", 1, d.source);
  d.local_rank = read_int(env, "SLURM_LOCALID", 0).value_or(0);
  if (std::optional<int> per_node = read_int(env, "SLURM_NTASKS_PER_NODE", 1)) {
    d.local_world_size = *per_node;
  } else if (std::optional<std::string> tasks = env("SLURM_TASKS_PER_NODE")) {
    const std::vector<int> counts = expand_tasks_per_node(*tasks);
    const auto node = static_cast<std::size_t>(read_int(env, "SLURM_NODEID", 0).value_or(0));
    d.local_world_size = counts.at(std::min(node, counts.size() - 1));
  }
  std::optional<std::string> nodes = env("SLURM_JOB_NODELIST");
  if (!nodes) nodes = env("SLURM_NODELIST");
  std::optional<std::string> first;
  if (nodes) first = expand_slurm_nodelist(*nodes).at(0);
  read_master(env, d, first);
  check_ranks(d, "SLURM_PROCID", "SLURM_LOCALID");
  return d;
}

// Expands one host pattern with zero or more bracket groups: "r[1-2]n[01-02]" -> r1n01 r1n02 ...
void expand_pattern(std::string_view pattern, std::string_view whole, std::string prefix, std::vector<std::string>& out) {
  const std::size_t open = pattern.find('[');
  if (open == std::string_view::npos) {
    out.push_back(prefix + std::string(pattern));
    return;
  }
  const std::size_t close = pattern.find(']', open);
  if (close == std::string_view::npos) throw ConfigError("SLURM_JOB_NODELIST", std::string(whole), "has an unclosed '['");
  prefix += pattern.substr(0, open);
  const std::string_view ranges = pattern.substr(open + 1, close - open - 1);
  const std::string_view rest = pattern.substr(close + 1);
  std::size_t at = 0;
  while (at <= ranges.size()) {
    const std::size_t comma = std::min(ranges.find(',', at), ranges.size());
    const std::string_view range = ranges.substr(at, comma - at);
    const std::size_t dash = range.find('-');
    const std::string lo_text(range.substr(0, dash));
    const std::string hi_text(dash == std::string_view::npos ? lo_text : std::string(range.substr(dash + 1)));
    const int lo = parse_int("SLURM_JOB_NODELIST", lo_text, 0), hi = parse_int("SLURM_JOB_NODELIST", hi_text, 0);
    if (hi < lo) {
      throw ConfigError("SLURM_JOB_NODELIST", std::string(whole), fmt::format("has a bad range '{}'", range));
    }
    for (int i = lo; i <= hi; ++i) {
      if (out.size() >= 100000) throw ConfigError("SLURM_JOB_NODELIST", std::string(whole), "expands to more than 100000 hosts");
      std::string number = std::to_string(i);
      if (number.size() < lo_text.size()) number.insert(0, lo_text.size() - number.size(), '0');
      expand_pattern(rest, whole, prefix + number, out);
    }
    at = comma + 1;
  }
}

}  // namespace

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::optional<DistEnv> discover_dist_env(const EnvLookup& env) {
  if (std::optional<DistEnv> d = from_torchrun(env)) return d;
  if (std::optional<DistEnv> d = from_openmpi(env)) return d;
  return from_slurm(env);
}

std::vector<std::string> expand_slurm_nodelist(std::string_view list) {
  std::vector<std::string> hosts;
  std::size_t start = 0;
  int depth = 0;
  for (std::size_t i = 0; i <= list.size(); ++i) {
    if (i < list.size() && list[i] == '[') ++depth;
    if (i < list.size() && list[i] == ']') --depth;
    if (depth < 0) throw ConfigError("SLURM_JOB_NODELIST", std::string(list), "has an unmatched ']'");
    if (i == list.size() || (list[i] == ',' && depth == 0)) {
      const std::string_view item = list.substr(start, i - start);
      if (item.empty()) throw ConfigError("SLURM_JOB_NODELIST", std::string(list), "has an empty host");
      expand_pattern(item, list, "", hosts);
      start = i + 1;
    }
  }
  return hosts;
}

}  // namespace twinspeed::comm
