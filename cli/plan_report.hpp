#pragma once
// What `twinspeed plan` prints: the report (stdout by default) and the JSON (--json, schema
// twinspeed.plan/1), both documented in docs/CLI.md "plan".

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/simulate_report.hpp"
#include "sim/planner/plan.hpp"

namespace twinspeed::cli {

struct PlanReport {
  std::string model_name;  // the --model argument
  std::string config_path; // the --config argument, or "default"
  const ModelConfig* model = nullptr;
  const sim::ClusterSpec* cluster = nullptr;  // sized to the world
  const planner::PlanResult* plan = nullptr;
  bool estimator = false;  // --estimator deepspeed
  std::optional<std::string> trace_path;
  std::vector<ReportWarning> warnings;
};

void print_plan_report(const PlanReport& report);
nlohmann::ordered_json plan_json(const PlanReport& report);

}  // namespace twinspeed::cli
