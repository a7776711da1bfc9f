#include "engine/runtime/process_groups.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "engine/core/errors.hpp"

namespace twinspeed {

ProcessGroups::ProcessGroups(comm::Backend& backend, const DeviceMesh& mesh) : mesh_(mesh) {
  if (mesh.world() != backend.world_size()) {
    throw ConfigError("world", std::to_string(backend.world_size()),
                      fmt::format("the {} backend has {} ranks but the mesh needs {} ({})", backend.name(),
                                  backend.world_size(), mesh.world(), describe_dp_derivation(mesh.shape())));
  }
  const int rank = backend.rank();
  // One group at a time: at thousands of ranks the list of all of them is the costly part.
  mesh.for_each_group([&](const MeshGroup& group) {
    comm::CommPtr comm;
    if (group.kind == GroupKind::world) {
      comm = backend.world();
    } else {
      comm = backend.new_group(group.ranks, group_kind_name(group.kind));
    }
    if (std::find(group.ranks.begin(), group.ranks.end(), rank) != group.ranks.end()) {
      mine_[static_cast<std::size_t>(group.kind)] = std::move(comm);
    }
  });
}

}  // namespace twinspeed
