#pragma once
// ModelConfig: the architecture of a decoder-only transformer, read from a Hugging Face
// `config.json` (model_type gpt2, llama, mistral, qwen2) or a preset in configs/models/.
//
// Each family keeps its own key names (GPT-2: n_embd, n_layer, ...; Llama/Mistral/Qwen2:
// hidden_size, num_hidden_layers, ...). Keys twinspeed does not use are ignored (HF files carry
// many); a missing required key, a value of the wrong type or an unsupported value throws
// ConfigError(path = the JSON key, value = its JSON text, rule). A JSON null counts as missing
// (GPT-2 writes "n_inner": null to mean "the default").
//
// twinspeed's own optional top-level key (the presets in configs/models/ carry it):
//   "twinspeed": {"seq_len": 4096, "seq_len_source": "why this length"}
// seq_len is the length the model was trained at, the planner's and simulate's default
// (default_seq_length); seq_len_source says where it comes from and is required with seq_len.
// Other keys inside "twinspeed" are ignored; a wrong type is a ConfigError naming the dotted path
// ("twinspeed.seq_len").

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace twinspeed {

enum class NormType { layernorm, rmsnorm };
// gelu: fc1 -> GeLU -> fc2 (GPT-2). swiglu: down(silu(gate(x)) * up(x)) (Llama family).
enum class MlpActivation { gelu, swiglu };

struct ModelConfig {
  std::string name;                   // the preset name ("llama2-7b") or the config.json path read
  bool from_preset = false;           // name is a shipped preset (configs/models/<name>.json)
  std::string model_type;             // "gpt2", "llama", "mistral", "qwen2"
  std::int64_t hidden_size = 0;       // h
  std::int64_t num_layers = 0;        // L
  std::int64_t num_heads = 0;         // a
  std::int64_t num_kv_heads = 0;      // GQA: k and v heads (== a for multi-head attention)
  std::int64_t head_dim = 0;          // d (hidden_size / num_heads unless the file says otherwise)
  std::int64_t intermediate_size = 0; // f
  std::int64_t vocab_size = 0;        // V
  std::int64_t max_positions = 0;     // n_positions / max_position_embeddings
  NormType norm = NormType::layernorm;
  double norm_eps = 1e-5;
  MlpActivation activation = MlpActivation::gelu;
  bool tie_word_embeddings = false;   // the LM head reuses the token embedding (no own params)
  bool learned_positions = false;     // GPT-2's wpe table; false for rotary models
  bool rope = false;
  double rope_theta = 0.0;
  bool qkv_bias = false;              // GPT-2 and Qwen2: true
  bool linear_bias = false;           // biases on the output projection and the MLP (GPT-2)
  double embedding_dropout = 0.0;     // GPT-2 embd_pdrop
  double attention_dropout = 0.0;     // GPT-2 attn_pdrop, Llama attention_dropout
  double hidden_dropout = 0.0;        // GPT-2 resid_pdrop (after attention and after the MLP)
  std::int64_t train_seq_len = 0;     // "twinspeed": {"seq_len"}; 0 when the file gives none
  std::string train_seq_len_source;   // "twinspeed": {"seq_len_source"}
};

// The supported model_type values, in the order error messages list them.
std::vector<std::string> supported_model_types();

// Reads a parsed HF config.json. source names the file in error messages and becomes the name.
ModelConfig parse_hf_config(const nlohmann::json& config, std::string_view source);

// Reads and parses a config.json file (comments tolerated, duplicate keys rejected).
ModelConfig load_hf_config(const std::filesystem::path& file);

// The sequence length to train at when nothing else says, and where it comes from, for printing.
struct DefaultSeqLen {
  std::int64_t value = 0;
  std::string source;
};

// The file's "twinspeed.seq_len" when it has one (source: "preset NAME: <seq_len_source>", or
// "NAME twinspeed.seq_len: <seq_len_source>" for a file); otherwise min(max positions, 4096)
// (issue 4, CLI), source "min(max_position_embeddings N, 4096)" (gpt2: n_positions), prefixed by
// "preset NAME: " for a preset. gpt-bench's n_positions is its training length, 256.
DefaultSeqLen default_seq_length(const ModelConfig& model);

// default_seq_length(model).value.
std::int64_t default_seq_len(const ModelConfig& model);

// The names of the shipped presets (configs/models/<name>.json, embedded at build time).
std::vector<std::string> model_preset_names();

// A preset name ("gpt-bench", "llama2-7b", ...) or the path of a config.json. A name that is no
// preset and no existing file throws ConfigError naming the closest preset. The result's name is
// the preset name (from_preset) or the path as given.
ModelConfig load_model_preset(std::string_view name_or_path);

}  // namespace twinspeed
