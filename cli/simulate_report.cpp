#include "cli/simulate_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "engine/core/memory_tag.hpp"

namespace twinspeed::cli {

void print_warning(const ReportWarning& w) {
  std::fprintf(stderr, "%s: %s%s%s\n", w.note ? "note" : "warning", w.path.c_str(), w.path.empty() ? "" : ": ",
               w.message.c_str());
}

void print_step_rows(const std::vector<planner::StepReport>& steps) {
  std::printf("\n%6s  %12s  %12s  %10s  %8s  %12s\n", "step", "loss", "lr", "loss scale", "skipped", "step time");
  for (const planner::StepReport& s : steps) {
    const std::string loss = s.loss ? fmt::format("{:.5f}", *s.loss) : "-";
    std::printf("%6lld  %12s  %12.6g  %10g  %8lld  %12s\n", static_cast<long long>(s.step), loss.c_str(), s.lr,
                s.loss_scale, static_cast<long long>(s.skipped_steps), seconds_text(s.step_time_ns).c_str());
  }
}

nlohmann::ordered_json steps_json(const std::vector<planner::StepReport>& steps) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const planner::StepReport& s : steps) {
    out.push_back({{"step", s.step},
                   {"loss", s.loss ? nlohmann::ordered_json(*s.loss) : nlohmann::ordered_json(nullptr)},
                   {"lr", s.lr},
                   {"loss_scale", s.loss_scale},
                   {"skipped", s.skipped},
                   {"skipped_steps", s.skipped_steps},
                   {"step_time_s", static_cast<double>(s.step_time_ns) * 1e-9},
                   {"step_time_ns", s.step_time_ns}});
  }
  return out;
}

