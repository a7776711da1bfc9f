#pragma once
// `twinspeed calibrate`'s model: what was measured on this machine, the cluster file it becomes
// (the local-cpu preset with every measured number replaced, each with its source), and the
// comparison with the shipped preset. No measuring here (cli/calibrate_probes.hpp,
// cli/calibrate_gloo.hpp do that), so tests can build a cluster from synthetic measurements.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/cost/hardware.hpp"
#include "sim/cost/measurement_fit.hpp"

namespace twinspeed::cli {

// One timed matmul size of one dtype ("fp32", "bf16", "fp64"): n x n x n, the median seconds.
struct MatmulTiming {
  std::string dtype;
  std::int64_t n = 0;
  double seconds = 0.0;
  double gflop() const;  // 2 n^3 / 1e9
};

// One timed all_reduce size (nccl-tests S, fp32) on `ranks` processes, as rank 0 saw it: the median
// wall time, and the median CPU time its process spent (copies, syscalls, the reduction).
struct AllReduceTiming {
  std::int64_t bytes = 0;
  double seconds = 0.0;
  double cpu_seconds = 0.0;
};

struct CalibrationMeasurements {
  int ranks = 1;                        // processes = devices_per_node
  std::string cpu_model;                // /proc/cpuinfo "model name" ("" when unknown)
  std::int64_t host_memory_bytes = 0;   // /proc/meminfo MemTotal (0 when unknown)
  double load_average = -1.0;           // /proc/loadavg, one minute, after the probes (-1 when unknown)
  std::vector<MatmulTiming> matmuls;    // every dtype's sizes
  double triad_bytes_per_s = 0.0;       // STREAM triad on one core
  double vector_fma_flops_per_s = 0.0;  // a*y+x over an L1-resident array, one core
  std::vector<AllReduceTiming> all_reduces;  // empty: not measured (one rank, or no Gloo)
  std::string method;                   // how it was measured, for the sources: "twinspeed calibrate (...)"
};

// The fitted matmul curve of one dtype (sim::fit_matmul_curve over its sizes).
sim::MatmulCurve matmul_curve(const CalibrationMeasurements& m, const std::string& dtype);

// A warning for stderr (`warning: <path>: <message>`) and the report's "warnings".
struct CalibrationWarning {
  std::string path;
  std::string message;
};

// The link fitted to the wall times (cpu_time false) or to the CPU times of m.all_reduces.
sim::RingAllReduce ring_fit(const CalibrationMeasurements& m, double base_latency_us, bool cpu_time);
// Whether the CPU-time fit goes in the file: the load average exceeded the ranks.
bool machine_was_busy(const CalibrationMeasurements& m);

// The cluster "local-cpu-calibrated": `preset` (local-cpu) with devices_per_node = ranks and the
// measured numbers: matmul peaks (Hockney fit per dtype), matmul_half_gflop (the fp32 fit, stated
// at the fastest peak as the preset does), vector peak, memory bandwidth, per-rank capacity
// ((MemTotal - 2 GiB) / ranks), and, when all_reduces were measured, the loopback busbw and ring
// step latency (sim::fit_ring_all_reduce) of the wall times, or of the CPU times when the machine
// was busier than it has ranks (load average > ranks: wall time then measures the wait for a core,
// not the link; CPU time misses an idle machine's wake-up latency, so it is the lower estimate).
// What is not measured stays the preset's, its source saying so. warnings receives what the caller
// should print (clamped fits, kept numbers, a busy machine).
sim::ClusterSpec calibrated_cluster(const CalibrationMeasurements& m, const sim::ClusterSpec& preset,
                                    std::vector<CalibrationWarning>& warnings);

// One row of the comparison: a dotted cluster-file key, the preset's value and the measured one.
struct ComparisonRow {
  std::string key;
  double preset = 0.0;
  double measured = 0.0;
};
std::vector<ComparisonRow> compare_clusters(const sim::ClusterSpec& preset, const sim::ClusterSpec& calibrated);

// The `twinspeed.calibrate/1` report (docs/CLI.md "calibrate").
nlohmann::ordered_json calibrate_report_json(const CalibrationMeasurements& m, const sim::ClusterSpec& preset,
                                             const sim::ClusterSpec& calibrated, const std::string& out_file,
                                             double elapsed_s, const std::vector<CalibrationWarning>& warnings);

// The comparison table and where the file went, for stdout.
std::string calibrate_report_table(const CalibrationMeasurements& m, const sim::ClusterSpec& preset,
                                   const sim::ClusterSpec& calibrated, const std::string& out_file, double elapsed_s);

}  // namespace twinspeed::cli
