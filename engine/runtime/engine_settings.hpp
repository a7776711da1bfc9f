#pragma once
// What the training engine needs from a resolved DeepSpeed config, as plain values. Built from a
// Config by engine_settings_from(); tests build it directly.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/config/config.hpp"
#include "engine/mesh/mesh_shape.hpp"

namespace twinspeed {


// A configuration naming only a micro-batch of 1: every section at DeepSpeed 0.19.6's defaults.
const Config& deepspeed_defaults();

struct EngineSettings {
  MeshShape mesh;
  std::int64_t train_batch_size = 1;
  std::int64_t micro_batch_per_gpu = 1;
  std::int64_t gradient_accumulation_steps = 1;
  double gradient_clipping = 0.0;  // 0 disables clipping
  bool prescale_gradients = false;
  // gradient_allreduce_op "mean" averages over the data-parallel group; "sum" does not.
  bool gradient_average = true;
  double gradient_predivide_factor = 1.0;
  int zero_stage = 0;
  bool zero_allow_untested_optimizer = false;
  // Elements per all-reduce bucket of the ZeRO-0 gradient reduction (DeepSpeed's
  // allreduce_bucket_size for the non-ZeRO path, 5e8 elements by default).
  std::int64_t allreduce_bucket_elements = 500'000'000;
  bool fp16 = false;
  bool bf16 = false;
  // The sections as DeepSpeed resolves them; a default-constructed EngineSettings holds
  // DeepSpeed 0.19.6's defaults (deepspeed_defaults()).
  ZeroConfig zero = deepspeed_defaults().zero();
  Fp16Config fp16_config = deepspeed_defaults().fp16();
  Bf16Config bf16_config = deepspeed_defaults().bf16();
  int steps_per_print = 10;
  NamedSection optimizer;
  NamedSection scheduler;
};

EngineSettings engine_settings_from(const Config& config);

}  // namespace twinspeed
