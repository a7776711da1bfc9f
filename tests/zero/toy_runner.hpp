#pragma once
// A small MLP as a LayerRunner without LibTorch, for fast property tests of the engine: dense
// layers with tanh between them (the last one linear), and optionally a final "gain" layer that
// multiplies by a one-element parameter owned by layer 0 (a shared parameter, as a tied LM head
// shares the embedding weight). Math in fp32; in 16-bit training the layer outputs and the
// parameter gradients are rounded to the parameters' dtype, as twinspeed's fp16 emulation does.

#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <utility>
#include <vector>

#include "engine/model/layer_runner.hpp"

namespace twinspeed::testing {

struct ToyModel {
  std::vector<std::int64_t> widths = {3, 5, 1};  // input, hidden..., output
  bool shared_gain = false;
  std::uint64_t seed = 1;
  // Called at the start of every layer's forward with (rank, layer): lets a test observe memory.
  std::function<void(int rank, std::size_t layer)> on_forward;
};

class ToyActivation final : public ActivationData {
 public:
  ToyActivation(std::int64_t rows, std::int64_t cols, std::vector<float> values)
      : rows(rows), cols(cols), values(std::move(values)) {}
  std::vector<std::int64_t> shape() const override { return {rows, cols}; }
  std::int64_t rows, cols;
  std::vector<float> values;
};

Activation toy_activation(std::int64_t rows, std::int64_t cols, std::vector<float> values);
const ToyActivation& toy(const Activation& a);

class ToyRunner final : public LayerRunner {
 public:
  explicit ToyRunner(ToyModel model);

  std::size_t layer_count() const override;
  std::string layer_name(std::size_t layer) const override;
  std::vector<ParamSpec> parameters(std::size_t layer) const override;
  std::vector<ParamRef> shared_parameters(std::size_t layer) const override;
  void attach(const RunnerContext& context) override { rank_ = context.rank; }
  void initial_parameters(std::size_t layer, std::span<const BufferView> values) override;
  void bind_parameters(std::size_t layer, std::span<const BufferView> params) override;
  void bind_gradients(std::size_t layer, std::span<const BufferView> grads) override;
  Activation forward(std::size_t layer, const Activation& input) override;
  Activation backward(std::size_t layer, const Activation& grad_output) override;
  Activation loss(const Activation& output, const Activation& labels) override;
  Activation loss_backward(const Activation& loss, double scale) override;
  double scalar(const Activation& value) const override { return toy(value).values.at(0); }
  void release_saved() override;
  DType activation_dtype(const Activation& value) const override;
  void write_activation(const Activation& value, BufferView dst) const override;
  Activation read_activation(BufferView src, const std::vector<std::int64_t>& shape) const override;
  comm::ComputeCost forward_cost(std::size_t layer) const override;
  comm::ComputeCost backward_cost(std::size_t layer) const override;

  // Writes +inf into the first gradient element of parameter `index` of `layer` when this rank
  // runs the backward of micro-step `micro_step` (counted from 0 over the runner's life).
  void inject_overflow(int rank, std::int64_t micro_step, std::size_t layer, std::size_t index);
  // Calls of bind_parameters with views / with an empty span.
  int binds() const { return binds_; }
  int unbinds() const { return unbinds_; }

 private:
  std::size_t dense_layers() const { return model_.widths.size() - 1; }
  std::vector<float> read(const BufferView& view) const;
  void add_grad(std::size_t layer, std::size_t index, const std::vector<float>& values);
  float round(float v) const;

  ToyModel model_;
  int rank_ = 0;
  DType dtype_ = DType::f32;  // of the parameters, from the first binding
  std::vector<std::vector<BufferView>> params_, grads_;
  // Per layer, the (input, output) of each micro-batch in flight, oldest first.
  std::vector<std::deque<std::pair<Activation, Activation>>> saved_;
  Activation loss_input_, labels_;
  std::int64_t micro_step_ = 0;
  std::set<std::tuple<int, std::int64_t, std::size_t, std::size_t>> overflows_;
  int binds_ = 0, unbinds_ = 0;
};

// Deterministic samples: sample `index` has inputs sin(0.37 * index + j) and target
// cos(sum of inputs) (one output column).
std::pair<Activation, Activation> toy_batch(std::int64_t first_sample, std::int64_t count, std::int64_t in,
                                            std::int64_t out);

}  // namespace twinspeed::testing
