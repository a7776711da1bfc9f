// Properties of ZeRO partitioning (engine/core/partition.hpp) and of the per-rank byte formula
// (engine/core/zero_memory.hpp) over worlds 1-64 and parameter lists that include empty and
// one-element parameters (so some ranks own only padding).

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/core/partition.hpp"
#include "engine/core/zero_memory.hpp"

namespace twinspeed {
namespace {

using Numels = std::vector<std::int64_t>;

rc::Gen<int> gen_world() { return rc::gen::weightedOneOf<int>({{8, rc::gen::inRange(1, 9)}, {1, rc::gen::inRange(9, 65)}}); }

rc::Gen<std::int64_t> gen_numel() {
  return rc::gen::weightedOneOf<std::int64_t>({{2, rc::gen::inRange<std::int64_t>(0, 3)},
                                               {4, rc::gen::inRange<std::int64_t>(3, 100)},
                                               {1, rc::gen::inRange<std::int64_t>(100, 5000)}});
}

rc::Gen<Numels> gen_numels() { return rc::gen::resize(20, rc::gen::container<Numels>(gen_numel())); }

std::int64_t sum(const Numels& numels) {
  std::int64_t total = 0;
  for (auto n : numels) total += n;
  return total;
}

RC_GTEST_PROP(FlatPartitionProperty, PartitionsOfDistinctRanksAreDisjoint, ()) {
  const Numels numels = *gen_numels();
  const int world = *gen_world();
  const FlatLayout layout = flat_partition_layout(numels, world);
  for (int a = 0; a < world; ++a) {
    for (int b = a + 1; b < world; ++b) {
      const ElementRange ra = flat_partition_for_rank(layout, a);
      const ElementRange rb = flat_partition_for_rank(layout, b);
      RC_ASSERT(ra.end() <= rb.offset || rb.end() <= ra.offset);
    }
  }
}

RC_GTEST_PROP(FlatPartitionProperty, PartitionsCoverThePaddedFlatBufferExactlyInRankOrder, ()) {
  const Numels numels = *gen_numels();
  const int world = *gen_world();
  const FlatLayout layout = flat_partition_layout(numels, world);
  RC_ASSERT(layout.numel == sum(numels));
  RC_ASSERT(layout.padded_numel == layout.numel + layout.padding);
  RC_ASSERT(layout.padding >= 0);
  RC_ASSERT(layout.padding < flat_alignment(world));  // padding is minimal
  std::int64_t next = 0;
  for (int rank = 0; rank < world; ++rank) {
    const ElementRange r = flat_partition_for_rank(layout, rank);
    RC_ASSERT(r.offset == next);
    next = r.end();
  }
  RC_ASSERT(next == layout.padded_numel);
}

RC_GTEST_PROP(FlatPartitionProperty, EveryFlatElementIsOwnedByTheRankWhosePartitionContainsIt, ()) {
  const Numels numels = *gen_numels();
  const int world = *gen_world();
  const FlatLayout layout = flat_partition_layout(numels, world);
  for (std::int64_t i = 0; i < layout.padded_numel; i += 1 + layout.padded_numel / 200) {
    const ElementRange r = flat_partition_for_rank(layout, flat_owner(layout, i));
    RC_ASSERT(r.offset <= i && i < r.end());
  }
}

RC_GTEST_PROP(FlatPartitionProperty, EveryPartitionStartsAtAMultipleOfTheNcclStartAlignment, ()) {
  const Numels numels = *gen_numels();
  const int world = *gen_world();
  const FlatLayout layout = flat_partition_layout(numels, world);
  RC_ASSERT(layout.padded_numel % flat_alignment(world) == 0);
  for (int rank = 0; rank < world; ++rank) {
    RC_ASSERT(flat_partition_for_rank(layout, rank).offset % kNcclStartAlignmentFactor == 0);
  }
}

RC_GTEST_PROP(FlatPartitionProperty, AllRanksPartitionsHaveEqualSizeAndMatchDeepSpeedsUnevenSplit, ()) {
  const Numels numels = *gen_numels();
  const int world = *gen_world();
  const FlatLayout layout = flat_partition_layout(numels, world);
  // DeepSpeed's get_data_parallel_partitions: base = L / N, the first L % N ranks one more.
  const std::int64_t base = layout.padded_numel / world;
  const std::int64_t remaining = layout.padded_numel % world;
  std::int64_t start = 0;
  for (int rank = 0; rank < world; ++rank) {
    const std::int64_t size = base + (rank < remaining ? 1 : 0);
    const ElementRange r = flat_partition_for_rank(layout, rank);
    RC_ASSERT(r.numel == layout.partition_numel);
    RC_ASSERT(r == (ElementRange{start, size}));
    start += size;
  }
}

RC_GTEST_PROP(FlatPartitionProperty, ParamsInPartitionOverAllRanksReconstructEveryParameterExactlyOnce, ()) {
  const Numels numels = *gen_numels();
  const int world = *gen_world();
  const FlatLayout layout = flat_partition_layout(numels, world);
  std::vector<std::int64_t> param_start(numels.size(), 0);
  for (std::size_t i = 1; i < numels.size(); ++i) param_start[i] = param_start[i - 1] + numels[i - 1];

  std::vector<std::int64_t> covered(numels.size(), 0);  // next expected param_offset per parameter
  for (int rank = 0; rank < world; ++rank) {
    const ElementRange r = flat_partition_for_rank(layout, rank);
    std::int64_t real = 0;
    std::int64_t prev_end = r.offset;
    for (const ParamSlice& s : params_in_partition(numels, world, rank)) {
      RC_ASSERT(s.param < numels.size());
      RC_ASSERT(s.numel > 0);
      RC_ASSERT(s.param_offset == covered[s.param]);  // continues exactly where the last rank stopped
      RC_ASSERT(s.flat_offset == param_start[s.param] + s.param_offset);
      RC_ASSERT(s.flat_offset == prev_end);            // slices are contiguous, in flat order
      RC_ASSERT(s.flat_offset + s.numel <= r.end());
      covered[s.param] += s.numel;
      real += s.numel;
      prev_end = s.flat_offset + s.numel;
    }
    RC_ASSERT(real + flat_partition_padding(layout, rank) == r.numel);
  }
  RC_ASSERT(covered == numels);
}

RC_GTEST_PROP(RoundRobinProperty, OrderIsAPermutationGroupedByIndexModuloWorld, ()) {
  const auto count = *rc::gen::inRange<std::size_t>(0, 40);
  const int world = *gen_world();
  const auto order = round_robin_order(count, world);
  RC_ASSERT(order.size() == count);
  auto sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < count; ++i) RC_ASSERT(sorted[i] == i);
  for (std::size_t k = 1; k < count; ++k) {
    const auto prev_class = order[k - 1] % static_cast<std::size_t>(world);
    const auto cls = order[k] % static_cast<std::size_t>(world);
    RC_ASSERT(prev_class < cls || (prev_class == cls && order[k - 1] < order[k]));
  }
}

RC_GTEST_PROP(Stage3PartitionProperty, ShardsOfCeilNumelOverWorldCoverEachParameterExactlyOnce, ()) {
  const std::int64_t numel = *gen_numel();
  const int world = *gen_world();
  const std::int64_t ceil = (numel + world - 1) / world;
  std::int64_t next = 0;
  std::int64_t real = 0;
  for (int rank = 0; rank < world; ++rank) {
    const ParamShard s = param_partition(numel, world, rank);
    RC_ASSERT(s.numel_padded == ceil);
    RC_ASSERT(s.offset == rank * ceil);
    RC_ASSERT(s.numel_real >= 0 && s.numel_real <= s.numel_padded);
    if (s.numel_real > 0) {
      RC_ASSERT(s.offset == next);
      next += s.numel_real;
    }
    real += s.numel_real;
  }
  RC_ASSERT(next == numel);
  RC_ASSERT(real == numel);
  RC_ASSERT(ceil * world - numel < world);  // padding below one element per rank
}

RC_GTEST_PROP(ZeroMemoryProperty, PerRankBytesEqualThePartitionSizesTimesDtypeSizes, ()) {
  const auto groups = *rc::gen::resize(4, rc::gen::nonEmpty(rc::gen::container<std::vector<Numels>>(gen_numels())));
  const int world = *gen_world();
  const int rank = *rc::gen::inRange(0, world);
  const int stage = *rc::gen::inRange(0, 4);
  const DType param_dtype = *rc::gen::element(DType::f32, DType::f16, DType::bf16);
  const DType grad_dtype = *rc::gen::element(DType::f32, DType::f16, DType::bf16);
  const std::int64_t state_bytes = *rc::gen::element<std::int64_t>(0, 4, 8, 12);
  const ZeroMemorySpec spec{.stage = stage,
                            .world = world,
                            .param_dtype = param_dtype,
                            .grad_dtype = grad_dtype,
                            .optimizer_state_bytes_per_element = state_bytes};

  // Recount from the partition functions: element counts per tag on `rank`.
  std::int64_t model = 0, flat = 0, owned = 0;
  for (const auto& g : groups) {
    const FlatLayout layout = flat_partition_layout(g, world);
    model += sum(g);
    flat += layout.padded_numel;
    if (stage == 3) {
      for (auto n : g) owned += param_partition(n, world, rank).numel_padded;
    } else {
      owned += flat_partition_for_rank(layout, rank).numel;
    }
  }
  const std::int64_t p = static_cast<std::int64_t>(dtype_size(param_dtype));
  const std::int64_t gr = static_cast<std::int64_t>(dtype_size(grad_dtype));
  ZeroRankBytes expect;
  switch (stage) {
    case 0: expect = {model * p, model * gr, param_dtype == DType::f32 ? 0 : model * 4, model * state_bytes}; break;
    case 1: expect = {flat * p, flat * gr, owned * 4, owned * state_bytes}; break;
    case 2: expect = {flat * p, owned * gr, owned * 4, owned * state_bytes}; break;
    default: expect = {owned * p, owned * gr, owned * 4, owned * state_bytes}; break;
  }
  const ZeroRankBytes got = zero_memory_per_rank(groups, spec, rank);
  RC_ASSERT(got == expect);
  // Every rank holds exactly 1/N of the padded buffers (stages 1-2) or padded shards (stage 3).
  if (stage == 1 || stage == 2) RC_ASSERT(owned * world == flat);
}

}  // namespace
}  // namespace twinspeed
