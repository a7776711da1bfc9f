#include "sim/cost/compute_cost.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace twinspeed::sim {

namespace {

bool uses_matrix_units(comm::OpClass op_class) {
  return op_class == comm::OpClass::matmul || op_class == comm::OpClass::attention;
}

double matmul_peak_tflops(const MatmulPeakTflops& peaks, DType dtype) {
  switch (dtype) {
    case DType::f32: return peaks.fp32;
    case DType::f16: return peaks.fp16;
    case DType::bf16: return peaks.bf16;
    case DType::f64: return peaks.fp64;
    default: return 0.0;
  }
}

// The largest dense matrix peak of the device: the dtype matmul_half_efficiency_gflop is stated in.
double fastest_matrix_tflops(const DeviceSpec& device) {
  const MatmulPeakTflops& p = device.matmul_peak_tflops;
  return std::max({p.fp32, p.fp16, p.bf16, p.fp64});
}

}  // namespace

double compute_efficiency(const DeviceSpec& device, comm::OpClass op_class, double flops, DType dtype) {
  if (!uses_matrix_units(op_class)) return 1.0;
  const double gflop = flops / 1e9;
  double efficiency = device.matmul_max_efficiency;
  if (device.matmul_half_efficiency_gflop > 0.0) {
    // The same time at this dtype's peak as the stated GFLOP at the fastest one (header).
    const double fastest = fastest_matrix_tflops(device);
    const double scale = fastest > 0.0 ? peak_flops_per_s(device, op_class, dtype) / (fastest * 1e12) : 1.0;
    const double half_gflop = device.matmul_half_efficiency_gflop * std::min(scale, 1.0);
    efficiency *= gflop / (gflop + half_gflop);
  }
  if (op_class == comm::OpClass::attention) efficiency *= device.attention_relative_efficiency;
  return efficiency;
}

double peak_flops_per_s(const DeviceSpec& device, comm::OpClass op_class, DType dtype) {
  double tflops = uses_matrix_units(op_class) ? matmul_peak_tflops(device.matmul_peak_tflops, dtype) : 0.0;
  if (tflops <= 0.0) tflops = device.vector_peak_tflops;
  return tflops * 1e12;
}

std::int64_t compute_time_ns(const DeviceSpec& device, const comm::ComputeCost& cost, DType dtype) {
  if (cost.flops < 0.0 || cost.bytes_read < 0 || cost.bytes_written < 0 || cost.kernels < 0) {
    throw std::invalid_argument("compute_time_ns: flops, bytes and kernels must be >= 0");
  }
  const double peak = peak_flops_per_s(device, cost.op_class, dtype);
  const double bandwidth = device.memory_bandwidth_GBps * 1e9 * device.memory_efficiency;
  if (!(peak > 0.0) || !(bandwidth > 0.0)) {
    throw std::invalid_argument("compute_time_ns: device '" + device.name + "' has no compute peak or bandwidth");
  }
  double compute_s = 0.0;
  if (cost.flops > 0.0) compute_s = cost.flops / (peak * compute_efficiency(device, cost.op_class, cost.flops, dtype));
  const double memory_s = static_cast<double>(cost.bytes_read + cost.bytes_written) / bandwidth;
  const std::int64_t roofline_ns = std::llround(std::max(compute_s, memory_s) * 1e9);
  // The host issues a layer's pass while the device runs the previous one (header comment).
  const std::int64_t host_ns = cost.op_class == comm::OpClass::matmul ? device.host_overhead_ns : 0;
  return cost.kernels * device.launch_overhead_ns + std::max(host_ns, roofline_ns);
}

}  // namespace twinspeed::sim
