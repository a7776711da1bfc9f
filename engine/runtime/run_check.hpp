#pragma once
// The start-up check that every rank of a real run trains the same thing (DESIGN.md "Store": "a
// config-hash check at start-up"): each rank hashes its description of the run (the resolved
// DeepSpeed config after overrides, the model, the sequence length, seed, steps: whatever would
// make ranks train differently) and compares the hashes of all ranks through the backend's store.
// Backend-agnostic: it needs only comm::Backend::store(), so every real backend gets it.

#include <chrono>

#include <nlohmann/json.hpp>

#include "engine/comm/backend.hpp"

namespace twinspeed {

// Collective over the world: every rank calls it once, before its first collective, with its own
// description of the run (any JSON; compared as nlohmann dumps it, keys sorted). Returns when every
// rank's hash equals rank 0's. Otherwise every rank throws the same ConfigError naming the ranks
// that differ from rank 0 and, for the first of them, the keys (dotted paths) whose values differ
// with both values, once every rank has read what it needs (rank 0 may serve the store; up to
// timeout). CommError when a rank does not post its hash within timeout.
void check_same_run(comm::Backend& backend, const nlohmann::json& run, std::chrono::milliseconds timeout);

// The dotted paths at which two run descriptions differ, objects compared key by key (a key missing
// on one side differs), anything else as a whole; at most `limit` of them, in key order.
std::vector<std::string> differing_paths(const nlohmann::json& a, const nlohmann::json& b, std::size_t limit = 8);

}  // namespace twinspeed
