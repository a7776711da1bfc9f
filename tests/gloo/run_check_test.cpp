// The start-up check that every rank trains the same run (engine/runtime/run_check.hpp), on Gloo
// processes: the same description passes; a different one is a ConfigError on every rank naming
// the ranks that differ and the key, with both values.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "engine/backends/gloo/gloo_backend.hpp"
#include "engine/core/errors.hpp"
#include "engine/runtime/run_check.hpp"
#include "gloo/multiprocess.hpp"

namespace twinspeed {
namespace {

using std::chrono::milliseconds;

nlohmann::json run_of(int stage, int steps) {
  return {{"config", {{"train_batch_size", 8}, {"zero_optimization", {{"stage", stage}, {"overlap_comm", true}}}}},
          {"steps", steps},
          {"seed", 0}};
}

backends::GlooOptions options_for(int rank, int world, int port) {
  return {.rank = rank, .world_size = world, .master_addr = "127.0.0.1", .master_port = port,
          .connect_timeout = milliseconds(5'000), .timeout = milliseconds(5'000)};
}

TEST(RunCheck, DifferingPathsNameTheLeavesThatDiffer) {
  EXPECT_TRUE(differing_paths(run_of(2, 3), run_of(2, 3)).empty());
  EXPECT_EQ(differing_paths(run_of(2, 3), run_of(3, 4)),
            (std::vector<std::string>{"config.zero_optimization.stage", "steps"}));
  nlohmann::json extra = run_of(2, 3);
  extra["config"]["fp16"] = {{"enabled", true}};
  EXPECT_EQ(differing_paths(run_of(2, 3), extra), (std::vector<std::string>{"config.fp16"}));
  EXPECT_EQ(differing_paths(run_of(2, 3), run_of(3, 4), 1).size(), 1u);
}

TEST(RunCheck, TheSameRunOnEveryRankPassesAndTheBackendWorksAfter) {
  const int port = testing::free_port();
  auto exits = testing::run_ranks(3, [&](int rank) {
    auto backend = backends::make_gloo_backend(options_for(rank, 3, port));
    check_same_run(*backend, run_of(2, 3), milliseconds(5'000));
    Buffer b = backend->device().allocate(DType::f32, 4, MemoryTag::grads);
    for (int i = 0; i < 4; ++i) b.data_as<float>()[i] = 1.0f;
    backend->world()->all_reduce(b.all())->wait();
    return b.data_as<float>()[0] == 3.0f ? 0 : 1;
  });
  for (const auto& e : exits) {
    EXPECT_FALSE(e.killed) << "rank " << e.rank << " hung";
    EXPECT_EQ(e.code, 0) << "rank " << e.rank;
  }
}

TEST(RunCheck, ADifferentRunIsAConfigErrorOnEveryRankNamingTheRankAndTheKey) {
  const int port = testing::free_port();
  auto exits = testing::run_ranks(3, [&](int rank) {
    auto backend = backends::make_gloo_backend(options_for(rank, 3, port));
    try {
      check_same_run(*backend, run_of(rank == 2 ? 3 : 2, 3), milliseconds(5'000));
    } catch (const ConfigError& e) {
      std::fprintf(stderr, "[rank %d] as expected: %s\n", rank, e.what());
      const std::string what = e.what();
      const bool named = what.find("ranks [2] of 3 resolved a different run than rank 0") != std::string::npos &&
                         what.find("config.zero_optimization.stage (rank 0: 2, rank 2: 3)") != std::string::npos;
      return named ? 0 : 1;
    }
    return 2;
  });
  for (const auto& e : exits) {
    EXPECT_FALSE(e.killed) << "rank " << e.rank << " hung";
    EXPECT_EQ(e.code, 0) << "rank " << e.rank;
  }
}

}  // namespace
}  // namespace twinspeed