namespace {

using i64 = std::int64_t;
using nlohmann::ordered_json;

// min, lower median (a value some rank has) and max of per-rank values, and the first rank with the max.
struct Spread {
  i64 min = 0, median = 0, max = 0;
  int max_rank = 0;
};

Spread spread(const std::vector<i64>& values) {
  Spread s;
  if (values.empty()) return s;
  std::vector<i64> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  s.min = sorted.front();
  s.median = sorted[(sorted.size() - 1) / 2];
  s.max = sorted.back();
  s.max_rank = static_cast<int>(std::find(values.begin(), values.end(), s.max) - values.begin());
  return s;
}

std::vector<i64> per_rank(const planner::SimulateResult& r, i64 (*get)(const comm::MemoryStats&, MemoryTag), MemoryTag tag) {
  std::vector<i64> out;
  for (const comm::MemoryStats& m : r.memory) out.push_back(get(m, tag));
  return out;
}
i64 at_peak(const comm::MemoryStats& m, MemoryTag tag) { return m.at_peak(tag); }
i64 own_peak(const comm::MemoryStats& m, MemoryTag tag) { return m.peak(tag); }
i64 total_peak(const comm::MemoryStats& m, MemoryTag) { return m.total_peak_bytes; }

std::string precision(const Config& c) {
  if (c.bf16().enabled) return "bf16";
  if (c.fp16().enabled) return "fp16";
  return "fp32";
}

std::string fidelity_name(sim::Fidelity f) { return f == sim::Fidelity::numeric ? "numeric" : "shape"; }

std::string millions(i64 n) { return fmt::format("{:.1f}M", static_cast<double>(n) / 1e6); }

void print_header(const SimulateReport& rep) {
  const Config& c = *rep.config;
  const MeshShape& m = c.mesh();
  const ModelConfig& model = *rep.model;
  std::printf("twinspeed %s: %s on %s (%s), %d ranks = pp %d x dp %d x sp %d x tp %d\n", rep.command.c_str(),
              rep.model_name.c_str(),
              rep.cluster_name.c_str(), rep.cluster->device.name.c_str(), m.world(), m.pp, m.dp, m.sp, m.tp);
  std::printf("model    %s: %lld layers, hidden %lld, %lld heads, vocab %lld; %s parameters per tp rank\n",
              model.model_type.c_str(), static_cast<long long>(model.num_layers),
              static_cast<long long>(model.hidden_size), static_cast<long long>(model.num_heads),
              static_cast<long long>(model.vocab_size), millions(rep.result->total_params).c_str());
  std::printf("config   %s: ZeRO-%d %s, micro-batch %lld x accumulation %lld x dp %d = batch %lld\n",
              rep.config_path.c_str(), c.zero().stage, precision(c).c_str(),
              static_cast<long long>(c.batch().train_micro_batch_size_per_gpu),
              static_cast<long long>(c.batch().gradient_accumulation_steps), m.dp,
              static_cast<long long>(c.batch().train_batch_size));
  std::printf("seq      %lld (%s); recompute %s\n", static_cast<long long>(rep.seq_len), rep.seq_source.c_str(),
              rep.recompute.c_str());
  const auto simulated = static_cast<int>(rep.result->simulated_ranks.size());
  const std::string ranks = simulated == m.world()
                                ? std::string("every rank simulated")
                                : fmt::format("{} of {} ranks simulated, one per class of symmetric ranks (--all-ranks "
                                              "to simulate each)",
                                              simulated, m.world());
  std::printf("fidelity %s (%s); %s\n", fidelity_name(rep.fidelity).c_str(), rep.fidelity_source.c_str(),
              ranks.c_str());
  for (const ConfigOverride& o : c.overrides()) {
    std::string before = o.file_value.is_null() ? std::string("(not in file)") : o.file_value.dump();
    std::printf("override %s: %s -> %s\n", o.path.c_str(), before.c_str(), o.flag_value.dump().c_str());
  }
}

void print_steps(const SimulateReport& rep) {
  const planner::SimulateResult& r = *rep.result;
  print_step_rows(r.steps);
  const auto steps = static_cast<i64>(r.steps.size());
  std::printf("\nsimulated time %s for %lld steps after a %s set-up (virtual clocks; no contention model)\n",
              seconds_text(r.total_time_ns).c_str(), static_cast<long long>(steps),
              seconds_text(r.setup_time_ns).c_str());
}

void print_memory_summary(const SimulateReport& rep) {
  const planner::SimulateResult& r = *rep.result;
  std::printf("\nmemory per rank at its peak, by tag (min / median / max over %zu ranks; own peak: the tag's "
              "highest)\n",
              r.memory.size());
  std::printf("%-18s %12s %12s %12s %14s\n", "TAG", "MIN", "MEDIAN", "MAX", "OWN PEAK MAX");
  for (MemoryTag tag : kAllMemoryTags) {
    const Spread live = spread(per_rank(r, at_peak, tag));
    const Spread own = spread(per_rank(r, own_peak, tag));
    std::printf("%-18s %12s %12s %12s %14s\n", std::string(memory_tag_name(tag)).c_str(),
                format_bytes(live.min).c_str(), format_bytes(live.median).c_str(), format_bytes(live.max).c_str(),
                format_bytes(own.max).c_str());
  }
  const Spread peak = spread(per_rank(r, total_peak, MemoryTag::params));
  std::printf("%-18s %12s %12s %12s   (rank %d)\n", "peak", format_bytes(peak.min).c_str(),
              format_bytes(peak.median).c_str(), format_bytes(peak.max).c_str(), peak.max_rank);
  const i64 capacity = r.memory.empty() ? 0 : r.memory.front().capacity_bytes;
  if (capacity > 0) {
    std::printf("worst rank %d peaks at %s of %s per device (%.1f%%)\n", peak.max_rank, format_bytes(peak.max).c_str(),
                format_bytes(capacity).c_str(), 100.0 * static_cast<double>(peak.max) / static_cast<double>(capacity));
  }
}

// Column headers of the per-rank tables, 11 characters at most.
const char* short_tag_name(MemoryTag tag) {
  switch (tag) {
    case MemoryTag::master_params: return "master";
    case MemoryTag::optimizer_states: return "optimizer";
    default: return memory_tag_name(tag).data();
  }
}

void print_memory_per_rank(const SimulateReport& rep) {
  const planner::SimulateResult& r = *rep.result;
  for (const bool live : {true, false}) {
    std::printf("\n%s\n%-5s %11s", live ? "memory per rank: bytes live at the rank's peak" : "memory per rank: each tag's own peak",
                "RANK", "PEAK");
    for (MemoryTag tag : kAllMemoryTags) std::printf(" %11s", short_tag_name(tag));
    std::printf("\n");
    for (std::size_t rank = 0; rank < r.memory.size(); ++rank) {
      const comm::MemoryStats& m = r.memory[rank];
      std::printf("%-5zu %11s", rank, format_bytes(m.total_peak_bytes).c_str());
      for (MemoryTag tag : kAllMemoryTags) {
        std::printf(" %11s", format_bytes(live ? m.at_peak(tag) : m.peak(tag)).c_str());
      }
      std::printf("\n");
    }
  }
}

ordered_json tag_object(const comm::MemoryStats& m, bool live) {
  ordered_json out = ordered_json::object();
  for (MemoryTag tag : kAllMemoryTags) out[std::string(memory_tag_name(tag))] = live ? m.at_peak(tag) : m.peak(tag);
  return out;
}

ordered_json spread_json(const Spread& s) {
  return {{"min", s.min}, {"median", s.median}, {"max", s.max}, {"max_rank", s.max_rank}};
}

}  // namespace

