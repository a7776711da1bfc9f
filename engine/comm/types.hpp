#pragma once
// Vocabulary of the communication seam: reduce ops, collective kinds, options, costs.
// PROVISIONAL until the simulated cluster runs N ranks (issue 3); see docs/ARCHITECTURE.md.

#include <chrono>
#include <cstdint>
#include <string_view>

#include "engine/core/buffer.hpp"

namespace twinspeed::comm {

class Stream;

// AVG is SUM followed by a scale, done once in shared code, never per backend.
enum class ReduceOp : std::uint8_t { sum, avg, min, max };
std::string_view reduce_op_name(ReduceOp op);

enum class CollectiveOp : std::uint8_t {
  all_reduce, reduce, reduce_scatter, all_gather, broadcast, all_to_all, barrier, batch_p2p
};
std::string_view collective_op_name(CollectiveOp op);
// The dtype a trace event of the collective carries (every backend records the same): the data's
// dtype name, or none for a barrier, which moves no data.
std::string_view collective_trace_dtype(CollectiveOp op, DType dtype);

// DeepSpeed's default process-group timeout (deepspeed.constants.default_pg_timeout: 30 min).
inline constexpr std::chrono::milliseconds kDefaultCommTimeout{30 * 60 * 1000};

// Options shared by every collective. Defaults follow c10d.
struct CollectiveOptions {
  ReduceOp reduce_op = ReduceOp::sum;
  // 0: the backend's own timeout (c10d's kUnsetTimeout: the process group's), which is
  // kDefaultCommTimeout unless the backend was configured otherwise (Gloo's "timeout_ms").
  std::chrono::milliseconds timeout{0};
  // The stream the operation is ordered on; null means the group's default comm stream.
  Stream* stream = nullptr;
};

// The timeout an operation runs with: the one it asked for, else the backend's.
inline std::chrono::milliseconds resolve_timeout(std::chrono::milliseconds requested,
                                                 std::chrono::milliseconds backend_default) {
  return requested.count() > 0 ? requested : backend_default;
}

// One side of a grouped point-to-point exchange. peer is a rank within the group.
struct P2POp {
  enum class Kind : std::uint8_t { send, recv };
  Kind kind = Kind::send;
  BufferView buffer;
  int peer = -1;
  int tag = 0;
};

// What a compute launch costs: the simulator charges a roofline from it; real backends ignore it
// except for the trace.
enum class OpClass : std::uint8_t { matmul, attention, elementwise, reduction, optimizer, copy, other };
std::string_view op_class_name(OpClass c);

struct ComputeCost {
  OpClass op_class = OpClass::other;
  double flops = 0.0;
  std::int64_t bytes_read = 0;
  std::int64_t bytes_written = 0;
  // How many kernels the launch stands for; each pays the device's launch overhead.
  std::int64_t kernels = 1;
};

// A copy (or conversion, or accumulation) that reads and writes `bytes`.
inline ComputeCost copy_cost(std::int64_t bytes) {
  return {.op_class = OpClass::copy, .bytes_read = bytes, .bytes_written = bytes};
}

}  // namespace twinspeed::comm
