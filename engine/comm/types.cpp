#include "engine/comm/types.hpp"

#include <fmt/format.h>

#include <string>

#include "engine/comm/device.hpp"

namespace twinspeed::comm {

std::string_view reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::avg: return "avg";
    case ReduceOp::min: return "min";
    case ReduceOp::max: return "max";
  }
  return "?";
}

std::string_view collective_trace_dtype(CollectiveOp op, DType dtype) {
  return op == CollectiveOp::barrier ? std::string_view() : dtype_name(dtype);
}

std::string_view collective_op_name(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::all_reduce: return "all_reduce";
    case CollectiveOp::reduce: return "reduce";
    case CollectiveOp::reduce_scatter: return "reduce_scatter";
    case CollectiveOp::all_gather: return "all_gather";
    case CollectiveOp::broadcast: return "broadcast";
    case CollectiveOp::all_to_all: return "all_to_all";
    case CollectiveOp::barrier: return "barrier";
    case CollectiveOp::batch_p2p: return "batch_p2p";
  }
  return "?";
}

std::string_view op_class_name(OpClass c) {
  switch (c) {
    case OpClass::matmul: return "matmul";
    case OpClass::attention: return "attention";
    case OpClass::elementwise: return "elementwise";
    case OpClass::reduction: return "reduction";
    case OpClass::optimizer: return "optimizer";
    case OpClass::copy: return "copy";
    case OpClass::other: return "other";
  }
  return "?";
}

std::string describe_memory(const MemoryStats& stats) {
  std::string out;
  for (MemoryTag tag : kAllMemoryTags) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {}", memory_tag_name(tag), stats.current(tag));
  }
  out += fmt::format(" (total {} bytes, peak {}", stats.total_current_bytes, stats.total_peak_bytes);
  if (stats.capacity_bytes > 0) out += fmt::format(", capacity {}", stats.capacity_bytes);
  out += ")";
  return out;
}

}  // namespace twinspeed::comm
