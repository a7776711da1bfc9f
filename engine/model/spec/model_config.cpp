#include "engine/model/spec/model_config.hpp"

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/config/json_parse.hpp"
#include "engine/core/errors.hpp"
#include "engine/core/text.hpp"
#include "engine/model/spec/model_presets.hpp"

namespace twinspeed {
namespace {

// Reads keys of one config.json object; every error names the key and the file.
class HfReader {
 public:
  HfReader(const nlohmann::json& j, std::string_view source, std::string model_type)
      : j_(j), source_(source), model_type_(std::move(model_type)) {}

  std::optional<std::int64_t> optional_int(const std::string& key) const {
    const auto* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer() || v->get<std::int64_t>() <= 0) {
      throw ConfigError(key, v->dump(), "must be a positive integer (" + where() + ")");
    }
    return v->get<std::int64_t>();
  }
  std::int64_t required_int(const std::string& key) const {
    auto v = optional_int(key);
    if (!v) throw ConfigError(key, "", "required for model_type " + model_type_ + " (" + where() + ")");
    return *v;
  }
  double number(const std::string& key, double fallback) const {
    const auto* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_number() || v->get<double>() < 0) {
      throw ConfigError(key, v->dump(), "must be a non-negative number (" + where() + ")");
    }
    return v->get<double>();
  }
  bool boolean(const std::string& key, bool fallback) const {
    const auto* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) throw ConfigError(key, v->dump(), "must be true or false (" + where() + ")");
    return v->get<bool>();
  }
  std::string string(const std::string& key, const std::string& fallback) const {
    const auto* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_string()) throw ConfigError(key, v->dump(), "must be a string (" + where() + ")");
    return v->get<std::string>();
  }
  std::string where() const { return std::string(source_); }

 private:
  // A JSON null means "use the default" in HF files, like an absent key.
  const nlohmann::json* find(const std::string& key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  const nlohmann::json& j_;
  std::string_view source_;
  std::string model_type_;
};

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void read_gpt2(const HfReader& r, ModelConfig& m) {
  m.hidden_size = r.required_int("n_embd");
  m.num_layers = r.required_int("n_layer");
  m.num_heads = r.required_int("n_head");
  m.num_kv_heads = m.num_heads;
  m.max_positions = r.required_int("n_positions");
  m.vocab_size = r.required_int("vocab_size");
  m.intermediate_size = r.optional_int("n_inner").value_or(4 * m.hidden_size);
  m.norm = NormType::layernorm;
  m.norm_eps = r.number("layer_norm_epsilon", 1e-5);
  const auto act = r.string("activation_function", "gelu_new");
  if (act.rfind("gelu", 0) != 0) {
    throw ConfigError("activation_function", "\"" + act + "\"", "gpt2 supports the gelu variants (" + r.where() + ")");
  }
  m.activation = MlpActivation::gelu;
  m.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  m.learned_positions = true;
  m.qkv_bias = true;
  m.linear_bias = true;
  m.embedding_dropout = r.number("embd_pdrop", 0.1);
  m.attention_dropout = r.number("attn_pdrop", 0.1);
  m.hidden_dropout = r.number("resid_pdrop", 0.1);
}

// llama, mistral and qwen2 share their key names; they differ in defaults and biases.
void read_llama_family(const HfReader& r, ModelConfig& m) {
  m.hidden_size = r.required_int("hidden_size");
  m.num_layers = r.required_int("num_hidden_layers");
  m.num_heads = r.required_int("num_attention_heads");
  m.num_kv_heads = r.optional_int("num_key_value_heads").value_or(m.num_heads);
  m.intermediate_size = r.required_int("intermediate_size");
  m.vocab_size = r.required_int("vocab_size");
  m.max_positions = r.required_int("max_position_embeddings");
  if (m.num_heads % m.num_kv_heads != 0) {
    throw ConfigError("num_key_value_heads", std::to_string(m.num_kv_heads),
                      "must divide num_attention_heads = " + std::to_string(m.num_heads) + " (" + r.where() + ")");
  }
  if (auto hd = r.optional_int("head_dim")) m.head_dim = *hd;
  m.norm = NormType::rmsnorm;
  m.norm_eps = r.number("rms_norm_eps", 1e-6);
  const auto act = r.string("hidden_act", "silu");
  if (act != "silu" && act != "swish") {
    throw ConfigError("hidden_act", "\"" + act + "\"", "only silu (SwiGLU) is supported (" + r.where() + ")");
  }
  m.activation = MlpActivation::swiglu;
  m.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  m.rope = true;
  m.rope_theta = r.number("rope_theta", 10000.0);
  // Qwen2 always has q/k/v biases; Llama has them only with attention_bias (and then on o_proj too).
  const bool attention_bias = r.boolean("attention_bias", false);
  m.qkv_bias = m.model_type == "qwen2" || attention_bias;
  m.linear_bias = attention_bias;
  if (r.boolean("mlp_bias", false)) {
    throw ConfigError("mlp_bias", "true", "MLP biases are not supported (" + r.where() + ")");
  }
  m.attention_dropout = r.number("attention_dropout", 0.0);
}

