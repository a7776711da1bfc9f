#include "engine/zero/flat_plan.hpp"

#include <algorithm>

namespace twinspeed {

ElementRange FlatGroupRegion::partition(int rank) const {
  ElementRange r = flat_partition_for_rank(layout, rank);
  return {base + r.offset, r.numel};
}

FlatPlan plan_flat(const ModelLayout& model, int world, bool partitioned) {
  FlatPlan plan{.world = world, .partitioned = partitioned};
  plan.offset.assign(model.params.size(), 0);
  std::int64_t next = 0;
  for (const auto& group : model.groups) {
    std::vector<std::int64_t> numels;
    FlatGroupRegion region{.base = next};
    for (std::size_t id : group) {
      plan.offset[id] = next + region.layout.numel;
      region.layout.numel += model.params[id].numel;
      numels.push_back(model.params[id].numel);
    }
    if (partitioned) {
      region.layout = flat_partition_layout(numels, world);
    } else {
      region.layout = {.world = 1, .numel = region.layout.numel, .padded_numel = region.layout.numel,
                       .padding = 0, .partition_numel = region.layout.numel};
    }
    next += region.layout.padded_numel;
    plan.groups.push_back(region);
  }
  plan.ungrouped.offset = next;
  for (std::size_t id : model.ungrouped) {
    plan.offset[id] = next;
    next += model.params[id].numel;
  }
  plan.ungrouped.numel = next - plan.ungrouped.offset;
  plan.total = next;
  return plan;
}

std::vector<OwnedPiece> FlatPlan::owners(const ModelLayout& model, std::size_t param) const {
  const ModelParam& p = model.params[param];
  if (p.group < 0 || p.numel == 0) return {};
  const FlatGroupRegion& region = groups[static_cast<std::size_t>(p.group)];
  const std::int64_t start = offset[param] - region.base;
  if (!partitioned) return {{.rank = 0, .param_offset = 0, .numel = p.numel}};
  std::vector<OwnedPiece> pieces;
  const std::int64_t size = region.layout.partition_numel;
  for (std::int64_t e = start; e < start + p.numel;) {
    const int rank = flat_owner(region.layout, e);
    const std::int64_t end = std::min(start + p.numel, (rank + 1) * size);
    pieces.push_back({.rank = rank, .param_offset = e - start, .numel = end - e});
    e = end;
  }
  return pieces;
}

ShardPlan plan_shards(const ModelLayout& model, int world) {
  ShardPlan plan{.world = world};
  plan.offset.assign(model.params.size(), 0);
  plan.shard_numel.assign(model.params.size(), 0);
  std::int64_t next = 0;
  auto place = [&](std::size_t id) {
    plan.shard_numel[id] = param_partition(model.params[id].numel, world, 0).numel_padded;
    plan.offset[id] = next;
    next += plan.shard_numel[id];
  };
  for (const auto& group : model.groups) {
    const std::int64_t start = next;
    for (std::size_t id : group) place(id);
    plan.groups.push_back({start, next - start});
  }
  plan.ungrouped.offset = next;
  for (std::size_t id : model.ungrouped) place(id);
  plan.ungrouped.numel = next - plan.ungrouped.offset;
  plan.total = next;
  return plan;
}

}  // namespace twinspeed
