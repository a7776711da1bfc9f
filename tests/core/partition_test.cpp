// Hand-written examples of ZeRO partitioning (engine/core/partition.hpp) and the per-rank byte
// formula (engine/core/zero_memory.hpp), each worked out by hand from DeepSpeed 0.19.6's rules.

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "engine/core/errors.hpp"
#include "engine/core/partition.hpp"
#include "engine/core/zero_memory.hpp"

namespace twinspeed {
namespace {

using Numels = std::vector<std::int64_t>;

TEST(FlatPartition, ThreeParamsOverFourRanksPadToEightAndSplitTheMiddleParams) {
  const Numels numels = {5, 7, 1};
  // 13 elements, alignment 2 * 4 = 8 -> 16, 3 padding, 4 per rank.
  const FlatLayout layout = flat_partition_layout(numels, 4);
  EXPECT_EQ(layout, (FlatLayout{.world = 4, .numel = 13, .padded_numel = 16, .padding = 3, .partition_numel = 4}));
  EXPECT_EQ(flat_partition_for_rank(layout, 0), (ElementRange{0, 4}));
  EXPECT_EQ(flat_partition_for_rank(layout, 3), (ElementRange{12, 4}));

  EXPECT_EQ(params_in_partition(numels, 4, 0), (std::vector<ParamSlice>{{0, 0, 0, 4}}));
  // Parameter 0 ends inside rank 1's slice and parameter 1 starts there.
  EXPECT_EQ(params_in_partition(numels, 4, 1), (std::vector<ParamSlice>{{0, 4, 4, 1}, {1, 0, 5, 3}}));
  EXPECT_EQ(params_in_partition(numels, 4, 2), (std::vector<ParamSlice>{{1, 3, 8, 4}}));
  EXPECT_EQ(params_in_partition(numels, 4, 3), (std::vector<ParamSlice>{{2, 0, 12, 1}}));
  EXPECT_EQ(flat_partition_padding(layout, 0), 0);
  EXPECT_EQ(flat_partition_padding(layout, 2), 0);
  EXPECT_EQ(flat_owner(layout, 0), 0);
  EXPECT_EQ(flat_owner(layout, 4), 1);
  EXPECT_EQ(flat_owner(layout, 15), 3);  // padding belongs to the last rank
  EXPECT_THROW(flat_owner(layout, 16), Error);
  EXPECT_EQ(flat_partition_padding(layout, 3), 3);
}

TEST(FlatPartition, OneElementParamsOverTwoRanks) {
  const Numels numels = {1, 1, 1};
  const FlatLayout layout = flat_partition_layout(numels, 2);
  EXPECT_EQ(layout.padded_numel, 4);
  EXPECT_EQ(layout.partition_numel, 2);
  EXPECT_EQ(params_in_partition(numels, 2, 0), (std::vector<ParamSlice>{{0, 0, 0, 1}, {1, 0, 1, 1}}));
  EXPECT_EQ(params_in_partition(numels, 2, 1), (std::vector<ParamSlice>{{2, 0, 2, 1}}));
  EXPECT_EQ(flat_partition_padding(layout, 1), 1);
}

TEST(FlatPartition, WorldOneAlignsToTwoElementsAndOwnsEverything) {
  const Numels numels = {5, 7, 1};
  const FlatLayout layout = flat_partition_layout(numels, 1);
  EXPECT_EQ(layout, (FlatLayout{.world = 1, .numel = 13, .padded_numel = 14, .padding = 1, .partition_numel = 14}));
  EXPECT_EQ(params_in_partition(numels, 1, 0),
            (std::vector<ParamSlice>{{0, 0, 0, 5}, {1, 0, 5, 7}, {2, 0, 12, 1}}));
}

TEST(FlatPartition, RanksPastTheLastRealElementOwnOnlyPadding) {
  const Numels numels = {1};
  const FlatLayout layout = flat_partition_layout(numels, 8);
  EXPECT_EQ(layout.padded_numel, 16);
  EXPECT_EQ(layout.partition_numel, 2);
  EXPECT_EQ(params_in_partition(numels, 8, 0), (std::vector<ParamSlice>{{0, 0, 0, 1}}));
  EXPECT_EQ(flat_partition_padding(layout, 0), 1);
  for (int rank = 1; rank < 8; ++rank) {
    EXPECT_TRUE(params_in_partition(numels, 8, rank).empty()) << rank;
    EXPECT_EQ(flat_partition_padding(layout, rank), 2) << rank;
  }
}

TEST(FlatPartition, OneParamSpansEveryRank) {
  const Numels numels = {100};
  // 100 -> 104 (multiple of 8), 26 per rank.
  for (int rank = 0; rank < 4; ++rank) {
    const auto slices = params_in_partition(numels, 4, rank);
    ASSERT_EQ(slices.size(), 1u);
    EXPECT_EQ(slices[0].param_offset, 26 * rank);
    EXPECT_EQ(slices[0].numel, rank == 3 ? 22 : 26);
  }
}

TEST(FlatPartition, AlreadyAlignedBufferGetsNoPadding) {
  const FlatLayout layout = flat_partition_layout(Numels{4, 4}, 2);
  EXPECT_EQ(layout.padding, 0);
  EXPECT_EQ(layout.partition_numel, 4);
}

TEST(FlatPartition, EmptyGroupAndEmptyParamsTakeNoSpace) {
  const FlatLayout empty = flat_partition_layout(Numels{}, 4);
  EXPECT_EQ(empty.padded_numel, 0);
  EXPECT_EQ(flat_partition_for_rank(empty, 3), (ElementRange{0, 0}));
  const Numels numels = {0, 3, 0};
  EXPECT_EQ(params_in_partition(numels, 1, 0), (std::vector<ParamSlice>{{1, 0, 0, 3}}));
}

TEST(FlatPartition, InvalidWorldRankOrNumelThrows) {
  EXPECT_THROW(flat_partition_layout(Numels{1}, 0), Error);
  EXPECT_THROW(flat_partition_layout(Numels{-1}, 2), Error);
  const FlatLayout layout = flat_partition_layout(Numels{1}, 4);
  EXPECT_THROW(flat_partition_for_rank(layout, 4), Error);
  EXPECT_THROW(flat_partition_for_rank(layout, -1), Error);
  EXPECT_THROW(param_partition(5, 2, 2), Error);
}

TEST(RoundRobin, ParamsAreGroupedByIndexModuloWorld) {
  EXPECT_EQ(round_robin_order(5, 2), (std::vector<std::size_t>{0, 2, 4, 1, 3}));
  EXPECT_EQ(round_robin_order(7, 3), (std::vector<std::size_t>{0, 3, 6, 1, 4, 2, 5}));
  EXPECT_EQ(round_robin_order(2, 4), (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(round_robin_order(3, 1), (std::vector<std::size_t>{0, 1, 2}));
}

TEST(Stage3Partition, EachRankHoldsCeilNumelOverWorldTheLastPadded) {
  EXPECT_EQ(param_partition(10, 4, 0), (ParamShard{0, 3, 3}));
  EXPECT_EQ(param_partition(10, 4, 2), (ParamShard{6, 3, 3}));
  EXPECT_EQ(param_partition(10, 4, 3), (ParamShard{9, 1, 3}));
  EXPECT_EQ(param_partition(8, 4, 3), (ParamShard{6, 2, 2}));
  EXPECT_EQ(param_partition(1, 4, 0), (ParamShard{0, 1, 1}));
  EXPECT_EQ(param_partition(1, 4, 3), (ParamShard{3, 0, 1}));
  EXPECT_EQ(param_partition(0, 4, 1), (ParamShard{0, 0, 0}));
  EXPECT_EQ(param_partition(7, 1, 0), (ParamShard{0, 7, 7}));
}

TEST(ZeroMemory, MixedPrecisionAdamOverFourRanksPerStage) {
  const std::vector<Numels> groups = {{5, 7, 1}};
  ZeroMemorySpec spec{.stage = 0, .world = 4, .param_dtype = DType::f16, .grad_dtype = DType::f16};
  // Stage 0: 13 elements everywhere, unpadded.
  EXPECT_EQ(zero_memory_per_rank(groups, spec, 0), (ZeroRankBytes{26, 26, 52, 104}));
  // Stage 1: the padded flat buffer (16) of params and of grads; master and states 4 per rank.
  spec.stage = 1;
  EXPECT_EQ(zero_memory_per_rank(groups, spec, 3), (ZeroRankBytes{32, 32, 16, 32}));
  spec.stage = 2;
  EXPECT_EQ(zero_memory_per_rank(groups, spec, 1), (ZeroRankBytes{32, 8, 16, 32}));
  // Stage 3: shards of ceil(5/4) + ceil(7/4) + ceil(1/4) = 5 elements.
  spec.stage = 3;
  EXPECT_EQ(zero_memory_per_rank(groups, spec, 2), (ZeroRankBytes{10, 10, 20, 40}));
  EXPECT_EQ(zero_memory_per_rank(groups, spec, 2).total(), 80);
  EXPECT_EQ(zero_memory_per_rank(groups, spec, 2).bytes(MemoryTag::master_params), 20);
  EXPECT_EQ(zero_memory_per_rank(groups, spec, 2).bytes(MemoryTag::activations), 0);
}

TEST(ZeroMemory, Fp32StageZeroHasNoMasterCopyButStagesOneToThreeDo) {
  const std::vector<Numels> groups = {{5, 7, 1}, {3}};
  ZeroMemorySpec spec{.stage = 0, .world = 2};
  EXPECT_EQ(zero_memory_per_rank(groups, spec, 0), (ZeroRankBytes{64, 64, 0, 128}));
  spec.stage = 1;
  // Group 0: 13 -> 16 (8 per rank); group 1: 3 -> 4 (2 per rank); grads in the padded layout.
  EXPECT_EQ(zero_memory_per_rank(groups, spec, 1), (ZeroRankBytes{80, 80, 40, 80}));
}

TEST(ZeroMemory, InvalidSpecThrows) {
  const std::vector<Numels> groups = {{4}};
  EXPECT_THROW(zero_memory_per_rank(groups, ZeroMemorySpec{.stage = 4}, 0), Error);
  EXPECT_THROW(zero_memory_per_rank(groups, ZeroMemorySpec{.world = 2}, 2), Error);
  EXPECT_THROW(zero_memory_per_rank({}, ZeroMemorySpec{.world = 2}, 2), Error);
}

}  // namespace
}  // namespace twinspeed
