// How the Gloo backend fails: a rank that exits or stalls makes the others fail within the
// timeout with a CommError naming it; a wrong world size, a rank that never starts and an
// unreachable master fail at start-up with errors naming the variable or the ranks.

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/backends/flight_recorder.hpp"
#include "engine/backends/gloo/gloo_backend.hpp"
#include "engine/core/errors.hpp"
#include "gloo/multiprocess.hpp"

namespace twinspeed {
namespace {

using backends::GlooOptions;
using std::chrono::milliseconds;
using testing::run_ranks;

constexpr milliseconds kTimeout{2'000};

GlooOptions options_for(int rank, int world, int port) {
  return {.rank = rank, .world_size = world, .master_addr = "127.0.0.1", .master_port = port,
          .connect_timeout = milliseconds(3'000), .timeout = kTimeout};
}

// Exit codes of the surviving ranks' checks.
enum : int { kNamedTheRank = 0, kNoError = 10, kWrongError = 11, kTooSlow = 12 };

// Ranks other than `culprit` all-reduce and must fail naming it, within the timeout (plus slack
// for the store lookup); the culprit does `misbehave` instead of issuing the all-reduce.
int survivor_or_culprit(int rank, int world, int port, int culprit, const std::function<void()>& misbehave) {
  auto backend = backends::make_gloo_backend(options_for(rank, world, port));
  Buffer b = backend->device().allocate(DType::f32, 1024, MemoryTag::grads);
  backend->world()->all_reduce(b.all())->wait();  // everyone gets this far
  if (rank == culprit) {
    misbehave();
    return kNamedTheRank;
  }
  const auto start = std::chrono::steady_clock::now();
  try {
    backend->world()->all_reduce(b.all())->wait();
  } catch (const CommError& e) {
    const auto took = std::chrono::steady_clock::now() - start;
    std::fprintf(stderr, "[rank %d] as expected: %s (%s)\n", rank, e.what(), e.details().c_str());
    const auto& c = e.context();
    if (c.missing != std::vector<int>{culprit} || c.op != "all_reduce" || c.group != 0 || c.seq != 1) return kWrongError;
    if (std::string(e.what()).find(fmt::format("ranks [{}] did not arrive", culprit)) == std::string::npos) return kWrongError;
    if (took > kTimeout + milliseconds(1'500)) return kTooSlow;
    return kNamedTheRank;
  }
  return kNoError;
}

TEST(GlooFailures, RankThatExitsIsNamedByTheOthers) {
  const int port = testing::free_port();
  auto exits = run_ranks(3, [&](int rank) {
    return survivor_or_culprit(rank, 3, port, 1, [] { ::_exit(0); });  // dies without a goodbye
  });
  for (const auto& e : exits) {
    EXPECT_FALSE(e.killed) << "rank " << e.rank << " hung";
    EXPECT_EQ(e.code, kNamedTheRank) << "rank " << e.rank << " (signal " << e.signal << ")";
  }
}

// The survivors' flight records: their last operations, the failed all-reduce last.
TEST(GlooFailures, AFailedOperationWritesTheRanksFlightRecord) {
  const int port = testing::free_port();
  const std::string dir = ::testing::TempDir() + "flight-" + std::to_string(port);
  std::filesystem::create_directories(dir);
  auto exits = run_ranks(2, [&](int rank) {
    GlooOptions o = options_for(rank, 2, port);
    o.flight_recorder_dir = dir;
    auto backend = backends::make_gloo_backend(o);
    Buffer b = backend->device().allocate(DType::f32, 1024, MemoryTag::grads);
    backend->world()->all_reduce(b.all())->wait();
    if (rank == 1) ::_exit(0);
    try {
      backend->world()->all_reduce(b.all())->wait();
    } catch (const CommError&) {
      return 0;
    }
    return 1;
  });
  ASSERT_EQ(exits[0].code, 0);
  std::ifstream in(backends::flight_record_path(dir, 0));
  ASSERT_TRUE(in) << "no flight record in " << dir;
  const nlohmann::json record = nlohmann::json::parse(in);
  EXPECT_EQ(record["schema"], "twinspeed.flight/1");
  EXPECT_EQ(record["rank"], 0);
  const auto& entries = record["entries"];
  ASSERT_GE(entries.size(), 2u);  // the first all-reduce, the failed one
  const auto& last = entries.back();
  EXPECT_EQ(last["op"], "all_reduce");
  EXPECT_EQ(last["seq"], 1);
  EXPECT_EQ(last["group"], 0);
  EXPECT_EQ(last["bytes"], 4096);
  EXPECT_EQ(last["state"], "failed");
  EXPECT_GE(last["ended_ns"].get<std::int64_t>(), last["started_ns"].get<std::int64_t>());
  EXPECT_EQ(entries[entries.size() - 2]["state"], "completed");
  EXPECT_NE(record["reason"].get<std::string>().find("did not arrive"), std::string::npos) << record["reason"];
  EXPECT_FALSE(std::ifstream(backends::flight_record_path(dir, 1)));  // rank 1 never failed
}

// Rank 1 issues the all-reduce (its progress is on the store) and dies while it runs: rank 0 names
// it as gone during the operation (it never reports the failure), not "every rank arrived", and
// does so well before the operation's timeout (here 60 s): a live peer's failure report comes
// within moments, so the survivor waits kFailureReportWindow (3 s) for reports, not the timeout.
TEST(GlooFailures, RankThatDiesDuringACollectiveIsNamedByTheOthersBeforeTheTimeout) {
  const int port = testing::free_port();
  auto exits = run_ranks(2, [&](int rank) {
    GlooOptions o = options_for(rank, 2, port);
    o.timeout = milliseconds(60'000);
    auto backend = backends::make_gloo_backend(o);
    Buffer b = backend->device().allocate(DType::f32, std::int64_t{16} << 20, MemoryTag::grads);  // 64 MiB
    backend->world()->all_reduce(b.all())->wait();
    comm::WorkPtr work = backend->world()->all_reduce(b.all());
    if (rank == 1) {
      // Once its own progress says it issued seq 1 (the second all-reduce), it is inside the operation.
      for (;;) {
        const auto posted = backend->store().get("ts/progress/g0/r1", kTimeout);
        if (std::string(posted.begin(), posted.end()).rfind("1 ", 0) == 0) ::_exit(0);
        std::this_thread::sleep_for(milliseconds(1));
      }
    }
    const auto start = std::chrono::steady_clock::now();
    try {
      work->wait();
    } catch (const CommError& e) {
      std::fprintf(stderr, "[rank %d] as expected: %s (%s)\n", rank, e.what(), e.details().c_str());
      const std::string what = e.what();
      // Its progress (seq 1, all_reduce) was posted: it arrived, so only "went away" can name it.
      const bool named = e.context().missing == std::vector<int>{1} &&
                         what.find("ranks [1] issued it and went away during it") != std::string::npos;
      if (!named) return kWrongError;
      // A bound far below the 60 s timeout, not a speed measurement: waiting for the timeout fails it.
      return std::chrono::steady_clock::now() - start < milliseconds(30'000) ? kNamedTheRank : kTooSlow;
    }
    return kNoError;
  }, milliseconds(90'000));
  EXPECT_FALSE(exits[0].killed) << "rank 0 hung";
  EXPECT_EQ(exits[0].code, kNamedTheRank);
}

TEST(GlooFailures, RankThatStallsIsNamedAfterTheTimeout) {
  const int port = testing::free_port();
  auto exits = run_ranks(2, [&](int rank) {
    return survivor_or_culprit(rank, 2, port, 1, [] { std::this_thread::sleep_for(kTimeout + milliseconds(1'000)); });
  });
  for (const auto& e : exits) {
    EXPECT_FALSE(e.killed) << "rank " << e.rank << " hung";
    EXPECT_EQ(e.code, kNamedTheRank) << "rank " << e.rank;
  }
}

TEST(GlooFailures, DifferentOpsAtTheSameSeqAreADesyncNamingTheOtherRank) {
  const int port = testing::free_port();
  auto exits = run_ranks(2, [&](int rank) {
    auto backend = backends::make_gloo_backend(options_for(rank, 2, port));
    Buffer b = backend->device().allocate(DType::f32, 8, MemoryTag::grads);
    try {
      if (rank == 0) backend->world()->all_reduce(b.all())->wait();
      else backend->world()->broadcast(b.all(), 1)->wait();
    } catch (const CommError& e) {
      std::fprintf(stderr, "[rank %d] as expected: %s (%s)\n", rank, e.what(), e.details().c_str());
      const bool named = e.context().missing == std::vector<int>{1 - rank} &&
                         e.details().find(fmt::format("desync: rank {} issued {}", 1 - rank,
                                                      rank == 0 ? "broadcast" : "all_reduce")) != std::string::npos;
      return named ? 0 : 1;
    }
    return rank == 1 ? 0 : 2;  // the root of a broadcast may finish: its data left
  });
  EXPECT_EQ(exits[0].code, 0);
  for (const auto& e : exits) EXPECT_FALSE(e.killed) << "rank " << e.rank << " hung";
}

TEST(GlooFailures, MismatchedWorldSizeFailsAtStartUp) {
  const int port = testing::free_port();
  auto exits = run_ranks(2, [&](int rank) {
    try {
      backends::make_gloo_backend(options_for(rank, rank == 1 ? 3 : 2, port));
    } catch (const ConfigError& e) {
      std::fprintf(stderr, "[rank %d] as expected: %s\n", rank, e.what());
      return e.path() == "WORLD_SIZE" && std::string(e.what()).find("rank 1 has WORLD_SIZE 3") != std::string::npos &&
                     e.details().find("the same --nnodes and --nproc-per-node") != std::string::npos
                 ? 0
                 : 1;
    }
    return 2;
  });
  for (const auto& e : exits) {
    EXPECT_FALSE(e.killed) << "rank " << e.rank << " hung";
    EXPECT_EQ(e.code, 0) << "rank " << e.rank;
  }
}

TEST(GlooFailures, RankThatNeverStartsIsNamedAtStartUp) {
  const int port = testing::free_port();
  GlooOptions o = options_for(0, 3, port);
  o.connect_timeout = milliseconds(500);
  auto exits = run_ranks(2, [&](int rank) {
    GlooOptions mine = o;
    mine.rank = rank;
    try {
      backends::make_gloo_backend(mine);
    } catch (const CommError& e) {
      std::fprintf(stderr, "[rank %d] as expected: %s\n", rank, e.what());
      // Rank 0 names the missing rank; rank 1 may instead see the store go away with rank 0.
      if (e.context().missing == std::vector<int>{2}) return 0;
      return rank == 1 && std::string(e.what()).find("store went away") != std::string::npos ? 0 : 1;
    }
    return 2;
  });
  for (const auto& e : exits) {
    EXPECT_FALSE(e.killed) << "rank " << e.rank << " hung";
    EXPECT_EQ(e.code, 0) << "rank " << e.rank;
  }
}

TEST(GlooFailures, UnreachableMasterFailsAtStartUp) {
  GlooOptions o = options_for(1, 2, testing::free_port());  // rank 1: nobody serves the store
  o.connect_timeout = milliseconds(300);
  try {
    backends::make_gloo_backend(o);
    FAIL() << "connected to nothing";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("cannot reach the TCP store at 127.0.0.1:{}", o.master_port)),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("MASTER_ADDR"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(rank 1, op store.connect)"), std::string::npos) << e.what();
  }
}

TEST(GlooFailures, BadRankAndBadInputAreTypedErrors) {
  EXPECT_THROW(backends::make_gloo_backend(options_for(2, 2, 1)), ConfigError);
  EXPECT_THROW(backends::make_gloo_backend(options_for(0, 0, 1)), ConfigError);
  const int port = testing::free_port();
  auto exits = run_ranks(1, [&](int) {
    auto backend = backends::make_gloo_backend(options_for(0, 1, port));
    Buffer in = backend->device().allocate(DType::f32, 5, MemoryTag::temporaries);
    Buffer out = backend->device().allocate(DType::f32, 3, MemoryTag::temporaries);
    int typed = 0;
    try {
      backend->world()->all_gather(in.all(), out.all());
    } catch (const CommError&) {
      ++typed;
    }
    try {
      backend->world()->broadcast(in.all(), 3);
    } catch (const CommError&) {
      ++typed;
    }
    return typed == 2 ? 0 : 1;
  });
  EXPECT_EQ(exits[0].code, 0);
}

}  // namespace
}  // namespace twinspeed
