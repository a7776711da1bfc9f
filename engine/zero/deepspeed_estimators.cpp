#include "engine/zero/deepspeed_estimators.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "engine/core/errors.hpp"

namespace twinspeed {
namespace {

using i64 = std::int64_t;

void check_setup(const DeepSpeedEstimatorSetup& setup) {
  if (setup.gpus_per_node < 1) {
    throw Error(fmt::format("DeepSpeed estimator: num_gpus_per_node = {}, must be >= 1", setup.gpus_per_node));
  }
  if (setup.nodes < 1) throw Error(fmt::format("DeepSpeed estimator: num_nodes = {}, must be >= 1", setup.nodes));
  if (!(setup.additional_buffer_factor > 0) || !std::isfinite(setup.additional_buffer_factor)) {
    throw Error(fmt::format("DeepSpeed estimator: additional_buffer_factor = {}, must be a positive number",
                            setup.additional_buffer_factor));
  }
}

void check_count(i64 n, const char* name) {
  if (n < 0) throw Error(fmt::format("DeepSpeed estimator: {} = {}, must be >= 0", name, n));
}

// Python's int(x) of a non-negative float: truncation.
i64 to_int(double x) { return static_cast<i64>(x); }

// Python's int(a / b) for integers a, b: a correctly rounded true division, then truncation. The
// double division is the same correctly rounded quotient while a is exact in a double (< 2^53).
i64 int_of_quotient(i64 a, i64 b) { return to_int(static_cast<double>(a) / static_cast<double>(b)); }

// DeepSpeed's padded device text: f'{OffloadDeviceEnum.cpu:4}' on Python <= 3.10 (header).
const char* device_text(bool offloaded) { return offloaded ? "cpu " : "none"; }

std::string table_header(i64 total_params, const DeepSpeedEstimatorSetup& setup, const std::string& largest) {
  return fmt::format(
      "Estimated memory needed for params, optim states and gradients for a:\n"
      "HW: Setup with {} {}, {} {} per node.\n"
      "SW: Model with {}M total params{}.\n"
      "  per CPU  |  per GPU |   Options\n",
      setup.nodes, setup.nodes > 1 ? "nodes" : "node", setup.gpus_per_node, setup.gpus_per_node > 1 ? "GPUs" : "GPU",
      to_int(static_cast<double>(total_params) / 1e6), largest);
}

std::string table_rows(const std::vector<DeepSpeedEstimateRow>& rows) {
  constexpr double kGiB = 1073741824.0;  // DeepSpeed divides by 2**30 and prints "GB"
  std::string out;
  for (const auto& row : rows) {
    out += fmt::format(" {:7.2f}GB | {:6.2f}GB | {}\n", static_cast<double>(row.mem.cpu_bytes) / kGiB,
                       static_cast<double>(row.mem.gpu_bytes) / kGiB, row.options);
  }
  return out;
}

}  // namespace

DeepSpeedMemEstimate deepspeed_zero2_estimate(i64 total_params, const DeepSpeedEstimatorSetup& setup, bool cpu_offload) {
  check_setup(setup);
  check_count(total_params, "total_params");
  const i64 total_gpus = setup.nodes * setup.gpus_per_node;
  const double params = static_cast<double>(total_params);
  const double f = setup.additional_buffer_factor;
  if (cpu_offload) {
    const double multiplier = static_cast<double>(std::max<i64>(4 * total_gpus, 16));
    return {.cpu_bytes = to_int(params * multiplier * f), .gpu_bytes = 2 * total_params};
  }
  // 2 bytes of 16-bit params, then 18 per partitioned element: 16-bit grads 2, fp32 grads 4,
  // fp32 params 4, Adam's two moments 8 (DeepSpeed's comment).
  return {.cpu_bytes = to_int(params * static_cast<double>(4 * setup.gpus_per_node) * f),
          .gpu_bytes = 2 * total_params + int_of_quotient(18 * total_params, total_gpus)};
}

DeepSpeedZero3Estimate deepspeed_zero3_estimate(i64 total_params, i64 largest_layer_params,
                                                const DeepSpeedEstimatorSetup& setup,
                                                const DeepSpeedZero3Options& options) {
  check_setup(setup);
  check_count(total_params, "total_params");
  check_count(largest_layer_params, "largest_layer_params");
  const i64 total_gpus = setup.nodes * setup.gpus_per_node;
  const double gpus_factor = 1.0 / static_cast<double>(setup.nodes);
  const double f = setup.additional_buffer_factor;
  const double params = static_cast<double>(total_params);
  const i64 largest_layer_memory = 4 * largest_layer_params;  // gathered 16-bit params + their grads
  const double per_node_init = static_cast<double>(4 * setup.gpus_per_node);  // each rank builds fp32 once
  // Python's max(4 * num_gpus_per_node, k * gpus_factor) keeps the first unless the second is larger.
  auto max_with_init = [&](double partitioned) { return partitioned > per_node_init ? partitioned : per_node_init; };

  double cpu = 0;
  i64 gpu = 0;
  if (options.cpu_offload) {
    // Offloaded per element: fp32 params, grads and two moments (16), plus 16-bit params (2) when
    // those are offloaded too; one node's share, 1 / nodes.
    const i64 per_element = options.cpu_offload_params ? 18 : 16;
    gpu = options.cpu_offload_params ? largest_layer_memory
                                     : largest_layer_memory + int_of_quotient(2 * total_params, total_gpus);
    cpu = options.zero_init
              ? static_cast<double>(total_params * per_element) * gpus_factor * f
              : params * max_with_init(static_cast<double>(per_element) * gpus_factor) * f;
  } else {
    gpu = largest_layer_memory + int_of_quotient(18 * total_params, total_gpus);
    cpu = options.zero_init ? static_cast<double>(largest_layer_params * 4 * setup.gpus_per_node) * f
                            : static_cast<double>(total_params * 4 * setup.gpus_per_node) * f;
  }
  return {.mem = {.cpu_bytes = to_int(cpu), .gpu_bytes = gpu}, .largest_layer_bytes = largest_layer_memory};
}

std::vector<DeepSpeedEstimateRow> deepspeed_zero2_rows(i64 total_params, const DeepSpeedEstimatorSetup& setup) {
  std::vector<DeepSpeedEstimateRow> rows;
  for (bool cpu_offload : {true, false}) {
    rows.push_back({.mem = deepspeed_zero2_estimate(total_params, setup, cpu_offload),
                    .offload_optimizer = cpu_offload,
                    .options = fmt::format("offload_optimizer={}", device_text(cpu_offload))});
  }
  return rows;
}

std::vector<DeepSpeedEstimateRow> deepspeed_zero3_rows(i64 total_params, i64 largest_layer_params,
                                                       const DeepSpeedEstimatorSetup& setup) {
  std::vector<DeepSpeedEstimateRow> rows;
  for (bool cpu_offload : {true, false}) {
    for (bool cpu_offload_params : {true, false}) {
      if (!cpu_offload && cpu_offload_params) continue;  // parameters offload only with the optimizer
      for (bool zero_init : {true, false}) {
        const DeepSpeedZero3Options options{
            .cpu_offload = cpu_offload, .cpu_offload_params = cpu_offload_params, .zero_init = zero_init};
        rows.push_back({.mem = deepspeed_zero3_estimate(total_params, largest_layer_params, setup, options).mem,
                        .offload_optimizer = cpu_offload,
                        .offload_param = cpu_offload_params,
                        .zero_init = zero_init,
                        .options = fmt::format("offload_param={}, offload_optimizer={}, zero_init={}",
                                               device_text(cpu_offload_params), device_text(cpu_offload),
                                               zero_init ? 1 : 0)});
      }
    }
  }
  return rows;
}

std::string deepspeed_zero2_table(i64 total_params, const DeepSpeedEstimatorSetup& setup) {
  const auto rows = deepspeed_zero2_rows(total_params, setup);
  return table_header(total_params, setup, "") + table_rows(rows);
}

std::string deepspeed_zero3_table(i64 total_params, i64 largest_layer_params, const DeepSpeedEstimatorSetup& setup) {
  const auto rows = deepspeed_zero3_rows(total_params, largest_layer_params, setup);
  const std::string largest =
      fmt::format(", {}M largest layer params", to_int(static_cast<double>(largest_layer_params) / 1e6));
  return table_header(total_params, setup, largest) + table_rows(rows);
}

DeepSpeedModelParams deepspeed_model_params(const std::vector<LayerSpec>& layers) {
  DeepSpeedModelParams out;
  for (const auto& layer : layers) {
    std::map<std::string, i64> modules;  // a module's own parameters, by name within the layer
    for (const auto& p : layer.params) {
      const auto dot = p.name.rfind('.');
      modules[dot == std::string::npos ? std::string() : p.name.substr(0, dot)] += p.numel();
      out.total_params += p.numel();
    }
    for (const auto& [name, count] : modules) out.largest_layer_params = std::max(out.largest_layer_params, count);
  }
  return out;
}

}  // namespace twinspeed
