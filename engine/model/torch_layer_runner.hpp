#pragma once
// TorchLayerRunner: runs a list of torch modules layer by layer for the engine. Parameters and
// gradients are bound as from_blob views of engine Buffers, so autograd writes gradients straight
// into the engine's flat gradient buffer and optimizers update engine memory in place.
// Each layer's input is cut from the previous layer's graph (detached), which is what lets the
// engine, not autograd, drive the backward pass layer by layer.
//
// Tied weights: a layer's module may hold the very tensor (same TensorImpl) that an earlier layer
// owns, as Hugging Face ties lm_head.weight to the token embedding. The first layer holding it
// owns it; later ones list it in shared_parameters(), never in parameters(), and their backward
// accumulates into the owner's bound gradient.
//
// Precision follows the dtype of the bound parameter views (all layers must agree):
//  - f32, bf16: the layer computes in that dtype; autograd keeps the graph and accumulates the
//    parameter gradients in place into the bound views.
//  - f16: storage and communication in fp16; LibTorch 1.13 CPU has no half matmul, softmax,
//    layer_norm or gelu, so compute is emulated in fp32. Forward runs without a graph on fp32
//    copies of the parameters and keeps only the fp16 layer input; backward recomputes the fp32
//    forward with the same dropout state, rounds the fp32 parameter gradients to fp16 and adds
//    them to the bound f16 views. Layer outputs, input gradients and the loss are rounded to fp16.
// Floating model inputs (layer 0's) are cast to the storage dtype; integer inputs (token ids)
// pass through.
//
// Moved storage: a kept graph refers to the parameter storage bound at forward. A layer whose
// parameters were bound elsewhere before its backward (ZeRO-3 frees the gathered copy and gathers
// again into new memory) is recomputed on the new storage instead (TorchRunnerOptions::recompute
// does that for chosen layers). An unbound layer (empty span) refuses to run.
//
// Random numbers: every runner owns a generator stream seeded with seed + rank (attach() gives the
// rank; 0 before). Dropout in LibTorch draws from the default CPU generator, so the runner swaps
// its stream's state into the default generator around each layer's forward and back out after
// (and replays a layer's starting state whenever it recomputes the layer). This is safe because at most
// one simulated rank runs at a time (sim::Scheduler passes one baton; see sim/scheduler.hpp) and
// a layer's forward does not yield the baton: it issues no collectives. A layer that issues
// collectives inside forward (tensor parallelism) would need the swap around each random op.

#include <twinspeed/torch.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <vector>

#include "engine/comm/types.hpp"
#include "engine/model/layer_runner.hpp"

namespace twinspeed {

class TorchActivation final : public ActivationData {
 public:
  explicit TorchActivation(torch::Tensor tensor) : tensor(std::move(tensor)) {}
  std::vector<std::int64_t> shape() const override { return tensor.sizes().vec(); }
  torch::Tensor tensor;
};

Activation wrap_tensor(torch::Tensor tensor);
// "[8, 16]": a shape for error messages.
std::string shape_string(c10::IntArrayRef shape);
// The tensor inside an activation made by wrap_tensor (undefined for an empty activation).
torch::Tensor unwrap_tensor(const Activation& activation);

struct TorchRunnerOptions {
  // The dropout stream of rank r is seeded with seed + r.
  std::uint64_t seed = 1234;
  // Per-layer costs for the simulator's clocks (e.g. from LayerSpec FLOPs). Each vector empty
  // (zero costs) or one per layer.
  LayerCosts costs;
  // Layers that keep only their input and recompute their forward in backward (full activation
  // checkpointing; every layer does under fp16 emulation). Empty: none; else one flag per layer.
  std::vector<bool> recompute;
  // Per layer, the activation bytes to charge to the device (tag activations) while the layer's
  // saved state is alive: [0] when it keeps its graph, [1] when it recomputes. A numeric run then
  // reports the same activation memory as a shape-only run of the same specs (LibTorch's real
  // bytes are checked against them in tests/model). Empty: nothing is charged.
  std::vector<std::array<std::int64_t, 2>> saved_bytes;
};

class TorchLayerRunner final : public LayerRunner {
 public:
  // Throws Error if a layer has no module, or the costs or recompute flags are not one per layer.
  TorchLayerRunner(std::vector<Layer> layers, LossFn loss_fn, TorchRunnerOptions options = {});

