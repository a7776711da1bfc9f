// The key tables of DeepSpeed 0.19.6's config sections, read from deepspeed/runtime/config.py,
// constants.py, zero/config.py, zero/offload_config.py, precision_config.py, monitor/config.py,
// tensor_parallel/config.py and the engine. Rows follow DeepSpeed's own field order.
#include <cstdint>
#include <limits>

#include "engine/config/schema.hpp"

namespace twinspeed::config_detail {

using nlohmann::json;

namespace {
KeySpec row(std::string_view name, Kind kind, json fallback) {
  KeySpec k;
  k.name = name;
  k.kind = kind;
  k.fallback = std::move(fallback);
  return k;
}
}  // namespace

KeySpec flag(std::string_view name, bool fallback) { return row(name, Kind::boolean, fallback); }
KeySpec integer(std::string_view name, json fallback) { return row(name, Kind::integer, std::move(fallback)); }
KeySpec number(std::string_view name, json fallback) {
  if (fallback.is_number()) fallback = fallback.get<double>();  // resolved numbers are doubles
  return row(name, Kind::number, std::move(fallback));
}
KeySpec text(std::string_view name, json fallback) { return row(name, Kind::text, std::move(fallback)); }
KeySpec choice(std::string_view name, json fallback, std::vector<std::string_view> choices, ChoiceCase stored) {
  KeySpec k = row(name, Kind::choice, std::move(fallback));
  k.choices = std::move(choices);
  k.choice_case = stored;
  return k;
}
KeySpec opaque(std::string_view name, json fallback) { return row(name, Kind::opaque, std::move(fallback)); }
KeySpec section(std::string_view name, const SectionSpec* (*spec)()) {
  KeySpec k = row(name, Kind::section, json::object());
  k.section = spec;
  return k;
}
KeySpec optional_section(std::string_view name, const SectionSpec* (*spec)()) {
  KeySpec k = row(name, Kind::optional_section, nullptr);
  k.section = spec;
  return k;
}

const KeySpec* find_key(const SectionSpec& section, std::string_view name) {
  for (const KeySpec& k : section.keys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

namespace {

constexpr std::int64_t kMaxSize = std::numeric_limits<std::int64_t>::max();  // Python's sys.maxsize
const std::vector<std::string_view> kOffloadDevices = {"none", "cpu", "nvme"};
// deepspeed.runtime.config.DtypeEnum: the spellings data_types accepts.
const std::vector<std::string_view> kDtypeNames = {
    "torch.float16", "fp16", "float16", "half", "torch.float32", "fp32",     "float32",
    "float",         "torch.int8", "int8", "torch.bfloat16", "bf16", "bfloat16"};
const std::vector<std::string_view> kCommDtypes = {"fp16", "bf16", "fp32"};

// A section twinspeed recognises but does not model: kept as given, contents unchecked.
const SectionSpec* unmodelled() {
  static const SectionSpec s{"not modelled", Extra::pass, false, false, {}};
  return &s;
}

const SectionSpec* offload_param() {
  static const SectionSpec s{"DeepSpeedZeroOffloadParamConfig", Extra::forbid, true, true, {
      choice("device", "none", kOffloadDevices).unacted(),
      text("nvme_path", nullptr).or_null().unacted(),
      integer("buffer_count", 5).at_least(0).unacted(),
      integer("buffer_size", 100'000'000).at_least(0).unacted(),
      integer("max_in_cpu", 1'000'000'000).at_least(0).unacted(),
      flag("pin_memory", false).unacted(),
  }};
  return &s;
}

const SectionSpec* offload_optimizer() {
  static const SectionSpec s{"DeepSpeedZeroOffloadOptimizerConfig", Extra::forbid, true, true, {
      choice("device", "none", kOffloadDevices),
      text("nvme_path", nullptr).or_null().unacted(),
      integer("buffer_count", 4).at_least(0).unacted(),
      flag("pin_memory", false),  // host buffers are costed as pinned either way
      flag("pipeline_read", false).unacted(),
      flag("pipeline_write", false).unacted(),
      flag("fast_init", false).unacted(),
      number("ratio", 1.0).at_least(0).at_most(1).unacted(),
      flag("super_offload", false).unacted(),
      flag("convert_grad_on_cpu", true).unacted(),
      number("cpuadam_cores_perc", 0.8).at_least(0).at_most(1).unacted(),
  }};
  return &s;
}

const SectionSpec* zero() {
  static const SectionSpec s{"DeepSpeedZeroConfig", Extra::forbid, true, true, {
      integer("stage", 0).at_least(0).at_most(3),
      flag("contiguous_gradients", true),
      flag("reduce_scatter", true),
      integer("reduce_bucket_size", 500'000'000).above(0),
      flag("use_multi_rank_bucket_allreduce", true),
      flag("allgather_partitions", true),
      integer("allgather_bucket_size", 500'000'000).above(0),
      flag("overlap_comm", false).none_by_default(),  // None: derived as stage == 3 (rules.cpp)
      flag("load_from_fp32_weights", true).unacted(),
      flag("elastic_checkpoint", false).unacted(),
      optional_section("offload_param", offload_param),
      optional_section("offload_optimizer", offload_optimizer),
      optional_section("zenflow", unmodelled),
      integer("sub_group_size", 1'000'000'000).at_least(0).unacted(),
      flag("cpu_offload_param", false).or_null().deprecated(Deprecation::offload_to_cpu, "offload_param"),
      flag("cpu_offload_use_pin_memory", false).or_null().deprecated(Deprecation::warn_only, ""),
      flag("cpu_offload", false).or_null().deprecated(Deprecation::offload_to_cpu, "offload_optimizer"),
      integer("stage3_prefetch_bucket_size", 50'000'000).at_least(0).alias("prefetch_bucket_size"),
      integer("stage3_param_persistence_threshold", 100'000).at_least(0).alias("param_persistence_threshold"),
      integer("stage3_model_persistence_threshold", kMaxSize).at_least(0).alias("model_persistence_threshold"),
      integer("stage3_max_live_parameters", 1'000'000'000).at_least(0).alias("max_live_parameters"),
      integer("stage3_max_reuse_distance", 1'000'000'000).at_least(0).alias("max_reuse_distance").unacted(),
      flag("stage3_gather_16bit_weights_on_model_save", false)
          .alias("gather_16bit_weights_on_model_save").unacted(),
      integer("stage3_module_granularity_threshold", 0).alias("module_granularity_threshold").unacted(),
      flag("stage3_use_all_reduce_for_fetch_params", false).alias("use_all_reduce_for_fetch_params").unacted(),
      flag("stage3_allgather_sequential", false).alias("allgather_sequential").unacted(),
      integer("stage3_partition_stream_chunk_size", 0).at_least(0).alias("partition_stream_chunk_size").unacted(),
      flag("stage3_gather_fp16_weights_on_model_save", false)
          .deprecated(Deprecation::rename, "stage3_gather_16bit_weights_on_model_save"),
      flag("ignore_unused_parameters", true).unacted(),
      flag("legacy_stage1", false).unacted(),
      flag("round_robin_gradients", false).unacted(),
      integer("zero_hpz_partition_size", 1).at_least(0).unacted(),
      flag("zero_quantized_weights", false).unacted(),
      flag("zero_quantized_nontrainable_weights", false).unacted(),
      flag("zero_quantized_gradients", false).unacted(),
      opaque("zeropp_loco_param").unacted(),
      integer("mics_shard_size", -1).unacted(),
      flag("mics_hierarchical_params_gather", false).unacted(),
      flag("memory_efficient_linear", true).unacted(),
      flag("pipeline_loading_checkpoint", false).unacted(),
      flag("override_module_apply", true).unacted(),
      flag("log_trace_cache_warnings", false).unacted(),
      flag("enable_sanity_checks", false).unacted(),
      flag("save_muon_momentum_buffer_in_memory", false).unacted(),
      section("leaf_module", unmodelled),
  }};
  return &s;
}

const SectionSpec* fp16() {
  static const SectionSpec s{"DeepSpeedFP16Config", Extra::forbid, true, true, {
      flag("enabled", false),
      flag("auto_cast", false).unacted(),
      number("loss_scale", 0).at_least(0),
      integer("initial_scale_power", 16),
      integer("loss_scale_window", 1000),
      integer("hysteresis", 2),
      flag("consecutive_hysteresis", false),
      integer("min_loss_scale", 1),
      flag("fp16_master_weights_and_grads", false),
  }};
  return &s;
}

const SectionSpec* bf16() {
  static const SectionSpec s{"DeepSpeedBF16Config", Extra::forbid, true, true, {
      flag("enabled", false),
      flag("immediate_grad_update", false).unacted(),
      flag("check_grad_overflow", true).noted(
          "DeepSpeed skips bf16 steps whose gradients overflow by default since PR #8035 (2026-05); "
          "before, check_grad_overflow defaulted to false"),
      flag("bf16_master_weights_and_grads", false),
      flag("bf16_optimizer_states", false),
  }};
  return &s;
}

// "optimizer" and "scheduler": DeepSpeed reads "type" and "params", and the optimizer's legacy_fusion.
SectionSpec type_and_params(std::string_view name) {
  return {name, Extra::ignore, false, true, {text("type", nullptr).or_null(), opaque("params", json::object())}};
}

const SectionSpec* optimizer() {
  static const SectionSpec s = [] {
    SectionSpec spec = type_and_params("optimizer");
    spec.keys.push_back(flag("legacy_fusion", false).unacted());
    return spec;
  }();
  return &s;
}

const SectionSpec* scheduler() {
  static const SectionSpec s = type_and_params("scheduler");
  return &s;
}

const SectionSpec* activation_checkpointing() {
  static const SectionSpec s{"activation_checkpointing", Extra::ignore, false, true, {
      flag("partition_activations", false).unacted(),
      flag("contiguous_memory_optimization", false).unacted(),
      flag("cpu_checkpointing", false).unacted(),
      integer("number_checkpoints", nullptr).or_null().above(0).unacted(),
      flag("synchronize_checkpoint_boundary", false).unacted(),
      flag("profile", false).unacted(),
  }};
  return &s;
}

const SectionSpec* pipeline() {
  KeySpec stages = row("stages", Kind::stages, "auto");
  static const SectionSpec s{"pipeline", Extra::keep, false, true, {
      std::move(stages),
      text("partition", "best"),
      flag("seed_layers", false).unacted(),
      integer("activation_checkpoint_interval", 0).at_least(0),
      flag("pipe_partitioned", true).unacted(),
      flag("grad_partitioned", true).unacted(),
  }};
  return &s;
}

const SectionSpec* hybrid_engine() {
  static const SectionSpec s{"HybridEngineConfig", Extra::forbid, true, true, {
      flag("enabled", false),
      integer("max_out_tokens", 512).above(0).unacted(),
      integer("inference_tp_size", 1).unacted(),
      flag("release_inference_cache", false).unacted(),
      flag("pin_parameters", true).unacted(),
      integer("tp_gather_partition_size", 8).unacted(),
      flag("enable_cuda_graph", false).unacted(),
  }};
  return &s;
}

const SectionSpec* tp_config() {
  static const SectionSpec s{"TPConfig", Extra::forbid, true, true, {
      integer("tp_size", 1).unacted(),
      integer("tp_grain_size", 1).unacted(),
      opaque("mpu").unacted(),
      opaque("tp_group").unacted(),
  }};
  return &s;
}

const SectionSpec* tensor_parallel() {
  static const SectionSpec s{"TPTrainingConfig", Extra::forbid, true, true, {
      opaque("dtype").unacted(),
      integer("autotp_size", 0).at_least(0),
      flag("tp_overlap_comm", false).unacted(),
      section("tp", tp_config).alias("tensor_parallel"),
      opaque("injection_policy_tuple").unacted(),
      opaque("partition_config").unacted(),
      text("preset_model", nullptr).or_null().unacted(),
      flag("keep_module_on_host", false).unacted(),
      flag("replace_with_kernel_inject", false).alias("kernel_inject").unacted(),
  }};
  return &s;
}

const SectionSpec* data_types() {
  static const SectionSpec s{"data_types", Extra::ignore, false, true, {
      choice("grad_accum_dtype", nullptr, kDtypeNames).or_null().unacted(),
      choice("param_dtype", nullptr, kDtypeNames).or_null().unacted(),
      choice("buffer_dtype", nullptr, kDtypeNames).or_null().unacted(),
  }};
  return &s;
}

const SectionSpec* parallel_write() {
  static const SectionSpec s{"checkpoint.parallel_write", Extra::ignore, false, true, {
      flag("pipeline_stage", false).unacted(),
  }};
  return &s;
}

const SectionSpec* checkpoint() {
  static const SectionSpec s{"checkpoint", Extra::ignore, false, true, {
      choice("tag_validation", "WARN", {"WARN", "IGNORE", "FAIL"}, ChoiceCase::upper).unacted(),
      flag("load_universal", false).unacted(),
      flag("use_node_local_storage", false).unacted(),
      section("parallel_write", parallel_write),
      opaque("serialization").only_when_given().unacted(),
      opaque("writer").only_when_given().unacted(),
  }};
  return &s;
}

KeySpec not_modelled(std::string_view name) { return section(name, unmodelled).only_when_given(); }
KeySpec not_modelled(std::string_view name, const SectionSpec* (*spec)()) {
  return section(name, spec).only_when_given();
}

}  // namespace

const SectionSpec* root_section() {
  static const SectionSpec s{"DeepSpeed config", Extra::ignore, false, true, {
      integer("train_batch_size", nullptr).or_null(),
      integer("train_micro_batch_size_per_gpu", nullptr).or_null(),
      integer("gradient_accumulation_steps", nullptr).or_null(),
      number("gradient_clipping", 1.0).at_least(0).noted(
          "DeepSpeed clips gradients at norm 1.0 by default since 0.19.3 (PR #8068); before, the default "
          "0.0 meant no clipping. Set \"gradient_clipping\": 0.0 to turn it off"),
      integer("steps_per_print", nullptr).or_null().at_least(1).unacted(),
      flag("wall_clock_breakdown", false).unacted(),
      flag("prescale_gradients", false),
      number("gradient_predivide_factor", 1.0).above(0),
      choice("communication_data_type", nullptr, kCommDtypes, ChoiceCase::lower).or_null().unacted(),
      choice("seq_parallel_communication_data_type", "fp32", kCommDtypes, ChoiceCase::lower).or_null().unacted(),
      choice("gradient_allreduce_op", "mean", {"mean", "sum"}, ChoiceCase::lower),
      flag("dataloader_drop_last", false),
      flag("zero_allow_untested_optimizer", false),
      flag("zero_force_ds_cpu_optimizer", true).unacted(),
      flag("managed_gradient_accumulation", true).unacted(),
      flag("memory_breakdown", false).unacted(),
      flag("dump_state", false).unacted(),
      flag("disable_allgather", false).unacted(),
      flag("disable_python_gc", false).unacted(),
      flag("sparse_gradients", false).unacted(),
      flag("graph_harvesting", false).unacted(),
      flag("use_data_before_expert_parallelism", false).unacted(),
      integer("vocabulary_size", nullptr).or_null().unacted(),
      text("log_level", nullptr).or_null().unacted(),
      integer("sequence_parallel_size", 1).at_least(1),
      integer("data_parallel_size", nullptr).or_null().at_least(1),
      section("fp16", fp16),
      section("bf16", bf16).alias("bfloat16").canonical_wins(),
      section("zero_optimization", zero),
      section("optimizer", optimizer).only_when_given(),
      section("scheduler", scheduler).only_when_given(),
      section("activation_checkpointing", activation_checkpointing),
      section("pipeline", pipeline),
      section("hybrid_engine", hybrid_engine),
      section("tensor_parallel", tensor_parallel),
      section("data_types", data_types),
      section("checkpoint", checkpoint),
      not_modelled("flops_profiler", flops_profiler_section),
      not_modelled("tensorboard", output_monitor_section),
      not_modelled("csv_monitor", output_monitor_section),
      not_modelled("wandb", wandb_section),
      not_modelled("comet", comet_section),
      not_modelled("trackio", trackio_section),
      not_modelled("comms_logger", comms_logger_section),
      not_modelled("amp"),
      not_modelled("torch_autocast"),
      not_modelled("compression_training"),
      not_modelled("quantize_training"),
      not_modelled("eigenvalue"),
      not_modelled("sparse_attention"),
      not_modelled("progressive_layer_drop"),
      not_modelled("curriculum_learning"),
      not_modelled("data_efficiency"),
      not_modelled("elasticity"),
      not_modelled("autotuning"),
      not_modelled("aio"),
      not_modelled("nebula"),
      not_modelled("datastates"),
      not_modelled("weight_quantization"),
      not_modelled("compile"),
      not_modelled("timers"),
      not_modelled("expert_parallel"),
  }};
  return &s;
}

}  // namespace twinspeed::config_detail
