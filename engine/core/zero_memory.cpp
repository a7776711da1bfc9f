#include "engine/core/zero_memory.hpp"

#include <string>

#include "engine/core/errors.hpp"
#include "engine/core/partition.hpp"

namespace twinspeed {

std::int64_t ZeroRankBytes::bytes(MemoryTag tag) const {
  switch (tag) {
    case MemoryTag::params: return params;
    case MemoryTag::grads: return grads;
    case MemoryTag::master_params: return master_params;
    case MemoryTag::optimizer_states: return optimizer_states;
    default: return 0;
  }
}

ZeroRankBytes zero_memory_per_rank(std::span<const std::vector<std::int64_t>> param_groups,
                                   const ZeroMemorySpec& spec, int rank) {
  if (spec.stage < 0 || spec.stage > 3) {
    throw Error("zero_memory: stage must be 0..3, got " + std::to_string(spec.stage));
  }
  if (spec.optimizer_state_bytes_per_element < 0) {
    throw Error("zero_memory: negative optimizer bytes per element");
  }
  // Element counts on this rank: whole model unpadded, whole flat buffers padded, the rank's
  // flat partitions, and the rank's stage-3 shards.
  std::int64_t model = 0;
  std::int64_t flat_padded = 0;
  std::int64_t flat_partition = 0;
  std::int64_t shards = 0;
  for (const auto& group : param_groups) {
    const FlatLayout layout = flat_partition_layout(group, spec.world);
    model += layout.numel;
    flat_padded += layout.padded_numel;
    flat_partition += flat_partition_for_rank(layout, rank).numel;
    for (std::int64_t n : group) shards += param_partition(n, spec.world, rank).numel_padded;
  }
  if (param_groups.empty()) flat_partition_for_rank(FlatLayout{.world = spec.world}, rank);  // validates

  std::int64_t param_elems = 0, grad_elems = 0, master_elems = 0;
  switch (spec.stage) {
    case 0:
      param_elems = model;
      grad_elems = model;
      master_elems = spec.param_dtype == spec.master_dtype ? 0 : model;
      break;
    case 1:
      param_elems = flat_padded;
      grad_elems = flat_padded;
      master_elems = flat_partition;
      break;
    case 2:
      param_elems = flat_padded;
      grad_elems = flat_partition;
      master_elems = flat_partition;
      break;
    default:
      param_elems = shards;
      grad_elems = shards;
      master_elems = shards;
      break;
  }
  const std::int64_t state_elems = spec.stage == 0 ? model : master_elems;
  ZeroRankBytes out;
  out.params = param_elems * static_cast<std::int64_t>(dtype_size(spec.param_dtype));
  out.grads = grad_elems * static_cast<std::int64_t>(dtype_size(spec.grad_dtype));
  out.master_params = master_elems * static_cast<std::int64_t>(dtype_size(spec.master_dtype));
  out.optimizer_states = state_elems * spec.optimizer_state_bytes_per_element;
  return out;
}

}  // namespace twinspeed
