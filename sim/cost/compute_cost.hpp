#pragma once
// Roofline cost of one compute launch on one device, in integer nanoseconds. Pure function: same
// inputs, same nanoseconds, on any machine.
//
//   roofline = max(flops / (peak * compute_efficiency), bytes / (bandwidth * memory_efficiency))
//   time     = kernels * launch_overhead + roofline                        every op class but matmul
//   time     = kernels * launch_overhead + max(host_overhead, roofline)    matmul
// (kernels: how many kernels the launch stands for, 1 unless the engine says otherwise)
//
// A matmul launch is a layer's pass as the engine issues it (forward, recompute or backward of a
// transformer block, the LM head): on a GPU, framework code on the host and some tens of kernels.
// The host issues the kernels asynchronously and the device runs them while the host moves on,
// so a pass is bound by whichever side is slower: the device's roofline, or the host's
// host_overhead (calibrated for the A100 on vTrain's Megatron-DeepSpeed iteration times, where
// small layers are host-bound: docs/CLUSTER.md "Calibration"). Other classes are single kernels
// (copies, the optimizer step) or light layers (embedding, norms) whose host time is the launch
// overhead alone.
//
// peak by op class and element type:
//   matmul, attention        matmul_peak_tflops[dtype] (the vector peak when the dtype has none)
//   elementwise, reduction,  vector_peak_tflops
//   optimizer, copy, other
// compute_efficiency by op class (g = flops / 1e9, GFLOP of this launch):
//   matmul     matmul_max_efficiency * g / (g + g_half)
//   attention  the matmul value * attention_relative_efficiency
//   others     1 (they are memory-bound; their flops rarely matter)
// with g_half = matmul_half_efficiency_gflop * peak[dtype] / the device's fastest matrix peak.
// The matmul curve is Hockney's n_1/2 form (R_inf, n_1/2; Hockney & Jesshope, "Parallel Computers 2",
// 1988) applied to FLOPs: a GEMM too small to fill every SM for several waves cannot reach its
// asymptotic rate. It costs a launch (g + g_half) / (R_inf peak): g_half is a fixed time at the
// peak, which a slower dtype pays with fewer FLOPs, hence the scaling (the presets state
// matmul_half_efficiency_gflop at the fastest matrix dtype, bf16/fp16 on GPUs). R_inf
// (matmul_max_efficiency) and n_1/2 are measured on local-cpu, calibrated on the A100 and assumed on
// the other GPUs (see each preset's efficiency_source).

#include <cstdint>

#include "engine/comm/types.hpp"
#include "engine/core/dtype.hpp"
#include "sim/cost/hardware.hpp"

namespace twinspeed::sim {

// Efficiency of the compute term for this launch (the table above), in (0, 1].
double compute_efficiency(const DeviceSpec& device, comm::OpClass op_class, double flops, DType dtype);

// The peak (FLOP/s) the op class runs against for dtype.
double peak_flops_per_s(const DeviceSpec& device, comm::OpClass op_class, DType dtype);

// Nanoseconds one launch takes. dtype is the element type of the op's math (ComputeCost carries
// none). Throws std::invalid_argument for negative flops or bytes, or a device without peaks or
// bandwidth.
std::int64_t compute_time_ns(const DeviceSpec& device, const comm::ComputeCost& cost, DType dtype);

}  // namespace twinspeed::sim
