#include <gtest/gtest.h>

#include "engine/core/errors.hpp"

namespace twinspeed {
namespace {

TEST(ConfigError, MessageNamesPathValueAndRule) {
  ConfigError e("zero_optimization.stage", "4", "must be 0, 1, 2 or 3");
  EXPECT_STREQ(e.what(), "zero_optimization.stage = 4: must be 0, 1, 2 or 3");
  EXPECT_EQ(e.path(), "zero_optimization.stage");
  EXPECT_EQ(e.value(), "4");
}

TEST(CommError, MessageNamesGroupSeqOpAndMissingRanks) {
  CommError e("collective timed out", {.group = 2, .seq = 7, .op = "all_reduce", .rank = 0, .missing = {3, 5}});
  EXPECT_STREQ(e.what(), "collective timed out (rank 0, group 2, seq 7, op all_reduce, missing ranks [3, 5])");
}

TEST(CommError, MessageLeavesOutWhatIsNotKnown) {
  EXPECT_STREQ(CommError("cannot reach the store", {.op = "store.connect", .rank = 1}).what(),
               "cannot reach the store (rank 1, op store.connect)");
  EXPECT_STREQ(CommError("lost", {}).what(), "lost");
}

TEST(OutOfMemory, MessageNamesRankTagAndBytes) {
  OutOfMemory e({.rank = 1, .tag = "grads", .requested_bytes = 100, .capacity_bytes = 1000, .in_use_bytes = 950},
                "params 950");
  EXPECT_STREQ(e.what(), "out of memory on rank 1: 100 bytes requested for 'grads', 950 of 1000 bytes in use");
  EXPECT_EQ(e.details(), "params 950");
}

}  // namespace
}  // namespace twinspeed
