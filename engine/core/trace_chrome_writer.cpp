// The Chrome-trace JSON writer. Layout (docs/TRACE.md): per rank in rank order, its process
// metadata, then per lane in lane order the lane's thread metadata and its slices (each flow
// event right after the slice it binds to), then its memory counters. JSON text is produced
// here, not by a JSON library, so that key order, number format and line breaks are fixed.

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>
#include <type_traits>

#include "engine/core/trace_chrome.hpp"
#include "engine/core/trace_file.hpp"

namespace twinspeed {

namespace {

// The name Perfetto (v1 flows are keyed by id, category and name) and Chrome show for a flow.
constexpr std::string_view kFlowName = "transfer";
// The category of the derived step slices; the reader drops slices of this category.
constexpr std::string_view kStepCategory = "step";

bool is_plain_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
}

void append_string(std::string& out, std::string_view s) {
  if (is_plain_ascii(s)) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  // nlohmann escapes control characters and quotes and keeps UTF-8 as it is; it throws on
  // invalid UTF-8, which the reader (a strict JSON parser) would refuse.
  try {
    out += nlohmann::json(std::string(s)).dump();
  } catch (const nlohmann::json::exception&) {
    std::string shown;
    for (unsigned char c : s) {
      if (c >= 0x20 && c < 0x7f) {
        shown += static_cast<char>(c);
      } else {
        fmt::format_to(std::back_inserter(shown), "\\x{:02x}", c);
      }
    }
    throw TraceError(fmt::format("trace text is not valid UTF-8: \"{}\"", shown));
  }
}

void append_int(std::string& out, std::int64_t value) { fmt::format_to(std::back_inserter(out), "{}", value); }

// Appends `,"key":` (the comma only when the object already has a member).
void append_key(std::string& out, std::string_view key, bool& first) {
  if (!first) out += ',';
  first = false;
  append_string(out, key);
  out += ':';
}

void append_metadata_event(std::string& out, int pid, int tid, std::string_view name, std::string_view arg_key,
                           const auto& arg_value) {
  out += R"({"ph":"M","pid":)";
  append_int(out, pid);
  if (tid > 0) {
    out += R"(,"tid":)";
    append_int(out, tid);
  }
  out += R"(,"name":)";
  append_string(out, name);
  out += R"(,"args":{)";
  append_string(out, arg_key);
  out += ':';
  if constexpr (std::is_integral_v<std::decay_t<decltype(arg_value)>>) {
    append_int(out, arg_value);
  } else {
    append_string(out, arg_value);
  }
  out += "}},\n";
}

// `"ph":"X","pid":..,"tid":..,"ts":..,"dur":..,"name":..,"cat":..` for a slice or flow event.
void append_event_head(std::string& out, char phase, int pid, int tid, std::int64_t ts_ns,
                       std::optional<std::int64_t> dur_ns, std::string_view name, std::string_view category) {
  out += R"({"ph":")";
  out += phase;
  out += R"(","pid":)";
  append_int(out, pid);
  out += R"(,"tid":)";
  append_int(out, tid);
  out += R"(,"ts":)";
  out += format_trace_microseconds(ts_ns);
  if (dur_ns) {
    out += R"(,"dur":)";
    out += format_trace_microseconds(*dur_ns);
  }
  out += R"(,"name":)";
  append_string(out, name);
  out += R"(,"cat":)";
  append_string(out, category);
}

void append_event_args(std::string& out, const TraceEvent& e) {
  std::string args;
  bool first = true;
  auto text = [&](std::string_view key, const std::string& value) {
    if (value.empty()) return;
    append_key(args, key, first);
    append_string(args, value);
  };
  auto number = [&](std::string_view key, std::int64_t value, std::int64_t unset) {
    if (value == unset) return;
    append_key(args, key, first);
    append_int(args, value);
  };
  text("op", e.op);
  number("group", e.group, -1);
  number("seq", e.seq, -1);
  number("bytes", e.bytes, 0);
  text("dtype", e.dtype);
  number("micro_batch", e.micro_batch, -1);
  number("step", e.step, -1);
  number("stage", e.stage, -1);
  text("instruction", e.instruction);
  number("flow_out", e.flow_out, -1);
  number("flow_in", e.flow_in, -1);
  if (first) return;
  out += R"(,"args":{)";
  out += args;
  out += '}';
}

void append_flow(std::string& out, char phase, int pid, int tid, const TraceEvent& e, std::int64_t id) {
  append_event_head(out, phase, pid, tid, e.start_ns, std::nullopt, kFlowName, trace_category_name(e.category));
  out += R"(,"id":)";
  append_int(out, id);
  // "bp":"e" binds the end to the slice that encloses it (the receive) rather than the next one.
  if (phase == 'f') out += R"(,"bp":"e")";
  out += "},\n";
}

void append_slice(std::string& out, int tid, const TraceEvent& e) {
  append_event_head(out, 'X', e.rank, tid, e.start_ns, e.duration_ns, e.name, trace_category_name(e.category));
  append_event_args(out, e);
  out += "},\n";
  if (e.flow_out != -1) append_flow(out, 's', e.rank, tid, e, e.flow_out);
  if (e.flow_in != -1) append_flow(out, 'f', e.rank, tid, e, e.flow_in);
}

