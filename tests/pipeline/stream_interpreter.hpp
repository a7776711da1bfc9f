#pragma once
// Executes every stage's instruction stream against the others, the way the pipeline engine will
// on a cluster: each stage runs its instructions in order; a send and a receive are blocking and
// meet in order on each pair of adjacent stages (stage s's SendActivation with stage s+1's
// RecvActivation, stage s+1's SendGrad with stage s's RecvGrad). Time is discrete-event: a forward
// pass costs forward_ns, a backward pass backward_ns, everything else (p2p, loads, reductions,
// the optimizer) nothing; a matched pair completes when its later end arrives.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/pipeline/schedule.hpp"

namespace twinspeed::pipeline::testing {

// Every stage's steps.
std::vector<std::vector<Step>> all_streams(ScheduleKind kind, int micro_batches, int stages);

struct StageTimes {
  std::int64_t forward_ns = 1;
  std::int64_t backward_ns = 1;
};

struct Execution {
  bool completed = false;  // every stage reached the end of its stream
  std::string error;       // why not: the stuck instructions, or a pair that did not match
  int pairs = 0;           // matched send/receive pairs
  std::vector<std::int64_t> finish_ns;  // per stage: when its last instruction completed
  std::vector<std::int64_t> busy_ns;    // per stage: time spent in forward and backward passes
};

Execution execute(const std::vector<std::vector<Step>>& streams, StageTimes times = {});

}  // namespace twinspeed::pipeline::testing
