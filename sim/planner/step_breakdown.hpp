#pragma once
// Where one rank's step time goes, from its trace: every nanosecond of the step window is given to
// exactly one part, so the parts sum to the window exactly (integer nanoseconds).
//
// A nanosecond goes to the first of these that is busy at it:
//   1. compute (lane "compute", and lane "cpu": ZeRO-Offload's optimizer step on the host's CPU,
//      always optimizer), by the launch's name: "<layer> forward" forward, "<layer> recompute"
//      recompute, "<layer> backward" backward; any other compute launch is optimizer work when it
//      starts after the window's last forward/recompute/backward launch ended (unscale, clip, the
//      optimizer, copies back to the parameters) and backward work otherwise (gradient copies into
//      buckets, accumulation of gradient shards during backward);
//   2. communication on no compute: exposed communication, by group kind of its lane, in the order
//      tp, sp, pp, dp when several overlap: "comm-tp*" and "comm-model*" tp, "comm-sp*" sp,
//      "comm-pp*" and the p2p lanes pp, "comm-dp*", "comm-zero*", "comm-world*" and the ZeRO
//      streams ("zero-reduce", "zero-gather") dp;
//   3. host work and copies (lanes "host", "copy"; ZeRO-Offload's PCIe copies are on "copy"): host;
//   4. nothing: bubble (idle: pipeline fill and drain, waiting for a peer).
// An event on a lane none of these name throws Error (a new lane must be classified here).

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "engine/core/trace.hpp"

namespace twinspeed::planner {

enum class StepPart : std::uint8_t {
  forward,
  backward,
  recompute,
  optimizer,
  comm_dp,
  comm_tp,
  comm_pp,
  comm_sp,
  bubble,
  host,
};
inline constexpr std::size_t kStepPartCount = 10;
inline constexpr std::array<StepPart, kStepPartCount> kAllStepParts = {
    StepPart::forward, StepPart::backward, StepPart::recompute, StepPart::optimizer, StepPart::comm_dp,
    StepPart::comm_tp, StepPart::comm_pp,  StepPart::comm_sp,   StepPart::bubble,    StepPart::host};

// "forward", "backward", "recompute", "optimizer", "comm_dp", ... (the JSON keys).
std::string_view step_part_name(StepPart part);

struct StepBreakdown {
  std::array<std::int64_t, kStepPartCount> ns{};
  std::int64_t& operator[](StepPart part) { return ns[static_cast<std::size_t>(part)]; }
  std::int64_t operator[](StepPart part) const { return ns[static_cast<std::size_t>(part)]; }
  std::int64_t total() const;
  bool operator==(const StepBreakdown&) const = default;
};

// The breakdown of [begin_ns, end_ns) on one rank from that rank's events (any order; events
// outside the window are clipped away).
StepBreakdown break_down_step(std::span<const TraceEvent> events, std::int64_t begin_ns, std::int64_t end_ns);

}  // namespace twinspeed::planner
