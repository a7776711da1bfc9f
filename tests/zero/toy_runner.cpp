#include "tests/zero/toy_runner.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "engine/core/buffer.hpp"
#include "kernels/common/convert.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed::testing {

namespace {

// A Buffer over caller memory (no owner: nothing is released), so kernels can read and write it.
Buffer host_buffer(std::vector<float>& v) {
  return Buffer(nullptr, MemoryTag::temporaries, DType::f32, static_cast<std::int64_t>(v.size()), v.data(), -1);
}

}  // namespace

Activation toy_activation(std::int64_t rows, std::int64_t cols, std::vector<float> values) {
  return Activation(std::make_shared<ToyActivation>(rows, cols, std::move(values)));
}

const ToyActivation& toy(const Activation& a) {
  auto* t = dynamic_cast<const ToyActivation*>(a.data().get());
  if (t == nullptr) throw std::logic_error("not a toy activation");
  return *t;
}

ToyRunner::ToyRunner(ToyModel model)
    : model_(std::move(model)),
      params_(layer_count()),
      grads_(layer_count()),
      saved_(layer_count()) {}

std::size_t ToyRunner::layer_count() const { return dense_layers() + (model_.shared_gain ? 1 : 0); }

std::string ToyRunner::layer_name(std::size_t layer) const {
  return layer < dense_layers() ? "dense." + std::to_string(layer) : "gain";
}

std::vector<ParamSpec> ToyRunner::parameters(std::size_t layer) const {
  if (layer >= dense_layers()) return {};
  std::vector<ParamSpec> specs = {{"weight", {model_.widths[layer + 1], model_.widths[layer]}},
                                  {"bias", {model_.widths[layer + 1]}}};
  if (layer == 0 && model_.shared_gain) specs.push_back({"gain", {1}});
  return specs;
}

std::vector<ParamRef> ToyRunner::shared_parameters(std::size_t layer) const {
  if (layer >= dense_layers()) return {{.layer = 0, .index = 2}};
  return {};
}

void ToyRunner::initial_parameters(std::size_t layer, std::span<const BufferView> values) {
  const auto specs = parameters(layer);
  for (std::size_t k = 0; k < values.size(); ++k) {
    std::vector<float> v(static_cast<std::size_t>(values[k].numel));
    for (std::size_t i = 0; i < v.size(); ++i) {
      // A fixed pseudo-random pattern of the seed, layer, parameter and element, scaled 1/sqrt(fan-in).
      const double x = std::sin(12.9898 * static_cast<double>(model_.seed) + 78.233 * static_cast<double>(layer) +
                                37.719 * static_cast<double>(k) + 0.731 * static_cast<double>(i));
      const double fan_in = static_cast<double>(specs[k].shape.size() > 1 ? specs[k].shape[1] : 1);
      v[i] = specs[k].name == "gain" ? 1.0f : static_cast<float>(x / std::sqrt(fan_in));
    }
    Buffer src = host_buffer(v);
    kernels::copy(values[k], src.all());
  }
}

void ToyRunner::bind_parameters(std::size_t layer, std::span<const BufferView> params) {
  params_[layer].assign(params.begin(), params.end());
  if (!params.empty()) dtype_ = params[0].dtype();
  ++(params.empty() ? unbinds_ : binds_);
}

void ToyRunner::bind_gradients(std::size_t layer, std::span<const BufferView> grads) {
  grads_[layer].assign(grads.begin(), grads.end());
}

std::vector<float> ToyRunner::read(const BufferView& view) const {
  if (!view.has_data()) throw std::logic_error("parameter read while not bound");
  std::vector<float> v(static_cast<std::size_t>(view.numel));
  Buffer dst = host_buffer(v);
  kernels::copy(dst.all(), view);
  return v;
}

float ToyRunner::round(float v) const {
  const DType t = dtype_;
  if (t == DType::bf16) return kernels::bf16_to_float(kernels::float_to_bf16(v));
  if (t == DType::f16) return kernels::fp16_to_float(kernels::float_to_fp16(v));
  return v;
}

void ToyRunner::add_grad(std::size_t layer, std::size_t index, const std::vector<float>& values) {
  if (grads_[layer].size() <= index || !grads_[layer][index].has_data()) {
    throw std::logic_error("gradient written while not bound: " + layer_name(layer));
  }
  std::vector<float> v = values;
  if (overflows_.contains({rank_, micro_step_, layer, index})) v[0] = std::numeric_limits<float>::infinity();
  Buffer src = host_buffer(v);
  kernels::accumulate(grads_[layer][index], src.all());
}

Activation ToyRunner::forward(std::size_t layer, const Activation& input) {
  if (model_.on_forward) model_.on_forward(rank_, layer);
  const ToyActivation& x = toy(input);
  std::vector<float> y;
  std::int64_t cols = x.cols;
  if (layer < dense_layers()) {
    const auto w = read(params_[layer][0]), b = read(params_[layer][1]);
    const std::int64_t in = model_.widths[layer], out = model_.widths[layer + 1];
    cols = out;
    y.assign(static_cast<std::size_t>(x.rows * out), 0.0f);
    for (std::int64_t r = 0; r < x.rows; ++r) {
      for (std::int64_t o = 0; o < out; ++o) {
        float acc = b[static_cast<std::size_t>(o)];
        for (std::int64_t i = 0; i < in; ++i) {
          acc += w[static_cast<std::size_t>(o * in + i)] * x.values[static_cast<std::size_t>(r * in + i)];
        }
        y[static_cast<std::size_t>(r * out + o)] = round(layer + 1 < dense_layers() ? std::tanh(acc) : acc);
      }
    }
  } else {
    const float g = read(params_[0][2])[0];
    for (float v : x.values) y.push_back(round(g * v));
  }
  Activation out = toy_activation(x.rows, cols, y);
  saved_[layer].emplace_back(input, out);
  return out;
}

