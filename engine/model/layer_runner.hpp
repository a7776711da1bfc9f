#pragma once
// LayerRunner: how the engine runs a model, one layer at a time. A model is an ordered list of
// layers; the layer is the unit of ZeRO-3 gathering, activation checkpointing and pipeline
// partitioning, so the engine — not autograd — walks the layers, forward and backward.
//
// Contract:
//  - parameters(i) lists the parameters layer i owns, in a fixed order; shared_parameters(i) names
//    parameters owned by other layers that layer i also uses (a tied LM head uses the embedding's
//    weight). Every view span below has one view per OWNED parameter, in that order.
//  - attach(context) is called once, before anything else, with the device and groups of the rank.
//  - initial_parameters(i, values) writes the model's initial values of layer i's parameters into
//    the views (any floating dtype: values are converted). The engine calls it once per layer at
//    set-up, on every rank, and then makes the data-parallel ranks agree (broadcast from rank 0).
//  - bind_parameters(i, views) / bind_gradients(i, views) point layer i's parameters / gradients
//    at engine storage: aliases, no copy. The engine binds again whenever storage moves (ZeRO-3
//    gathers parameters per layer; ZeRO-2 gives gradients short-lived storage); an empty span
//    unbinds (the layer must not run until bound again). A layer runs only while the parameters
//    it owns AND shares are bound; backward accumulates (+=) into the bound gradient views of all
//    of them. The views' dtype is the compute dtype (fp32, bf16, fp16).
//  - forward(i, x) saves what backward(i) needs; backward(i, dy) returns dx (empty when x needs
//    none). Several micro-batches may be in flight (a pipeline stage runs forwards ahead of
//    backwards): each layer keeps a queue of saved states and backward(i) consumes the oldest;
//  - activation_dtype / write_activation / read_activation move activations between pipeline
//    stages: the element type of an activation's values, the values copied into a buffer of
//    product(shape) elements, and a new activation holding a copy of a buffer (a stage's input:
//    backward of its first layer returns its gradient). Runners that never run in a pipeline may
//    keep the defaults, which throw NotImplemented;
//  - loss(y, labels) returns a scalar activation (when the model has no loss function, y itself
//    must be that scalar); loss_backward(loss, scale) returns d(scale * loss)/dy.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/comm/types.hpp"
#include "engine/core/buffer.hpp"
#include "engine/core/dtype.hpp"
#include "engine/core/errors.hpp"
#include "engine/mesh/group_kind.hpp"
#include "engine/model/activation.hpp"

namespace twinspeed::comm {
class Comm;
class Device;
}  // namespace twinspeed::comm

namespace twinspeed {

// Every layer's costs on one micro-batch (LayerRunner::forward_cost, recompute_cost,
// backward_cost): one entry per layer in each vector, or none.
struct LayerCosts {
  std::vector<comm::ComputeCost> forward;
  std::vector<comm::ComputeCost> recompute;
  std::vector<comm::ComputeCost> backward;
};

struct ParamSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

// A parameter by owner: parameter `index` of layer `layer` (an index into parameters(layer)).
struct ParamRef {
  std::size_t layer = 0;
  std::size_t index = 0;
  friend bool operator==(const ParamRef&, const ParamRef&) = default;
};

// What a runner may use from the rank it runs on. Pointers stay valid for the engine's lifetime.
struct RunnerContext {
  comm::Device* device = nullptr;
  // The rank's group of a kind (tp and sp for intra-layer collectives); null if not available.
  std::function<comm::Comm*(GroupKind)> group;
  int rank = 0;  // global rank: a runner seeds its own random generator from it
};

class LayerRunner {
 public:
  virtual ~LayerRunner() = default;
  virtual std::size_t layer_count() const = 0;
  virtual std::string layer_name(std::size_t layer) const = 0;
  virtual std::vector<ParamSpec> parameters(std::size_t layer) const = 0;
  virtual std::vector<ParamRef> shared_parameters(std::size_t /*layer*/) const { return {}; }
  virtual void attach(const RunnerContext& /*context*/) {}
  virtual void initial_parameters(std::size_t layer, std::span<const BufferView> values) = 0;
  virtual void bind_parameters(std::size_t layer, std::span<const BufferView> params) = 0;
  virtual void bind_gradients(std::size_t layer, std::span<const BufferView> grads) = 0;
  virtual Activation forward(std::size_t layer, const Activation& input) = 0;
  virtual Activation backward(std::size_t layer, const Activation& grad_output) = 0;
  virtual Activation loss(const Activation& output, const Activation& labels) = 0;
  virtual Activation loss_backward(const Activation& loss, double scale) = 0;
  // The value of a scalar activation (a loss), as double.
  virtual double scalar(const Activation& value) const = 0;
  // Drops everything saved by forward (after backward, or to abandon a micro-batch).
  virtual void release_saved() = 0;
  virtual DType activation_dtype(const Activation& /*value*/) const { throw no_pipeline_transfers(); }
  virtual void write_activation(const Activation& /*value*/, BufferView /*dst*/) const { throw no_pipeline_transfers(); }
  virtual Activation read_activation(BufferView /*src*/, const std::vector<std::int64_t>& /*shape*/) const {
    throw no_pipeline_transfers();
  }
  // What layer's forward / backward costs on one micro-batch, for the simulator's clocks (real
  // backends only trace it). Zero for a layer without a spec. recompute_cost is the forward work
  // backward repeats first (activation checkpointing: the whole forward; selective recompute: the
  // attention core); the engine launches it as "<layer> recompute" just before "<layer> backward",
  // so traces and the planner see recomputation apart (on a real backend that launch is empty and
  // the recomputation is timed inside backward, where autograd runs it).
  virtual comm::ComputeCost forward_cost(std::size_t /*layer*/) const { return {}; }
  virtual comm::ComputeCost recompute_cost(std::size_t /*layer*/) const { return {}; }
  virtual comm::ComputeCost backward_cost(std::size_t /*layer*/) const { return {}; }

 private:
  static NotImplemented no_pipeline_transfers() {
    return NotImplemented("this layer runner cannot send activations between pipeline stages");
  }
};

}  // namespace twinspeed
