#include "cli/calibration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "engine/core/busbw.hpp"
#include "sim/presets/cluster_file.hpp"

namespace twinspeed::cli {

namespace {

using nlohmann::ordered_json;
using sim::ClusterSpec;

constexpr std::int64_t kGiB = std::int64_t{1} << 30;
// Host memory the system keeps for itself, as the local-cpu preset assumes (24 GiB less ~2 GiB).
constexpr std::int64_t kSystemReserveBytes = 2 * kGiB;

std::vector<sim::TimedSample> matmul_samples(const CalibrationMeasurements& m, const std::string& dtype) {
  std::vector<sim::TimedSample> samples;
  for (const MatmulTiming& t : m.matmuls) {
    if (t.dtype == dtype) samples.push_back({.x = t.gflop(), .seconds = t.seconds});
  }
  return samples;
}

std::string tflops(double flops_per_s) { return fmt::format("{:.4g}", flops_per_s / 1e12); }

}  // namespace

double MatmulTiming::gflop() const { return 2.0 * static_cast<double>(n) * static_cast<double>(n) * n / 1e9; }

sim::MatmulCurve matmul_curve(const CalibrationMeasurements& m, const std::string& dtype) {
  return sim::fit_matmul_curve(matmul_samples(m, dtype));
}

sim::RingAllReduce ring_fit(const CalibrationMeasurements& m, double base_latency_us, bool cpu_time) {
  std::vector<sim::TimedSample> samples;
  for (const AllReduceTiming& t : m.all_reduces) {
    samples.push_back({.x = static_cast<double>(t.bytes), .seconds = cpu_time ? t.cpu_seconds : t.seconds});
  }
  return sim::fit_ring_all_reduce(samples, m.ranks, base_latency_us);
}

bool machine_was_busy(const CalibrationMeasurements& m) { return m.load_average > m.ranks; }

namespace {

// The dtype's curve. When noise leaves its times not growing with the size (a loaded machine, a
// --quick run), the best measured rate is the peak and 0 the half-efficiency size, with a warning.
sim::MatmulCurve matmul_curve_or_best_rate(const CalibrationMeasurements& m, const std::string& dtype,
                                           std::vector<CalibrationWarning>& warnings) {
  try {
    return matmul_curve(m, dtype);
  } catch (const std::invalid_argument& e) {
    double best = 0.0;
    for (const sim::TimedSample& t : matmul_samples(m, dtype)) best = std::max(best, t.x * 1e9 / t.seconds);
    if (!(best > 0.0)) throw;
    warnings.push_back({fmt::format("device.compute.matmul_peak_tflops.{}", dtype),
                        fmt::format("{}: the best measured rate is taken as the peak{}; calibrate on an idle machine, "
                                    "without --quick",
                                    e.what(), dtype == "fp32" ? " and 0 as the half-efficiency size" : "")});
    return {.peak_flops_per_s = best, .half_gflop = 0.0};
  }
}

// The ring fit, or nullopt with a warning when the all_reduce times cannot be fitted.
std::optional<sim::RingAllReduce> ring_fit_or_warn(const CalibrationMeasurements& m, double base_latency_us,
                                                   bool cpu_time, std::vector<CalibrationWarning>& warnings) {
  try {
    return ring_fit(m, base_latency_us, cpu_time);
  } catch (const std::invalid_argument& e) {
    warnings.push_back({"intra_node", fmt::format("the Gloo all_reduce {} times cannot be fitted ({}); the preset's "
                                                  "link is kept; calibrate on an idle machine, without --quick",
                                                  cpu_time ? "CPU" : "wall", e.what())});
    return std::nullopt;
  }
}

}  // namespace

ClusterSpec calibrated_cluster(const CalibrationMeasurements& m, const ClusterSpec& preset,
                               std::vector<CalibrationWarning>& warnings) {
  ClusterSpec c = preset;
  c.name = preset.name + "-calibrated";
  c.description = fmt::format("this machine{}: {} rank(s), one per core, Gloo over loopback TCP; measured by {}",
                              m.cpu_model.empty() ? "" : " (" + m.cpu_model + ")", m.ranks, m.method);
  c.nodes = 1;
  c.devices_per_node = m.ranks;
  sim::DeviceSpec& d = c.device;
  d.name = preset.device.name + "-calibrated";
  d.description = "one core of this machine, one rank per core" + (m.cpu_model.empty() ? "" : ": " + m.cpu_model);
  const std::string measured = "measured: " + m.method;

  if (m.host_memory_bytes > kSystemReserveBytes + d.reserved_bytes) {
    d.capacity_bytes = (m.host_memory_bytes - kSystemReserveBytes) / m.ranks;
    d.memory_source = fmt::format("{} (/proc/meminfo MemTotal {} bytes less 2 GiB for the system, shared by {} "
                                  "ranks); reserved: the preset's",
                                  measured, m.host_memory_bytes, m.ranks);
  } else {
    warnings.push_back({"device.memory.capacity_bytes", "/proc/meminfo gave no usable MemTotal; the preset's kept"});
    d.memory_source = "the preset's, not measured: " + preset.device.memory_source;
  }

  // Peaks: Hockney's R_inf per dtype; fp16 has no matmul on LibTorch's CPU backend.
  std::string fits;
  double fastest = 0.0;
  sim::MatmulCurve fp32;
  for (const char* dtype : {"fp32", "bf16", "fp64"}) {
    const sim::MatmulCurve curve = matmul_curve_or_best_rate(m, dtype, warnings);
    // Only the fp32 curve's half-efficiency size is written (device.efficiency.matmul_half_gflop).
    if (curve.clamped && std::string(dtype) == "fp32") {
      warnings.push_back({"device.efficiency.matmul_half_gflop",
                          "the fp32 matmul times fit a negative half-efficiency size; taken as 0"});
    }
    const double peak_tflops = curve.peak_flops_per_s / 1e12;
    if (std::string(dtype) == "fp32") {
      d.matmul_peak_tflops.fp32 = peak_tflops;
      fp32 = curve;
    } else if (std::string(dtype) == "bf16") {
      d.matmul_peak_tflops.bf16 = peak_tflops;
    } else {
      d.matmul_peak_tflops.fp64 = peak_tflops;
    }
    fastest = std::max(fastest, curve.peak_flops_per_s);
    fits += fmt::format("{}{} R_inf {} TFLOP/s, n_1/2 {:.3g} GFLOP", fits.empty() ? "" : "; ", dtype,
                        tflops(curve.peak_flops_per_s), curve.half_gflop);
  }
  d.matmul_peak_tflops.fp16 = 0.0;
  d.vector_peak_tflops = m.vector_fma_flops_per_s / 1e12;
  d.compute_source = fmt::format("{} (LibTorch matmul on one thread, Hockney fit per dtype: {}; vector: a*y+x over "
                                 "an L1-resident array, {} GFLOP/s; fp16: no CPU matmul)",
                                 measured, fits, fmt::format("{:.4g}", m.vector_fma_flops_per_s / 1e9));
  d.memory_bandwidth_GBps = m.triad_bytes_per_s / 1e9;
  d.memory_bandwidth_source = measured + " (STREAM triad on one core)";
  d.matmul_half_efficiency_gflop = sim::half_gflop_at_fastest_peak(fp32, fastest);
  d.efficiency_source = fmt::format(
      "{} (the peaks are achieved rates, so the maximum efficiencies are 1; matmul_half_gflop: the fp32 fit's "
      "n_1/2 stated at the fastest peak, {:.3g} x {} / {}); launch and host overheads: the preset's",
      measured, fp32.half_gflop, tflops(fastest), tflops(fp32.peak_flops_per_s));

  const bool busy = machine_was_busy(m);
  const std::optional<sim::RingAllReduce> fitted =
      m.all_reduces.empty() ? std::nullopt : ring_fit_or_warn(m, c.nccl.ring_base_latency_us, busy, warnings);
  if (fitted) {
    const sim::RingAllReduce& ring = *fitted;
    if (ring.clamped) {
      warnings.push_back(
          {"intra_node.ring_step_latency_us", "the all_reduce times fit a negative step latency; taken as 0"});
    }
    c.intra_node.busbw_GBps = ring.busbw_GBps;
    c.intra_node.ring_step_latency_us = ring.ring_step_latency_us;
    c.intra_node.tree_step_latency_us = ring.ring_step_latency_us;
    c.intra_node.efficiency = {};
    c.intra_node.source = fmt::format(
        "{} (Gloo fp32 all_reduce on {} processes over 127.0.0.1, {} sizes {}-{} bytes, fitted to the ring model "
        "t = 2(n-1) step + S 2(n-1)/n / busbw; {}, load average {:.1f})",
        measured, m.ranks, m.all_reduces.size(), m.all_reduces.front().bytes, m.all_reduces.back().bytes,
        busy ? "CPU time of rank 0's process: the machine was busy" : "wall time", m.load_average);
    if (busy) {
      std::vector<CalibrationWarning> unused;  // the wall fit's failure is said in this warning
      const std::optional<sim::RingAllReduce> wall = ring_fit_or_warn(m, c.nccl.ring_base_latency_us, false, unused);
      warnings.push_back({"intra_node", fmt::format("load average {:.1f} on {} ranks' cores: the link is fitted to "
                                                    "the all_reduces' CPU time (wall time, which includes waiting "
                                                    "for a core, {}); calibrate on an idle machine for the link's "
                                                    "wall-time numbers",
                                                    m.load_average, m.ranks,
                                                    wall ? fmt::format("gives busbw {:.3g} GB/s, step {:.3g} us",
                                                                       wall->busbw_GBps, wall->ring_step_latency_us)
                                                         : std::string("cannot be fitted"))});
    }
  } else {
    if (m.all_reduces.empty()) {
      warnings.push_back({"intra_node", "no Gloo all_reduce measured (one rank, or built without TWINSPEED_GLOO); "
                                        "the preset's numbers are kept"});
    }
    c.intra_node.source = "the preset's, not measured: " + preset.intra_node.source;
  }
  return c;
}

std::vector<ComparisonRow> compare_clusters(const ClusterSpec& p, const ClusterSpec& c) {
  const auto gib = [](std::int64_t bytes) { return static_cast<double>(bytes) / kGiB; };
  return {{"devices_per_node", static_cast<double>(p.devices_per_node), static_cast<double>(c.devices_per_node)},
          {"device.memory.capacity_GiB", gib(p.device.capacity_bytes), gib(c.device.capacity_bytes)},
          {"device.compute.matmul_peak_tflops.fp32", p.device.matmul_peak_tflops.fp32,
           c.device.matmul_peak_tflops.fp32},
          {"device.compute.matmul_peak_tflops.bf16", p.device.matmul_peak_tflops.bf16,
           c.device.matmul_peak_tflops.bf16},
          {"device.compute.matmul_peak_tflops.fp64", p.device.matmul_peak_tflops.fp64,
           c.device.matmul_peak_tflops.fp64},
          {"device.compute.vector_peak_tflops", p.device.vector_peak_tflops, c.device.vector_peak_tflops},
          {"device.memory_bandwidth.GBps", p.device.memory_bandwidth_GBps, c.device.memory_bandwidth_GBps},
          {"device.efficiency.matmul_half_gflop", p.device.matmul_half_efficiency_gflop,
           c.device.matmul_half_efficiency_gflop},
          {"intra_node.busbw_GBps", p.intra_node.busbw_GBps, c.intra_node.busbw_GBps},
          {"intra_node.ring_step_latency_us", p.intra_node.ring_step_latency_us, c.intra_node.ring_step_latency_us}};
}

ordered_json calibrate_report_json(const CalibrationMeasurements& m, const ClusterSpec& preset,
                                   const ClusterSpec& calibrated, const std::string& out_file, double elapsed_s,
                                   const std::vector<CalibrationWarning>& warnings) {
  ordered_json report;
  report["schema"] = "twinspeed.calibrate/1";
  report["out"] = out_file;
  report["preset"] = preset.name;
  report["ranks"] = m.ranks;
  report["elapsed_s"] = elapsed_s;
  ordered_json matmuls = ordered_json::array();
  for (const MatmulTiming& t : m.matmuls) {
    matmuls.push_back({{"dtype", t.dtype},
                       {"n", t.n},
                       {"gflop", t.gflop()},
                       {"time_s", t.seconds},
                       {"gflop_per_s", t.gflop() / t.seconds}});
  }
  ordered_json all_reduces = ordered_json::array();
  for (const AllReduceTiming& t : m.all_reduces) {
    all_reduces.push_back({{"size_bytes", t.bytes},
                           {"time_s", t.seconds},
                           {"cpu_time_s", t.cpu_seconds},
                           {"busbw_GBps", bus_bandwidth(CollectiveKind::all_reduce, m.ranks,
                                                        static_cast<double>(t.bytes), t.seconds) / 1e9}});
  }
  report["measurements"] = {{"matmul", matmuls},
                            {"triad_GBps", m.triad_bytes_per_s / 1e9},
                            {"vector_fma_gflop_per_s", m.vector_fma_flops_per_s / 1e9},
                            {"host_memory_bytes", m.host_memory_bytes},
                            {"load_average_1min", m.load_average},
                            {"all_reduce", all_reduces}};
  ordered_json comparison = ordered_json::array();
  for (const ComparisonRow& row : compare_clusters(preset, calibrated)) {
    comparison.push_back({{"key", row.key},
                          {"preset", row.preset},
                          {"measured", row.measured},
                          {"ratio", row.preset != 0.0 ? ordered_json(row.measured / row.preset) : ordered_json()}});
  }
  report["comparison"] = comparison;
  ordered_json cluster = sim::cluster_to_json(calibrated);
  cluster.erase("warnings");
  report["cluster"] = cluster;
  ordered_json listed = ordered_json::array();
  for (const CalibrationWarning& w : warnings) {
    listed.push_back({{"path", w.path}, {"message", w.message}, {"kind", "warning"}});
  }
  report["warnings"] = listed;
  return report;
}

std::string calibrate_report_table(const CalibrationMeasurements& m, const ClusterSpec& preset,
                                   const ClusterSpec& calibrated, const std::string& out_file, double elapsed_s) {
  std::string text = fmt::format("twinspeed calibrate: {} on this machine, {} rank(s), {:.1f} s, load average {:.1f}\n",
                                 calibrated.name, m.ranks, elapsed_s, m.load_average);
  text += fmt::format("compute and memory: thread CPU time (the core's own rates); Gloo link: {}\n\n",
                      machine_was_busy(m) ? "CPU time (the machine was busy)" : "wall time");
  text += fmt::format("{:<42} {:>12} {:>12} {:>8}\n", "KEY", preset.name, "MEASURED", "RATIO");
  for (const ComparisonRow& row : compare_clusters(preset, calibrated)) {
    const std::string ratio = row.preset != 0.0 ? fmt::format("{:.2f}", row.measured / row.preset) : "-";
    text += fmt::format("{:<42} {:>12.4g} {:>12.4g} {:>8}\n", row.key, row.preset, row.measured, ratio);
  }
  text += "\nmatmul on one thread (GFLOP/s by size n of n x n x n):\n";
  for (const char* dtype : {"fp32", "bf16", "fp64"}) {
    std::string line = fmt::format("  {:<5}", dtype);
    for (const MatmulTiming& t : m.matmuls) {
      if (t.dtype == dtype) line += fmt::format("  {}: {:.4g}", t.n, t.gflop() / t.seconds);
    }
    text += line + "\n";
  }
  if (!m.all_reduces.empty()) {
    text += fmt::format("Gloo all_reduce on {} processes (busbw GB/s by size, from wall time / CPU time):\n", m.ranks);
    for (const AllReduceTiming& t : m.all_reduces) {
      const auto busbw = [&](double seconds) {
        return bus_bandwidth(CollectiveKind::all_reduce, m.ranks, static_cast<double>(t.bytes), seconds) / 1e9;
      };
      text += fmt::format("  {:>9}: {:.3g} / {:.3g}\n", t.bytes, busbw(t.seconds), busbw(t.cpu_seconds));
    }
  }
  text += fmt::format("\ncluster file: {} (use it as --cluster {} in simulate, plan, demo)\n", out_file, out_file);
  return text;
}

}  // namespace twinspeed::cli
