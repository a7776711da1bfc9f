#pragma once
// Fits of measured times to the parameters of the cost models: the one source of the formulas by
// which `twinspeed calibrate` (and, by hand, the local-cpu preset's comments on
// bench/local_cpu_bench) turns timings into cluster-file numbers.
//
//   matmul       (compute_cost.hpp, Hockney's n_1/2 form) a launch of g GFLOP runs at
//                R_inf g / (g + g_half), i.e. takes (g + g_half) / R_inf seconds
//   all_reduce   (collective_cost.hpp, ring, one node) S bytes on n ranks take
//                base + 2(n-1) ring_step + S 2(n-1)/n / busbw
//
// Both are straight lines in the measured time, t = intercept + slope x. The fit minimises the
// relative error sum ((t_i - intercept - slope x_i) / t_i)^2, so the small sizes, which carry the
// intercept, weigh as much as the large ones, which carry the slope. Exact data gives the
// parameters back (up to rounding). A negative intercept (noise on a negligible one) is clamped
// to 0; `clamped` says so.

#include <span>

namespace twinspeed::sim {

// One measurement: the size x (GFLOP for a matmul, bytes for a collective) and its time.
struct TimedSample {
  double x = 0.0;
  double seconds = 0.0;
};

struct LineFit {
  double intercept_s = 0.0;
  double slope_s = 0.0;  // seconds per unit of x
};

// Throws std::invalid_argument for fewer than two distinct sizes, a size < 0, a time <= 0 or not
// finite, or a slope <= 0 (times that do not grow with the size: nothing to fit).
LineFit fit_line_relative(std::span<const TimedSample> samples);

struct MatmulCurve {
  double peak_flops_per_s = 0.0;  // R_inf
  double half_gflop = 0.0;        // g_half: the GFLOP at which the rate is R_inf / 2
  bool clamped = false;
};
// samples: x = GFLOP of one matmul (2 n^3 / 1e9 for n x n x n), seconds per matmul.
MatmulCurve fit_matmul_curve(std::span<const TimedSample> samples);

struct RingAllReduce {
  double busbw_GBps = 0.0;
  double ring_step_latency_us = 0.0;
  bool clamped = false;
};
// samples: x = nccl-tests size S of an all_reduce (bytes), seconds per all_reduce, on `ranks` >= 2
// ranks of one node; base_latency_us is the cluster's nccl.ring_base_latency_us (subtracted first).
RingAllReduce fit_ring_all_reduce(std::span<const TimedSample> samples, int ranks, double base_latency_us = 0.0);

// matmul_half_efficiency_gflop as a DeviceSpec states it: at the device's fastest matrix peak
// (compute_cost.hpp scales it back by peak[dtype] / fastest). A curve fitted on a dtype whose peak
// is `fitted_peak` reaches half its rate after g_half / fitted_peak seconds; the same time at the
// fastest peak is g_half x fastest / fitted_peak GFLOP.
double half_gflop_at_fastest_peak(const MatmulCurve& curve, double fastest_peak_flops_per_s);

}  // namespace twinspeed::sim
