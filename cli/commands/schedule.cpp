// `twinspeed schedule --pp S --micro-batches M [--inference] [--json]`: every stage's instruction
// stream of DeepSpeed's pipeline schedules (engine/pipeline/schedule.hpp), as a grid of steps x
// stages or as JSON (docs/CLI.md "schedule").
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "engine/core/errors.hpp"
#include "engine/pipeline/schedule.hpp"

namespace twinspeed::cli {

namespace {

using nlohmann::ordered_json;
using pipeline::Instruction;
using pipeline::OpKind;
using pipeline::Schedule;
using pipeline::Step;

// Bounds that keep the output printable (the JSON of the largest is ~2 million steps).
constexpr int kMaxStages = 256;
constexpr int kMaxMicroBatches = 4096;

struct ScheduleArgs {
  int pp = 0;
  int micro_batches = 0;
  bool inference = false;
  bool json = false;
};

void check_range(const char* flag, int value, int max) {
  if (value < 1 || value > max) {
    throw UsageError(fmt::format("{} = {}: must be in [1, {}]", flag, value, max));
  }
}

struct StageStream {
  int num_buffers;
  std::vector<Step> steps;
};

ordered_json instruction_json(const Instruction& instruction) {
  ordered_json out;
  out["op"] = pipeline::op_name(instruction.op);
  if (pipeline::is_buffer_op(instruction.op)) out["buffer"] = instruction.buffer;
  return out;
}

void print_json(const std::vector<StageStream>& streams) {
  ordered_json stages = ordered_json::array();
  for (std::size_t s = 0; s < streams.size(); ++s) {
    ordered_json steps = ordered_json::array();
    for (const Step& step : streams[s].steps) {
      ordered_json instructions = ordered_json::array();
      for (const Instruction& instruction : step) instructions.push_back(instruction_json(instruction));
      steps.push_back(std::move(instructions));
    }
    stages.push_back({{"stage", s}, {"num_buffers", streams[s].num_buffers}, {"steps", std::move(steps)}});
  }
  ordered_json report;
  report["schema"] = "twinspeed.schedule/1";
  report["warnings"] = ordered_json::array();
  report["stages"] = std::move(stages);
  std::printf("%s\n", report.dump(2).c_str());
}

std::string legend() {
  std::string out = "legend:";
  for (int k = 0; k < pipeline::kNumOpKinds; ++k) {
    const auto op = static_cast<OpKind>(k);
    out += fmt::format(" {} {}{}", pipeline::op_abbreviation(op), pipeline::op_name(op),
                       k + 1 < pipeline::kNumOpKinds ? "," : ";");
  }
  return out + " the number after an instruction is its buffer id; - an idle step";
}

void print_grid(const ScheduleArgs& args, const std::vector<StageStream>& streams) {
  std::printf("%s\n", fmt::format("twinspeed schedule: {}, {} stages x {} micro-batches, {} steps",
                                   args.inference ? "InferenceSchedule (forward only)"
                                                  : "TrainSchedule (synchronous 1F1B)",
                                   args.pp, args.micro_batches, streams.front().steps.size())
                          .c_str());
  std::vector<std::vector<std::string>> cells(streams.size());
  std::vector<std::size_t> widths(streams.size());
  for (std::size_t s = 0; s < streams.size(); ++s) {
    widths[s] = fmt::format("STAGE {}", s).size();
    for (const Step& step : streams[s].steps) {
      cells[s].push_back(pipeline::abbreviate(step));
      widths[s] = std::max(widths[s], cells[s].back().size());
    }
  }
  const auto row = [&](const std::string& first, auto&& cell) {
    std::string line = fmt::format("{:>7}", first);
    for (std::size_t s = 0; s < streams.size(); ++s) line += fmt::format("  {:<{}}", cell(s), widths[s]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  };
  std::printf("\n");
  row("STEP", [](std::size_t s) { return fmt::format("STAGE {}", s); });
  for (std::size_t t = 0; t < streams.front().steps.size(); ++t) {
    row(std::to_string(t), [&](std::size_t s) { return cells[s][t]; });
  }
  row("BUFFERS", [&](std::size_t s) { return std::to_string(streams[s].num_buffers); });
  std::printf("\n%s\n", legend().c_str());
}

void run_schedule(const ScheduleArgs& args) {
  check_range("--pp", args.pp, kMaxStages);
  check_range("--micro-batches", args.micro_batches, kMaxMicroBatches);
  const auto kind = args.inference ? pipeline::ScheduleKind::Inference : pipeline::ScheduleKind::Train;
  std::vector<StageStream> streams;
  for (const auto& schedule : pipeline::make_schedules(kind, args.micro_batches, args.pp)) {
    streams.push_back({schedule->num_buffers(), schedule->steps()});
  }
  if (args.json) {
    print_json(streams);
  } else {
    print_grid(args, streams);
  }
}

}  // namespace

void register_schedule_command(CLI::App& app) {
  auto args = std::make_shared<ScheduleArgs>();
  auto* cmd = app.add_subcommand(
      "schedule",
      "Print each pipeline stage's instruction stream of DeepSpeed's schedules (TrainSchedule, synchronous "
      "1F1B; InferenceSchedule with --inference)");
  cmd->add_option("--pp", args->pp, fmt::format("Pipeline stages S, 1..{}", kMaxStages))->required();
  cmd->add_option("--micro-batches", args->micro_batches,
                  fmt::format("Micro-batches M per batch (gradient_accumulation_steps), 1..{}", kMaxMicroBatches))
      ->required();
  cmd->add_flag("--inference", args->inference, "The forward-only InferenceSchedule instead of TrainSchedule");
  cmd->add_flag("--json", args->json, "Print {schema, warnings, stages} as JSON instead of the grid");
  cmd->callback([args] { run_schedule(*args); });
}

}  // namespace twinspeed::cli
