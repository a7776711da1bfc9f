#include "kernels/cpu/flat_ops.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/core/errors.hpp"
#include "kernels/common/convert.hpp"

namespace twinspeed::kernels {

namespace {

// Calls visit(i, value) for every element of x as a float, whatever its floating dtype; reads only.
template <typename Visit>
void visit_elements(BufferView x, const char* op, Visit visit) {
  if (!x.has_data()) return;
  auto each = [&](const auto* p, auto load) {
    for (std::int64_t i = 0; i < x.numel; ++i) visit(i, load(p[i]));
  };
  switch (x.dtype()) {
    case DType::f32: return each(x.data_as<float>(), [](float v) { return v; });
    case DType::bf16: return each(static_cast<const std::uint16_t*>(x.data()), bf16_to_float);
    case DType::f16: return each(static_cast<const std::uint16_t*>(x.data()), fp16_to_float);
    default: throw NotImplemented(fmt::format("kernels::{} on {} buffers", op, dtype_name(x.dtype())));
  }
}

// Replaces every element v of x by fn(v) (16-bit types through fp32).
template <typename Fn>
void map_elements(BufferView x, const char* op, Fn fn) {
  if (!x.has_data()) return;
  switch (x.dtype()) {
    case DType::f32: {
      float* p = x.data_as<float>();
      for (std::int64_t i = 0; i < x.numel; ++i) p[i] = fn(p[i]);
      return;
    }
    case DType::bf16: {
      auto* p = static_cast<std::uint16_t*>(x.data());
      visit_elements(x, op, [&](std::int64_t i, float v) { p[i] = float_to_bf16(fn(v)); });
      return;
    }
    case DType::f16: {
      auto* p = static_cast<std::uint16_t*>(x.data());
      visit_elements(x, op, [&](std::int64_t i, float v) { p[i] = float_to_fp16(fn(v)); });
      return;
    }
    default:
      throw NotImplemented(fmt::format("kernels::{} on {} buffers", op, dtype_name(x.dtype())));
  }
}

void require_fp32(const char* op, std::initializer_list<BufferView> views) {
  std::int64_t numel = views.begin()->numel;
  for (const auto& v : views) {
    if (v.dtype() != DType::f32) {
      throw NotImplemented(fmt::format("kernels::{} on {} buffers (fp32 only)", op, dtype_name(v.dtype())));
    }
    if (v.numel != numel) throw Error(fmt::format("kernels::{}: views of {} and {} elements", op, numel, v.numel));
  }
}

}  // namespace

void fill_zero(BufferView x) {
  if (x.has_data()) std::memset(x.data(), 0, static_cast<std::size_t>(x.bytes()));
}

void scale(BufferView x, double factor) {
  auto f = static_cast<float>(factor);
  map_elements(x, "scale", [f](float v) { return v * f; });
}

namespace {

void require_same_numel(const char* op, BufferView dst, BufferView src) {
  if (dst.numel != src.numel) {
    throw Error(fmt::format("kernels::{}: destination of {} and source of {} elements", op, dst.numel, src.numel));
  }
}

// Calls store(i, value) for every element of dst with value = fn(dst[i], src[i]) in fp32.
template <typename Fn>
void combine(BufferView dst, BufferView src, const char* op, Fn fn) {
  require_same_numel(op, dst, src);
  if (!dst.has_data() || !src.has_data()) return;
  if (dst.dtype() == DType::f32 && src.dtype() == DType::f32) {
    float* d = dst.data_as<float>();
    const float* s = src.data_as<float>();
    for (std::int64_t i = 0; i < dst.numel; ++i) d[i] = fn(d[i], s[i]);
    return;
  }
  // Read the source into fp32 once, then map the destination through it.
  std::vector<float> values(static_cast<std::size_t>(src.numel));
  visit_elements(src, op, [&](std::int64_t i, float v) { values[static_cast<std::size_t>(i)] = v; });
  std::int64_t i = 0;
  map_elements(dst, op, [&](float d) { return fn(d, values[static_cast<std::size_t>(i++)]); });
}

}  // namespace

void copy(BufferView dst, BufferView src) {
  require_same_numel("copy", dst, src);
  if (!dst.has_data() || !src.has_data()) return;
  if (dst.dtype() == src.dtype()) {
    std::memmove(dst.data(), src.data(), static_cast<std::size_t>(dst.bytes()));
    return;
  }
  combine(dst, src, "copy", [](float, float s) { return s; });
}

void accumulate(BufferView dst, BufferView src) {
  combine(dst, src, "accumulate", [](float d, float s) { return d + s; });
}

double sum_of_squares(BufferView x) {
  double sum = 0.0;
  visit_elements(x, "sum_of_squares", [&](std::int64_t, float v) { sum += static_cast<double>(v) * v; });
  return sum;
}

bool has_inf_or_nan(BufferView x) {
  bool found = false;
  visit_elements(x, "has_inf_or_nan", [&](std::int64_t, float v) { found = found || !std::isfinite(v); });
  return found;
}

namespace {

// 16-bit operands (bf16 master weights or optimizer states) go through fp32 copies: an interim
// path (the kernels issue fuses the conversion into the update).
struct Fp32Copy {
  explicit Fp32Copy(BufferView v) : view(v), values(static_cast<std::size_t>(v.has_data() ? v.numel : 0)) {
    if (view.dtype() == DType::f32 || !view.has_data()) return;
    buffer = Buffer(nullptr, MemoryTag::temporaries, DType::f32, view.numel, values.data(), -1);
    copy(buffer.all(), view);
  }
  BufferView fp32() const { return view.dtype() == DType::f32 || !view.has_data() ? view : buffer.all(); }
  void write_back() const {
    if (view.dtype() != DType::f32 && view.has_data()) copy(view, buffer.all());
  }
  BufferView view;
  std::vector<float> values;
  Buffer buffer;
};

void adam_step_fp32(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq,
                    const AdamParams& a);
void sgd_step_fp32(BufferView params, BufferView grads, BufferView momentum_buffer, const SgdParams& s);

}  // namespace

void adam_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const AdamParams& a) {
  const Fp32Copy p(params), g(grads), m(exp_avg), v(exp_avg_sq);
  adam_step_fp32(p.fp32(), g.fp32(), m.fp32(), v.fp32(), a);
  p.write_back();
  m.write_back();
  v.write_back();
}

