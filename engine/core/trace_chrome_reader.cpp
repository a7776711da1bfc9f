// Reads the Chrome-trace JSON that trace_chrome_writer.cpp writes back into a TraceDocument.
// Times are decimal microseconds with three fractional digits; a double cannot hold every such
// value exactly, so the parser keeps the text of every non-integer number (as a JSON "binary"
// value, which JSON text itself can never produce) and converts it with integer arithmetic.

#include <fmt/format.h>

#include <charconv>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "engine/core/trace_chrome.hpp"
#include "engine/core/trace_file.hpp"

namespace twinspeed {

namespace {

using nlohmann::json;

// nlohmann's SAX interface, building a DOM in which every non-integer number is its source text.
class ExactNumberDom : public nlohmann::json_sax<json> {
 public:
  explicit ExactNumberDom(json& root) : root_(root) {}

  bool null() override { return add(nullptr); }
  bool boolean(bool value) override { return add(value); }
  bool number_integer(number_integer_t value) override { return add(value); }
  bool number_unsigned(number_unsigned_t value) override { return add(value); }
  bool number_float(number_float_t /*value*/, const string_t& text) override {
    return add(json::binary(std::vector<std::uint8_t>(text.begin(), text.end())));
  }
  bool string(string_t& value) override { return add(std::move(value)); }
  bool binary(binary_t& value) override { return add(json::binary(std::move(value))); }
  bool start_object(std::size_t /*size*/) override { return open(json::object()); }
  bool key(string_t& key) override {
    key_ = std::move(key);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t /*size*/) override { return open(json::array()); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const json::exception& error) override {
    throw TraceFormatError(fmt::format("not valid JSON at byte {}: {}", position, error.what()));
  }

