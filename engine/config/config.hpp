#pragma once
// A DeepSpeed configuration, loaded and resolved as DeepSpeed 0.19.6 reads it.
//
// Config::load/parse/from_json take a DeepSpeed JSON file (JSON plus comments and trailing
// commas), validate every key against one table per section (engine/config/schema_tables.cpp),
// fill DeepSpeed's defaults, resolve the batch rule and the device mesh, and apply flag overrides.
// Every failure is a ConfigError with the dotted JSON path ("zero_optimization.stage"), the
// offending value and the rule it breaks. Everything that is accepted but deserves attention
// (unknown keys outside DeepSpeed's validated sections, deprecated spellings, sections twinspeed
// does not model, defaults that changed in recent DeepSpeed releases) is a ConfigWarning.
//
// The typed sections below are filled from the resolved config; their member names are
// DeepSpeed's key names. DeepSpeed's defaults live in the schema tables, not here.

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/mesh/mesh_shape.hpp"

namespace twinspeed {

// What the caller (usually the CLI's flags) imposes on the file. Every value given here overrides
// the file and is recorded in Config::overrides(); the ones after `sp` are also how a "auto"
// placeholder (a Hugging Face Trainer convention) gets a value.
struct LoadOptions {
  int world = 1;
  std::optional<int> tp, pp, sp;
  std::optional<int> zero_stage;                      // zero_optimization.stage
  // "bf16", "fp16" or "fp32": bf16.enabled and fp16.enabled (both false for fp32)
  std::optional<std::string> precision;
  std::optional<std::int64_t> micro_batch;            // train_micro_batch_size_per_gpu
  std::optional<std::int64_t> global_batch;           // train_batch_size
  std::optional<std::int64_t> gradient_accumulation;  // gradient_accumulation_steps
  std::optional<double> gradient_clipping;
  std::optional<double> lr;  // optimizer.params.lr, and scheduler warmup_max_lr / max_lr when present
  std::optional<double> weight_decay;                 // optimizer.params.weight_decay
  std::optional<double> adam_eps;                     // optimizer.params.eps
  std::optional<std::array<double, 2>> adam_betas;    // optimizer.params.betas
  std::optional<std::int64_t> warmup_steps;           // scheduler.params.warmup_num_steps
  std::optional<std::int64_t> total_steps;            // scheduler.params.total_num_steps
};

// Where a resolved value came from.
enum class Provenance {
  file,           // written in the file under its canonical name
  default_value,  // DeepSpeed's default
  derived,        // computed from other values (batch rule, overlap_comm, mesh)
  alias,          // written in the file under another accepted name ("bfloat16", "prefetch_bucket_size")
  deprecated,     // written under a deprecated name that DeepSpeed maps to this key ("cpu_offload")
  flag,           // imposed by LoadOptions
};
std::string_view to_string(Provenance provenance);  // "file", "default", "derived", ...

struct ConfigWarning {
  std::string path;  // dotted JSON path, empty for the whole file
  std::string message;
  bool note = false;  // informational (a changed default) rather than something to fix
};

// A value LoadOptions imposed on the file. file_value is null when the file did not set the key.
struct ConfigOverride {
  std::string path;
  nlohmann::json file_value;
  nlohmann::json flag_value;
};

struct BatchConfig {
  std::int64_t train_batch_size = 0;
  std::int64_t train_micro_batch_size_per_gpu = 0;
  std::int64_t gradient_accumulation_steps = 0;
};

// Top-level knobs of the training step.
struct TrainingConfig {
  double gradient_clipping = 0;               // 0 disables clipping
  std::optional<std::int64_t> steps_per_print;  // no periodic report when unset
  bool wall_clock_breakdown = false;
  bool prescale_gradients = false;
  double gradient_predivide_factor = 0;
  std::optional<std::string> communication_data_type;  // "fp16", "bf16", "fp32" or unset
  std::string gradient_allreduce_op;                   // "mean" or "sum"
  bool dataloader_drop_last = false;
  bool zero_allow_untested_optimizer = false;
};

struct Fp16Config {
  bool enabled = false;
  bool auto_cast = false;
  double loss_scale = 0;  // 0 selects dynamic loss scaling
  std::int64_t initial_scale_power = 0;
  std::int64_t loss_scale_window = 0;
  std::int64_t hysteresis = 0;
  bool consecutive_hysteresis = false;
  std::int64_t min_loss_scale = 0;
  bool fp16_master_weights_and_grads = false;
  bool dynamic_loss_scale() const { return loss_scale == 0; }
};

struct Bf16Config {
  bool enabled = false;
  bool immediate_grad_update = false;
  bool check_grad_overflow = false;
  bool bf16_master_weights_and_grads = false;
  bool bf16_optimizer_states = false;
};

struct OffloadParamConfig {
  std::string device;  // "none", "cpu", "nvme"
  std::optional<std::string> nvme_path;
  std::int64_t buffer_count = 0;
  std::int64_t buffer_size = 0;
  std::int64_t max_in_cpu = 0;
  bool pin_memory = false;
};

struct OffloadOptimizerConfig {
  std::string device;  // "none", "cpu", "nvme"
  std::optional<std::string> nvme_path;
  std::int64_t buffer_count = 0;
  bool pin_memory = false;
  bool pipeline_read = false;
  bool pipeline_write = false;
  bool fast_init = false;
  double ratio = 0;
};

// Gradient reduction and parameter gathering of ZeRO stages 1-3 (sizes in elements).
struct ZeroCommConfig {
  bool contiguous_gradients = false;
  bool reduce_scatter = false;
  std::int64_t reduce_bucket_size = 0;
  bool allgather_partitions = false;
  std::int64_t allgather_bucket_size = 0;
  bool overlap_comm = false;
  bool use_multi_rank_bucket_allreduce = false;
  bool round_robin_gradients = false;
};

// Parameter partitioning of ZeRO stage 3 (sizes and thresholds in elements).
struct ZeroStage3Config {
  std::int64_t sub_group_size = 0;
  std::int64_t stage3_prefetch_bucket_size = 0;
  std::int64_t stage3_param_persistence_threshold = 0;
  std::int64_t stage3_model_persistence_threshold = 0;
  std::int64_t stage3_max_live_parameters = 0;
  std::int64_t stage3_max_reuse_distance = 0;
  bool stage3_gather_16bit_weights_on_model_save = false;
};

// ZeRO++: hierarchical partitioning and quantized communication.
struct ZeroPlusPlusConfig {
  std::int64_t zero_hpz_partition_size = 0;
  bool zero_quantized_weights = false;
  bool zero_quantized_nontrainable_weights = false;
  bool zero_quantized_gradients = false;
};

struct ZeroConfig {
  int stage = 0;
  ZeroCommConfig comm;
  ZeroStage3Config stage3;
  ZeroPlusPlusConfig zeropp;
  std::optional<OffloadOptimizerConfig> offload_optimizer;  // unset: no offload section
  std::optional<OffloadParamConfig> offload_param;
};

// "optimizer" and "scheduler": a type name and its parameters. The parameters are validated by the
// code that builds the optimizer or scheduler (engine/optim).
struct NamedSection {
  bool present = false;
  std::string type;  // DeepSpeed optimizers in lower case ("adamw"), torch names as written ("SGD")
  nlohmann::json params = nlohmann::json::object();
};
using OptimizerConfig = NamedSection;
using SchedulerConfig = NamedSection;

struct PipelineConfig {
  std::optional<int> stages;  // unset: "auto" (the model decides)
  std::string partition;
  bool seed_layers = false;
  std::int64_t activation_checkpoint_interval = 0;
  bool pipe_partitioned = false;
  bool grad_partitioned = false;
};

struct HybridEngineConfig {
  bool enabled = false;
  std::int64_t max_out_tokens = 0;
  std::int64_t inference_tp_size = 0;
  bool release_inference_cache = false;
  bool pin_parameters = false;
  std::int64_t tp_gather_partition_size = 0;
  bool enable_cuda_graph = false;
};

struct TensorParallelConfig {
  std::int64_t autotp_size = 0;  // 0: automatic tensor parallelism off
  bool tp_overlap_comm = false;
};

struct ActivationCheckpointingConfig {
  bool partition_activations = false;
  bool contiguous_memory_optimization = false;
  bool cpu_checkpointing = false;
  std::optional<std::int64_t> number_checkpoints;
  bool synchronize_checkpoint_boundary = false;
  bool profile = false;
};

struct DataTypesConfig {
  std::optional<std::string> grad_accum_dtype;
  std::optional<std::string> param_dtype;
  std::optional<std::string> buffer_dtype;
};

class Config {
 public:
  // Reads a file (ConfigError naming the file when it cannot be read).
  static Config load(const std::filesystem::path& file, const LoadOptions& options = {});
  // The JSON of a config file as load() reads it (comments allowed, duplicate keys rejected), for
  // callers that load it several times with different options.
  static nlohmann::json read_json(const std::filesystem::path& file);
  // Parses JSON text; source names the text in syntax errors ("<source>:line:column").
  static Config parse(std::string_view text, const LoadOptions& options = {}, std::string source = "<text>");
  static Config from_json(const nlohmann::json& config, const LoadOptions& options = {});

