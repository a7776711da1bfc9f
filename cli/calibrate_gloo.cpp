#include "cli/calibrate_gloo.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/launcher.hpp"
#include "engine/backends/tcp_store.hpp"
#include "engine/comm/backend.hpp"
#include "engine/comm/comm.hpp"
#include "engine/comm/registry.hpp"
#include "engine/core/errors.hpp"

namespace twinspeed::cli {

namespace {

// What a worker's stdout or stderr held, read back from its temporary file.
std::string read_all(std::FILE* file) {
  std::string text;
  std::rewind(file);
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) text.append(buffer, n);
  return text;
}

std::string this_executable() {
  std::string path(4096, '\0');
  const ssize_t length = ::readlink("/proc/self/exe", path.data(), path.size());
  if (length <= 0) throw Error("calibrate: cannot find this program (/proc/self/exe) to start the Gloo ranks");
  path.resize(static_cast<std::size_t>(length));
  return path;
}

// CPU time of every thread of this process (the comm worker's copies, syscalls and reduction).
double process_cpu_seconds() {
  timespec now{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2), values.end());
  return values[values.size() / 2];
}

struct TemporaryFile {
  std::FILE* file = std::tmpfile();
  ~TemporaryFile() {
    if (file != nullptr) std::fclose(file);
  }
};

}  // namespace

bool gloo_available() {
  const std::vector<std::string> names = comm::registered_backends();
  return std::find(names.begin(), names.end(), "gloo") != names.end();
}

void run_all_reduce_probe_rank(std::span<const std::int64_t> sizes, int iterations, std::FILE* out) {
  const nlohmann::json settings = {{"timeout_ms", 120'000}};
  std::unique_ptr<comm::Backend> backend = comm::create_backend("gloo", {.settings_json = settings.dump()});
  comm::Comm& world = *backend->world();
  nlohmann::json timings = nlohmann::json::array();
  for (std::int64_t bytes : sizes) {
    Buffer buffer = backend->device().allocate(DType::f32, bytes / 4, MemoryTag::temporaries);
    std::memset(buffer.data(), 0, static_cast<std::size_t>(buffer.bytes()));
    world.all_reduce(buffer.all())->wait();  // untimed: connections, first-touch pages
    std::vector<double> seconds, cpu_seconds;
    for (int i = 0; i < iterations; ++i) {
      const double cpu_begin = process_cpu_seconds();
      const auto begin = std::chrono::steady_clock::now();
      world.all_reduce(buffer.all())->wait();
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
      cpu_seconds.push_back(process_cpu_seconds() - cpu_begin);
    }
    timings.push_back({{"size_bytes", bytes}, {"time_s", median(seconds)}, {"cpu_time_s", median(cpu_seconds)}});
  }
  if (backend->rank() == 0) std::fprintf(out, "%s\n", nlohmann::json{{"all_reduce", timings}}.dump().c_str());
}

std::vector<AllReduceTiming> measure_gloo_all_reduce(int ranks, std::span<const std::int64_t> sizes,
                                                     int iterations) {
  std::string size_list;
  for (std::int64_t bytes : sizes) {
    if (!size_list.empty()) size_list += ',';
    size_list += std::to_string(bytes);
  }
  LaunchSpec spec{.nproc_per_node = ranks,
                  .master_port = backends::unused_loopback_port(),
                  .command = {this_executable(), kCalibrateWorkerCommand, "--sizes", size_list, "--iterations",
                              std::to_string(iterations)}};
  TemporaryFile out, err;
  if (out.file == nullptr || err.file == nullptr) throw Error("calibrate: cannot create temporary files");
  const LaunchOutcome outcome = run_launch(spec, out.file, err.file);
  const std::string output = read_all(out.file);
  if (outcome.exit_code != 0) {
    throw Error(fmt::format("calibrate: the Gloo probe on {} processes failed: {}", ranks, outcome.message),
                read_all(err.file));
  }
  const std::string prefix = "[rank0]: ";
  const std::size_t at = output.find(prefix + "{");
  if (at == std::string::npos) throw Error("calibrate: the Gloo probe's rank 0 printed no result", output);
  const std::size_t end = output.find('\n', at);
  const nlohmann::json result = nlohmann::json::parse(output.substr(at + prefix.size(), end - at - prefix.size()));
  std::vector<AllReduceTiming> timings;
  for (const nlohmann::json& t : result.at("all_reduce")) {
    timings.push_back({.bytes = t.at("size_bytes").get<std::int64_t>(),
                       .seconds = t.at("time_s").get<double>(),
                       .cpu_seconds = t.at("cpu_time_s").get<double>()});
  }
  return timings;
}

}  // namespace twinspeed::cli
