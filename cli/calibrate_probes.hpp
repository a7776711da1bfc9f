#pragma once
// `twinspeed calibrate`'s single-core probes, the same measurements as bench/local_cpu_bench (which
// the local-cpu preset comes from) without Google Benchmark: LibTorch matmuls on one thread, STREAM
// triad, and a vector FMA loop. Each figure is the median over `samples` timed samples of at least
// `min_sample_s` each (repeated calls of the kernel), after one untimed call. Time is the thread's
// CPU time, not wall time: the rates are the core's when the process runs, so other work on the
// machine does not halve them (it still shares the memory bus and caches).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cli/calibration.hpp"

namespace twinspeed::cli {

struct ProbeTiming {
  int samples = 5;
  double min_sample_s = 0.02;
};

// Limits LibTorch (and OpenBLAS, whose pool at::set_num_threads does not reach) to one thread in
// this process: one simulated rank is one core.
void use_one_core();

// n x n x n matmuls of dtype ("fp32", "bf16", "fp64") at each n: median seconds per matmul.
std::vector<MatmulTiming> time_matmuls(const std::string& dtype, std::span<const std::int64_t> sizes,
                                       const ProbeTiming& timing);

// STREAM triad a = b + s c over three arrays of `elements` floats: bytes moved (3 x 4 x elements)
// per second.
double triad_bytes_per_s(std::int64_t elements, const ProbeTiming& timing);

// y = a y + x over 2,048 floats (L1-resident), 64 passes per call: FLOP/s.
double vector_fma_flops_per_s(const ProbeTiming& timing);

// /proc/cpuinfo's first "model name" ("" when absent), /proc/meminfo's MemTotal in bytes (0 when
// absent), /proc/loadavg's one-minute load (-1 when absent).
std::string cpu_model_name();
std::int64_t host_memory_bytes();
double load_average();

}  // namespace twinspeed::cli
