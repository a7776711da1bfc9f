#include "cli/calibrate_probes.hpp"

#include <algorithm>
#include <ctime>
#include <cmath>
#include <fstream>
#include <stdexcept>

#include <torch/torch.h>

// OpenBLAS (LibTorch's BLAS on Debian) runs its own thread pool. Weak: absent with another BLAS.
extern "C" void openblas_set_num_threads(int threads) __attribute__((weak));

namespace twinspeed::cli {

namespace {

// Keeps the compiler from dropping stores it cannot see used.
inline void keep(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

// Seconds of CPU time this thread has run: what a kernel costs on a core it has to itself, however
// busy the machine is (a loaded 2-core machine gives a process half of a core in wall time).
double thread_cpu_seconds() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

template <typename Kernel>
double median_seconds_per_call(const Kernel& kernel, const ProbeTiming& timing) {
  kernel();  // warm-up: first-touch page faults, LibTorch's dispatch caches
  double begin = thread_cpu_seconds();
  kernel();
  const double one = thread_cpu_seconds() - begin;
  const auto calls = static_cast<std::int64_t>(std::max(1.0, std::ceil(timing.min_sample_s / std::max(one, 1e-9))));
  std::vector<double> per_call;
  for (int s = 0; s < std::max(1, timing.samples); ++s) {
    begin = thread_cpu_seconds();
    for (std::int64_t c = 0; c < calls; ++c) kernel();
    per_call.push_back((thread_cpu_seconds() - begin) / static_cast<double>(calls));
  }
  std::nth_element(per_call.begin(), per_call.begin() + static_cast<std::ptrdiff_t>(per_call.size() / 2),
                   per_call.end());
  return per_call[per_call.size() / 2];
}

torch::ScalarType scalar_type(const std::string& dtype) {
  if (dtype == "fp32") return torch::kFloat;
  if (dtype == "bf16") return torch::kBFloat16;
  if (dtype == "fp64") return torch::kDouble;
  throw std::invalid_argument("calibrate: no matmul probe for dtype " + dtype);
}

}  // namespace

void use_one_core() {
  at::set_num_threads(1);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
}

std::vector<MatmulTiming> time_matmuls(const std::string& dtype, std::span<const std::int64_t> sizes,
                                       const ProbeTiming& timing) {
  use_one_core();
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().dtype(scalar_type(dtype));
  std::vector<MatmulTiming> timings;
  for (std::int64_t n : sizes) {
    const torch::Tensor a = torch::rand({n, n}, options), b = torch::rand({n, n}, options);
    const double seconds = median_seconds_per_call(
        [&] {
          torch::Tensor c = torch::matmul(a, b);
          keep(c.data_ptr());
        },
        timing);
    timings.push_back({.dtype = dtype, .n = n, .seconds = seconds});
  }
  return timings;
}

double triad_bytes_per_s(std::int64_t elements, const ProbeTiming& timing) {
  const auto n = static_cast<std::size_t>(elements);
  std::vector<float> a(n, 0.0f), b(n, 1.0f), c(n, 2.0f);
  // Raw pointers and a scalar copied into the kernel: through references to the vectors and to s
  // the compiler must assume a store to a[i] may change them, and does not vectorize.
  const double seconds = median_seconds_per_call(
      [n, a_data = a.data(), b_data = b.data(), c_data = c.data()] {
        float* __restrict pa = a_data;
        const float* __restrict pb = b_data;
        const float* __restrict pc = c_data;
        const float s = 3.0f;
        for (std::size_t i = 0; i < n; ++i) pa[i] = pb[i] + s * pc[i];
        keep(pa);
      },
      timing);
  // STREAM counts the bytes the program moves: read b, read c, write a.
  return 3.0 * static_cast<double>(n) * sizeof(float) / seconds;
}

double vector_fma_flops_per_s(const ProbeTiming& timing) {
  constexpr std::size_t n = 2048;
  constexpr int passes = 64;
  std::vector<float> x(n, 1.0f), y(n, 0.5f);
  const double seconds = median_seconds_per_call(
      [x_data = x.data(), y_data = y.data()] {
        const float* __restrict px = x_data;
        float* __restrict py = y_data;
        const float a = 0.999f;
        // Two passes per load and store of y: how gcc -O3 compiles bench/local_cpu_bench's
        // BM_VectorFma (the preset's number), written out so this loop is the same code.
        for (int pass = 0; pass < passes; pass += 2) {
          for (std::size_t i = 0; i < n; ++i) py[i] = a * (a * py[i] + px[i]) + px[i];
        }
        keep(py);
      },
      timing);
  return 2.0 * passes * n / seconds;
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const std::size_t colon = line.find(':');
      const std::size_t value = colon == std::string::npos ? colon : line.find_first_not_of(" \t", colon + 1);
      if (value != std::string::npos) return line.substr(value);
    }
  }
  return "";
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double one_minute = -1.0;
  in >> one_minute;
  return in ? one_minute : -1.0;
}

std::int64_t host_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  std::int64_t value = 0;
  while (in >> key >> value >> unit) {
    if (key == "MemTotal:") return value * 1024;  // kB in /proc/meminfo are KiB
  }
  return 0;
}

}  // namespace twinspeed::cli
