#include "cli/launcher.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>

#include "engine/core/errors.hpp"

namespace twinspeed::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Signals the launcher catches: written to a self-pipe that the supervision loop polls.
int g_signal_pipe[2] = {-1, -1};
constexpr std::array<int, 4> kCaught = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};

extern "C" void on_signal(int sig) {
  const int saved = errno;
  const auto byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

// Installs the handlers for the launch's lifetime and restores the previous ones after.
class SignalGuard {
 public:
  SignalGuard() {
    if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) throw Error(fmt::format("launch: pipe: {}", std::strerror(errno)));
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (std::size_t i = 0; i < kCaught.size(); ++i) sigaction(kCaught[i], &sa, &previous_[i]);
  }
  ~SignalGuard() {
    for (std::size_t i = 0; i < kCaught.size(); ++i) sigaction(kCaught[i], &previous_[i], nullptr);
    close(g_signal_pipe[0]);
    close(g_signal_pipe[1]);
    g_signal_pipe[0] = g_signal_pipe[1] = -1;
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  std::array<struct sigaction, kCaught.size()> previous_{};
};

// Orphaned descendants of the ranks are reparented to the launcher, which reaps them.
class SubreaperGuard {
 public:
  SubreaperGuard() {
    prctl(PR_GET_CHILD_SUBREAPER, &previous_);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  ~SubreaperGuard() { prctl(PR_SET_CHILD_SUBREAPER, previous_); }
  SubreaperGuard(const SubreaperGuard&) = delete;
  SubreaperGuard& operator=(const SubreaperGuard&) = delete;

 private:
  int previous_ = 0;
};

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

// PATH lookup as execvp does it, done before fork (the child only calls async-signal-safe code).
std::string resolve_program(const std::string& program, const std::vector<std::string>& env) {
  if (program.find('/') != std::string::npos) return program;
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& e : env) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  std::size_t at = 0;
  while (at <= path.size()) {
    const std::size_t colon = std::min(path.find(':', at), path.size());
    const std::string dir = colon == at ? std::string(".") : path.substr(at, colon - at);
    const std::string candidate = dir + "/" + program;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(candidate.c_str(), X_OK) == 0) return candidate;
    at = colon + 1;
  }
  throw UsageError(fmt::format("launch: program '{}' not found on PATH", program));
}

struct Output {
  int fd = -1;
  std::FILE* to = nullptr;
  std::string pending;  // a line not yet ended
};

struct Child {
  int rank = 0;
  int local_rank = 0;
  pid_t pid = -1;
  bool running = false;
  bool just_exited = false;
  int status = 0;
  std::array<Output, 2> outputs;  // stdout, stderr
};

void write_lines(Output& o, int rank, bool flush_partial) {
  std::size_t start = 0;
  for (std::size_t nl = o.pending.find('\n'); nl != std::string::npos; nl = o.pending.find('\n', start)) {
    fmt::print(o.to, "[rank{}]: {}\n", rank, std::string_view(o.pending).substr(start, nl - start));
    start = nl + 1;
  }
  o.pending.erase(0, start);
  if (flush_partial && !o.pending.empty()) {
    fmt::print(o.to, "[rank{}]: {}\n", rank, o.pending);
    o.pending.clear();
  }
  std::fflush(o.to);
}

// Reads what is available; closes the pipe at end of file.
void drain(Output& o, int rank) {
  char buffer[65536];
  const ssize_t n = read(o.fd, buffer, sizeof buffer);
  if (n > 0) {
    o.pending.append(buffer, static_cast<std::size_t>(n));
    write_lines(o, rank, false);
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    write_lines(o, rank, true);
    close(o.fd);
    o.fd = -1;
  }
}

void start(Child& c, const std::string& program, const std::vector<std::string>& args, const std::vector<std::string>& env,
           std::FILE* out, std::FILE* err) {
  std::array<std::array<int, 2>, 2> pipes{};
  for (auto& p : pipes) {
    if (pipe2(p.data(), O_CLOEXEC) != 0) throw Error(fmt::format("launch: pipe: {}", std::strerror(errno)));
  }
  std::vector<char*> argv, envp;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string exec_failed = fmt::format("launch: rank {}: cannot execute '{}': ", c.rank, program);
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) throw Error(fmt::format("launch: fork: {}", std::strerror(errno)));
  if (pid == 0) {
    // The child: async-signal-safe calls only.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(128 + SIGTERM);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig : kCaught) sigaction(sig, &dfl, nullptr);
    dup2(pipes[0][1], STDOUT_FILENO);
    dup2(pipes[1][1], STDERR_FILENO);
    execve(program.c_str(), argv.data(), envp.data());
    const char* why = strerror(errno);
    [[maybe_unused]] ssize_t n = write(STDERR_FILENO, exec_failed.data(), exec_failed.size());
    n = write(STDERR_FILENO, why, strlen(why));
    n = write(STDERR_FILENO, "\n", 1);
    _exit(127);
  }
  setpgid(pid, pid);  // also from the parent: no race with an early kill(-pid)
  c.pid = pid;
  c.running = true;
  close(pipes[0][1]);
  close(pipes[1][1]);
  c.outputs[0] = {.fd = pipes[0][0], .to = out, .pending = {}};
  c.outputs[1] = {.fd = pipes[1][0], .to = err, .pending = {}};
  for (Output& o : c.outputs) fcntl(o.fd, F_SETFL, fcntl(o.fd, F_GETFL) | O_NONBLOCK);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) return fmt::format("was killed by {}", signal_name(WTERMSIG(status)));
  return fmt::format("exited with code {}", exit_code_of(status));
}