void append_step(std::string& out, int pid, int tid, const StepSpan& s) {
  append_event_head(out, 'X', pid, tid, s.start_ns, s.end_ns - s.start_ns, fmt::format("step {}", s.step),
                    kStepCategory);
  out += R"(,"args":{"step":)";
  append_int(out, s.step);
  out += "}},\n";
}

void append_lane(std::string& out, int pid, int tid, std::string_view lane) {
  append_metadata_event(out, pid, tid, "thread_name", "name", lane);
  append_metadata_event(out, pid, tid, "thread_sort_index", "sort_index", tid);
}

struct StepSlice {
  StepSpan span;
  std::string name;
  auto key() const { return std::tuple(span.start_ns, span.start_ns - span.end_ns, std::string_view(name)); }
};

// The host lane with the derived step slices merged in canonical order (start, longer first,
// name; a step slice before an event with the same extent and name).
void append_host_lane(std::string& out, int pid, int tid, const TraceLane* host, const std::vector<StepSpan>& spans) {
  std::vector<StepSlice> steps;
  for (const StepSpan& s : spans) steps.push_back({s, fmt::format("step {}", s.step)});
  std::sort(steps.begin(), steps.end(), [](const StepSlice& a, const StepSlice& b) { return a.key() < b.key(); });
  std::size_t next_event = 0;
  const std::size_t event_count = host != nullptr ? host->events.size() : 0;
  for (const StepSlice& s : steps) {
    for (; next_event < event_count; ++next_event) {
      const TraceEvent& e = host->events[next_event];
      if (!(std::tuple(e.start_ns, -e.duration_ns, std::string_view(e.name)) < s.key())) break;
      append_slice(out, tid, e);
    }
    append_step(out, pid, tid, s.span);
  }
  for (; next_event < event_count; ++next_event) append_slice(out, tid, host->events[next_event]);
}

void append_rank(std::string& out, const RankTrace& r) {
  append_metadata_event(out, r.rank, 0, "process_name", "name", trace_process_name(r.rank, r.mesh));
  append_metadata_event(out, r.rank, 0, "process_sort_index", "sort_index", r.rank);
  if (!r.represents.empty()) {
    append_metadata_event(out, r.rank, 0, "process_labels", "labels", trace_represents_label(r.represents));
  }
  std::vector<StepSpan> steps = trace_step_spans(r);
  // tids count from 1 in lane order: Perfetto takes a tid of 0 to mean "the pid". The host lane
  // comes first in lane order; it exists when the rank has host events or steps.
  int tid = 0;
  if (!steps.empty() && (r.lanes.empty() || r.lanes.front().name != "host")) {
    append_lane(out, r.rank, ++tid, "host");
    append_host_lane(out, r.rank, tid, nullptr, steps);
  }
  for (const TraceLane& lane : r.lanes) {
    append_lane(out, r.rank, ++tid, lane.name);
    if (lane.name == "host") {
      append_host_lane(out, r.rank, tid, &lane, steps);
    } else {
      for (const TraceEvent& e : lane.events) append_slice(out, tid, e);
    }
  }
  for (const MemoryCounterSample& m : r.memory) {
    out += R"({"ph":"C","pid":)";
    append_int(out, r.rank);
    out += R"(,"ts":)";
    out += format_trace_microseconds(m.time_ns);
    out += R"(,"name":)";
    append_string(out, fmt::format("memory {}", memory_tag_name(m.tag)));
    out += R"(,"cat":"memory","args":{"bytes":)";
    append_int(out, m.bytes);
    out += "}},\n";
  }
}

void append_string_array(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    append_string(out, items[i]);
  }
  out += ']';
}

}  // namespace

std::string format_trace_microseconds(std::int64_t ns) {
  if (ns < 0) throw TraceError(fmt::format("negative trace time {} ns", ns));
  return fmt::format("{}.{:03}", ns / 1000, ns % 1000);
}

std::string write_chrome_trace(const TraceDocument& document) {
  document.validate();
  const TraceMetadata& m = document.metadata;
  std::string out = R"({"schema":)";
  append_string(out, kTraceSchema);
  out += R"(,"otherData":{"command_line":)";
  append_string_array(out, m.command_line);
  out += R"(,"config_summary":)";
  append_string(out, m.config_summary);
  out += R"(,"simulated":)";
  out += m.simulated ? "true" : "false";
  if (m.simulated) {
    out += R"(,"contention_model":)";
    append_string(out, kNoContentionModelNote);
  }
  out += R"(,"notes":)";
  append_string_array(out, m.notes);
  out += "},\n\"traceEvents\":[\n";
  const std::size_t empty_size = out.size();
  for (const RankTrace& r : document.ranks()) append_rank(out, r);
  // Every event line ends in ",\n"; the last one must not have the comma.
  if (out.size() > empty_size) out.erase(out.size() - 2, 1);
  out += "]}\n";
  return out;
}

void write_chrome_trace_file(const TraceDocument& document, const std::filesystem::path& path) {
  write_file_atomically(path, write_chrome_trace(document));
}

}  // namespace twinspeed
