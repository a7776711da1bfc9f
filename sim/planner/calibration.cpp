#include "sim/planner/calibration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "engine/core/errors.hpp"
#include "sim/planner/simulation.hpp"

namespace twinspeed::planner {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = line.find(',', start);
    fields.push_back(trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) return fields;
    start = comma + 1;
  }
}

// The column of each field a row needs; -1 when absent.
struct Columns {
  int params = -1, gpus = -1, global_batch = -1, micro_batch = -1, hidden = -1, heads = -1, layers = -1, seq = -1,
      tp = -1, dp = -1, pp = -1, time = -1;
};

constexpr std::string_view kTimeColumn = "iteration time (ms)";

Columns columns_of(const std::vector<std::string_view>& names, const std::string& where) {
  Columns c;
  const std::map<std::string_view, int Columns::*> by_name{
      {"Parameters (billion)", &Columns::params}, {"GPUs", &Columns::gpus},
      {"# GPUs", &Columns::gpus},                 {"global batch", &Columns::global_batch},
      {"micro batch", &Columns::micro_batch},     {"hidden size", &Columns::hidden},
      {"attention heads", &Columns::heads},       {"# layers", &Columns::layers},
      {"sequence length", &Columns::seq},         {"tensor parallelism", &Columns::tp},
      {"data parallelism", &Columns::dp},         {"pipeline parallelism", &Columns::pp},
      {kTimeColumn, &Columns::time}};
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto it = by_name.find(names[i]);
    if (it != by_name.end()) c.*(it->second) = static_cast<int>(i);
  }
  const std::pair<const char*, int> required[] = {
      {"GPUs", c.gpus},       {"global batch", c.global_batch},  {"micro batch", c.micro_batch},
      {"hidden size", c.hidden}, {"attention heads", c.heads},   {"# layers", c.layers},
      {"sequence length", c.seq}, {"tensor parallelism", c.tp}, {"data parallelism", c.dp},
      {"pipeline parallelism", c.pp}, {"iteration time (ms)", c.time}};
  for (const auto& [name, column] : required) {
    if (column < 0) throw Error(fmt::format("{}: the header has no column \"{}\"", where, name));
  }
  return c;
}

template <typename T>
T number(const std::vector<std::string_view>& fields, int column, const char* name, const std::string& where) {
  const std::string_view text = fields.at(static_cast<std::size_t>(column));
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw Error(fmt::format("{}: {} \"{}\" is not a number", where, name, text));
  }
  return value;
}

void check_row(const VTrainRow& r, const std::string& where) {
  const bool positive = r.gpus > 0 && r.global_batch > 0 && r.micro_batch > 0 && r.hidden > 0 && r.heads > 0 &&
                        r.layers > 0 && r.seq_len > 0 && r.tp > 0 && r.dp > 0 && r.pp > 0 && r.measured_ms > 0;
  if (!positive) throw Error(fmt::format("{}: every size and the time must be > 0", where));
  if (r.gpus != r.tp * r.dp * r.pp) {
    throw Error(fmt::format("{}: {} GPUs is not tp {} x dp {} x pp {}", where, r.gpus, r.tp, r.dp, r.pp));
  }
  if (r.global_batch % (r.micro_batch * r.dp) != 0) {
    throw Error(fmt::format("{}: global batch {} is not a multiple of micro batch {} x dp {}", where, r.global_batch,
                            r.micro_batch, r.dp));
  }
}

}  // namespace

