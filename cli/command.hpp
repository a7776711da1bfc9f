#pragma once
// How a command plugs into the `twinspeed` CLI. Each command lives in cli/commands/<name>.cpp and
// exposes one register function that adds its CLI11 subcommand and sets its callback. Callbacks
// write results to stdout, logs and warnings to stderr, and report failure by throwing a
// twinspeed::Error (main maps error types to exit codes, docs/CLI.md).

#include <CLI/CLI.hpp>

namespace twinspeed::cli {

void register_config_commands(CLI::App& app);
void register_demo_command(CLI::App& app);
void register_presets_command(CLI::App& app);
void register_schedule_command(CLI::App& app);
void register_simulate_command(CLI::App& app);

}  // namespace twinspeed::cli
