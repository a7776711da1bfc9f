// The kernels' one dispatch: each entry point of kernels/kernels.hpp asks route() where its
// operands live, once per call, and calls that backend's function of the same name.
#include <array>
#include <cmath>
#include <string>

#include "engine/core/errors.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/kernels.hpp"
#if TWINSPEED_KERNELS_CUDA
#include "kernels/cuda/ops.hpp"
#endif

namespace twinspeed::kernels {

bool built_with_cuda() noexcept { return TWINSPEED_KERNELS_CUDA != 0; }

MemorySpace route(const char* kernel, std::span<const BufferView> operands) {
  bool host = false, device = false;
  for (const BufferView& v : operands) {
    if (!v.has_data()) continue;
    (v.memory_space() == MemorySpace::cuda ? device : host) = true;
  }
  if (host && device) {
    throw Error("kernels::" + std::string(kernel) + ": operands in host and CUDA memory mixed (copy them to one side first)");
  }
  if (!device) return MemorySpace::host;
  if (!built_with_cuda()) {
    throw NotImplemented("kernels::" + std::string(kernel) +
                         " on CUDA memory: twinspeed was built without CUDA (TWINSPEED_CUDA=OFF or no nvcc)");
  }
  return MemorySpace::cuda;
}

namespace {

// route() over a fixed list of operands.
template <typename... Views>
MemorySpace route_of(const char* kernel, Views... views) {
  const std::array<BufferView, sizeof...(Views)> operands{views...};
  return route(kernel, operands);
}

}  // namespace

// Calls backend::CALL where route() says. Without CUDA, route() has thrown before a CUDA operand
// gets here, so the CPU call is the only one compiled in.
#if TWINSPEED_KERNELS_CUDA
#define TS_DISPATCH(space, CALL) \
  if ((space) == MemorySpace::cuda) return cuda::CALL; \
  return cpu::CALL
#else
#define TS_DISPATCH(space, CALL) \
  static_cast<void>(space);    \
  return cpu::CALL
#endif

void fill_zero(BufferView x) { TS_DISPATCH(route_of("fill_zero", x), fill_zero(x)); }

void scale(BufferView x, double factor) { TS_DISPATCH(route_of("scale", x), scale(x, factor)); }

bool unscale_and_check_overflow(BufferView x, double factor) {
  TS_DISPATCH(route_of("unscale_and_check_overflow", x), unscale_and_check_overflow(x, factor));
}

void copy(BufferView dst, BufferView src) { TS_DISPATCH(route_of("copy", dst, src), copy(dst, src)); }

void accumulate(BufferView dst, BufferView src) { TS_DISPATCH(route_of("accumulate", dst, src), accumulate(dst, src)); }

double sum_of_squares(BufferView x) { TS_DISPATCH(route_of("sum_of_squares", x), sum_of_squares(x)); }

bool has_inf_or_nan(BufferView x) { TS_DISPATCH(route_of("has_inf_or_nan", x), has_inf_or_nan(x)); }

double squared_l2_norm(std::span<const BufferView> views) {
  TS_DISPATCH(route("squared_l2_norm", views), squared_l2_norm(views));
}

double l2_norm(std::span<const BufferView> views) { return std::sqrt(squared_l2_norm(views)); }

void adam_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const AdamParams& p) {
  TS_DISPATCH(route_of("adam_step", params, grads, exp_avg, exp_avg_sq), adam_step(params, grads, exp_avg, exp_avg_sq, p));
}

void sgd_step(BufferView params, BufferView grads, BufferView momentum_buffer, const SgdParams& p) {
  TS_DISPATCH(route_of("sgd_step", params, grads, momentum_buffer), sgd_step(params, grads, momentum_buffer, p));
}

float lamb_step(BufferView params, BufferView grads, BufferView exp_avg, BufferView exp_avg_sq, const LambParams& p) {
  TS_DISPATCH(route_of("lamb_step", params, grads, exp_avg, exp_avg_sq), lamb_step(params, grads, exp_avg, exp_avg_sq, p));
}

void lion_step(BufferView params, BufferView grads, BufferView exp_avg, const LionParams& p) {
  TS_DISPATCH(route_of("lion_step", params, grads, exp_avg), lion_step(params, grads, exp_avg, p));
}

void adagrad_step(BufferView params, BufferView grads, BufferView sum_of_squares, const AdagradParams& p) {
  TS_DISPATCH(route_of("adagrad_step", params, grads, sum_of_squares), adagrad_step(params, grads, sum_of_squares, p));
}

#undef TS_DISPATCH

}  // namespace twinspeed::kernels
