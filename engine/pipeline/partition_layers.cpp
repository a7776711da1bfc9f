#include "engine/pipeline/partition_layers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <regex>

#include "engine/core/errors.hpp"
#include "engine/core/text.hpp"

namespace twinspeed {

namespace {

void require_parts(int parts) {
  if (parts < 1) throw ConfigError("pipeline.stages", std::to_string(parts), "must be >= 1");
}

}  // namespace

std::vector<std::int64_t> partition_uniform(std::int64_t items, int parts) {
  require_parts(parts);
  std::vector<std::int64_t> out(static_cast<std::size_t>(parts) + 1, 0);
  if (items <= parts) {
    for (int p = 0; p <= parts; ++p) out[static_cast<std::size_t>(p)] = std::min<std::int64_t>(p, items);
    return out;
  }
  const std::int64_t chunk = items / parts, residual = items - chunk * parts;
  // Chunks of `chunk`; the first `residual` parts take one more each.
  for (int p = 0; p <= parts; ++p) out[static_cast<std::size_t>(p)] = p * chunk + std::min<std::int64_t>(p, residual);
  return out;
}

std::vector<std::int64_t> partition_balanced(std::span<const double> weights, int parts) {
  require_parts(parts);
  const auto n = static_cast<std::int64_t>(weights.size());
  const std::int64_t m = parts;
  for (double w : weights) {
    if (!(w >= 0)) throw Error(fmt::format("partition_balanced: weight {} is not >= 0", w));
  }
  if (n <= m) return partition_uniform(n, parts);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const auto cols = static_cast<std::size_t>(m + 1);
  auto at = [cols](std::int64_t i, std::int64_t j) { return static_cast<std::size_t>(i) * cols + static_cast<std::size_t>(j); };
  std::vector<double> dp_max(static_cast<std::size_t>(n + 1) * cols, kInf), dp_min(dp_max), dp_cost(dp_max);
  std::vector<std::int64_t> position(dp_max.size(), 0);
  std::vector<double> prefix(static_cast<std::size_t>(n + 1), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    prefix[static_cast<std::size_t>(i + 1)] = prefix[static_cast<std::size_t>(i)] + weights[static_cast<std::size_t>(i)];
  }
  dp_max[at(0, 0)] = 0;
  dp_cost[at(0, 0)] = 0;
  // dp_*[i][j]: the best split of the first i weights into j parts (DeepSpeed keeps dp_min at inf
  // for [0][0], so the first part's minimum is its own sum).
  for (std::int64_t i = 1; i <= n; ++i) {
    for (std::int64_t j = 1; j <= std::min(i, m); ++j) {
      for (std::int64_t k = 0; k < i; ++k) {
        const double part = prefix[static_cast<std::size_t>(i)] - prefix[static_cast<std::size_t>(k)];
        const double max_sum = std::max(dp_max[at(k, j - 1)], part);
        const double min_sum = std::min(dp_min[at(k, j - 1)], part);
        const double cost = max_sum - min_sum;
        if (dp_cost[at(i, j)] >= cost) {
          dp_cost[at(i, j)] = cost;
          dp_max[at(i, j)] = max_sum;
          dp_min[at(i, j)] = min_sum;
          position[at(i, j)] = k;
        }
      }
    }
  }
  std::vector<std::int64_t> out = {n};
  for (std::int64_t j = m; j >= 1; --j) out.push_back(position[at(out.back(), j)]);
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::int64_t> partition_layers(std::string_view method, std::span<const LayerInfo> layers, int stages) {
  const std::string lower = lower_case(method);
  if (lower == "uniform") return partition_uniform(static_cast<std::int64_t>(layers.size()), stages);
  std::vector<double> weights;
  if (lower == "parameters") {
    for (const auto& layer : layers) weights.push_back(static_cast<double>(layer.parameters));
    return partition_balanced(weights, stages);
  }
  if (lower.starts_with("type:")) {
    // DeepSpeed splits on ':' and uses the pattern as written (re.IGNORECASE).
    const std::string pattern(method.substr(5));
    std::regex regex;
    try {
      regex = std::regex(pattern, std::regex::ECMAScript | std::regex::icase);
    } catch (const std::regex_error& e) {
      throw ConfigError("partition_method", std::string(method), fmt::format("the pattern does not compile: {}", e.what()));
    }
    bool any = false;
    for (const auto& layer : layers) {
      const bool match = std::regex_search(layer.type_name, regex);
      weights.push_back(match ? 1.0 : 0.0);
      any = any || match;
    }
    if (!any) {
      throw ConfigError("partition_method", std::string(method),
                        fmt::format("found no layer whose type matches '{}' to partition", pattern));
    }
    return partition_balanced(weights, stages);
  }
  throw NotImplemented(fmt::format("partition method '{}' (DeepSpeed implements uniform, parameters and type:REGEX; "
                                   "profile is not implemented there either)",
                                   method));
}

}  // namespace twinspeed
