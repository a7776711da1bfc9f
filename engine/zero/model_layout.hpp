#pragma once
// ModelLayout: the engine's bookkeeping of a model's parameters, computed once from a LayerRunner
// and the user's param groups. Pure data; every ZeRO stage reads it.
//
// Parameters are numbered in runner order (layer by layer, each layer's own parameters in order).
// A parameter's gradient is complete after the backward of the LOWEST layer that uses it (a tied
// embedding weight is complete only after the embedding's backward, although the LM head
// contributed first), and needs storage from the backward of the HIGHEST layer that uses it.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/model/layer_runner.hpp"

namespace twinspeed {

// DeepSpeed's model_parameters as param groups: the indices of a group's parameters in the
// runner's order and what it overrides.
struct ParamGroupSpec {
  std::vector<std::size_t> parameters;
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

struct ModelParam {
  std::size_t layer = 0;  // owner layer
  std::size_t index = 0;  // index within the owner's parameters()
  std::int64_t numel = 0;
  int group = -1;         // optimizer param group; -1: in none (gets gradients, never updated)
  std::size_t lowest_user = 0;   // its gradient is complete after this layer's backward
  std::size_t highest_user = 0;  // its gradient storage is first written by this layer's backward
};

struct ModelLayout {
  std::vector<ModelParam> params;                 // runner order
  std::vector<std::vector<std::size_t>> groups;   // per param group: parameter ids in flat order
  std::vector<std::size_t> ungrouped;             // parameters of no group, runner order
  std::vector<std::vector<std::size_t>> owned;    // per layer: its own parameter ids, in order
  // Per layer: the layers whose parameters it reads (itself first, then owners of shared
  // parameters, ascending, without repeats).
  std::vector<std::vector<std::size_t>> owners_used;
  // Per layer: the parameters whose gradients its backward completes, in the order DeepSpeed's
  // gradient hooks fire within a module (last parameter first).
  std::vector<std::vector<std::size_t>> grads_ready;

  std::size_t layer_count() const { return owned.size(); }
  std::int64_t layer_numel(std::size_t layer) const;
};

// Throws Error when a group names a parameter out of range or a parameter twice, or a shared
// parameter reference is out of range. Empty `groups`: one group holding every parameter.
ModelLayout build_model_layout(const LayerRunner& runner, std::span<const ParamGroupSpec> groups);

}  // namespace twinspeed