std::vector<VTrainRow> parse_vtrain_csv(std::string_view text, const std::string& source) {
  std::vector<VTrainRow> rows;
  std::optional<Columns> columns;
  int line_number = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = trim(text.substr(start, end - start));
    start = end + 1;
    ++line_number;
    const std::string where = fmt::format("{}:{}", source, line_number);
    if (line.empty()) continue;
    if (line.front() == '#') {
      // The single-node file's header is a comment ("# GPUs,global batch,...").
      const std::string_view body = trim(line.substr(1));
      if (!columns && body.find(kTimeColumn) != std::string_view::npos) columns = columns_of(split_fields(line), where);
      continue;
    }
    if (!columns) {
      columns = columns_of(split_fields(line), where);
      continue;
    }
    const std::vector<std::string_view> f = split_fields(line);
    const Columns& c = *columns;
    const int needed = std::max({c.params, c.gpus, c.global_batch, c.micro_batch, c.hidden, c.heads, c.layers, c.seq,
                                 c.tp, c.dp, c.pp, c.time});
    if (static_cast<int>(f.size()) <= needed) {
      throw Error(fmt::format("{}: {} fields, the header has at least {}", where, f.size(), needed + 1));
    }
    VTrainRow r;
    r.line = line_number;
    if (c.params >= 0) r.params_billion = number<double>(f, c.params, "Parameters (billion)", where);
    r.gpus = number<int>(f, c.gpus, "GPUs", where);
    r.global_batch = number<std::int64_t>(f, c.global_batch, "global batch", where);
    r.micro_batch = number<std::int64_t>(f, c.micro_batch, "micro batch", where);
    r.hidden = number<std::int64_t>(f, c.hidden, "hidden size", where);
    r.heads = number<std::int64_t>(f, c.heads, "attention heads", where);
    r.layers = number<std::int64_t>(f, c.layers, "# layers", where);
    r.seq_len = number<std::int64_t>(f, c.seq, "sequence length", where);
    r.tp = number<int>(f, c.tp, "tensor parallelism", where);
    r.dp = number<int>(f, c.dp, "data parallelism", where);
    r.pp = number<int>(f, c.pp, "pipeline parallelism", where);
    r.measured_ms = number<double>(f, c.time, "iteration time (ms)", where);
    check_row(r, where);
    rows.push_back(r);
  }
  if (!columns) throw Error(fmt::format("{}: no header line (the column names)", source));
  return rows;
}

std::vector<VTrainRow> read_vtrain_csv(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot read {}", file.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_vtrain_csv(text.str(), file.string());
}

ModelConfig vtrain_model(const VTrainRow& row) {
  const nlohmann::json config{{"model_type", "gpt2"},   {"n_embd", row.hidden},     {"n_head", row.heads},
                              {"n_layer", row.layers},  {"n_positions", row.seq_len}, {"vocab_size", 50257},
                              {"attn_pdrop", 0.1},      {"embd_pdrop", 0.1},        {"resid_pdrop", 0.1},
                              {"tie_word_embeddings", true}};
  return parse_hf_config(config, fmt::format("vTrain row at line {}", row.line));
}

Config vtrain_config(const VTrainRow& row) {
  const nlohmann::json config{{"train_batch_size", row.global_batch},
                              {"train_micro_batch_size_per_gpu", row.micro_batch},
                              {"gradient_clipping", 1.0},
                              {"fp16", {{"enabled", true}}},
                              {"zero_optimization", {{"stage", 0}}},
                              {"optimizer", {{"type", "Adam"}, {"params", {{"lr", 1e-4}}}}},
                              {"tensor_parallel", {{"autotp_size", row.tp}}},
                              {"pipeline", {{"stages", row.pp}}}};
  return Config::from_json(config, LoadOptions{.world = row.gpus});
}

double predict_iteration_ms(const VTrainRow& row, const sim::ClusterSpec& cluster, const PredictOptions& options) {
  const Config config = vtrain_config(row);
  const ModelConfig model = vtrain_model(row);
  const SimulateResult result = run_simulation({.config = &config,
                                                .model = &model,
                                                .cluster = cluster,
                                                .steps = 1,
                                                .seq_len = row.seq_len,
                                                .fidelity = sim::Fidelity::shape,
                                                .recompute = options.recompute,
                                                .partition_method = options.partition_method,
                                                .make_model = make_shape_rank_model});
  return static_cast<double>(result.steps.at(0).step_time_ns) / 1e6;
}

double error_percent(double predicted_ms, double measured_ms) { return 100.0 * (predicted_ms - measured_ms) / measured_ms; }

ErrorSummary summarize_errors(std::span<const double> predicted_ms, std::span<const VTrainRow> rows) {
  if (predicted_ms.size() != rows.size() || rows.empty()) {
    throw std::invalid_argument(fmt::format("summarize_errors: {} predictions for {} rows (need the same, > 0)",
                                            predicted_ms.size(), rows.size()));
  }
  ErrorSummary s;
  s.rows = rows.size();
  double abs_sum = 0.0, signed_sum = 0.0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const double e = error_percent(predicted_ms[i], rows[i].measured_ms);
    abs_sum += std::fabs(e);
    signed_sum += e;
    if (std::fabs(e) > s.worst_abs_percent) {
      s.worst_abs_percent = std::fabs(e);
      s.worst_index = i;
    }
  }
  s.mean_abs_percent = abs_sum / static_cast<double>(rows.size());
  s.mean_signed_percent = signed_sum / static_cast<double>(rows.size());
  return s;
}

}  // namespace twinspeed::planner