void signal_groups(const std::vector<Child>& children, int sig) {
  for (const Child& c : children) {
    if (c.pid > 0) kill(-c.pid, sig);
  }
}

}  // namespace

std::vector<std::string> rank_environment(const LaunchSpec& spec, int local_rank, const std::vector<std::string>& parent) {
  const int world = spec.nnodes * spec.nproc_per_node;
  const int rank = spec.node_rank * spec.nproc_per_node + local_rank;
  std::map<std::string, std::string> set = {
      {"RANK", std::to_string(rank)},
      {"LOCAL_RANK", std::to_string(local_rank)},
      {"WORLD_SIZE", std::to_string(world)},
      {"LOCAL_WORLD_SIZE", std::to_string(spec.nproc_per_node)},
      {"GROUP_RANK", std::to_string(spec.node_rank)},
      {"GROUP_WORLD_SIZE", std::to_string(spec.nnodes)},
      {"ROLE_RANK", std::to_string(rank)},
      {"ROLE_WORLD_SIZE", std::to_string(world)},
      {"ROLE_NAME", "default"},
      {"MASTER_ADDR", spec.master_addr},
      {"MASTER_PORT", std::to_string(spec.master_port)},
      {"TORCHELASTIC_RESTART_COUNT", "0"},
      {"TORCHELASTIC_MAX_RESTARTS", "0"},
  };
  bool has_omp = false;
  std::vector<std::string> env;
  for (const std::string& e : parent) {
    const std::string name = e.substr(0, e.find('='));
    if (name == "OMP_NUM_THREADS") has_omp = true;
    if (!set.contains(name)) env.push_back(e);
  }
  if (!has_omp && spec.nproc_per_node > 1) set.emplace("OMP_NUM_THREADS", std::string(1, '1'));
  for (const auto& [name, value] : set) env.push_back(fmt::format("{}={}", name, value));
  return env;
}