void sgd_step(BufferView params, BufferView grads, BufferView momentum_buffer, const SgdParams& s) {
  const Fp32Copy p(params), g(grads), m(momentum_buffer);
  sgd_step_fp32(p.fp32(), g.fp32(), m.fp32(), s);
  p.write_back();
  m.write_back();
}

namespace {

void adam_step_fp32(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq,
                    const AdamParams& a) {
  require_fp32("adam_step", {params, grads, exp_avg, exp_avg_sq});
  if (!params.has_data()) return;
  float* p = params.data_as<float>();
  const float* g = grads.data_as<float>();
  float* m = exp_avg.data_as<float>();
  float* v = exp_avg_sq.data_as<float>();
  double bc1 = a.bias_correction ? 1.0 - std::pow(a.beta1, static_cast<double>(a.step)) : 1.0;
  double bc2 = a.bias_correction ? 1.0 - std::pow(a.beta2, static_cast<double>(a.step)) : 1.0;
  const auto beta1 = static_cast<float>(a.beta1), beta2 = static_cast<float>(a.beta2);
  const auto eps = static_cast<float>(a.eps), decay = static_cast<float>(a.weight_decay);
  const auto lr = static_cast<float>(a.lr);
  const auto inv_bc1 = static_cast<float>(1.0 / bc1), inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  for (std::int64_t i = 0; i < params.numel; ++i) {
    float grad = g[i];
    if (!a.adam_w_mode) grad += decay * p[i];
    m[i] = beta1 * m[i] + (1.0f - beta1) * grad;
    v[i] = beta2 * v[i] + (1.0f - beta2) * grad * grad;
    float denom = std::sqrt(v[i]) * inv_sqrt_bc2 + eps;
    float update = (m[i] * inv_bc1) / denom;
    if (a.adam_w_mode) update += decay * p[i];
    p[i] -= lr * update;
  }
}

void sgd_step_fp32(BufferView params, BufferView grads, BufferView momentum_buffer, const SgdParams& s) {
  require_fp32("sgd_step", {params, grads});
  if (!params.has_data()) return;
  float* p = params.data_as<float>();
  const float* g = grads.data_as<float>();
  float* buf = s.momentum != 0.0 ? momentum_buffer.data_as<float>() : nullptr;
  if (buf != nullptr) require_fp32("sgd_step", {params, momentum_buffer});
  const auto lr = static_cast<float>(s.lr), momentum = static_cast<float>(s.momentum);
  const auto dampening = static_cast<float>(s.dampening), decay = static_cast<float>(s.weight_decay);
  for (std::int64_t i = 0; i < params.numel; ++i) {
    float d = g[i] + decay * p[i];
    if (buf != nullptr) {
      buf[i] = s.first_step ? d : momentum * buf[i] + (1.0f - dampening) * d;
      d = s.nesterov ? d + momentum * buf[i] : buf[i];
    }
    p[i] -= lr * d;
  }
}

}  // namespace

}  // namespace twinspeed::kernels