  // The resolved configuration in DeepSpeed's key names: every modelled section with its defaults,
  // derived batch values, and the sections twinspeed does not model as they were given.
  // from_json(to_json()) with the same options yields the same configuration.
  const nlohmann::json& to_json() const { return resolved_; }

  const BatchConfig& batch() const { return batch_; }
  const MeshShape& mesh() const { return mesh_; }
  const TrainingConfig& training() const { return training_; }
  const Fp16Config& fp16() const { return fp16_; }
  const Bf16Config& bf16() const { return bf16_; }
  const ZeroConfig& zero() const { return zero_; }
  const OptimizerConfig& optimizer() const { return optimizer_; }
  const SchedulerConfig& scheduler() const { return scheduler_; }
  const PipelineConfig& pipeline() const { return pipeline_; }
  const HybridEngineConfig& hybrid_engine() const { return hybrid_engine_; }
  const TensorParallelConfig& tensor_parallel() const { return tensor_parallel_; }
  const ActivationCheckpointingConfig& activation_checkpointing() const { return activation_checkpointing_; }
  const DataTypesConfig& data_types() const { return data_types_; }

  std::int64_t gradient_accumulation_steps() const { return batch_.gradient_accumulation_steps; }
  double gradient_clipping() const { return training_.gradient_clipping; }
  std::optional<std::int64_t> steps_per_print() const { return training_.steps_per_print; }
  bool dataloader_drop_last() const { return training_.dataloader_drop_last; }
  const std::string& gradient_allreduce_op() const { return training_.gradient_allreduce_op; }
  bool prescale_gradients() const { return training_.prescale_gradients; }
  double gradient_predivide_factor() const { return training_.gradient_predivide_factor; }
  const std::optional<std::string>& communication_data_type() const { return training_.communication_data_type; }

