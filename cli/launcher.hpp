#pragma once
// `twinspeed launch`: torchrun's static launch of one node's ranks (docs/CLI.md "launch").
//
// Starts nproc_per_node copies of a program, each with torchrun's environment, and supervises
// them: every line a rank writes goes to the launcher's stdout or stderr prefixed "[rankR]: "; a
// SIGINT, SIGTERM or SIGHUP to the launcher is forwarded to every rank; when a rank fails (a
// non-zero exit or a signal) the others get failure_grace_s to end on their own (a real backend's
// ranks fail with a CommError naming the dead rank within their collective timeout, and write their
// flight records), then SIGTERM, then SIGKILL after stop_timeout_s, and the launcher returns the first failing rank's exit code (128 + the signal for a signal). Each rank
// runs in its own process group, so the signals reach what it started too (a shell's children);
// a rank dies with the launcher (PR_SET_PDEATHSIG). Every child is reaped: no zombies.

#include <cstdio>
#include <string>
#include <vector>

namespace twinspeed::cli {

struct LaunchSpec {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double stop_timeout_s = 5.0;
  double failure_grace_s = 10.0;  // after the first failure, before SIGTERM to the others
  std::vector<std::string> command;  // program and its arguments
};

// The environment of one local rank: `parent` (NAME=VALUE entries) with torchrun's variables set
// for it: RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK (the node rank),
// GROUP_WORLD_SIZE, ROLE_RANK, ROLE_WORLD_SIZE, ROLE_NAME, MASTER_ADDR, MASTER_PORT,
// TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_MAX_RESTARTS, and OMP_NUM_THREADS=1 unless `parent`
// sets it or nproc_per_node is 1 (as torchrun).
std::vector<std::string> rank_environment(const LaunchSpec& spec, int local_rank, const std::vector<std::string>& parent);

// How the launch ended.
struct LaunchOutcome {
  int exit_code = 0;       // 0, the first failing rank's code, or 128 + a forwarded signal
  int first_failed = -1;   // global rank of the first rank that failed, -1 if none
  std::string message;     // what happened, for stderr ("" on success)
};

// Runs the ranks to completion (see above). Throws UsageError when the spec is invalid.
LaunchOutcome run_launch(const LaunchSpec& spec, std::FILE* out, std::FILE* err);

}  // namespace twinspeed::cli
