// `twinspeed launch --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P]
// [--stop-timeout S] [--failure-grace S] -- PROGRAM ARGS`: torchrun's static launch of this node's ranks (cli/launcher.hpp,
// docs/CLI.md "launch").
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "cli/command.hpp"
#include "cli/launcher.hpp"

namespace twinspeed::cli {

void register_launch_command(CLI::App& app) {
  auto spec = std::make_shared<LaunchSpec>();
  auto* cmd = app.add_subcommand(
      "launch",
      "Start this node's ranks of a multi-process run, as torchrun does: each gets RANK, LOCAL_RANK,\n"
      "WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (and OMP_NUM_THREADS=1 unless set);\n"
      "their output is prefixed [rankR]:; signals are forwarded; when a rank fails the others are\n"
      "stopped and launch exits with the first failing rank's code (docs/CLI.md \"launch\").\n"
      "  twinspeed launch --nproc-per-node 4 -- ./my_training_program --deepspeed_config ds.json");
  cmd->add_option("--nproc-per-node", spec->nproc_per_node, "Ranks to start on this node")
      ->required()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--nnodes", spec->nnodes, "Nodes in the run (default 1)")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--node-rank", spec->node_rank, "This node's index, 0 to nnodes-1 (default 0)")
      ->check(CLI::Range(0, (1 << 16) - 1));
  cmd->add_option("--master-addr", spec->master_addr, "Host of rank 0, where the rendezvous store listens (default 127.0.0.1)");
  cmd->add_option("--master-port", spec->master_port, "TCP port of the rendezvous store (default 29500)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--stop-timeout", spec->stop_timeout_s,
                  "Seconds between SIGTERM and SIGKILL when stopping the ranks (default 5)")
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--failure-grace", spec->failure_grace_s,
                  "Seconds the other ranks get to end on their own after a rank fails, before SIGTERM (default 10; "
                  "a real backend's ranks then report the dead rank in a CommError within their --timeout)")
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("command", spec->command, "PROGRAM and its arguments, after --")->required();
  cmd->positionals_at_end();
  cmd->callback([spec] {
    const LaunchOutcome outcome = run_launch(*spec, stdout, stderr);
    if (outcome.exit_code != 0) throw ExitStatus(outcome.exit_code, outcome.message);
  });
}

}  // namespace twinspeed::cli
