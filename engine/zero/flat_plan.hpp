#pragma once
// Where each parameter lives in the engine's buffers, per ZeRO stage (element offsets; the rules
// are engine/core/partition.hpp's, the one source of truth for who owns what).
//
// FlatPlan (stages 0-2): one buffer holding every param group's flat buffer back to back, then the
// parameters of no group. Stage 0 packs the groups without padding; stages 1-2 pad each group to
// flat_alignment(world) and split it into equal contiguous partitions.
// ShardPlan (stage 3): one buffer holding, group after group, this rank's ceil(numel/N) shard of
// every parameter of the group, then the shards of the parameters of no group; every rank's
// buffer has the same layout, so a group's shards are one contiguous range.

#include <cstdint>
#include <vector>

#include "engine/core/partition.hpp"
#include "engine/zero/model_layout.hpp"

namespace twinspeed {

struct FlatGroupRegion {
  std::int64_t base = 0;  // first element of the group's flat buffer
  FlatLayout layout;      // padded when partitioned
  // This rank's partition, in buffer coordinates.
  ElementRange partition(int rank) const;
};

// A piece of a parameter owned by one rank: elements [param_offset, +numel) belong to `rank`.
struct OwnedPiece {
  int rank = 0;
  std::int64_t param_offset = 0;
  std::int64_t numel = 0;
};

struct FlatPlan {
  int world = 1;
  bool partitioned = false;             // stages 1-2
  std::vector<std::int64_t> offset;     // per parameter: first element in the buffer
  std::vector<FlatGroupRegion> groups;
  ElementRange ungrouped;               // the parameters of no group (never partitioned)
  std::int64_t total = 0;
  // The ranks owning each part of a grouped parameter, ascending (one piece when unpartitioned).
  std::vector<OwnedPiece> owners(const ModelLayout& model, std::size_t param) const;
};

FlatPlan plan_flat(const ModelLayout& model, int world, bool partitioned);

struct ShardPlan {
  int world = 1;
  std::vector<std::int64_t> offset;       // per parameter: first element of its shard
  std::vector<std::int64_t> shard_numel;  // per parameter: ceil(numel / world)
  std::vector<ElementRange> groups;       // per group: its shards
  ElementRange ungrouped;
  std::int64_t total = 0;
};

ShardPlan plan_shards(const ModelLayout& model, int world);

}  // namespace twinspeed
