#pragma once
// The device mesh: which rank sits where on the pipe x data x sequence x tensor grid, and the
// communication groups each rank belongs to. One value type, pure functions of the shape, used
// alike by the engine (to create its groups), the simulator, the planner and the viewer.
//
// Layout (docs: DESIGN.md "Device mesh"): axes outermost to innermost are pipe, data, sequence,
// tensor, so rank = ((p*D + d)*S + s)*T + t. With sp = 1 this is DeepSpeed's
// PipeModelDataParallelTopology (axes pipe, data, model; model innermost); with pp = tp = 1 it is
// the (data_parallel, sequence_parallel) device mesh DeepSpeed builds from `mesh_param`.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/mesh_coordinates.hpp"
#include "engine/mesh/group_kind.hpp"
#include "engine/mesh/mesh_shape.hpp"

namespace twinspeed {

// A rank's position on the mesh, one index per axis (engine/core/mesh_coordinates.hpp).
using MeshCoord = MeshCoordinates;

// One communication group as every rank creates it. id is the group's creation index: ids are
// dense from 0 in DeviceMesh::all_groups() order. index is the group's position among the groups
// of its kind (the order of DeviceMesh::groups(kind)). ranks are sorted ascending.
struct MeshGroup {
  int id = 0;
  GroupKind kind = GroupKind::world;
  int index = 0;
  std::vector<int> ranks;
  bool operator==(const MeshGroup&) const = default;
};

class DeviceMesh {
 public:
  // A mesh of the given shape. Throws ConfigError (path "pp", "dp", "sp" or "tp") when a degree
  // is < 1.
  explicit DeviceMesh(const MeshShape& shape);

  // World size and tp/pp/sp degrees with dp derived (resolve_mesh_shape; its ConfigErrors).
  static DeviceMesh from_request(const MeshRequest& request);

  // DeepSpeed's deepspeed.initialize(mesh_param=(dp, sp)): a data x sequence mesh (sequence
  // inner) with pp = tp = 1. Throws ConfigError (path "mesh_param") unless dp, sp >= 1 and
  // dp x sp == world, which torch's init_device_mesh requires.
  static DeviceMesh from_mesh_param(int world, int dp, int sp);

  // A config's "data_parallel_size" / "sequence_parallel_size" (DeepSpeed builds its mesh from
  // them when both are present) with the tp and pp degrees from elsewhere. A missing size is
  // derived; a given one must agree with world / (tp x pp x sp). Throws ConfigError with the
  // config key as path.
  static DeviceMesh from_config_sizes(int world, std::optional<int> data_parallel_size,
                                      std::optional<int> sequence_parallel_size, int tp = 1, int pp = 1);

  const MeshShape& shape() const noexcept { return shape_; }
  int world() const noexcept { return shape_.world(); }

  // rank <-> coordinates. Both throw std::out_of_range for a rank outside [0, world) or a
  // coordinate outside its axis: those are caller bugs, not configuration errors.
  int rank_of(const MeshCoord& coord) const;
  MeshCoord coord_of(int rank) const;

  // How many groups of a kind there are, and how many ranks each has (all are equal-sized).
  int group_count(GroupKind kind) const;
  int group_size(GroupKind kind) const;

  // The index (in groups(kind) order) and id (in all_groups() order) of the group of `kind`
  // that `rank` belongs to, computed without enumerating groups.
  int group_index(GroupKind kind, int rank) const;
  int group_id(GroupKind kind, int rank) const;

  // The sorted ranks of the group of `kind` that `rank` belongs to.
  std::vector<int> group_ranks(GroupKind kind, int rank) const;

  // Every group of a kind, in mesh order: groups are ordered by the coordinates of the axes they
  // hold fixed, outermost axis slowest (DeepSpeed's ProcessTopology::get_axis_comm_lists order).
  std::vector<std::vector<int>> groups(GroupKind kind) const;

  // Every group of every kind in the canonical creation order: kind by kind in
  // kGroupKindsInCreationOrder, each kind in groups(kind) order. The position is the id. Every
  // rank creates all of them, in this order, so collectives agree on ids.
  std::vector<MeshGroup> all_groups() const;
  // all_groups() one at a time, in the same order, without holding them: the group passed to
  // visit is reused (its ranks are valid until visit returns). Every rank of a 4,096-rank mesh
  // walks some 5,000 groups; this allocates none of them.
  void for_each_group(const std::function<void(const MeshGroup& group)>& visit) const;

  // "rank 5 (pp 0, dp 1, sp 0, tp 1)": the trace process name of a rank.
  std::string describe(int rank) const;

  bool operator==(const DeviceMesh&) const = default;

 private:
  MeshShape shape_;
};

// Symmetric-rank collapse for twinspeed's engine (DESIGN.md "The simulated cluster";
// sim::ClusterOptions::representative): representative[r] is the rank whose shape-only run stands
// for rank r: the rank with r's pipeline coordinate and dp = sp = tp = 0, one simulated rank per
// pipeline stage.
//
// Why a represented rank's run equals its representative's (same operations in the same order,
// same sizes and compute costs, same bytes allocated), as the code stands:
//  - The Engine (engine/runtime/engine.cpp) depends on the rank only through its ZeRO partition
//    and, in a pipeline, its stage. Partitions are equal-length by construction
//    (engine/core/partition.hpp: stages 1-2 pad each flat group to a multiple of 2N and split it
//    equally; stage 3 gives every rank ceil(n/N) elements of every parameter), so buffers,
//    buckets and collectives have the same sizes on every rank: one partition-size class per
//    stage. Stage 3's reduce-scatters (Stage3GradReducer) and gathers move whole shards.
//  - At stages 1-2, after each bucket's reduction, BucketReducer::reduce
//    (engine/zero/grad_reduction.cpp) copies out the pieces of gradients the rank owns. Which
//    pieces those are depends on the rank, but the copy is one launch costed as the slowest
//    owner's copies, the same on every rank. The per-owner reduces are the same sequence on every
//    rank; only the roots differ, which costs nothing. The norm's holes (a pipeline's tied
//    parameters inside the partition) change which elements are summed, not any cost.
//  - SpecLayerRunner (engine/model/spec) never reads the rank: its tp and sp collectives have the
//    same sizes on every rank (a vocabulary that tp does not divide is padded to ceil(V/tp)).
//  - Every rank of a ZeRO group issues the same collective sequence: reductions, the overflow and
//    norm all-reduces, the all-gather after the step, the broadcasts at start-up (roots 0).
//  - PipelineEngine (engine/runtime/pipeline_engine.cpp) instructions depend on the stage only.
//    The representatives of pipeline (dp 0, sp 0, tp 0) are all simulated, so its sends and
//    receives, the shape exchange through the Store (keyed by the two global ranks), the loss
//    all-reduce and broadcast, and its "pp-tied" group (Engine::create_tie_groups: one per
//    pipeline) connect simulated ranks; the other pipelines' tie groups see no collective.
// The simulator costs each collective with the whole group's ranks. What this function cannot
// see is the topology: a represented rank's groups must sit on the nodes as its representative's
// do (planner::run_simulation checks that for the cluster and otherwise simulates every rank).
// Faults and stragglers hit single ranks: a collapsed run cannot model them.
std::vector<int> symmetric_representatives(const MeshShape& shape);

}  // namespace twinspeed
