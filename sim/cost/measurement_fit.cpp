#include "sim/cost/measurement_fit.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/core/busbw.hpp"

namespace twinspeed::sim {

LineFit fit_line_relative(std::span<const TimedSample> samples) {
  // Weighted least squares with weights 1 / t_i^2: normal equations of
  // minimise sum w_i (t_i - a - b x_i)^2.
  double sw = 0, swx = 0, swxx = 0, swt = 0, swxt = 0;
  for (const TimedSample& s : samples) {
    if (!(s.x >= 0.0) || !std::isfinite(s.x) || !(s.seconds > 0.0) || !std::isfinite(s.seconds)) {
      throw std::invalid_argument("fit: sample (size " + std::to_string(s.x) + ", " + std::to_string(s.seconds) +
                                  " s): sizes must be >= 0 and times > 0 and finite");
    }
    const double w = 1.0 / (s.seconds * s.seconds);
    sw += w;
    swx += w * s.x;
    swxx += w * s.x * s.x;
    swt += w * s.seconds;
    swxt += w * s.x * s.seconds;
  }
  const double determinant = sw * swxx - swx * swx;
  if (samples.size() < 2 || !(determinant > 1e-12 * sw * swxx)) {
    throw std::invalid_argument("fit: needs at least two distinct sizes");
  }
  const LineFit fit{.intercept_s = (swxx * swt - swx * swxt) / determinant,
                    .slope_s = (sw * swxt - swx * swt) / determinant};
  if (!(fit.slope_s > 0.0)) throw std::invalid_argument("fit: the times do not grow with the size");
  return fit;
}

MatmulCurve fit_matmul_curve(std::span<const TimedSample> samples) {
  const LineFit line = fit_line_relative(samples);
  // t = (g + g_half) / R_inf: slope 1 / R_inf (seconds per GFLOP), intercept g_half / R_inf.
  return {.peak_flops_per_s = 1e9 / line.slope_s,
          .half_gflop = std::max(0.0, line.intercept_s / line.slope_s),
          .clamped = line.intercept_s < 0.0};
}

RingAllReduce fit_ring_all_reduce(std::span<const TimedSample> samples, int ranks, double base_latency_us) {
  if (ranks < 2) throw std::invalid_argument("fit: a ring all_reduce needs at least 2 ranks");
  const LineFit line = fit_line_relative(samples);
  // t = base + 2(n-1) step + S factor / busbw (collective_cost.hpp, one node: no network steps).
  const double steps = 2.0 * (ranks - 1);
  const double step_s = (line.intercept_s - base_latency_us * 1e-6) / steps;
  return {.busbw_GBps = bus_bandwidth_factor(CollectiveKind::all_reduce, ranks) / line.slope_s / 1e9,
          .ring_step_latency_us = std::max(0.0, step_s * 1e6),
          .clamped = step_s < 0.0};
}

double half_gflop_at_fastest_peak(const MatmulCurve& curve, double fastest_peak_flops_per_s) {
  return curve.half_gflop * fastest_peak_flops_per_s / curve.peak_flops_per_s;
}

}  // namespace twinspeed::sim
