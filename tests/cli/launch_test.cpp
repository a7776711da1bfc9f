// `twinspeed launch` (cli/launcher.hpp): torchrun's environment per rank, output prefixed by rank,
// the first failing rank's exit code with the others stopped, signals forwarded, SIGKILL after the
// stop timeout, nothing left running. The end-to-end cases run the built `twinspeed` binary.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>


#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/launcher.hpp"
#include "engine/backends/tcp_store.hpp"

namespace twinspeed::cli {
namespace {

std::string find_value(const std::vector<std::string>& env, const std::string& name) {
  for (const std::string& e : env) {
    if (e.rfind(name + "=", 0) == 0) return e.substr(name.size() + 1);
  }
  return "(unset)";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(LaunchEnvironment, EachRankGetsTorchrunsVariables) {
  const LaunchSpec spec{.nproc_per_node = 4, .nnodes = 2, .node_rank = 1, .master_addr = "node0", .master_port = 6000};
  const std::vector<std::string> env = rank_environment(spec, 2, {"PATH=/bin", "RANK=99", "HOME=/root"});
  EXPECT_EQ(find_value(env, "RANK"), "6");
  EXPECT_EQ(find_value(env, "LOCAL_RANK"), "2");
  EXPECT_EQ(find_value(env, "WORLD_SIZE"), "8");
  EXPECT_EQ(find_value(env, "LOCAL_WORLD_SIZE"), "4");
  EXPECT_EQ(find_value(env, "GROUP_RANK"), "1");
  EXPECT_EQ(find_value(env, "GROUP_WORLD_SIZE"), "2");
  EXPECT_EQ(find_value(env, "ROLE_RANK"), "6");
  EXPECT_EQ(find_value(env, "MASTER_ADDR"), "node0");
  EXPECT_EQ(find_value(env, "MASTER_PORT"), "6000");
  EXPECT_EQ(find_value(env, "TORCHELASTIC_RESTART_COUNT"), "0");
  EXPECT_EQ(find_value(env, "OMP_NUM_THREADS"), "1");
  EXPECT_EQ(find_value(env, "PATH"), "/bin");
  EXPECT_EQ(std::count_if(env.begin(), env.end(), [](const std::string& e) { return e.rfind("RANK=", 0) == 0; }), 1);
}

TEST(LaunchEnvironment, OmpNumThreadsIsKeptWhenGivenAndUnsetForOneRank) {
  EXPECT_EQ(find_value(rank_environment({.nproc_per_node = 2}, 0, {"OMP_NUM_THREADS=3"}), "OMP_NUM_THREADS"), "3");
  EXPECT_EQ(find_value(rank_environment({.nproc_per_node = 1}, 0, {}), "OMP_NUM_THREADS"), "(unset)");
}

// ---- the built binary ------------------------------------------------------------------------

struct LaunchRun {
  int exit_code = -1;
  std::string out, err;
  double seconds = 0.0;
};

// Runs `twinspeed ARGS`; after `signal_after_s` (when >= 0) and once stdout holds every string of
// wait_for_in_out, sends SIGTERM to it. Kills it and fails the test after 180 s (a loaded machine).
// `tick`, when given, is called every 50 ms or so while it runs.
LaunchRun run_twinspeed(const std::vector<std::string>& args, double signal_after_s = -1.0,
                        const std::vector<std::string>& wait_for_in_out = {},
                        const std::function<void()>& tick = {}) {
  int out_pipe[2], err_pipe[2];
  EXPECT_EQ(pipe2(out_pipe, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(err_pipe, O_CLOEXEC), 0);
  std::vector<std::string> argv_storage = {TWINSPEED_BINARY};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const auto begin = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  LaunchRun run;
  bool signalled = false;
  std::vector<pollfd> fds = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open = 2;
  while (open > 0) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    if (elapsed > 180.0) {
      kill(pid, SIGKILL);
      ADD_FAILURE() << "twinspeed did not finish within 180 s";
      break;
    }
    const bool ready = std::all_of(wait_for_in_out.begin(), wait_for_in_out.end(),
                                   [&](const std::string& s) { return run.out.find(s) != std::string::npos; });
    if (signal_after_s >= 0.0 && !signalled && elapsed >= signal_after_s && ready) {
      kill(pid, SIGTERM);
      signalled = true;
    }
    if (tick) tick();
    poll(fds.data(), fds.size(), 50);
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      } else {
        (i == 0 ? run.out : run.err).append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  return run;
}

// The process groups the ranks reported ("pgid N" lines) no longer exist.
void expect_groups_gone(const std::string& out) {
  for (std::size_t at = out.find("pgid "); at != std::string::npos; at = out.find("pgid ", at + 1)) {
    const pid_t group = std::stoi(out.substr(at + 5));
    EXPECT_NE(kill(-group, 0), 0) << "process group " << group << " still has processes";
  }
}

TEST(Launch, PrefixesEachRanksOutputAndSetsItsEnvironment) {
  const LaunchRun run = run_twinspeed({"launch", "--nproc-per-node", "3", "--", "sh", "-c",
                                 "echo \"$RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_ADDR:$MASTER_PORT "
                                 "omp $OMP_NUM_THREADS\"; echo to-stderr >&2; printf no-newline"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  for (const char* line : {"[rank0]: 0 0 3 3 127.0.0.1:29500 omp 1\n", "[rank1]: 1 1 3 3 127.0.0.1:29500 omp 1\n",
                           "[rank2]: 2 2 3 3 127.0.0.1:29500 omp 1\n", "[rank2]: no-newline\n"}) {
    EXPECT_NE(run.out.find(line), std::string::npos) << line << " in\n" << run.out;
  }
  EXPECT_NE(run.err.find("[rank1]: to-stderr\n"), std::string::npos) << run.err;
}

TEST(Launch, AFailingRankStopsTheOthersAndItsExitCodeIsTheLaunchers) {
  // The others ignore the failure: they are stopped once the grace is over.
  const LaunchRun run = run_twinspeed({"launch", "--nproc-per-node", "3", "--failure-grace", "0.5", "--", "sh", "-c",
                                 "echo pgid $$; if [ $RANK = 1 ]; then sleep 0.3; exit 7; fi; sleep 60"});
  EXPECT_EQ(run.exit_code, 7);
  EXPECT_NE(run.err.find("launch: rank 1 (local rank 1, pid "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("exited with code 7 first; stopping the 2 ranks still running after --failure-grace"),
            std::string::npos) << run.err;
  EXPECT_NE(run.err.find("the other ranks get 0.5 s to end on their own (--failure-grace), then SIGTERM"),
            std::string::npos) << run.err;
  EXPECT_LT(run.seconds, 20.0);
  expect_groups_gone(run.out);
}

TEST(Launch, ASignalIsForwardedAndARankIgnoringItIsKilledAfterTheStopTimeout) {
  // Rank 0 exits on SIGTERM; rank 1 (and its sleep, which inherits the ignored signal) ignores it
  // until SIGKILL. Each says "pgid" once its handling is set.
  const LaunchRun run = run_twinspeed({"launch", "--nproc-per-node", "2", "--stop-timeout", "0.5", "--", "sh", "-c",
                                       "if [ $RANK = 1 ]; then trap '' TERM; echo pgid $$; sleep 60; fi; "
                                       "trap 'echo got TERM; exit 143' TERM; echo pgid $$; sleep 60 & wait"},
                                      0.0, {"[rank0]: pgid", "[rank1]: pgid"});
  EXPECT_EQ(run.exit_code, 128 + SIGTERM) << run.err;
  EXPECT_NE(run.err.find("launch: received SIGTERM; forwarded it to the 2 ranks"), std::string::npos) << run.err;
  EXPECT_NE(run.out.find("[rank0]: got TERM"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("[rank1]: got TERM"), std::string::npos) << run.out;
  EXPECT_LT(run.seconds, 20.0);
  expect_groups_gone(run.out);
}

TEST(Launch, AProgramNotOnThePathIsAUsageError) {
  const LaunchRun run = run_twinspeed({"launch", "--nproc-per-node", "2", "--", "twinspeed-no-such-program"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(run.err.rfind("error: launch: program 'twinspeed-no-such-program' not found on PATH", 0), 0u) << run.err;
}

TEST(Launch, ANodeRankOutsideTheNodesIsAUsageError) {
  const LaunchRun run = run_twinspeed({"launch", "--nproc-per-node", "1", "--nnodes", "2", "--node-rank", "2", "--", "true"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("--node-rank 2 must be in [0, 2)"), std::string::npos) << run.err;
}


// The lines rank `rank` wrote to a launch's stdout or stderr, without the launcher's prefixes.
std::string rank_lines(const std::string& text, int rank) {
  const std::string prefix = "[rank" + std::to_string(rank) + "]: ";
  std::string lines;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    if (line.rfind(prefix, 0) == 0) lines += line.substr(prefix.size()) + "\n";
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return lines;
}

// The config `train --backend sim` runs on two simulated ranks, run by two Gloo processes under the
// launcher with the same `extra` arguments, gives the same losses (the Gloo backend reduces in the
// simulator's order; 1e-5 relative leaves room for LibTorch's threading). The config is
// configs/zero2_fp32.json with micro-batch 2 and no accumulation, to keep the test short. With a
// trace_dir, both runs write their traces there (sim.json, real.json). Returns the simulated run's
// first loss.
double expect_gloo_trains_like_sim(const std::vector<std::string>& extra, const std::string& trace_dir = {}) {
  std::vector<std::string> train = {"--config", "tests/cli/data/train_parity_zero2_fp32.json", "--model",
                                    "gpt-bench", "--steps", "2", "--seq", "32", "--json", "--no-progress"};
  train.insert(train.end(), extra.begin(), extra.end());
  const std::string sim_trace = trace_dir + "/sim.json", real_trace = trace_dir + "/real.json";
  std::vector<std::string> sim_args = {"train", "--backend", "sim", "--cluster", "local-cpu", "--world", "2"};
  if (!trace_dir.empty()) sim_args.insert(sim_args.end(), {"--trace", sim_trace});
  sim_args.insert(sim_args.end(), train.begin(), train.end());
  const std::string port = std::to_string(backends::unused_loopback_port());
  std::vector<std::string> gloo_args = {"launch", "--nproc-per-node", "2", "--master-port", port,
                                        "--", TWINSPEED_BINARY, "train", "--backend", "gloo", "--timeout", "120"};
  if (!trace_dir.empty()) gloo_args.insert(gloo_args.end(), {"--trace", real_trace});
  gloo_args.insert(gloo_args.end(), train.begin(), train.end());
  const LaunchRun sim = run_twinspeed(sim_args);
  const LaunchRun gloo = run_twinspeed(gloo_args);
  EXPECT_EQ(sim.exit_code, 0) << sim.err;
  EXPECT_EQ(gloo.exit_code, 0) << gloo.err;
  if (sim.exit_code != 0 || gloo.exit_code != 0) return 0.0;
  const nlohmann::json a = nlohmann::json::parse(sim.out), b = nlohmann::json::parse(rank_lines(gloo.out, 0));
  EXPECT_EQ(b["schema"], "twinspeed.train/1");
  EXPECT_EQ(b["backend"], "gloo");
  EXPECT_EQ(a["steps"].size(), 2u);
  EXPECT_EQ(b["steps"].size(), 2u);
  for (std::size_t s = 0; s < 2 && s < a["steps"].size() && s < b["steps"].size(); ++s) {
    const double x = a["steps"][s]["loss"], y = b["steps"][s]["loss"];
    EXPECT_NEAR(x, y, 1e-5 * std::abs(x)) << "step " << s + 1;
    EXPECT_EQ(a["steps"][s]["lr"], b["steps"][s]["lr"]);
  }
  if (!trace_dir.empty()) {
    EXPECT_EQ(b["trace"], real_trace);
  }
  return a["steps"].empty() ? 0.0 : a["steps"][0]["loss"].get<double>();
}

// The runs of expect_gloo_trains_like_sim issued the same collectives on every rank (`trace
// compare`), and each real rank's own trace merges by hand into what rank 0 merged.
void expect_traces_are_twins(const std::string& dir) {
  const std::string sim_trace = dir + "/sim.json", real_trace = dir + "/real.json";
  const LaunchRun compared = run_twinspeed({"trace", "compare", sim_trace, real_trace, "--json"});
  ASSERT_EQ(compared.exit_code, 0) << compared.out << compared.err;
  const nlohmann::json c = nlohmann::json::parse(compared.out);
  EXPECT_EQ(c["schema"], "twinspeed.trace-compare/1");
  EXPECT_EQ(c["same"], true);
  EXPECT_GT(c["collectives_compared"].get<int>(), 50);
  const std::string rank0_trace = dir + "/real.rank0.json", rank1_trace = dir + "/real.rank1.json";
  const LaunchRun merged = run_twinspeed({"trace", "merge", "--out", dir + "/merged.json", rank1_trace, rank0_trace});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  EXPECT_EQ(read_text(dir + "/merged.json"), read_text(real_trace));
  // One rank's trace against both: rank 1 is missing, a difference (exit 1, named on stderr).
  const LaunchRun partial = run_twinspeed({"trace", "compare", rank0_trace, real_trace});
  EXPECT_EQ(partial.exit_code, 1);
  EXPECT_EQ(partial.err.rfind("error: the traces issue different collectives (1 difference; the first: rank 1: only "
                              "in the second trace)", 0), 0u) << partial.err;
  // A rank given twice is refused, and the output is not written.
  const LaunchRun twice = run_twinspeed({"trace", "merge", "--out", dir + "/twice.json", rank0_trace, rank0_trace});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_NE(twice.err.find("rank 0 is in two of the traces"), std::string::npos) << twice.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/twice.json"));
}

// The promise end to end, on the synthetic data: same losses, same collectives.
TEST(LaunchTrain, TwoGlooProcessesTrainLikeTwoSimulatedRanks) {
#ifndef TWINSPEED_HAS_GLOO
  GTEST_SKIP() << "built without the Gloo backend (TWINSPEED_GLOO=OFF)";
#endif
  const std::string dir = ::testing::TempDir() + "launch_train_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  expect_gloo_trains_like_sim({}, dir);
  expect_traces_are_twins(dir);
  std::filesystem::remove_all(dir);
}

// A TSTOK1 token file (docs/CLI.md "Token files"): both runs read each rank's sequences from it in
// the same order, so they agree; and they really read it (the loss differs from the synthetic run's).
TEST(LaunchTrain, TwoGlooProcessesTrainOnATokenFileLikeTwoSimulatedRanks) {
#ifndef TWINSPEED_HAS_GLOO
  GTEST_SKIP() << "built without the Gloo backend (TWINSPEED_GLOO=OFF)";
#endif
  // 300 sequences of 32 tokens of uint16 ids below gpt-bench's vocabulary (8192), a repeating pattern.
  const std::uint64_t count = 300 * 32;
  std::string bytes = "TSTOK1";
  bytes += static_cast<char>(1);
  bytes += static_cast<char>(2);
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((count >> (8 * i)) & 0xff);
  for (std::uint64_t t = 0; t < count; ++t) {
    const std::uint64_t id = (t * 37 + t / 32) % 8192;
    bytes += static_cast<char>(id & 0xff);
    bytes += static_cast<char>(id >> 8);
  }
  const std::string path = ::testing::TempDir() + "launch_train_tokens.tstok";
  std::ofstream(path, std::ios::binary) << bytes;
  const double on_file = expect_gloo_trains_like_sim({"--data", path});
  const LaunchRun synthetic = run_twinspeed({"train", "--backend", "sim", "--cluster", "local-cpu", "--world", "2",
                                             "--config", "tests/cli/data/train_parity_zero2_fp32.json", "--model",
                                             "gpt-bench", "--steps", "1", "--seq", "32", "--json", "--no-progress"});
  ASSERT_EQ(synthetic.exit_code, 0) << synthetic.err;
  EXPECT_NE(nlohmann::json::parse(synthetic.out)["steps"][0]["loss"].get<double>(), on_file);
}

// Ranks given different runs (here rank 1 gets another --seq, as a node with another command line
// would) fail at start-up, every one with the ConfigError naming rank 1 and the key; exit 2.
TEST(LaunchTrain, RanksGivenDifferentRunsFailAtStartUpNamingTheRankAndTheKey) {
#ifndef TWINSPEED_HAS_GLOO
  GTEST_SKIP() << "built without the Gloo backend (TWINSPEED_GLOO=OFF)";
#endif
  const std::string port = std::to_string(backends::unused_loopback_port());
  const LaunchRun run = run_twinspeed(
      {"launch", "--nproc-per-node", "2", "--master-port", port, "--", "sh", "-c",
       std::string("exec ") + TWINSPEED_BINARY +
           " train --backend gloo --config tests/cli/data/train_parity_zero2_fp32.json --model gpt-bench --steps 1 "
           "--no-progress --timeout 30 --seq $((32 + 16 * RANK))"});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  // Every rank that got to print (the launcher stops the others once one has exited) says it.
  int printed = 0;
  for (int rank : {0, 1}) {
    const std::string err = rank_lines(run.err, rank);
    if (err.empty()) continue;
    ++printed;
    EXPECT_EQ(err.rfind("error: config: ranks [1] of 2 resolved a different run than rank 0", 0), 0u) << run.err;
    EXPECT_NE(err.find("seq_len (rank 0: 32, rank 1: 48)"), std::string::npos) << run.err;
  }
  EXPECT_GE(printed, 1) << run.err;
  EXPECT_NE(run.err.find("exited with code 2 first"), std::string::npos) << run.err;
}

// The store key's value as text, or nullopt while it is not set.
std::optional<std::string> store_text(backends::TcpStore& store, const std::string& key) {
  const std::string keys[] = {key};
  if (!store.check(keys)) return std::nullopt;
  const std::vector<std::uint8_t> v = store.get(key, std::chrono::milliseconds(1000));
  return std::string(v.begin(), v.end());
}

// The failure promise: SIGKILL rank 1 mid-training (from outside, as the OOM killer would):
// rank 0 ends on its own with a CommError naming rank 1 within its --timeout (the launcher's
// --failure-grace lets it), the launcher exits with rank 1's status and names it as the first to
// fail, nothing hangs and no rank is left running or unreaped. The test watches the run's store:
// rank 1's pid from the Gloo join, and its progress (the seq and op it posts before each
// collective) to kill it once it reduces gradients (a step, not the set-up's broadcasts).
TEST(LaunchTrain, KillingOneRankMidStepEndsTheOtherWithACommErrorNamingIt) {
#ifndef TWINSPEED_HAS_GLOO
  GTEST_SKIP() << "built without the Gloo backend (TWINSPEED_GLOO=OFF)";
#endif
  const int port = backends::unused_loopback_port();
  std::unique_ptr<backends::TcpStore> store;
  pid_t pids[2] = {-1, -1};
  std::optional<long> training_from;  // rank 1's collectives when its training began
  bool killed = false;
  auto tick = [&] {
    if (killed) return;
    try {
      if (!store) {
        store = std::make_unique<backends::TcpStore>(backends::TcpStoreOptions{
            .host = "127.0.0.1", .port = port, .connect_timeout = std::chrono::milliseconds(100)});
      }
      for (int r : {0, 1}) {
        if (pids[r] < 0) {
          if (auto joined = store_text(*store, "ts/join/rank/" + std::to_string(r))) {
            pids[r] = std::stoi(joined->substr(joined->find(' ') + 1));
          }
        }
      }
      if (pids[1] < 0 || !store_text(*store, "ts/run-check/hash/1")) return;
      // The collectives rank 1 has issued, over the first groups (the mesh's groups follow the
      // world), and whether one is a step's gradient reduction (set-up only broadcasts).
      long issued = 0;
      bool training_step = false;
      for (int g = 0; g < 32; ++g) {
        if (auto p = store_text(*store, fmt::format("ts/progress/g{}/r1", g))) {
          issued += std::stol(*p);
          training_step = training_step || p->find("reduce") != std::string::npos;
        }
      }
      if (!training_from) training_from = issued;
      if (issued >= *training_from + 3 && training_step) {
        ASSERT_EQ(kill(pids[1], SIGKILL), 0);
        killed = true;
        store.reset();  // let rank 0's store go when rank 0 ends
      }
    } catch (const std::exception&) {
      store.reset();  // not up yet, or gone: try again
    }
  };
  const LaunchRun run = run_twinspeed(
      {"launch", "--nproc-per-node", "2", "--master-port", std::to_string(port), "--failure-grace", "60", "--",
       TWINSPEED_BINARY, "train", "--backend", "gloo", "--config", "tests/cli/data/train_parity_zero2_fp32.json",
       "--model", "gpt-bench", "--steps", "100000", "--seq", "32", "--no-progress", "--timeout", "2"},
      -1.0, {}, tick);
  ASSERT_TRUE(killed) << "rank 1 was never seen training\n" << run.err;
  EXPECT_EQ(run.exit_code, 128 + SIGKILL) << run.err;
  EXPECT_NE(run.err.find(fmt::format("error: launch: rank 1 (local rank 1, pid {}) was killed by SIGKILL first",
                                     pids[1])),
            std::string::npos)
      << run.err;
  // Rank 0 ended on its own (not by the launcher's SIGTERM), with the CommError on its first line.
  const std::string rank0 = rank_lines(run.err, 0);
  EXPECT_EQ(rank0.rfind("error: gloo ", 0), 0u) << run.err;
  // Rank 1 died before issuing the collective ("did not arrive") or during it ("went away").
  EXPECT_NE(rank0.find("failed on rank 0: ranks [1] "), std::string::npos) << run.err;
  EXPECT_NE(rank0.find("missing ranks [1])"), std::string::npos) << run.err;
  EXPECT_NE(rank0.find("rank 0's last operations (flight recorder): "), std::string::npos) << run.err;
  EXPECT_LT(run.seconds, 60.0);  // a bound against hangs: --timeout 2, not a speed check
  for (pid_t pid : pids) EXPECT_NE(kill(pid, 0), 0) << "pid " << pid << " still exists (running or a zombie)";
}

}  // namespace
}  // namespace twinspeed::cli
