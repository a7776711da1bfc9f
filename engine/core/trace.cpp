#include "engine/core/trace.hpp"

#include <array>
#include <tuple>

namespace twinspeed {

namespace {

constexpr std::array<TraceCategory, 5> kAllTraceCategories = {
    TraceCategory::compute, TraceCategory::comm, TraceCategory::p2p, TraceCategory::copy, TraceCategory::host};

// The rank of a lane's class in the fixed lane order; lanes of one class sort by name.
int lane_class(std::string_view lane) {
  if (lane == "host") return 0;
  if (lane == "compute") return 1;
  if (lane.starts_with("comm-")) return 2;
  if (lane == "p2p" || lane.starts_with("p2p-")) return 3;  // p2p-send, p2p-recv
  if (lane == "copy") return 4;
  return 5;
}

}  // namespace

std::string_view trace_category_name(TraceCategory c) {
  switch (c) {
    case TraceCategory::compute: return "compute";
    case TraceCategory::comm: return "comm";
    case TraceCategory::p2p: return "p2p";
    case TraceCategory::copy: return "copy";
    case TraceCategory::host: return "host";
  }
  return "?";
}

std::optional<TraceCategory> parse_trace_category(std::string_view name) {
  for (TraceCategory c : kAllTraceCategories) {
    if (trace_category_name(c) == name) return c;
  }
  return std::nullopt;
}

bool trace_lane_before(std::string_view a, std::string_view b) {
  return std::tuple(lane_class(a), a) < std::tuple(lane_class(b), b);
}

void TraceRecorder::record(TraceEvent event) {
  std::lock_guard lock(mutex_);
  if (!enabled_) return;
  if (event.step < 0) event.step = context_.step;
  if (event.micro_batch < 0) event.micro_batch = context_.micro_batch;
  if (event.stage < 0) event.stage = context_.stage;
  if (event.instruction.empty()) event.instruction = context_.instruction;
  events_.push_back(std::move(event));
}

void TraceRecorder::set_context(TraceContext context) {
  std::lock_guard lock(mutex_);
  context_ = context;
}

TraceContext TraceRecorder::context() const {
  std::lock_guard lock(mutex_);
  return context_;
}

void TraceRecorder::record_memory(MemoryCounterSample sample) {
  std::lock_guard lock(mutex_);
  if (enabled_) memory_.push_back(sample);
}

std::vector<TraceEvent> TraceRecorder::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

std::vector<MemoryCounterSample> TraceRecorder::memory_samples() const {
  std::lock_guard lock(mutex_);
  return memory_;
}

void TraceRecorder::set_enabled(bool enabled) {
  std::lock_guard lock(mutex_);
  enabled_ = enabled;
}

bool TraceRecorder::enabled() const {
  std::lock_guard lock(mutex_);
  return enabled_;
}

}  // namespace twinspeed
