#include "engine/pipeline/stage_runner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace twinspeed::pipeline {

std::vector<int> stage_of_layers(std::span<const std::int64_t> parts) {
  if (parts.size() < 2 || parts.front() != 0 || !std::is_sorted(parts.begin(), parts.end())) {
    throw ConfigError("pipeline.stages", fmt::format("{} parts", parts.size()),
                      "a partition is S + 1 ascending layer indices starting at 0");
  }
  std::vector<int> stage(static_cast<std::size_t>(parts.back()), 0);
  for (std::size_t s = 0; s + 1 < parts.size(); ++s) {
    for (std::int64_t l = parts[s]; l < parts[s + 1]; ++l) stage[static_cast<std::size_t>(l)] = static_cast<int>(s);
  }
  return stage;
}

std::vector<ModelTie> find_ties(const LayerRunner& model, std::span<const std::int64_t> parts) {
  const std::vector<int> stage = stage_of_layers(parts);
  if (stage.size() != model.layer_count()) {
    throw ConfigError("pipeline.stages", std::to_string(stage.size()),
                      fmt::format("the partition covers {} layers but the model has {}", stage.size(), model.layer_count()));
  }
  std::vector<ModelTie> ties;
  for (std::size_t owner = 0; owner < model.layer_count(); ++owner) {
    std::set<std::size_t> indices;
    std::set<int> stages{stage[owner]};
    for (std::size_t user = 0; user < model.layer_count(); ++user) {
      for (const ParamRef& ref : model.shared_parameters(user)) {
        if (ref.layer != owner || stage[user] == stage[owner]) continue;
        indices.insert(ref.index);
        stages.insert(stage[user]);
      }
    }
    if (stages.size() > 1) ties.push_back({owner, {indices.begin(), indices.end()}, {stages.begin(), stages.end()}});
  }
  return ties;
}

StageRunner::StageRunner(std::shared_ptr<LayerRunner> model, std::span<const std::int64_t> parts, int stage)
    : model_(std::move(model)) {
  if (!model_) throw Error("StageRunner: no model");
  if (stage < 0 || static_cast<std::size_t>(stage) + 1 >= parts.size()) {
    throw ConfigError("pipeline.stages", std::to_string(stage), fmt::format("no stage {} in a {}-stage partition", stage, parts.size() - 1));
  }
  for (const ModelTie& tie : find_ties(*model_, parts)) {
    const bool here = std::find(tie.stages.begin(), tie.stages.end(), stage) != tie.stages.end();
    const bool owned_here =
        static_cast<std::int64_t>(tie.owner) >= parts[static_cast<std::size_t>(stage)] &&
        static_cast<std::int64_t>(tie.owner) < parts[static_cast<std::size_t>(stage) + 1];
    if (here && !owned_here) tied_copies_.push_back(tie.owner);
  }
  first_ = static_cast<std::size_t>(parts[static_cast<std::size_t>(stage)]);
  last_ = static_cast<std::size_t>(parts[static_cast<std::size_t>(stage) + 1]);
  std::size_t next = 0;
  for (std::size_t layer = 0; layer < layer_count(); ++layer) {
    first_param_.push_back(next);
    next += model_->parameters(model_layer(layer)).size();
  }
}

std::size_t StageRunner::model_layer(std::size_t layer) const {
  if (layer < tied_copies_.size()) return tied_copies_[layer];
  if (layer >= layer_count()) throw Error(fmt::format("stage layer {} of {}", layer, layer_count()));
  return first_ + layer - tied_copies_.size();
}

std::size_t StageRunner::stage_layer(std::size_t model_layer) const {
  if (model_layer >= first_ && model_layer < last_) return tied_copies_.size() + model_layer - first_;
  auto it = std::find(tied_copies_.begin(), tied_copies_.end(), model_layer);
  if (it == tied_copies_.end()) {
    throw Error(fmt::format("model layer {} ({}) is not on this stage", model_layer, model_->layer_name(model_layer)));
  }
  return static_cast<std::size_t>(it - tied_copies_.begin());
}

std::size_t StageRunner::parameter_id(std::size_t layer, std::size_t index) const {
  return first_param_.at(layer) + index;
}

std::string StageRunner::layer_name(std::size_t layer) const {
  const std::string name = model_->layer_name(model_layer(layer));
  return is_tied_copy(layer) ? "tied copy of " + name : name;
}

std::vector<ParamSpec> StageRunner::parameters(std::size_t layer) const { return model_->parameters(model_layer(layer)); }

std::vector<ParamRef> StageRunner::shared_parameters(std::size_t layer) const {
  if (is_tied_copy(layer)) return {};  // a copy never runs
  std::vector<ParamRef> refs = model_->shared_parameters(model_layer(layer));
  for (ParamRef& ref : refs) ref.layer = stage_layer(ref.layer);
  return refs;
}

void StageRunner::initial_parameters(std::size_t layer, std::span<const BufferView> values) {
  model_->initial_parameters(model_layer(layer), values);
}

void StageRunner::bind_parameters(std::size_t layer, std::span<const BufferView> params) {
  model_->bind_parameters(model_layer(layer), params);
}

void StageRunner::bind_gradients(std::size_t layer, std::span<const BufferView> grads) {
  model_->bind_gradients(model_layer(layer), grads);
}

Activation StageRunner::forward(std::size_t layer, const Activation& input) {
  return is_tied_copy(layer) ? input : model_->forward(model_layer(layer), input);
}

Activation StageRunner::backward(std::size_t layer, const Activation& grad_output) {
  return is_tied_copy(layer) ? grad_output : model_->backward(model_layer(layer), grad_output);
}

comm::ComputeCost StageRunner::forward_cost(std::size_t layer) const {
  return is_tied_copy(layer) ? comm::ComputeCost{} : model_->forward_cost(model_layer(layer));
}

comm::ComputeCost StageRunner::recompute_cost(std::size_t layer) const {
  return is_tied_copy(layer) ? comm::ComputeCost{} : model_->recompute_cost(model_layer(layer));
}

comm::ComputeCost StageRunner::backward_cost(std::size_t layer) const {
  return is_tied_copy(layer) ? comm::ComputeCost{} : model_->backward_cost(model_layer(layer));
}

}  // namespace twinspeed::pipeline
