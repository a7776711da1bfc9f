#pragma once
// Operand checks every backend applies before touching memory (no fmt: nvcc compiles this too).

#include <initializer_list>
#include <string>

#include "engine/core/buffer.hpp"
#include "engine/core/errors.hpp"

namespace twinspeed::kernels::detail {

// Floating operands only (fp32, bf16, fp16); NotImplemented otherwise.
inline void require_floating(const char* op, BufferView x) {
  const DType t = x.dtype();
  if (t != DType::f32 && t != DType::bf16 && t != DType::f16) {
    throw NotImplemented("kernels::" + std::string(op) + " on " + std::string(dtype_name(t)) + " buffers");
  }
}

inline void require_same_numel(const char* op, BufferView a, BufferView b) {
  if (a.numel != b.numel) {
    throw Error("kernels::" + std::string(op) + ": views of " + std::to_string(a.numel) + " and " +
                std::to_string(b.numel) + " elements");
  }
}

// The optimizers' checks, in every backend's order: lengths first (even without data), then, when
// params has data, dtypes.
inline void require_operands(const char* op, BufferView params, std::initializer_list<BufferView> others) {
  for (BufferView v : others) require_same_numel(op, params, v);
  if (!params.has_data()) return;
  require_floating(op, params);
  for (BufferView v : others) require_floating(op, v);
}

}  // namespace twinspeed::kernels::detail
