#include "engine/runtime/engine_settings.hpp"

namespace twinspeed {

const Config& deepspeed_defaults() {
  static const Config defaults = Config::from_json({{"train_micro_batch_size_per_gpu", 1}});
  return defaults;
}

EngineSettings engine_settings_from(const Config& config) {
  EngineSettings s;
  s.mesh = config.mesh();
  s.train_batch_size = config.batch().train_batch_size;
  s.micro_batch_per_gpu = config.batch().train_micro_batch_size_per_gpu;
  s.gradient_accumulation_steps = config.batch().gradient_accumulation_steps;
  s.gradient_clipping = config.gradient_clipping();
  s.prescale_gradients = config.prescale_gradients();
  s.gradient_predivide_factor = config.gradient_predivide_factor();
  s.gradient_average = config.gradient_allreduce_op() != "sum";
  s.zero_stage = config.zero().stage;
  s.zero_allow_untested_optimizer = config.training().zero_allow_untested_optimizer;
  s.fp16 = config.fp16().enabled;
  s.bf16 = config.bf16().enabled;
  s.zero = config.zero();
  s.fp16_config = config.fp16();
  s.bf16_config = config.bf16();
  s.steps_per_print = static_cast<int>(config.steps_per_print().value_or(0));
  s.optimizer = config.optimizer();
  s.scheduler = config.scheduler();
  return s;
}

}  // namespace twinspeed
