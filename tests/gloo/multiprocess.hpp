#pragma once
// Runs one function per rank in forked child processes of the test, with a wall-clock deadline
// after which every child still running is killed: a multi-process test can fail, never hang.
// Fork without exec is safe here: the gtest process has no other threads when it forks, and each
// child leaves with _exit() (no gtest teardown in the children).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "engine/backends/tcp_store.hpp"
#include "engine/core/errors.hpp"

namespace twinspeed::testing {

struct ChildExit {
  int rank = 0;
  int code = -1;       // exit code; -1 when killed
  int signal = 0;      // the signal that ended it, if one did
  bool killed = false;  // still running at the deadline
};

// A TCP port nobody listens on right now (the kernel's pick).
inline int free_port() { return backends::unused_loopback_port(); }

// fn(rank) runs in child `rank`; its return value is the exit code. An exception is printed (with
// its details) and exits 100.
inline std::vector<ChildExit> run_ranks(int world, const std::function<int(int rank)>& fn,
                                        std::chrono::milliseconds deadline = std::chrono::milliseconds(15'000)) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::vector<pid_t> pids;
  for (int rank = 0; rank < world; ++rank) {
    pid_t pid = ::fork();
    if (pid == 0) {
      int code = 100;
      try {
        code = fn(rank);
      } catch (const Error& e) {
        std::fprintf(stderr, "[rank %d] %s\n  %s\n", rank, e.what(), e.details().c_str());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "[rank %d] %s\n", rank, e.what());
      }
      std::fflush(stdout);
      std::fflush(stderr);
      ::_exit(code);
    }
    pids.push_back(pid);
  }
  std::vector<ChildExit> exits(static_cast<std::size_t>(world));
  std::vector<bool> done(static_cast<std::size_t>(world), false);
  const auto end = std::chrono::steady_clock::now() + deadline;
  int remaining = world;
  while (remaining > 0) {
    for (int r = 0; r < world; ++r) {
      if (done[static_cast<std::size_t>(r)]) continue;
      int status = 0;
      if (::waitpid(pids[static_cast<std::size_t>(r)], &status, WNOHANG) > 0) {
        done[static_cast<std::size_t>(r)] = true;
        --remaining;
        exits[static_cast<std::size_t>(r)] = {.rank = r,
                                              .code = WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                                              .signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0};
      }
    }
    if (remaining == 0) break;
    if (std::chrono::steady_clock::now() > end) {
      for (int r = 0; r < world; ++r) {
        if (done[static_cast<std::size_t>(r)]) continue;
        ::kill(pids[static_cast<std::size_t>(r)], SIGKILL);
        ::waitpid(pids[static_cast<std::size_t>(r)], nullptr, 0);
        exits[static_cast<std::size_t>(r)] = {.rank = r, .code = -1, .killed = true};
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return exits;
}

}  // namespace twinspeed::testing