  const std::vector<ConfigWarning>& warnings() const { return warnings_; }
  const std::vector<ConfigOverride>& overrides() const { return overrides_; }
  // Provenance of a resolved value by dotted path; a path inside an opaque value (optimizer.params)
  // answers for its nearest recorded ancestor. Throws ConfigError for a path the config lacks.
  Provenance provenance(std::string_view dotted_path) const;
  const std::map<std::string, Provenance, std::less<>>& provenance_map() const { return provenance_; }

 private:
  Config() = default;
  void fill_typed_sections();

  nlohmann::json resolved_;
  std::map<std::string, Provenance, std::less<>> provenance_;
  std::vector<ConfigWarning> warnings_;
  std::vector<ConfigOverride> overrides_;
  BatchConfig batch_;
  MeshShape mesh_;
  TrainingConfig training_;
  Fp16Config fp16_;
  Bf16Config bf16_;
  ZeroConfig zero_;
  OptimizerConfig optimizer_;
  SchedulerConfig scheduler_;
  PipelineConfig pipeline_;
  HybridEngineConfig hybrid_engine_;
  TensorParallelConfig tensor_parallel_;
  ActivationCheckpointingConfig activation_checkpointing_;
  DataTypesConfig data_types_;
};

}  // namespace twinspeed