// The family's name for the position limit, as error messages and seq-length sources print it.
const char* positions_key(const ModelConfig& m) {
  return m.model_type == "gpt2" ? "n_positions" : "max_position_embeddings";
}

// twinspeed's own top-level object (model_config.hpp): the training sequence length and its source.
void read_twinspeed_key(const nlohmann::json& config, std::string_view source, ModelConfig& m) {
  const auto it = config.find("twinspeed");
  if (it == config.end() || it->is_null()) return;
  const std::string where = " (" + std::string(source) + ")";
  if (!it->is_object()) throw ConfigError("twinspeed", it->dump(), "must be an object" + where);
  const auto seq = it->find("seq_len");
  if (seq == it->end() || seq->is_null()) return;
  if (!seq->is_number_integer() || seq->get<std::int64_t>() <= 0) {
    throw ConfigError("twinspeed.seq_len", seq->dump(), "must be a positive integer" + where);
  }
  m.train_seq_len = seq->get<std::int64_t>();
  if (m.train_seq_len > m.max_positions) {
    throw ConfigError("twinspeed.seq_len", seq->dump(),
                      fmt::format("longer than the model's {} {}{}", positions_key(m), m.max_positions, where));
  }
  const auto why = it->find("seq_len_source");
  if (why == it->end() || why->is_null()) {
    throw ConfigError("twinspeed.seq_len_source", "", "required with twinspeed.seq_len: where the length comes from" + where);
  }
  if (!why->is_string() || why->get<std::string>().empty()) {
    throw ConfigError("twinspeed.seq_len_source", why->dump(), "must be a non-empty string" + where);
  }
  m.train_seq_len_source = why->get<std::string>();
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError("model", "\"" + file.string() + "\"", "cannot read the model config file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::vector<std::string> supported_model_types() { return {"gpt2", "llama", "mistral", "qwen2"}; }

ModelConfig parse_hf_config(const nlohmann::json& config, std::string_view source) {
  if (!config.is_object()) throw ConfigError("", config.dump(), "a config.json must be a JSON object (" + std::string(source) + ")");
  const auto type_it = config.find("model_type");
  if (type_it == config.end() || !type_it->is_string()) {
    throw ConfigError("model_type", type_it == config.end() ? "" : type_it->dump(),
                      "required: one of " + join(supported_model_types()) + " (" + std::string(source) + ")");
  }
  ModelConfig m;
  m.name = std::string(source);
  m.model_type = type_it->get<std::string>();
  const HfReader reader(config, source, m.model_type);
  if (m.model_type == "gpt2") {
    read_gpt2(reader, m);
  } else if (m.model_type == "llama" || m.model_type == "mistral" || m.model_type == "qwen2") {
    read_llama_family(reader, m);
  } else {
    throw ConfigError("model_type", "\"" + m.model_type + "\"",
                      "unsupported model_type; supported: " + join(supported_model_types()) + " (" + std::string(source) + ")");
  }
  if (m.head_dim == 0) {
    if (m.hidden_size % m.num_heads != 0) {
      throw ConfigError(m.model_type == "gpt2" ? "n_head" : "num_attention_heads", std::to_string(m.num_heads),
                        "must divide the hidden size " + std::to_string(m.hidden_size) + " (" + std::string(source) + ")");
    }
    m.head_dim = m.hidden_size / m.num_heads;
  }
  read_twinspeed_key(config, source, m);
  return m;
}

ModelConfig load_hf_config(const std::filesystem::path& file) {
  const auto text = read_text(file);
  return parse_hf_config(config_detail::parse_config_text(text, file.string()), file.string());
}

DefaultSeqLen default_seq_length(const ModelConfig& model) {
  const std::string preset = model.from_preset ? "preset " + model.name + ": " : "";
  if (model.train_seq_len > 0) {
    const std::string origin = model.from_preset ? preset : model.name + " twinspeed.seq_len: ";
    return {model.train_seq_len, origin + model.train_seq_len_source};
  }
  return {std::min<std::int64_t>(model.max_positions, 4096),
          fmt::format("{}min({} {}, 4096)", preset, positions_key(model), model.max_positions)};
}

std::int64_t default_seq_len(const ModelConfig& model) { return default_seq_length(model).value; }

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : model_spec_detail::embedded_model_presets()) names.emplace_back(p.name);
  return names;
}

ModelConfig load_model_preset(std::string_view name_or_path) {
  for (const auto& p : model_spec_detail::embedded_model_presets()) {
    if (name_or_path == p.name) {
      const std::string source = "configs/models/" + std::string(p.name) + ".json";
      ModelConfig m = parse_hf_config(config_detail::parse_config_text(p.text, source), source);
      m.name = p.name;
      m.from_preset = true;
      return m;
    }
  }
  const std::filesystem::path path(name_or_path);
  if (std::filesystem::is_regular_file(path)) return load_hf_config(path);
  const auto names = model_preset_names();
  auto rule = "neither a model preset (" + join(names) + ") nor a config.json file";
  if (auto close = closest_match(name_or_path, names)) rule += "; did you mean \"" + *close + "\"?";
  throw ConfigError("model", "\"" + std::string(name_or_path) + "\"", rule);
}

}  // namespace twinspeed