  std::size_t layer_count() const override { return layers_.size(); }
  std::string layer_name(std::size_t layer) const override { return layers_[layer].name; }
  std::vector<ParamSpec> parameters(std::size_t layer) const override;
  std::vector<ParamRef> shared_parameters(std::size_t layer) const override { return params_[layer].shared; }
  void attach(const RunnerContext& context) override;
  void initial_parameters(std::size_t layer, std::span<const BufferView> values) override;
  void bind_parameters(std::size_t layer, std::span<const BufferView> params) override;
  void bind_gradients(std::size_t layer, std::span<const BufferView> grads) override;
  Activation forward(std::size_t layer, const Activation& input) override;
  Activation backward(std::size_t layer, const Activation& grad_output) override;
  Activation loss(const Activation& output, const Activation& labels) override;
  Activation loss_backward(const Activation& loss, double scale) override;
  double scalar(const Activation& value) const override;
  void release_saved() override;
  DType activation_dtype(const Activation& value) const override;
  void write_activation(const Activation& value, BufferView dst) const override;
  Activation read_activation(BufferView src, const std::vector<std::int64_t>& shape) const override;
  comm::ComputeCost forward_cost(std::size_t layer) const override;
  comm::ComputeCost recompute_cost(std::size_t layer) const override;
  comm::ComputeCost backward_cost(std::size_t layer) const override;

  // Restarts the dropout stream at seed + rank.
  void set_seed(std::uint64_t seed);
  // Throws Error unless each vector is empty or has one cost per layer.
  void set_costs(LayerCosts costs);
  // The parameter storage dtype: the bound views' (fp32 before any bind).
  torch::ScalarType storage_dtype() const { return storage_dtype_; }

  // The model's owned parameters in engine order (after bind: views of engine memory).
  std::vector<torch::Tensor> all_parameters() const;

 private:
  struct LayerParams {
    std::vector<std::string> names;      // owned, in module order
    std::vector<torch::Tensor> owned;
    std::vector<std::vector<std::int64_t>> shapes;  // of the owned ones (unbound tensors are empty)
    std::vector<ParamRef> shared;
    std::vector<torch::Tensor> used;     // owned then shared: what the layer's compute reads
  };
  struct Saved {
    torch::Tensor input;      // the layer's detached input (fp16: the only thing kept)
    torch::Tensor output;     // the layer's output, with its graph (when not recomputing)
    torch::Tensor rng_state;  // the dropout state the forward started from (for recomputation)
    std::vector<const void*> storage;  // graph kept: where the used parameters lived at forward
    Buffer charged;                    // the activation bytes charged to the device for this state
  };
  bool emulated() const { return storage_dtype_ == torch::kFloat16; }
  bool recomputes(std::size_t layer) const {
    return emulated() || (!options_.recompute.empty() && options_.recompute[layer]);
  }
  torch::ScalarType compute_dtype() const { return emulated() ? torch::kFloat32 : storage_dtype_; }
  void check_bound(std::size_t layer) const;
  // The saved-activation bytes of `layer` charged to the device (kept: 0 graph, 1 recompute).
  Buffer charge_activations(std::size_t layer, int kept);
  std::vector<const void*> storage_addresses(std::size_t layer) const;
  torch::Tensor run_layer(std::size_t layer, const torch::Tensor& x, const torch::Tensor& rng_start, bool advance);
  Activation backward_recompute(std::size_t layer, Saved& saved, const torch::Tensor& dy);
  void check_bound_dtype(std::size_t layer, std::span<const BufferView> views);

  std::vector<Layer> layers_;
  LossFn loss_fn_;
  TorchRunnerOptions options_;
  std::vector<LayerParams> params_;
  std::vector<std::deque<Saved>> saved_;  // per layer, the micro-batches in flight, oldest first
  torch::ScalarType storage_dtype_ = torch::kFloat32;
  bool dtype_bound_ = false;
  int rank_ = 0;
  comm::Device* device_ = nullptr;  // from attach(): where activation bytes are charged
  torch::Tensor rng_state_;    // this runner's dropout stream between layers
  torch::Tensor loss_input_;   // the detached model output the loss was computed from
  torch::Tensor loss_graph_;   // the loss with its graph (fp32 under fp16 emulation)
  torch::Tensor loss_value_;   // the loss handed out (rounded to fp16 under emulation)
};

}  // namespace twinspeed
