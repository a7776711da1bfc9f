#include "engine/mesh/device_mesh.hpp"

#include "engine/core/trace_document.hpp"

#include <array>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/core/errors.hpp"

namespace twinspeed {

namespace {

// The mesh axes, outermost first. Every group computation below is one generic walk over
// these four axes: a group kind only says which axes its members vary along.
constexpr int kAxes = 4;
using Axes = std::array<int, kAxes>;

Axes dims_of(const MeshShape& s) { return {s.pp, s.dp, s.sp, s.tp}; }
Axes axes_of(const MeshCoord& c) { return {c.pp, c.dp, c.sp, c.tp}; }
MeshCoord coord_from(const Axes& a) { return {a[0], a[1], a[2], a[3]}; }

// Which axes the members of a group of this kind vary along (indexed like Axes).
std::array<bool, kAxes> varying_axes(GroupKind kind) {
  switch (kind) {
    case GroupKind::world: return {true, true, true, true};
    case GroupKind::pp: return {true, false, false, false};
    case GroupKind::dp: return {false, true, false, false};
    case GroupKind::sp: return {false, false, true, false};
    case GroupKind::tp: return {false, false, false, true};
    case GroupKind::zero: return {false, true, true, false};
    case GroupKind::model: return {true, false, false, true};
  }
  return {false, false, false, false};
}

int linear_rank(const Axes& dims, const Axes& coord) {
  int rank = 0;
  for (int a = 0; a < kAxes; ++a) rank = rank * dims[a] + coord[a];
  return rank;
}

// The ranks whose coordinates equal `base` on the fixed axes, enumerated over the varying axes
// with the outermost slowest, into `ranks` (replacing its contents, keeping its capacity). Because
// rank grows with the coordinates in that same order, the result is sorted.
void members_into(const Axes& dims, const std::array<bool, kAxes>& varying, Axes base, std::vector<int>& ranks) {
  for (int a = 0; a < kAxes; ++a) {
    if (varying[a]) base[a] = 0;
  }
  ranks.clear();
  while (true) {
    ranks.push_back(linear_rank(dims, base));
    int a = kAxes - 1;  // odometer over the varying axes, innermost fastest
    for (; a >= 0; --a) {
      if (!varying[a]) continue;
      if (++base[a] < dims[a]) break;
      base[a] = 0;
    }
    if (a < 0) return;
  }
}

std::vector<int> members(const Axes& dims, const std::array<bool, kAxes>& varying, const Axes& base) {
  std::vector<int> ranks;
  members_into(dims, varying, base, ranks);
  return ranks;
}

// The fixed axes' coordinates of the group of `index` in groups(kind) order (inverse of
// DeviceMesh::group_index); the varying axes are 0.
Axes group_base(const Axes& dims, const std::array<bool, kAxes>& varying, int index) {
  Axes base{};
  for (int a = kAxes - 1; a >= 0; --a) {
    if (varying[a]) continue;
    base[a] = index % dims[a];
    index /= dims[a];
  }
  return base;
}

void require_degree(int value, const char* path) {
  if (value < 1) throw ConfigError(path, std::to_string(value), "a parallel degree must be >= 1");
}

}  // namespace

DeviceMesh::DeviceMesh(const MeshShape& shape) : shape_(shape) {
  require_degree(shape.pp, "pp");
  require_degree(shape.dp, "dp");
  require_degree(shape.sp, "sp");
  require_degree(shape.tp, "tp");
}

DeviceMesh DeviceMesh::from_request(const MeshRequest& request) { return DeviceMesh(resolve_mesh_shape(request)); }

DeviceMesh DeviceMesh::from_mesh_param(int world, int dp, int sp) {
  std::string value = fmt::format("({}, {})", dp, sp);
  if (dp < 1 || sp < 1) throw ConfigError("mesh_param", value, "both degrees (dp, sp) must be >= 1");
  if (static_cast<long long>(dp) * sp != world) {
    throw ConfigError("mesh_param", value,
                      fmt::format("dp x sp = {} must equal the world size {}", static_cast<long long>(dp) * sp, world));
  }
  return DeviceMesh(MeshShape{.pp = 1, .dp = dp, .sp = sp, .tp = 1});
}

DeviceMesh DeviceMesh::from_config_sizes(int world, std::optional<int> data_parallel_size,
                                         std::optional<int> sequence_parallel_size, int tp, int pp) {
  if (data_parallel_size) require_degree(*data_parallel_size, "data_parallel_size");
  if (sequence_parallel_size) require_degree(*sequence_parallel_size, "sequence_parallel_size");
  return from_request(MeshRequest{.world = world, .tp = tp, .pp = pp, .sp = sequence_parallel_size,
                                  .dp = data_parallel_size});
}

int DeviceMesh::rank_of(const MeshCoord& coord) const {
  Axes dims = dims_of(shape_);
  Axes c = axes_of(coord);
  for (int a = 0; a < kAxes; ++a) {
    if (c[a] < 0 || c[a] >= dims[a]) {
      throw std::out_of_range(fmt::format("mesh coordinate (pp {}, dp {}, sp {}, tp {}) is outside the mesh "
                                          "pp {} x dp {} x sp {} x tp {}",
                                          coord.pp, coord.dp, coord.sp, coord.tp, shape_.pp, shape_.dp,
                                          shape_.sp, shape_.tp));
    }
  }
  return linear_rank(dims, c);
}

MeshCoord DeviceMesh::coord_of(int rank) const {
  if (rank < 0 || rank >= world()) {
    throw std::out_of_range(fmt::format("rank {} is outside the mesh of {} ranks", rank, world()));
  }
  Axes dims = dims_of(shape_);
  Axes c{};
  for (int a = kAxes - 1; a >= 0; --a) {
    c[a] = rank % dims[a];
    rank /= dims[a];
  }
  return coord_from(c);
}

int DeviceMesh::group_count(GroupKind kind) const {
  return world() / group_size(kind);
}

int DeviceMesh::group_size(GroupKind kind) const {
  Axes dims = dims_of(shape_);
  auto varying = varying_axes(kind);
  int size = 1;
  for (int a = 0; a < kAxes; ++a) {
    if (varying[a]) size *= dims[a];
  }
  return size;
}

int DeviceMesh::group_index(GroupKind kind, int rank) const {
  Axes dims = dims_of(shape_);
  Axes c = axes_of(coord_of(rank));
  auto varying = varying_axes(kind);
  int index = 0;
  for (int a = 0; a < kAxes; ++a) {
    if (!varying[a]) index = index * dims[a] + c[a];
  }
  return index;
}

int DeviceMesh::group_id(GroupKind kind, int rank) const {
  int offset = 0;
  for (GroupKind k : kGroupKindsInCreationOrder) {
    if (k == kind) break;
    offset += group_count(k);
  }
  return offset + group_index(kind, rank);
}

std::vector<int> DeviceMesh::group_ranks(GroupKind kind, int rank) const {
  return members(dims_of(shape_), varying_axes(kind), axes_of(coord_of(rank)));
}

std::vector<std::vector<int>> DeviceMesh::groups(GroupKind kind) const {
  Axes dims = dims_of(shape_);
  auto varying = varying_axes(kind);
  std::vector<std::vector<int>> result;
  int count = group_count(kind);
  result.reserve(static_cast<std::size_t>(count));
  for (int index = 0; index < count; ++index) result.push_back(members(dims, varying, group_base(dims, varying, index)));
  return result;
}

void DeviceMesh::for_each_group(const std::function<void(const MeshGroup& group)>& visit) const {
  const Axes dims = dims_of(shape_);
  MeshGroup group;
  for (GroupKind kind : kGroupKindsInCreationOrder) {
    const auto varying = varying_axes(kind);
    group.kind = kind;
    const int count = group_count(kind);
    for (group.index = 0; group.index < count; ++group.index) {
      members_into(dims, varying, group_base(dims, varying, group.index), group.ranks);
      visit(group);
      ++group.id;
    }
  }
}

std::vector<MeshGroup> DeviceMesh::all_groups() const {
  std::vector<MeshGroup> all;
  for_each_group([&](const MeshGroup& group) { all.push_back(group); });
  return all;
}

std::string DeviceMesh::describe(int rank) const {
  return trace_process_name(rank, coord_of(rank));
}

std::vector<int> symmetric_representatives(const MeshShape& shape) {
  const DeviceMesh mesh(shape);
  std::vector<int> representative(static_cast<std::size_t>(mesh.world()));
  for (int rank = 0; rank < mesh.world(); ++rank) {
    MeshCoord c = mesh.coord_of(rank);
    c.tp = c.dp = c.sp = 0;
    representative[static_cast<std::size_t>(rank)] = mesh.rank_of(c);
  }
  return representative;
}

}  // namespace twinspeed
