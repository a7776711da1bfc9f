#include "engine/zero/model_layout.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "engine/core/errors.hpp"

namespace twinspeed {

std::int64_t ModelLayout::layer_numel(std::size_t layer) const {
  std::int64_t n = 0;
  for (std::size_t p : owned[layer]) n += params[p].numel;
  return n;
}

ModelLayout build_model_layout(const LayerRunner& runner, std::span<const ParamGroupSpec> groups) {
  ModelLayout out;
  const std::size_t layers = runner.layer_count();
  out.owned.resize(layers);
  out.owners_used.resize(layers);
  out.grads_ready.resize(layers);
  for (std::size_t layer = 0; layer < layers; ++layer) {
    auto specs = runner.parameters(layer);
    for (std::size_t k = 0; k < specs.size(); ++k) {
      out.owned[layer].push_back(out.params.size());
      out.params.push_back({.layer = layer, .index = k, .numel = specs[k].numel(), .group = -1,
                            .lowest_user = layer, .highest_user = layer});
    }
  }
  for (std::size_t layer = 0; layer < layers; ++layer) {
    out.owners_used[layer].push_back(layer);
    for (const ParamRef& ref : runner.shared_parameters(layer)) {
      if (ref.layer >= layers || ref.index >= out.owned[ref.layer].size()) {
        throw Error(fmt::format("layer {} ({}) shares parameter {} of layer {}, which does not exist", layer,
                                runner.layer_name(layer), ref.index, ref.layer));
      }
      ModelParam& p = out.params[out.owned[ref.layer][ref.index]];
      p.lowest_user = std::min(p.lowest_user, layer);
      p.highest_user = std::max(p.highest_user, layer);
      auto& used = out.owners_used[layer];
      if (std::find(used.begin(), used.end(), ref.layer) == used.end()) used.push_back(ref.layer);
    }
    std::sort(out.owners_used[layer].begin() + 1, out.owners_used[layer].end());
  }
  for (std::size_t id = out.params.size(); id-- > 0;) out.grads_ready[out.params[id].lowest_user].push_back(id);

  if (groups.empty()) {
    out.groups.emplace_back();
    for (std::size_t id = 0; id < out.params.size(); ++id) out.groups[0].push_back(id);
  } else {
    for (const auto& g : groups) out.groups.push_back(g.parameters);
  }
  for (std::size_t g = 0; g < out.groups.size(); ++g) {
    for (std::size_t id : out.groups[g]) {
      if (id >= out.params.size()) {
        throw Error(fmt::format("param group {} names parameter {} of {}", g, id, out.params.size()));
      }
      if (out.params[id].group >= 0) {
        throw Error(fmt::format("parameter {} appears in param groups {} and {}; each parameter may appear once",
                                id, out.params[id].group, g));
      }
      out.params[id].group = static_cast<int>(g);
    }
  }
  for (std::size_t id = 0; id < out.params.size(); ++id) {
    if (out.params[id].group < 0) out.ungrouped.push_back(id);
  }
  return out;
}

}  // namespace twinspeed