LaunchOutcome run_launch(const LaunchSpec& spec, std::FILE* out, std::FILE* err) {
  if (spec.nproc_per_node < 1) throw UsageError(fmt::format("--nproc-per-node {} must be >= 1", spec.nproc_per_node));
  if (spec.nnodes < 1) throw UsageError(fmt::format("--nnodes {} must be >= 1", spec.nnodes));
  if (spec.node_rank < 0 || spec.node_rank >= spec.nnodes) {
    throw UsageError(fmt::format("--node-rank {} must be in [0, {})", spec.node_rank, spec.nnodes));
  }
  if (spec.failure_grace_s < 0.0) throw UsageError(fmt::format("--failure-grace {} must be >= 0", spec.failure_grace_s));
  if (spec.master_port < 1 || spec.master_port > 65535) {
    throw UsageError(fmt::format("--master-port {} must be a TCP port (1-65535)", spec.master_port));
  }
  if (spec.command.empty()) throw UsageError("launch: no program given (twinspeed launch [options] -- PROGRAM ARGS)");

  std::vector<std::string> parent;
  for (char** e = environ; *e != nullptr; ++e) parent.emplace_back(*e);
  const std::string program = resolve_program(spec.command[0], parent);

  SignalGuard guard;
  SubreaperGuard subreaper;
  std::vector<Child> children(static_cast<std::size_t>(spec.nproc_per_node));
  LaunchOutcome outcome;
  std::optional<Clock::time_point> kill_at;
  auto stop = [&](int sig) {
    signal_groups(children, sig);
    if (!kill_at) kill_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(spec.stop_timeout_s));
  };
  try {
    for (int local = 0; local < spec.nproc_per_node; ++local) {
      Child& c = children[static_cast<std::size_t>(local)];
      c.local_rank = local;
      c.rank = spec.node_rank * spec.nproc_per_node + local;
      start(c, program, spec.command, rank_environment(spec, local, parent), out, err);
    }
  } catch (...) {
    signal_groups(children, SIGKILL);
    for (Child& c : children) {
      if (c.pid > 0) waitpid(c.pid, nullptr, 0);
      for (Output& o : c.outputs) {
        if (o.fd >= 0) close(o.fd);
      }
    }
    throw;
  }

  bool killed = false;
  std::optional<Clock::time_point> all_exited_at;
  // A rank failed: the others are stopped at this time unless they all end before.
  std::optional<Clock::time_point> term_at;
  auto groups_alive = [&] {
    return std::any_of(children.begin(), children.end(), [](const Child& c) { return kill(-c.pid, 0) == 0; });
  };
  for (;;) {
    std::vector<pollfd> fds{{.fd = g_signal_pipe[0], .events = POLLIN, .revents = 0}};
    std::vector<Output*> owners{nullptr};
    std::vector<int> ranks{-1};
    for (Child& c : children) {
      for (Output& o : c.outputs) {
        if (o.fd < 0) continue;
        fds.push_back({.fd = o.fd, .events = POLLIN, .revents = 0});
        owners.push_back(&o);
        ranks.push_back(c.rank);
      }
    }
    const bool any_running = std::any_of(children.begin(), children.end(), [](const Child& c) { return c.running; });
    // When stopping, also wait for what the ranks started (their process groups) to be gone.
    const bool descendants_stopping = kill_at && groups_alive() && Clock::now() < *kill_at + std::chrono::seconds(2);
    if (!any_running && !descendants_stopping) {
      if (fds.size() == 1) break;
      // Exited ranks whose descendants still hold the pipes: give them a second, then stop reading.
      if (!all_exited_at) all_exited_at = Clock::now();
      if (Clock::now() - *all_exited_at > std::chrono::seconds(1)) {
        for (std::size_t i = 1; i < fds.size(); ++i) {
          write_lines(*owners[i], ranks[i], true);
          close(owners[i]->fd);
          owners[i]->fd = -1;
        }
        break;
      }
    }
    poll(fds.data(), fds.size(), 100);
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents != 0) drain(*owners[i], ranks[i]);
    }
    unsigned char sig = 0;
    while (read(g_signal_pipe[0], &sig, 1) == 1) {
      if (sig == SIGCHLD) continue;
      if (outcome.exit_code != 0) {
        if (!kill_at) stop(sig);  // during a failure's grace: the user wants them stopped now
        continue;
      }
      outcome.exit_code = 128 + sig;
      outcome.message = fmt::format("launch: received {}; forwarded it to the {} ranks", signal_name(sig), spec.nproc_per_node);
      stop(sig);
    }
    // As the child subreaper, the launcher also reaps what the ranks started and left behind.
    for (;;) {
      int status = 0;
      const pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      auto it = std::find_if(children.begin(), children.end(), [pid](const Child& c) { return c.pid == pid; });
      if (it == children.end()) continue;
      it->status = status;
      it->running = false;
      it->just_exited = true;
    }
    for (Child& c : children) {
      if (!c.just_exited) continue;
      c.just_exited = false;
      if (exit_code_of(c.status) == 0 || outcome.exit_code != 0) continue;
      outcome.exit_code = exit_code_of(c.status);
      outcome.first_failed = c.rank;
      const auto others = std::count_if(children.begin(), children.end(), [](const Child& o) { return o.running; });
      const std::string first = fmt::format("launch: rank {} (local rank {}, pid {}) {}", c.rank, c.local_rank, c.pid,
                                            how_it_ended(c.status));
      outcome.message = fmt::format("{} first; stopping the {} other running rank{}", first, others, others == 1 ? "" : "s");
      if (spec.failure_grace_s > 0.0 && others > 0 && !kill_at) {
        outcome.message = first + " first";  // completed when the grace ends: who was still running
        fmt::print(err, "note: {}; the other ranks get {} s to end on their own (--failure-grace), then SIGTERM\n", first,
                   spec.failure_grace_s);
        std::fflush(err);
        term_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(spec.failure_grace_s));
      } else {
        stop(SIGTERM);
      }
    }
    // The grace is over, or every rank has ended (what they started is stopped too).
    if (term_at && !kill_at) {
      const auto running = std::count_if(children.begin(), children.end(), [](const Child& o) { return o.running; });
      if (running == 0 || Clock::now() >= *term_at) {
        outcome.message += running == 0 ? std::string("; the other ranks ended on their own")
                                         : fmt::format("; stopping the {} rank{} still running after --failure-grace",
                                                       running, running == 1 ? "" : "s");
        stop(SIGTERM);
      }
    }
    if (kill_at && !killed && Clock::now() >= *kill_at) {
      signal_groups(children, SIGKILL);
      killed = true;
    }
  }
  return outcome;
}

}  // namespace twinspeed::cli
