#include "engine/runtime/run_check.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/errors.hpp"

namespace twinspeed {

namespace {

// FNV-1a, 64 bits: a stable hash of the canonical text (not a secure one: it catches mistakes).
std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string text_of(const std::vector<std::uint8_t>& b) { return {b.begin(), b.end()}; }

void collect_paths(const nlohmann::json& a, const nlohmann::json& b, const std::string& path, std::size_t limit,
                   std::vector<std::string>& out) {
  if (out.size() >= limit || a == b) return;
  if (!a.is_object() || !b.is_object()) {
    out.push_back(path.empty() ? std::string("(the whole run)") : path);
    return;
  }
  auto child = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
  // Both objects are std::map-ordered: a merge walk visits every key once, in order.
  auto i = a.begin(), j = b.begin();
  while ((i != a.end() || j != b.end()) && out.size() < limit) {
    if (j == b.end() || (i != a.end() && i.key() < j.key())) {
      out.push_back(child(i.key()));
      ++i;
    } else if (i == a.end() || j.key() < i.key()) {
      out.push_back(child(j.key()));
      ++j;
    } else {
      collect_paths(i.value(), j.value(), child(i.key()), limit, out);
      ++i;
      ++j;
    }
  }
}

// The value at a dotted path, as JSON text ("(absent)" when a key on the way is missing).
std::string value_at(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json* at = &j;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t dot = std::min(path.find('.', start), path.size());
    const std::string key = path.substr(start, dot - start);
    if (!at->is_object() || !at->contains(key)) return "(absent)";
    at = &(*at)[key];
    start = dot + 1;
  }
  return at->dump();
}

}  // namespace

std::vector<std::string> differing_paths(const nlohmann::json& a, const nlohmann::json& b, std::size_t limit) {
  std::vector<std::string> out;
  collect_paths(a, b, "", limit, out);
  return out;
}

void check_same_run(comm::Backend& backend, const nlohmann::json& run, std::chrono::milliseconds timeout) {
  comm::Store& store = backend.store();
  const int rank = backend.rank(), world = backend.world_size();
  const std::string canonical = run.dump();
  const std::string hash = fmt::format("{:016x}", fnv1a(canonical));
  store.set(fmt::format("ts/run-check/json/{}", rank), bytes_of(canonical));
  store.set(fmt::format("ts/run-check/hash/{}", rank), bytes_of(hash));
  std::vector<int> differ;
  const std::string reference = text_of(store.get("ts/run-check/hash/0", timeout));
  for (int r = 1; r < world; ++r) {
    if (text_of(store.get(fmt::format("ts/run-check/hash/{}", r), timeout)) != reference) differ.push_back(r);
  }
  if (differ.empty()) return;

  const int first = differ.front();
  const nlohmann::json base = nlohmann::json::parse(text_of(store.get("ts/run-check/json/0", timeout)));
  const nlohmann::json other = nlohmann::json::parse(text_of(store.get(fmt::format("ts/run-check/json/{}", first), timeout)));
  std::vector<std::string> keys;
  for (const std::string& path : differing_paths(base, other)) {
    keys.push_back(fmt::format("{} (rank 0: {}, rank {}: {})", path, value_at(base, path), first, value_at(other, path)));
  }
  // Rank 0 serves the TCP store: no rank leaves before every rank has read what it needed (so that
  // all of them fail alike, at about the same time).
  store.add("ts/run-check/read", 1);
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (store.add("ts/run-check/read", 0) < world && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw ConfigError(
      "", "",
      fmt::format("ranks {} of {} resolved a different run than rank 0 (start-up check of the config, model, seq, seed "
                  "and steps); rank {} differs in {}",
                  differ, world, first, fmt::join(keys, "; ")),
      "every rank must get the same config file, flags and model: check the command line each node runs");
}

}  // namespace twinspeed