std::string seconds_text(std::int64_t ns) {
  const double s = static_cast<double>(ns) * 1e-9;
  if (s >= 1.0) return fmt::format("{:.3f} s", s);
  return fmt::format("{:.3f} ms", s * 1e3);
}

std::string format_bytes(std::int64_t bytes) {
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.2f} {}", value, kUnits[unit]);
}

void print_simulate_table(const SimulateReport& report) {
  print_header(report);
  print_steps(report);
  print_memory_summary(report);
  if (report.per_rank) print_memory_per_rank(report);
}

ordered_json simulate_json(const SimulateReport& rep) {
  const Config& c = *rep.config;
  const MeshShape& m = c.mesh();
  const planner::SimulateResult& r = *rep.result;
  const ordered_json steps = steps_json(r.steps);
  ordered_json ranks = ordered_json::array();
  for (std::size_t rank = 0; rank < r.memory.size(); ++rank) {
    const comm::MemoryStats& mem = r.memory[rank];
    ranks.push_back({{"rank", rank},
                     {"peak_bytes", mem.total_peak_bytes},
                     {"breakdown", tag_object(mem, true)},
                     {"tag_peaks", tag_object(mem, false)}});
  }
  ordered_json summary = ordered_json::object();
  summary["peak_bytes"] = spread_json(spread(per_rank(r, total_peak, MemoryTag::params)));
  for (MemoryTag tag : kAllMemoryTags) {
    summary["breakdown"][std::string(memory_tag_name(tag))] = spread_json(spread(per_rank(r, at_peak, tag)));
  }
  ordered_json warnings = ordered_json::array();
  for (const ReportWarning& w : rep.warnings) {
    warnings.push_back({{"path", w.path}, {"message", w.message}, {"kind", w.note ? "note" : "warning"}});
  }
  ordered_json overrides = ordered_json::array();
  for (const ConfigOverride& o : c.overrides()) {
    overrides.push_back({{"path", o.path}, {"file_value", o.file_value}, {"flag_value", o.flag_value}});
  }
  ordered_json out;
  out["schema"] = fmt::format("twinspeed.{}/1", rep.command);
  out["config"] = rep.config_path;
  out["model"] = {{"name", rep.model_name},
                  {"model_type", rep.model->model_type},
                  {"layers", rep.model->num_layers},
                  {"hidden_size", rep.model->hidden_size},
                  {"parameters_per_tp_rank", r.total_params}};
  out["seq_len"] = rep.seq_len;
  out["seq_len_source"] = rep.seq_source;
  out["recompute"] = rep.recompute;
  out["cluster"] = {{"name", rep.cluster_name},
                    {"device", rep.cluster->device.name},
                    {"devices_per_node", rep.cluster->devices_per_node}};
  out["mesh"] = {{"world", m.world()}, {"pp", m.pp}, {"dp", m.dp}, {"sp", m.sp}, {"tp", m.tp}};
  out["zero_stage"] = c.zero().stage;
  out["precision"] = precision(c);
  out["batch"] = {{"micro_batch", c.batch().train_micro_batch_size_per_gpu},
                  {"gradient_accumulation_steps", c.batch().gradient_accumulation_steps},
                  {"train_batch_size", c.batch().train_batch_size}};
  out["fidelity"] = fidelity_name(rep.fidelity);
  out["fidelity_source"] = rep.fidelity_source;
  out["all_ranks"] = rep.all_ranks;
  out["ranks_simulated"] = r.simulated_ranks.size();
  out["seed"] = rep.seed;
  out["steps"] = steps;
  out["setup_time_s"] = static_cast<double>(r.setup_time_ns) * 1e-9;
  out["total_time_s"] = static_cast<double>(r.total_time_ns) * 1e-9;
  out["memory"] = {{"capacity_bytes", r.memory.empty() ? 0 : r.memory.front().capacity_bytes},
                   {"summary", summary},
                   {"per_rank", ranks}};
  out["trace"] = rep.trace_path ? ordered_json(*rep.trace_path) : ordered_json(nullptr);
  out["overrides"] = overrides;
  out["warnings"] = warnings;
  return out;
}

}  // namespace twinspeed::cli
