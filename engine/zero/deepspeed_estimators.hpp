#pragma once
// DeepSpeed 0.19.6's own model-state memory estimators, computed exactly as DeepSpeed computes them,
// so `twinspeed plan --estimator deepspeed` can print them next to twinspeed's answer. They are
// DeepSpeed's rules of thumb, not twinspeed's model (engine/core/zero_memory.hpp is that):
//
//   ZeRO-2 (deepspeed/runtime/zero/stage_1_and_2.py estimate_zero2_model_states_mem_needs),
//   P params, G = gpus_per_node * nodes, f = additional_buffer_factor:
//     offload_optimizer cpu:   gpu 2P                 cpu P * max(4G, 16) * f
//     offload_optimizer none:  gpu 2P + int(18P / G)  cpu P * 4 * gpus_per_node * f
//   (The docs' example table, docs/code-docs/source/memory.rst, shows 15.93GB per GPU for the
//   second row: it predates PR #5099 (2024-04), which changed 4P + 16P/G into 2P + 18P/G. The
//   code, reproduced here, gives 11.28GB for that example.)
//
//   ZeRO-3 (deepspeed/runtime/zero/stage3.py estimate_zero3_model_states_mem_needs),
//   l = largest_layer_params, largest_layer_memory 4l, gf = 1 / nodes:
//     offload_optimizer cpu, offload_param cpu:   gpu 4l
//        cpu zero_init P*18*gf*f, else P * max(4 * gpus_per_node, 18 gf) * f
//     offload_optimizer cpu, offload_param none:  gpu 4l + int(2P / G)
//        cpu zero_init P*16*gf*f, else P * max(4 * gpus_per_node, 16 gf) * f
//     offload_optimizer none (params never offloaded): gpu 4l + int(18P / G)
//        cpu zero_init l*4*gpus_per_node*f, else P*4*gpus_per_node*f
//
// Every product is evaluated in DeepSpeed's order, integers exactly and the rest in double (as
// Python does), and truncated with int() where DeepSpeed truncates, so the bytes equal DeepSpeed's
// for any P below 2^53 / 72. The printed tables (the *_all_live / *_all_cold helpers) divide by
// 2^30 and print two decimals with the unit "GB".
//
// Deviation: DeepSpeed formats the offload device with f'{OffloadDeviceEnum.cpu:4}', which prints
// "cpu " (padded to 4) on Python <= 3.10, as its documentation shows, but "OffloadDeviceEnum.cpu"
// on Python >= 3.11 (Enum.__format__ changed). The tables here use the documented "cpu ".
//
// All functions are pure. Invalid input (params < 0, gpus_per_node or nodes < 1, a buffer factor
// that is not positive) throws twinspeed::Error.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model/spec/layer_spec.hpp"

namespace twinspeed {

// The hardware arguments every DeepSpeed estimator takes, with DeepSpeed's defaults.
struct DeepSpeedEstimatorSetup {
  std::int64_t gpus_per_node = 1;
  std::int64_t nodes = 1;
  double additional_buffer_factor = 1.5;
};

// Bytes per CPU (host) and per GPU, as DeepSpeed returns them (int(cpu_mem), int(gpu_mem)).
struct DeepSpeedMemEstimate {
  std::int64_t cpu_bytes = 0;
  std::int64_t gpu_bytes = 0;
  friend bool operator==(const DeepSpeedMemEstimate&, const DeepSpeedMemEstimate&) = default;
};

// estimate_zero2_model_states_mem_needs(total_params, num_gpus_per_node, num_nodes, cpu_offload,
// additional_buffer_factor).
DeepSpeedMemEstimate deepspeed_zero2_estimate(std::int64_t total_params, const DeepSpeedEstimatorSetup& setup,
                                              bool cpu_offload);

// The ZeRO-3 options DeepSpeed's estimator takes (its defaults: all true).
struct DeepSpeedZero3Options {
  bool cpu_offload = true;         // offload_optimizer device cpu
  bool cpu_offload_params = true;  // offload_param device cpu (only counted with cpu_offload)
  bool zero_init = true;           // the model is built under deepspeed.zero.Init
};

// What estimate_zero3_model_states_mem_needs returns: (int(cpu_mem), int(gpu_mem),
// largest_layer_memory = 4 * largest_layer_params).
struct DeepSpeedZero3Estimate {
  DeepSpeedMemEstimate mem;
  std::int64_t largest_layer_bytes = 0;
  friend bool operator==(const DeepSpeedZero3Estimate&, const DeepSpeedZero3Estimate&) = default;
};

DeepSpeedZero3Estimate deepspeed_zero3_estimate(std::int64_t total_params, std::int64_t largest_layer_params,
                                                const DeepSpeedEstimatorSetup& setup,
                                                const DeepSpeedZero3Options& options);

// One line of the table DeepSpeed's *_all_live / *_all_cold helpers print.
struct DeepSpeedEstimateRow {
  DeepSpeedMemEstimate mem;
  bool offload_optimizer = false;
  bool offload_param = false;  // ZeRO-3 only
  bool zero_init = false;      // ZeRO-3 only
  std::string options;         // DeepSpeed's text, e.g. "offload_param=none, offload_optimizer=cpu , zero_init=1"
};

// The rows in DeepSpeed's order. ZeRO-2: offload_optimizer cpu, then none. ZeRO-3: for
// offload_optimizer in (cpu, none), offload_param in (cpu, none) skipping (none, cpu), zero_init
// in (1, 0): six rows.
std::vector<DeepSpeedEstimateRow> deepspeed_zero2_rows(std::int64_t total_params, const DeepSpeedEstimatorSetup& setup);
std::vector<DeepSpeedEstimateRow> deepspeed_zero3_rows(std::int64_t total_params, std::int64_t largest_layer_params,
                                                       const DeepSpeedEstimatorSetup& setup);

// The text estimate_zero{2,3}_model_states_mem_needs_all_cold prints, line for line ("\n" after
// each): the three header lines, the column header, then " {cpu:7.2f}GB | {gpu:6.2f}GB | {options}"
// per row, with GB = bytes / 2^30.
std::string deepspeed_zero2_table(std::int64_t total_params, const DeepSpeedEstimatorSetup& setup);
std::string deepspeed_zero3_table(std::int64_t total_params, std::int64_t largest_layer_params,
                                  const DeepSpeedEstimatorSetup& setup);

// What DeepSpeed's model_to_params (stage3.py) reads from a live model, for a twinspeed model
// given as its layer specs: total_params counts every parameter once (a tied head has none of its
// own in the specs, as DeepSpeed deduplicates by data_ptr); largest_layer_params is the largest
// parameter count of one module's own parameters (parameters(recurse=False)), a module being a
// layer's parameters that share their name up to the last '.' ("attn.q.weight" and "attn.q.bias"
// are module "attn.q" of their layer; HF's Linear, Embedding and norm modules).
struct DeepSpeedModelParams {
  std::int64_t total_params = 0;
  std::int64_t largest_layer_params = 0;
  friend bool operator==(const DeepSpeedModelParams&, const DeepSpeedModelParams&) = default;
};
DeepSpeedModelParams deepspeed_model_params(const std::vector<LayerSpec>& layers);

}  // namespace twinspeed
