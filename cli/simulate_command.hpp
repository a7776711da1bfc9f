#pragma once
// The run behind `twinspeed simulate`, also `twinspeed train --backend sim` (numeric fidelity):
// load the config and model, run the simulated cluster, print the report (docs/CLI.md).

#include <cstdint>
#include <optional>
#include <string>

#include "engine/config/config.hpp"
#include "engine/model/spec/layer_spec.hpp"
#include "engine/model/spec/model_config.hpp"

namespace twinspeed::cli {

struct SimulateArgs {
  std::string command = "simulate";  // "train" for train --backend sim: the report's header and schema
  std::string config;
  std::string model;
  std::string cluster;
  int world = 1;
  std::optional<int> pp;
  int steps = 1;
  std::optional<std::int64_t> seq;
  std::string fidelity;  // empty: chosen from the host memory estimate
  std::string recompute = "none";
  bool all_ranks = false;
  std::uint64_t seed = 0;
  std::string data = "synthetic";  // numeric fidelity's tokens: synthetic or a token file (train --data)
  std::string trace;
  bool json = false;
  bool per_rank = false;
  bool no_progress = false;
};

// What a run needs from its arguments, whatever runs it: the config (at args.world), the model,
// the sequence length and its source, the recompute mode (full when the pipeline's
// activation_checkpoint_interval asks for it, with a note) and the pipeline's partition method.
struct RunSetup {
  Config config;
  ModelConfig model;
  std::int64_t seq_len = 0;
  std::string seq_source;
  RecomputeMode recompute = RecomputeMode::none;
  std::optional<std::string> checkpoint_note;
  std::string partition;
};
RunSetup prepare_run(const SimulateArgs& args);

void run_simulate(const SimulateArgs& args);

}  // namespace twinspeed::cli
