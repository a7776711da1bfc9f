#include "engine/core/errors.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace twinspeed {

namespace {
std::string config_message(const std::string& path, const std::string& value, const std::string& rule) {
  std::string where = path.empty() ? std::string("config") : path;
  if (value.empty()) return fmt::format("{}: {}", where, rule);
  return fmt::format("{} = {}: {}", where, value, rule);
}
}  // namespace

ConfigError::ConfigError(std::string path, std::string value, std::string rule, std::string details)
    : Error(config_message(path, value, rule), std::move(details)),
      path_(std::move(path)),
      value_(std::move(value)),
      rule_(std::move(rule)) {}

namespace {
// "(rank R, group G, seq S, op O, missing ranks [...])", leaving out what is not known (-1, empty):
// a start-up failure has no group or seq.
std::string comm_context_text(const CommError::Context& c) {
  std::vector<std::string> parts;
  if (c.rank >= 0) parts.push_back(fmt::format("rank {}", c.rank));
  if (c.group >= 0) parts.push_back(fmt::format("group {}", c.group));
  if (c.seq >= 0) parts.push_back(fmt::format("seq {}", c.seq));
  if (!c.op.empty()) parts.push_back(fmt::format("op {}", c.op));
  if (!c.missing.empty()) parts.push_back(fmt::format("missing ranks {}", c.missing));
  return parts.empty() ? std::string() : fmt::format(" ({})", fmt::join(parts, ", "));
}
}  // namespace

CommError::CommError(const std::string& message, Context context, std::string details)
    : Error(message + comm_context_text(context), std::move(details)), context_(std::move(context)) {}

OutOfMemory::OutOfMemory(Context context, std::string breakdown)
    : Error(fmt::format("out of memory on rank {}: {} bytes requested for '{}', {} of {} bytes in use",
                        context.rank, context.requested_bytes, context.tag, context.in_use_bytes,
                        context.capacity_bytes),
            std::move(breakdown)),
      context_(std::move(context)) {}

}  // namespace twinspeed
