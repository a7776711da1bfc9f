#include "sim/presets/presets.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>
#include <stdexcept>

#include "engine/core/errors.hpp"
#include "engine/core/text.hpp"

namespace twinspeed::sim {

namespace {

constexpr std::int64_t kGiB = std::int64_t{1} << 30;
constexpr std::int64_t kMiB = std::int64_t{1} << 20;

// How the local-cpu numbers were measured (on this kind of machine, 2026-11, under a load of ~2.5
// from other builds; medians of 3-5 repetitions).
constexpr const char* kLocalBenchCommand =
    "build/bench/local_cpu_bench --benchmark_repetitions=5 --benchmark_counters_tabular=true";

// What the runtime holds on every GPU outside the engine: CUDA context (~0.5 GiB with lazy module
// loading), NCCL's channel buffers for ring and tree (~0.5 GiB on 8-GPU NVSwitch nodes) and the
// caching allocator's fragmentation slack (~1 GiB). Estimates; `twinspeed calibrate` refines them.
constexpr std::int64_t kGpuReservedBytes = 2 * kGiB;
constexpr const char* kGpuReservedSource =
    "reserved estimated: CUDA context 0.5 GiB + NCCL buffers 0.5 GiB + allocator slack 1 GiB";

// GEMMs reach half their asymptotic efficiency at the work of ~5 us at peak: too few tiles to keep
// every SM busy for several waves (assumed; no per-size GEMM measurement of these GPUs in data/).
constexpr double kHalfEfficiencySeconds = 5e-6;

// Calibrated intra-node busbw efficiency (EfficiencyPoint). Derivation, repeated by
// tests/sim_cost/calibration_test.cpp: at each power-of-two size S >= 4 MiB of the measured 8-GPU
// all_reduce curves, efficiency = S * 2(n-1)/n / (busbw * (t_measured - latency_model)), capped at 1;
// below 4 MiB NCCL switches to the LL/LL128 protocols this model does not have.
//   A100: geometric mean of vtrain_a100_allreduce_8gpu.csv and azure_nccl_allreduce_busbw_8gpu.csv
//         (ring: busbw 230 GB/s, latency 8.4 + 14 x 3.4 us)
//   H100, H200: azure_nccl_allreduce_busbw_8gpu.csv, NVLS (busbw 480 GB/s, latency 25 us)
constexpr EfficiencyPoint kA100Efficiency[] = {
    {4 * kMiB, 0.740},   {8 * kMiB, 0.697},   {16 * kMiB, 0.659},  {32 * kMiB, 0.747}, {64 * kMiB, 0.876},
    {128 * kMiB, 0.854}, {256 * kMiB, 0.962}, {512 * kMiB, 0.982}, {1024 * kMiB, 1.0}};
constexpr EfficiencyPoint kH100Efficiency[] = {
    {4 * kMiB, 0.478},   {8 * kMiB, 0.507},   {16 * kMiB, 0.610},  {32 * kMiB, 0.704},  {64 * kMiB, 0.817},
    {128 * kMiB, 0.872}, {256 * kMiB, 0.902}, {512 * kMiB, 0.924}, {1024 * kMiB, 0.978}, {2048 * kMiB, 0.987},
    {4096 * kMiB, 0.992}, {8192 * kMiB, 0.998}};
constexpr EfficiencyPoint kH200Efficiency[] = {
    {4 * kMiB, 0.546},   {8 * kMiB, 0.549},   {16 * kMiB, 0.630},  {32 * kMiB, 0.719},  {64 * kMiB, 0.832},
    {128 * kMiB, 0.899}, {256 * kMiB, 0.922}, {512 * kMiB, 0.933}, {1024 * kMiB, 0.980}, {2048 * kMiB, 0.988},
    {4096 * kMiB, 0.996}, {8192 * kMiB, 1.0}};

// The A100 calibrated on vTrain's measured Megatron-DeepSpeed iteration times (docs/CLUSTER.md
// "Calibration"): fitted by kCalibrationCommand on the single-node file (1440 rows: fp16, full
// recompute, <= 8 GPUs, on vtrain-a100), then checked on the multi-node file, which no fit sees.
// The fitted matmul curve describes a whole transformer-layer pass charged as one matmul launch
// (the spec's FLOPs, attention core included, at one efficiency), not a lone GEMM: it sits below
// the Azure GEMM ratio because the pass's memory-bound kernels (softmax, dropout, layer norm) and
// the attention core run slower than a large GEMM; the per-pass host floor is PyTorch/Megatron
// framework time. kCalibrationError records what the comparison prints with these values.
constexpr const char* kCalibrationCommand = "build/bench/calibration_bench --fit";
constexpr double kA100MatmulMaxEfficiency = 0.665868;
constexpr double kA100MatmulHalfGflop = 122.397;
constexpr std::int64_t kA100HostOverheadNs = 1071514;
constexpr const char* kCalibrationError =
    "MAPE single 8.39% (worst 38.9%), multi (held out) 12.03% (worst 62.2%)";

// Efficiencies measured on Azure ND v4/v5 VMs (azure_nccl_allreduce_busbw_8gpu.csv header): a
// cuBLASLt 16384^3 GEMM against its dense peak, and STREAM triad against the HBM bandwidth.
struct AzureMeasurement {
  double gemm_tflops = 0.0;
  double gemm_peak_tflops = 0.0;
  const char* gemm_dtype = "";
  double stream_TBps = 0.0;
  const char* note = "";
  const char* provenance = "measured";  // "assumed (...)" when the ratios come from another device
};

DeviceSpec gpu(std::string name, std::string description, std::int64_t capacity_bytes, std::string memory_source,
               MatmulPeakTflops peaks, std::string compute_source, double hbm_GBps, const AzureMeasurement& azure) {
  const double matmul_max_efficiency = azure.gemm_tflops / azure.gemm_peak_tflops;
  const double memory_efficiency = azure.stream_TBps * 1000 / hbm_GBps;
  const std::string measured_efficiency_source = fmt::format(
      "{} (Azure AI-benchmarking-guide, azure_nccl_allreduce_busbw_8gpu.csv header): matmul_max_efficiency "
      "{:g}/{:g} (cuBLASLt 16384^3 {}), memory_efficiency STREAM triad {:.3g} of {:g} TB/s{}",
      azure.provenance, azure.gemm_tflops, azure.gemm_peak_tflops, azure.gemm_dtype, azure.stream_TBps,
      hbm_GBps / 1000, azure.note);
  const double vector_tflops = peaks.fp32;
  DeviceSpec d;
  d.name = std::move(name);
  d.description = std::move(description);
  d.capacity_bytes = capacity_bytes;
  d.reserved_bytes = kGpuReservedBytes;
  d.memory_source = memory_source + "; " + kGpuReservedSource;
  d.matmul_peak_tflops = peaks;
  d.vector_peak_tflops = vector_tflops;
  d.compute_source = std::move(compute_source);
  d.memory_bandwidth_GBps = hbm_GBps;
  d.memory_bandwidth_source = "datasheet: HBM bandwidth (hardware_presets.csv hbm_bw_GBps)";
  d.matmul_max_efficiency = matmul_max_efficiency;
  d.matmul_half_efficiency_gflop = peaks.bf16 * 1e12 * kHalfEfficiencySeconds / 1e9;
  d.attention_relative_efficiency = 0.75;
  d.memory_efficiency = memory_efficiency;
  d.launch_overhead_ns = 2000;
  d.efficiency_source = measured_efficiency_source +
                        "; matmul_half_efficiency_gflop assumed: the work of 5 us at the bf16 peak; "
                        "attention_relative_efficiency assumed: FlashAttention-2 reaches 50-73% of peak where "
                        "large GEMMs reach ~80%; launch_overhead_ns assumed: back-to-back kernel gap ~2 us; "
                        "host_overhead_ns 0: not calibrated on this GPU (docs/CLUSTER.md \"Calibration\")";
  return d;
}

// Replaces the matmul curve and host floor of an A100 by the calibration (above); the memory
// efficiency stays the measured STREAM fraction. provenance: "" for the 80GB part the fit ran on.
void calibrate_a100(DeviceSpec& d, const std::string& provenance) {
  d.matmul_max_efficiency = kA100MatmulMaxEfficiency;
  d.matmul_half_efficiency_gflop = kA100MatmulHalfGflop;
  d.host_overhead_ns = kA100HostOverheadNs;
  d.efficiency_source = fmt::format(
      "{}calibrated: {} on vTrain's single-node Megatron-DeepSpeed iteration times (1440 rows, fp16, full recompute, "
      "vtrain-a100): matmul_max_efficiency, matmul_half_efficiency_gflop, host_overhead_ns; {} "
      "(build/bench/calibration_bench); memory_efficiency measured (Azure AI-benchmarking-guide, "
      "azure_nccl_allreduce_busbw_8gpu.csv header): STREAM triad {:.3g} of {:g} TB/s; attention_relative_efficiency "
      "assumed (no calibration run launches attention apart): FlashAttention-2 reaches 50-73% of peak where large "
      "GEMMs reach ~80%; launch_overhead_ns assumed: back-to-back kernel gap ~2 us",
      provenance, kCalibrationCommand, kCalibrationError, d.memory_efficiency * d.memory_bandwidth_GBps / 1000,
      d.memory_bandwidth_GBps / 1000);
}

std::vector<DeviceSpec> make_devices() {
  const MatmulPeakTflops a100{.fp32 = 19.5, .fp16 = 312, .bf16 = 312, .fp64 = 19.5};
  const MatmulPeakTflops hopper{.fp32 = 66.9, .fp16 = 989.4, .bf16 = 989.4, .fp64 = 66.9};
  const std::string a100_compute =
      "datasheet: NVIDIA A100 datasheet via hardware_presets.csv: fp16/bf16 tensor 312 dense, fp64 tensor 19.5; "
      "fp32 matmul and vector at the FP32 CUDA-core rate 19.5 (PyTorch disables TF32 matmul by default)";
  const std::string hopper_compute =
      "datasheet: NVIDIA H100 SXM5 datasheet via hardware_presets.csv: fp16/bf16 tensor 989.4 dense, "
      "fp64 tensor 66.9; fp32 matmul and vector at the FP32 CUDA-core rate 66.9";
  const AzureMeasurement a100_azure{256.5, 312, "fp16", 1.70, ""};
  const AzureMeasurement h100_azure{1377.3, 1978.9, "fp8", 2.97, "; the fp8 GEMM ratio is assumed for bf16"};
  const AzureMeasurement h200_azure{1366.3, 1978.9, "fp8", 4.15, "; the fp8 GEMM ratio is assumed for bf16"};
  std::vector<DeviceSpec> devices;
  DeviceSpec a100_40 = gpu("a100-sxm4-40gb", "NVIDIA A100 SXM4 40GB", 42405855232,
                           "measured: 42405855232 B usable reported by CUDA deviceQuery (hardware_presets.csv)", a100,
                           a100_compute, 1555,
                           {256.5, 312, "fp16", 1.70 * 1555 / 2039, "", "assumed (the A100 80GB's ratios)"});
  calibrate_a100(a100_40, "assumed (the A100 80GB's calibration, the same GPU) ");
  devices.push_back(a100_40);
  DeviceSpec a100_80 = gpu("a100-sxm4-80gb", "NVIDIA A100 SXM4 80GB", 79 * kGiB,
                           "estimated: 79 GiB usable (80 GiB of HBM2e less the driver's share, by the 40GB part's "
                           "39.5 of 40; not verified on a device)",
                           a100, a100_compute, 2039, a100_azure);
  calibrate_a100(a100_80, "");
  devices.push_back(a100_80);
  devices.push_back(gpu("h100-sxm5-80gb", "NVIDIA H100 SXM5 80GB", 78 * kGiB,
                        "measured: about 78 GiB usable reported by this workplace's H100 (hardware_presets.csv)",
                        hopper, hopper_compute, 3350, h100_azure));
  devices.push_back(gpu("h200-sxm-141gb", "NVIDIA H200 SXM 141GB", 139 * kGiB,
                        "measured: about 139 GiB usable reported by this workplace's H200 (hardware_presets.csv)",
                        hopper, hopper_compute, 4800, h200_azure));
  DeviceSpec b200 = gpu("b200-hgx-1000w", "NVIDIA B200 (HGX, 1000 W) - UNVERIFIED numbers", 179 * kGiB,
                        "estimated: 179 GiB visible (docs.vultr.com via hardware_presets.csv; UNVERIFIED)",
                        {.fp32 = 75, .fp16 = 2250, .bf16 = 2250, .fp64 = 40},
                        "datasheet (UNVERIFIED, hardware_presets.csv): bf16 2250 dense, fp64 tensor 40; fp32 75 "
                        "estimated",
                        8000, {1366.3, 1978.9, "fp8", 4.15 * 8000 / 4800, "", "assumed (the H200's ratios)"});
  devices.push_back(b200);

  // One simulated rank per core of this machine (2 cores, 24 GiB). Numbers measured by
  // bench/local_cpu_bench (see the sources).
  DeviceSpec cpu;
  cpu.name = "local-cpu-core";
  cpu.description = "one core of this kind of machine (AMD EPYC, 2 cores, 24 GiB), one rank per core";
  cpu.capacity_bytes = 11 * kGiB;
  cpu.reserved_bytes = kGiB / 2;
  cpu.memory_source =
      "estimated: 24 GiB of host memory less ~2 GiB for the system, shared by 2 ranks; reserved: the process and "
      "LibTorch's own allocations";
  // Asymptotic single-core LibTorch matmul rates (fp16 matmul is not implemented on LibTorch's CPU
  // backend); the half-efficiency size is fitted to the fp32 curve: 49 GFLOP/s at 32^3, 107 at 64^3,
  // 123 at 128^3, 131-134 from 256^3 to 2048^3 -> R_inf 132 GFLOP/s, n_1/2 1.2e-4 GFLOP at fp32,
  // stated at the fastest matrix dtype (bf16, 0.37 TFLOP/s) as compute_cost.hpp takes it:
  // 1.2e-4 x 0.37 / 0.132. These were fitted by hand; sim::fit_matmul_curve
  // (sim/cost/measurement_fit.hpp), the fit `twinspeed calibrate` runs on this machine's own timings
  // (docs/CLUSTER.md "Calibrating local-cpu"), gives 131 GFLOP/s and 1.11e-4 GFLOP on the rates above.
  cpu.matmul_peak_tflops = {.fp32 = 0.132, .fp16 = 0.0, .bf16 = 0.37, .fp64 = 0.045};
  cpu.vector_peak_tflops = 0.0588;
  cpu.compute_source = std::string("measured: ") + kLocalBenchCommand +
                       " (BM_Matmul medians: fp32 0.132, bf16 0.37, fp64 0.045 TFLOP/s at n >= 512; BM_VectorFma "
                       "58.8 GFLOP/s)";
  cpu.memory_bandwidth_GBps = 27.5;
  cpu.memory_bandwidth_source = std::string("measured: ") + kLocalBenchCommand + " (BM_Triad median, one core)";
  cpu.matmul_max_efficiency = 1.0;
  cpu.matmul_half_efficiency_gflop = 0.00012 * 0.37 / 0.132;
  cpu.attention_relative_efficiency = 1.0;
  cpu.memory_efficiency = 1.0;
  cpu.launch_overhead_ns = 0;
  cpu.efficiency_source = std::string("measured: ") + kLocalBenchCommand +
                          " (the peaks are achieved rates, so the maximum efficiencies are 1; matmul_half_gflop "
                          "fitted to BM_Matmul/fp32 and stated at the bf16 peak); launch_overhead_ns assumed 0: a "
                          "CPU op is a function call";
  devices.push_back(cpu);
  return devices;
}

const DeviceSpec& find_device(const std::vector<DeviceSpec>& devices, std::string_view name) {
  for (const DeviceSpec& d : devices) {
    if (d.name == name) return d;
  }
  throw std::logic_error("presets: no device " + std::string(name));
}

NcclConstants nccl_constants() {
  return {.ring_base_latency_us = 8.4,
          .tree_base_latency_us = 8.4,
          .nvls_latency_us = 25.0,
          .tree_bandwidth_factor = 0.9,
          .algorithm = CollectiveAlgorithm::automatic,
          .source = "NVIDIA/nccl src/graph/tuning.cc (data/calibration/nccl_tuning_constants.csv): baseLat Ring/Tree "
                    "Simple; hwLat NVLINK NVLS Simple as the NVLS latency; tree busbw x 0.9"};
}

IntraNodeLink nvswitch(double busbw, double nvls_busbw, std::span<const EfficiencyPoint> efficiency,
                       std::string source) {
  return {.kind = "nvswitch",
          .busbw_GBps = busbw,
          .nvls_busbw_GBps = nvls_busbw,
          .ring_step_latency_us = 3.4,
          .tree_step_latency_us = 4.0,
          .efficiency = {efficiency.begin(), efficiency.end()},
          .source = source + "; step latencies: NCCL hwLat NVLINK Ring/Tree Simple (nccl_tuning_constants.csv)"};
}

InterNodeLink infiniband(int nics, double nic_GBps, std::string source) {
  return {.kind = "infiniband",
          .nics_per_node = nics,
          .nic_GBps = nic_GBps,
          .ring_step_latency_us = 14.0,
          .tree_step_latency_us = 14.0,
          .source = source + "; step latencies: NCCL hwLat NET Ring/Tree Simple (nccl_tuning_constants.csv)"};
}

std::vector<ClusterSpec> make_clusters(const std::vector<DeviceSpec>& devices) {
  const std::string a100_busbw =
      "measured: NCCL ring busbw ~230 GB/s on A100 NVSwitch (maintainer in NVIDIA/nccl-tests#149; "
      "hardware_presets.csv nvlink_eff_busbw_GBps); efficiency calibrated on the vTrain and Azure 8-GPU A100 "
      "all_reduce curves (presets.cpp)";
  const std::string hopper_busbw =
      "measured: NCCL ring busbw ~370 GB/s (NVIDIA/nccl-tests#212), NVLS all_reduce ~480 GB/s (nccl-tests#272, "
      "Azure ND H100/H200 v5) via hardware_presets.csv; efficiency calibrated on the Azure 8-GPU all_reduce curve";
  const std::string cx6 =
      "datasheet: DGX A100 has 8 ConnectX-6 HDR 200 Gb/s compute NICs, one per GPU; 23.5 GB/s achieved per NIC "
      "(SimAI CX6_BW, network_presets.csv)";
  const std::string cx7 =
      "datasheet: DGX H100/H200 have 8 ConnectX-7 NDR 400 Gb/s compute NICs, one per GPU; 48.5 GB/s achieved per "
      "NIC (SimAI CX7_BW, network_presets.csv)";
  // A DGX-style cluster: 4 nodes of 8 GPUs on NVSwitch, one InfiniBand NIC per GPU.
  // The host side of a DGX node (ZeRO-Offload): system memory, the two CPUs' DRAM bandwidth as
  // STREAM reaches it (assumed 75% of the DDR peak), PCIe to each GPU (datasheet, per direction).
  const HostSpec dgx_a100_host{
      .memory_bytes = 2'000'000'000'000,
      .memory_bandwidth_GBps = 307.0,
      .pcie_GBps = 32.0,
      .source = "datasheet: DGX A100 640GB has 2 TB system memory and 2 AMD EPYC 7742 (8 channels DDR4-3200 each: "
                "409.6 GB/s peak per node, assumed 75% achieved = 307 GB/s); each A100 on PCIe Gen4 x16, 32 GB/s "
                "per direction"};
  const HostSpec dgx_hopper_host{
      .memory_bytes = 2'000'000'000'000,
      .memory_bandwidth_GBps = 460.0,
      .pcie_GBps = 64.0,
      .source = "datasheet: DGX H100/H200 have 2 TB system memory and 2 Intel Xeon Platinum 8480C (8 channels "
                "DDR5-4800 each: 614 GB/s peak per node, assumed 75% achieved = 460 GB/s); each GPU on PCIe Gen5 "
                "x16, 64 GB/s per direction"};
  auto dgx = [&](std::string name, std::string description, std::string_view device, IntraNodeLink intra,
                 double nic_GBps, const std::string& nic_source, const HostSpec& host) {
    return ClusterSpec{.name = std::move(name),
                       .description = std::move(description),
                       .nodes = 4,
                       .devices_per_node = 8,
                       .device = find_device(devices, device),
                       .intra_node = std::move(intra),
                       .inter_node = infiniband(8, nic_GBps, nic_source),
                       .nccl = nccl_constants(),
                       .host = host};
  };
  std::vector<ClusterSpec> clusters;
  clusters.push_back(dgx("dgx-a100-80gb", "DGX A100 80GB nodes: 8 GPUs on NVSwitch, 8 HDR InfiniBand NICs per node",
                         "a100-sxm4-80gb", nvswitch(230, 0, kA100Efficiency, a100_busbw), 23.5, cx6, dgx_a100_host));
  clusters.push_back(dgx("dgx-h100", "DGX H100 nodes: 8 GPUs on NVSwitch (NVLS), 8 NDR InfiniBand NICs per node",
                         "h100-sxm5-80gb", nvswitch(370, 480, kH100Efficiency, hopper_busbw), 48.5, cx7, dgx_hopper_host));
  clusters.push_back(dgx("dgx-h200", "DGX H200 nodes: 8 GPUs on NVSwitch (NVLS), 8 NDR InfiniBand NICs per node",
                         "h200-sxm-141gb", nvswitch(370, 480, kH200Efficiency, hopper_busbw), 48.5, cx7, dgx_hopper_host));
  clusters.push_back(
      {.name = "vtrain-a100",
       .description = "the A100 cluster of the vTrain calibration set (64 nodes x 8 GPUs; 800 Gb/s per node)",
       .nodes = 64,
       .devices_per_node = 8,
       .device = find_device(devices, "a100-sxm4-80gb"),
       .intra_node = nvswitch(230, 0, kA100Efficiency,
                              "measured: the vTrain A100 all_reduce curves (vtrain_a100_allreduce_*gpu.csv) reach "
                              "~229 GB/s busbw on 8 GPUs, so busbw and efficiency are the calibrated A100 ones; "
                              "vTrain's own intra_node_bandwidth 150 GB/s is a config default its predictor does not "
                              "use for intra-node all_reduce (it reads these curves)"),
       .inter_node = {.kind = "infiniband",
                      .nics_per_node = 4,
                      .nic_GBps = 25.0,
                      .ring_step_latency_us = 14.0,
                      .tree_step_latency_us = 14.0,
                      .source = "vTrain config (vtrain_ground_truth_multi_a100.csv header; VIA-Research/vTrain "
                                "src/config.py): inter_node_bandwidth 800 Gb/s per node, as 4 x 200 Gb/s HDR at line "
                                "rate; step latencies: NCCL hwLat NET Simple"},
       .nccl = nccl_constants(),
       .host = dgx_a100_host});

  ClusterSpec local;
  local.name = "local-cpu";
  local.description = "this kind of machine: 2 cores, 24 GiB, one rank per core, Gloo over loopback TCP";
  local.nodes = 1;
  local.devices_per_node = 2;
  local.device = find_device(devices, "local-cpu-core");
  local.intra_node = {.kind = "loopback",
                      .busbw_GBps = 1.82,
                      .nvls_busbw_GBps = 0.0,
                      .ring_step_latency_us = 7.8,
                      .tree_step_latency_us = 7.8,
                      .efficiency = {},
                      .source = std::string("measured: ") + kLocalBenchCommand +
                                " (BM_LoopbackBandwidth/64 MiB: 1.82 GB/s, one TCP stream over 127.0.0.1 as Gloo "
                                "uses; BM_LoopbackPingPong: 15.6 us round trip, half of it per step)"};
  local.inter_node = {.kind = "none", .source = "one node"};
  local.nccl = {.ring_base_latency_us = 0.0,
                .tree_base_latency_us = 0.0,
                .nvls_latency_us = 0.0,
                .tree_bandwidth_factor = 1.0,
                .algorithm = CollectiveAlgorithm::ring,
                .source = "Gloo, not NCCL: ring only, no base latency beyond the link's per-step latency"};
  clusters.push_back(local);
  return clusters;
}

const std::vector<DeviceSpec>& devices_table() {
  static const std::vector<DeviceSpec> devices = make_devices();
  return devices;
}

const std::vector<ClusterSpec>& clusters_table() {
  static const std::vector<ClusterSpec> clusters = make_clusters(devices_table());
  return clusters;
}

template <typename Spec>
std::vector<std::string> names_of(std::span<const Spec> specs) {
  std::vector<std::string> names;
  for (const Spec& s : specs) names.push_back(s.name);
  return names;
}

template <typename Spec>
const Spec& find_preset(std::span<const Spec> specs, std::string_view name, const std::string& path,
                        std::string_view what) {
  for (const Spec& s : specs) {
    if (s.name == name) return s;
  }
  throw unknown_preset_error(name, path, what, names_of(specs));
}

}  // namespace

std::span<const DeviceSpec> device_presets() { return devices_table(); }
std::span<const ClusterSpec> cluster_presets() { return clusters_table(); }
std::vector<std::string> device_preset_names() { return names_of(device_presets()); }
std::vector<std::string> cluster_preset_names() { return names_of(cluster_presets()); }

const DeviceSpec& device_preset(std::string_view name, const std::string& path) {
  return find_preset(device_presets(), name, path, "device");
}

const ClusterSpec& cluster_preset(std::string_view name, const std::string& path) {
  return find_preset(cluster_presets(), name, path, "cluster");
}

ConfigError unknown_preset_error(std::string_view name, const std::string& path, std::string_view what,
                                 std::span<const std::string> names) {
  // A name that starts a preset's name ("dgx-a100") means that preset, before any typo distance
  // (which would say "dgx-h100").
  std::optional<std::string> closest;
  for (const std::string& candidate : names) {
    if (!closest && !name.empty() && candidate.starts_with(name)) closest = candidate;
  }
  if (!closest) closest = closest_match(name, names);
  const std::string kind = what.empty() ? std::string() : std::string(what) + " ";
  std::string rule = closest ? fmt::format("no {}preset of this name; did you mean \"{}\"?", kind, *closest)
                             : fmt::format("no {}preset of this name", kind);
  return ConfigError(path, fmt::format("\"{}\"", name), rule, fmt::format("{}presets: {}", kind, fmt::join(names, ", ")));
}

std::span<const EfficiencyPoint> a100_nvswitch_efficiency() { return kA100Efficiency; }
std::span<const EfficiencyPoint> h100_nvswitch_efficiency() { return kH100Efficiency; }
std::span<const EfficiencyPoint> h200_nvswitch_efficiency() { return kH200Efficiency; }

}  // namespace twinspeed::sim
