#pragma once
// What `twinspeed simulate` prints: the table (stdout by default) and the JSON report (--json),
// both documented in docs/CLI.md "simulate".

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/planner/simulation.hpp"

namespace twinspeed::cli {

struct ReportWarning {
  std::string path;
  std::string message;
  bool note = false;
};

struct SimulateReport {
  std::string command = "simulate";  // or "train" (--backend sim): the header and the JSON schema
  std::string config_path;
  std::string model_name;  // the --model argument
  std::string cluster_name;
  const Config* config = nullptr;
  const ModelConfig* model = nullptr;
  const sim::ClusterSpec* cluster = nullptr;
  std::int64_t seq_len = 0;
  std::string seq_source;       // "--seq", or how the default was derived
  sim::Fidelity fidelity = sim::Fidelity::shape;
  std::string fidelity_source;  // "--fidelity", or why the default was chosen
  bool all_ranks = false;
  bool per_rank = false;
  std::uint64_t seed = 0;
  std::string recompute = "none";
  std::optional<std::string> trace_path;
  std::vector<ReportWarning> warnings;
  const planner::SimulateResult* result = nullptr;
};

// "warning: <path>: <message>" (or "note: ...") on stderr.
void print_warning(const ReportWarning& w);

// "1.50 GiB", "12.00 MiB", "512 B": binary units.
std::string format_bytes(std::int64_t bytes);
// "1.234 s" from a second up, else "12.345 ms".
std::string seconds_text(std::int64_t ns);

void print_simulate_table(const SimulateReport& report);
// The per-step table and JSON rows, shared by simulate and train.
void print_step_rows(const std::vector<planner::StepReport>& steps);
nlohmann::ordered_json steps_json(const std::vector<planner::StepReport>& steps);
nlohmann::ordered_json simulate_json(const SimulateReport& report);

}  // namespace twinspeed::cli
