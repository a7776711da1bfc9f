// The `twinspeed` command. Dispatches to subcommands; turns errors into the first line of stderr
// plus details, and into the exit codes of docs/CLI.md.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "cli/command.hpp"
#include "sim/scheduler.hpp"
#include "cli/exit_codes.hpp"
#include "engine/core/errors.hpp"

namespace {

int report(const twinspeed::Error& e, int code) {
  std::fprintf(stderr, "error: %s\n", e.what());
  if (!e.details().empty()) std::fprintf(stderr, "%s\n", e.details().c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace twinspeed;
  // Before any thread exists: simulated ranks then share one malloc arena (sim/scheduler.hpp).
  sim::share_one_malloc_arena();
  CLI::App app{
      "twinspeed: DeepSpeed's training engine in C++, with a deterministic simulated cluster.\n"
      "Results go to stdout; logs, warnings and progress to stderr. Exit codes: 0 success,\n"
      "1 run-time failure, 2 usage or configuration error, 3 model does not fit (plan --require-fit);\n"
      "launch exits with its first failing rank's code.",
      "twinspeed"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("twinspeed 0.1.0"));
  cli::register_calibrate_command(app);
  cli::register_config_commands(app);
  cli::register_demo_command(app);
  cli::register_launch_command(app);
  cli::register_plan_command(app);
  cli::register_presets_command(app);
  cli::register_schedule_command(app);
  cli::register_simulate_command(app);
  cli::register_trace_commands(app);
  cli::register_train_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s\nRun with --help for usage.\n", e.what());
    return cli::kExitUsage;
  } catch (const cli::ExitStatus& e) {
    return report(e, e.code());
  } catch (const ConfigError& e) {
    return report(e, cli::kExitUsage);
  } catch (const UsageError& e) {
    return report(e, cli::kExitUsage);
  } catch (const Error& e) {
    return report(e, cli::kExitRuntimeFailure);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal error: %s\n", e.what());
    return cli::kExitRuntimeFailure;
  }
  return cli::kExitSuccess;
}
