#pragma once
// How a command plugs into the `twinspeed` CLI. Each command lives in cli/commands/<name>.cpp and
// exposes one register function that adds its CLI11 subcommand and sets its callback. Callbacks
// write results to stdout, logs and warnings to stderr, and report failure by throwing a
// twinspeed::Error (main maps error types to exit codes, docs/CLI.md).

#include <CLI/CLI.hpp>

#include "engine/core/errors.hpp"

namespace twinspeed::cli {

// A result that was printed but must end the command with another exit status than 0 (plan
// --require-fit when the model does not fit: 3). main prints it like an error.
class ExitStatus : public Error {
 public:
  ExitStatus(int code, const std::string& message, std::string details = {})
      : Error(message, std::move(details)), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

void register_calibrate_command(CLI::App& app);
void register_config_commands(CLI::App& app);
void register_demo_command(CLI::App& app);
void register_launch_command(CLI::App& app);
void register_plan_command(CLI::App& app);
void register_presets_command(CLI::App& app);
void register_schedule_command(CLI::App& app);
void register_simulate_command(CLI::App& app);
void register_trace_commands(CLI::App& app);
void register_train_command(CLI::App& app);

}  // namespace twinspeed::cli