 private:
  json* add(json value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    return &(parent[key_] = std::move(value));
  }
  bool open(json container) {
    stack_.push_back(add(std::move(container)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  json& root_;
  std::vector<json*> stack_;
  std::string key_;
};

// One JSON object of the trace, with the place it came from for error messages.
struct Object {
  const json& value;
  std::string where;

  [[noreturn]] void fail(std::string_view what) const { throw TraceFormatError(fmt::format("{}: {}", where, what)); }

  const json* find(std::string_view key) const {
    auto it = value.find(key);
    return it == value.end() ? nullptr : &*it;
  }
  const json& need(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) fail(fmt::format("missing \"{}\"", key));
    return *v;
  }
  std::string string(std::string_view key) const {
    const json& v = need(key);
    if (!v.is_string()) fail(fmt::format("\"{}\" is not a string", key));
    return v.get<std::string>();
  }
  std::int64_t integer(std::string_view key, std::int64_t min, std::int64_t max) const {
    const json& v = need(key);
    if (!v.is_number_integer()) fail(fmt::format("\"{}\" is not an integer", key));
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
      fail(fmt::format("\"{}\" is out of range", key));
    }
    std::int64_t n = v.get<std::int64_t>();
    if (n < min || n > max) fail(fmt::format("\"{}\" = {} is out of range", key, n));
    return n;
  }
  int small_integer(std::string_view key, int min) const {
    return static_cast<int>(integer(key, min, std::numeric_limits<int>::max()));
  }
  // A time in microseconds: an integer, or a decimal with up to three fractional digits.
  std::int64_t time_ns(std::string_view key) const {
    const json& v = need(key);
    std::optional<std::int64_t> ns;
    if (v.is_binary()) {
      const auto& bytes = v.get_binary();
      ns = parse_trace_microseconds(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    } else if (v.is_number_integer()) {
      ns = parse_trace_microseconds(v.dump());
    }
    if (!ns) fail(fmt::format("\"{}\" is not a time in microseconds with at most 3 decimals", key));
    return *ns;
  }
  Object object(std::string_view key) const {
    const json& v = need(key);
    if (!v.is_object()) fail(fmt::format("\"{}\" is not an object", key));
    return Object{v, fmt::format("{}.{}", where, key)};
  }
};

std::vector<std::string> string_array(const Object& parent, std::string_view key) {
  const json& v = parent.need(key);
  if (!v.is_array()) parent.fail(fmt::format("\"{}\" is not an array", key));
  std::vector<std::string> items;
  for (const json& item : v) {
    if (!item.is_string()) parent.fail(fmt::format("\"{}\" holds a non-string", key));
    items.push_back(item.get<std::string>());
  }
  return items;
}

TraceMetadata read_metadata(const Object& other) {
  TraceMetadata m;
  m.command_line = string_array(other, "command_line");
  m.config_summary = other.string("config_summary");
  const json& simulated = other.need("simulated");
  if (!simulated.is_boolean()) other.fail("\"simulated\" is not a boolean");
  m.simulated = simulated.get<bool>();
  m.notes = string_array(other, "notes");
  return m;
}

// The args of a slice into the event's optional fields; absent means unset.
void read_slice_args(const Object& event, TraceEvent& e) {
  if (event.find("args") == nullptr) return;
  Object args = event.object("args");
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  if (args.find("op")) e.op = args.string("op");
  if (args.find("group")) e.group = args.small_integer("group", 0);
  if (args.find("seq")) e.seq = args.integer("seq", 0, kMax);
  if (args.find("bytes")) e.bytes = args.integer("bytes", 0, kMax);
  if (args.find("dtype")) e.dtype = args.string("dtype");
  if (args.find("micro_batch")) e.micro_batch = args.small_integer("micro_batch", 0);
  if (args.find("step")) e.step = args.integer("step", 0, kMax);
  if (args.find("stage")) e.stage = args.small_integer("stage", 0);
  if (args.find("instruction")) e.instruction = args.string("instruction");
  if (args.find("flow_out")) e.flow_out = args.integer("flow_out", 0, kMax);
  if (args.find("flow_in")) e.flow_in = args.integer("flow_in", 0, kMax);
}

struct RankParts {
  std::optional<TraceRankInfo> info;
  std::map<int, std::string> lanes;  // tid -> lane name
  std::vector<std::pair<int, TraceEvent>> slices;  // (tid, event without its lane yet)
  std::vector<MemoryCounterSample> memory;
};

void read_metadata_event(const Object& event, int pid, RankParts& rank) {
  std::string name = event.string("name");
  Object args = event.object("args");
  if (name == "process_name") {
    std::string text = args.string("name");
    auto parts = parse_trace_process_name(text);
    if (!parts || parts->rank != pid) event.fail(fmt::format("process name '{}' is not 'rank {} (pp p, dp d, sp s, tp t)'", text, pid));
    if (!rank.info) rank.info.emplace();
    rank.info->rank = pid;
    rank.info->mesh = parts->mesh;
  } else if (name == "process_labels") {
    std::string text = args.string("labels");
    auto ranks = parse_trace_represents_label(text);
    if (!ranks) event.fail(fmt::format("process label '{}' is not 'represents ranks [...]'", text));
    if (!rank.info) rank.info.emplace();
    rank.info->represents = std::move(*ranks);
  } else if (name == "thread_name") {
    int tid = event.small_integer("tid", 1);
    if (!rank.lanes.emplace(tid, args.string("name")).second) event.fail(fmt::format("tid {} named twice", tid));
  } else if (name != "process_sort_index" && name != "thread_sort_index") {
    event.fail(fmt::format("unknown metadata event '{}'", name));
  }
}

void read_slice(const Object& event, int pid, RankParts& rank) {
  std::string category = event.string("cat");
  if (category == "step") return;  // derived from the events' step fields
  TraceEvent e;
  e.rank = pid;
  e.name = event.string("name");
  auto parsed = parse_trace_category(category);
  if (!parsed) event.fail(fmt::format("unknown category '{}'", category));
  e.category = *parsed;
  e.start_ns = event.time_ns("ts");
  e.duration_ns = event.time_ns("dur");
  read_slice_args(event, e);
  rank.slices.emplace_back(event.small_integer("tid", 1), std::move(e));
}

void read_counter(const Object& event, int pid, RankParts& rank) {
  std::string name = event.string("name");
  constexpr std::string_view kPrefix = "memory ";
  std::optional<MemoryTag> tag;
  if (name.starts_with(kPrefix)) tag = parse_memory_tag(std::string_view(name).substr(kPrefix.size()));
  if (!tag) event.fail(fmt::format("counter '{}' is not 'memory <tag>'", name));
  rank.memory.push_back({.rank = pid,
                         .time_ns = event.time_ns("ts"),
                         .tag = *tag,
                         .bytes = event.object("args").integer("bytes", 0, std::numeric_limits<std::int64_t>::max())});
}

}  // namespace

std::optional<std::int64_t> parse_trace_microseconds(std::string_view text) {
  std::string_view whole = text.substr(0, text.find('.'));
  std::string_view fraction = whole.size() < text.size() ? text.substr(whole.size() + 1) : std::string_view();
  auto all_digits = [](std::string_view s) { return s.find_first_not_of("0123456789") == std::string_view::npos; };
  if (whole.empty() || !all_digits(whole) || !all_digits(fraction) || fraction.size() > 3) return std::nullopt;
  if (whole.size() < text.size() && fraction.empty()) return std::nullopt;  // "12."
  std::int64_t us = 0;
  auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), us);
  if (ec != std::errc() || end != whole.data() + whole.size()) return std::nullopt;
  std::int64_t sub = 0;
  for (std::size_t i = 0; i < 3; ++i) sub = sub * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
  if (us > (std::numeric_limits<std::int64_t>::max() - sub) / 1000) return std::nullopt;
  return us * 1000 + sub;
}

TraceDocument read_chrome_trace(std::string_view text) {
  json root;
  ExactNumberDom dom(root);
  json::sax_parse(text, &dom, json::input_format_t::json, /*strict=*/true);
  if (!root.is_object()) throw TraceFormatError("a trace is a JSON object with \"traceEvents\"");
  Object top{root, "trace"};
  const json* schema = top.find("schema");
  if (schema == nullptr || !schema->is_string() || schema->get<std::string>() != kTraceSchema) {
    top.fail(fmt::format("not a twinspeed trace: \"schema\" is {}, expected \"{}\"",
                         schema == nullptr ? "missing" : schema->dump(), kTraceSchema));
  }
  TraceDocument document;
  document.metadata = read_metadata(top.object("otherData"));
  const json& events = top.need("traceEvents");
  if (!events.is_array()) top.fail("\"traceEvents\" is not an array");

  std::map<int, RankParts> ranks;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!events[i].is_object()) top.fail(fmt::format("traceEvents[{}] is not an object", i));
    Object event{events[i], fmt::format("traceEvents[{}]", i)};
    std::string phase = event.string("ph");
    int pid = event.small_integer("pid", 0);
    RankParts& rank = ranks[pid];
    if (phase == "M") {
      read_metadata_event(event, pid, rank);
    } else if (phase == "X") {
      read_slice(event, pid, rank);
    } else if (phase == "C") {
      read_counter(event, pid, rank);
    } else if (phase != "s" && phase != "f") {  // flows are rebuilt from the slices' flow ids
      event.fail(fmt::format("unexpected phase '{}'", phase));
    }
  }
  for (auto& [pid, rank] : ranks) {
    if (!rank.info) throw TraceFormatError(fmt::format("trace: pid {} has events but no process_name", pid));
    std::vector<TraceEvent> slices;
    for (auto& [tid, e] : rank.slices) {
      auto lane = rank.lanes.find(tid);
      if (lane == rank.lanes.end()) {
        throw TraceFormatError(fmt::format("trace: pid {} tid {} has slices but no thread_name", pid, tid));
      }
      e.lane = lane->second;
      slices.push_back(std::move(e));
    }
    document.add_rank(std::move(*rank.info), std::move(slices), std::move(rank.memory));
  }
  document.validate();
  return document;
}

TraceDocument read_chrome_trace_file(const std::filesystem::path& path) {
  std::string text = read_whole_file(path);
  try {
    return read_chrome_trace(text);
  } catch (const TraceFormatError& e) {
    throw TraceFormatError(fmt::format("{}: {}", path.string(), e.what()));
  } catch (const TraceError& e) {
    throw TraceError(fmt::format("{}: {}", path.string(), e.what()));
  }
}

}  // namespace twinspeed