Activation ToyRunner::backward(std::size_t layer, const Activation& grad_output) {
  if (saved_[layer].empty()) throw std::logic_error("backward without a forward: " + layer_name(layer));
  const auto [input, output] = std::move(saved_[layer].front());
  saved_[layer].pop_front();
  const ToyActivation& x = toy(input);
  const ToyActivation& y = toy(output);
  std::vector<float> dy = toy(grad_output).values;
  std::vector<float> dx(x.values.size(), 0.0f);
  if (layer < dense_layers()) {
    const auto w = read(params_[layer][0]);
    const std::int64_t in = model_.widths[layer], out = model_.widths[layer + 1];
    if (layer + 1 < dense_layers()) {
      for (std::size_t k = 0; k < dy.size(); ++k) dy[k] *= 1.0f - y.values[k] * y.values[k];
    }
    std::vector<float> dw(w.size(), 0.0f), db(static_cast<std::size_t>(out), 0.0f);
    for (std::int64_t r = 0; r < x.rows; ++r) {
      for (std::int64_t o = 0; o < out; ++o) {
        const float d = dy[static_cast<std::size_t>(r * out + o)];
        db[static_cast<std::size_t>(o)] += d;
        for (std::int64_t i = 0; i < in; ++i) {
          dw[static_cast<std::size_t>(o * in + i)] += d * x.values[static_cast<std::size_t>(r * in + i)];
          dx[static_cast<std::size_t>(r * in + i)] += d * w[static_cast<std::size_t>(o * in + i)];
        }
      }
    }
    add_grad(layer, 0, dw);
    add_grad(layer, 1, db);
  } else {
    const float g = read(params_[0][2])[0];
    float dg = 0.0f;
    for (std::size_t k = 0; k < dy.size(); ++k) {
      dg += dy[k] * x.values[k];
      dx[k] = g * dy[k];
    }
    add_grad(0, 2, {dg});
  }
  if (layer == 0) ++micro_step_;
  for (float& v : dx) v = round(v);
  return toy_activation(x.rows, x.cols, dx);
}

Activation ToyRunner::loss(const Activation& output, const Activation& labels) {
  loss_input_ = output;
  labels_ = labels;
  const auto& y = toy(output).values;
  const auto& t = toy(labels).values;
  double sum = 0.0;
  for (std::size_t k = 0; k < y.size(); ++k) sum += (y[k] - t[k]) * (y[k] - t[k]);
  return toy_activation(1, 1, {round(static_cast<float>(sum / static_cast<double>(y.size())))});
}

Activation ToyRunner::loss_backward(const Activation& /*loss*/, double scale) {
  const ToyActivation& y = toy(loss_input_);
  const auto& t = toy(labels_).values;
  std::vector<float> dy(y.values.size());
  for (std::size_t k = 0; k < dy.size(); ++k) {
    dy[k] = round(static_cast<float>(scale * 2.0 * (y.values[k] - t[k]) / static_cast<double>(dy.size())));
  }
  return toy_activation(y.rows, y.cols, dy);
}

DType ToyRunner::activation_dtype(const Activation& /*value*/) const { return DType::f32; }

void ToyRunner::write_activation(const Activation& value, BufferView dst) const {
  const auto& v = toy(value).values;
  if (dst.dtype() != DType::f32 || dst.numel != static_cast<std::int64_t>(v.size())) {
    throw std::logic_error("write_activation: buffer does not fit the activation");
  }
  if (dst.has_data()) std::copy(v.begin(), v.end(), dst.data_as<float>());
}

Activation ToyRunner::read_activation(BufferView src, const std::vector<std::int64_t>& shape) const {
  if (shape.size() != 2 || src.dtype() != DType::f32 || src.numel != shape[0] * shape[1]) {
    throw std::logic_error("read_activation: buffer does not fit the shape");
  }
  std::vector<float> v(static_cast<std::size_t>(src.numel), 0.0f);
  if (src.has_data()) std::copy(src.data_as<float>(), src.data_as<float>() + src.numel, v.begin());
  return toy_activation(shape[0], shape[1], std::move(v));
}

void ToyRunner::release_saved() {
  for (auto& queue : saved_) queue.clear();
}

comm::ComputeCost ToyRunner::forward_cost(std::size_t layer) const {
  return {.op_class = comm::OpClass::matmul, .flops = 1000.0 * static_cast<double>(layer + 1)};
}

comm::ComputeCost ToyRunner::backward_cost(std::size_t layer) const {
  return {.op_class = comm::OpClass::matmul, .flops = 2000.0 * static_cast<double>(layer + 1)};
}

void ToyRunner::inject_overflow(int rank, std::int64_t micro_step, std::size_t layer, std::size_t index) {
  overflows_.insert({rank, micro_step, layer, index});
}

std::pair<Activation, Activation> toy_batch(std::int64_t first_sample, std::int64_t count, std::int64_t in,
                                            std::int64_t out) {
  std::vector<float> x, t;
  for (std::int64_t s = first_sample; s < first_sample + count; ++s) {
    float sum = 0.0f;
    for (std::int64_t j = 0; j < in; ++j) {
      const float v = std::sin(0.37f * static_cast<float>(s) + static_cast<float>(j));
      x.push_back(v);
      sum += v;
    }
    for (std::int64_t o = 0; o < out; ++o) t.push_back(std::cos(sum + static_cast<float>(o)));
  }
  return {toy_activation(count, in, x), toy_activation(count, out, t)};
}

}  // namespace twinspeed::testing
