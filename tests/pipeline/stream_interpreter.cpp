#include "stream_interpreter.hpp"

#include <algorithm>

namespace twinspeed::pipeline::testing {

std::vector<std::vector<Step>> all_streams(ScheduleKind kind, int micro_batches, int stages) {
  std::vector<std::vector<Step>> out;
  for (const auto& schedule : make_schedules(kind, micro_batches, stages)) out.push_back(schedule->steps());
  return out;
}

namespace {

bool is_send(OpKind op) { return op == OpKind::SendActivation || op == OpKind::SendGrad; }
bool is_recv(OpKind op) { return op == OpKind::RecvActivation || op == OpKind::RecvGrad; }

// The stage a p2p instruction of stage s talks to, and the instruction it must meet there.
int peer_of(int stage, OpKind op) {
  return op == OpKind::SendActivation || op == OpKind::RecvGrad ? stage + 1 : stage - 1;
}
OpKind counterpart(OpKind op) {
  switch (op) {
    case OpKind::SendActivation: return OpKind::RecvActivation;
    case OpKind::RecvActivation: return OpKind::SendActivation;
    case OpKind::SendGrad: return OpKind::RecvGrad;
    default: return OpKind::SendGrad;
  }
}

std::string where(int stage, const Instruction& in) {
  return "stage " + std::to_string(stage) + " " + std::string(op_name(in.op)) + "(buffer " +
         std::to_string(in.buffer) + ", micro-batch " + std::to_string(in.micro_batch) + ")";
}

}  // namespace

Execution execute(const std::vector<std::vector<Step>>& streams, StageTimes times) {
  const int stages = static_cast<int>(streams.size());
  std::vector<std::vector<Instruction>> flat(streams.size());
  for (int s = 0; s < stages; ++s) {
    for (const Step& step : streams[s]) flat[s].insert(flat[s].end(), step.begin(), step.end());
  }
  Execution ex;
  ex.finish_ns.assign(streams.size(), 0);
  ex.busy_ns.assign(streams.size(), 0);
  std::vector<std::size_t> pc(streams.size(), 0);
  bool progress = true;
  while (progress) {
    progress = false;
    for (int s = 0; s < stages; ++s) {
      while (pc[s] < flat[s].size()) {
        const Instruction& in = flat[s][pc[s]];
        if (!is_send(in.op) && !is_recv(in.op)) {
          const std::int64_t cost = in.op == OpKind::ForwardPass    ? times.forward_ns
                                    : in.op == OpKind::BackwardPass ? times.backward_ns
                                                                    : 0;
          ex.finish_ns[s] += cost;
          ex.busy_ns[s] += cost;
          ++pc[s];
          progress = true;
          continue;
        }
        const int peer = peer_of(s, in.op);
        if (peer < 0 || peer >= stages) {
          ex.error = where(s, in) + " has no peer stage";
          return ex;
        }
        if (pc[peer] >= flat[peer].size()) break;
        const Instruction& other = flat[peer][pc[peer]];
        if (other.op != counterpart(in.op) || peer_of(peer, other.op) != s) break;
        if (other.micro_batch != in.micro_batch) {
          ex.error = where(s, in) + " met " + where(peer, other);
          return ex;
        }
        const std::int64_t done = std::max(ex.finish_ns[s], ex.finish_ns[peer]);
        ex.finish_ns[s] = ex.finish_ns[peer] = done;
        ++pc[s];
        ++pc[peer];
        ++ex.pairs;
        progress = true;
      }
    }
  }
  for (int s = 0; s < stages; ++s) {
    if (pc[s] < flat[s].size()) {
      if (!ex.error.empty()) ex.error += "; ";
      ex.error += "stuck: " + where(s, flat[s][pc[s]]);
    }
  }
  ex.completed = ex.error.empty();
  return ex;
}

}  // namespace twinspeed::pipeline::testing
