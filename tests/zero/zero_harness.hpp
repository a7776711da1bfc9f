#pragma once
// Runs the engine with a ToyRunner on a simulated cluster and collects what the ZeRO tests compare.

#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/comm/backend.hpp"
#include "engine/comm/device.hpp"
#include "engine/core/trace.hpp"
#include "engine/zero/model_layout.hpp"
#include "sim/cost_model.hpp"
#include "tests/zero/toy_runner.hpp"

namespace twinspeed::testing {

struct RunSpec {
  int world = 2;
  int stage = 0;
  std::int64_t micro = 2;
  std::int64_t gas = 1;
  int steps = 3;
  int first_data_step = 0;  // step s trains on the data of step first_data_step + s
  std::string precision = "fp32";  // "fp32", "bf16", "fp16"
  nlohmann::json zero = nlohmann::json::object();    // extra zero_optimization keys
  nlohmann::json config = nlohmann::json::object();  // extra top-level keys (override)
  ToyModel model;
  std::vector<ParamGroupSpec> param_groups;  // empty: one group
  std::int64_t capacity_bytes = 0;
  int ranks_per_node = 1;  // ranks sharing one host memory (Backend::host())
  // (rank, micro-step, layer, parameter index): +inf written into that gradient.
  std::vector<std::tuple<int, std::int64_t, std::size_t, std::size_t>> overflows;
};

struct RunResult {
  std::vector<float> params;          // rank 0's parameters after the run (runner order)
  std::vector<std::vector<float>> params_per_step;  // rank 0's parameters after each step
  std::vector<double> loss_scales;    // after each step
  std::vector<bool> skipped;          // per step
  std::vector<double> lrs;            // after each step
  std::vector<double> losses;         // rank 0, per micro-step
  std::vector<double> grad_norms;     // rank 0, after each step (last_gradient_norm)
  std::vector<TraceEvent> events;     // rank 0's trace events
  std::vector<comm::MemoryStats> memory_after_init;  // per rank
  std::vector<comm::MemoryStats> memory_after_run;   // per rank
  std::vector<comm::MemoryStats> host_after_run;     // per rank: its node's host memory
  std::vector<std::vector<std::int64_t>> numels;     // parameter numels per group (one group)
  std::string trace;                  // Chrome trace of every rank
};

// Time that moves: compute by FLOPs, collectives by a latency and their bytes, so traces have
// overlapping streams and step spans that must nest (trace_document validates them).
std::shared_ptr<sim::CostModel> toy_costs();

nlohmann::json config_of(const RunSpec& spec);
// The whole run on a simulated cluster of spec.world ranks.
RunResult run(const RunSpec& spec);
// One rank's part of the run on any backend (a simulated rank, a Gloo process): fills what rank
// backend->rank() contributes to out (rank 0: parameters, losses, ...; every rank: its memory).
// Ignores spec.capacity_bytes (the backend's own).
void train_rank(const RunSpec& spec, const std::shared_ptr<comm::Backend>& backend, RunResult& out);

}  // namespace twinspeed::testing
