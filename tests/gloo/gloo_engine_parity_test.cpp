// The engine (ZeRO 0-3, fp32/bf16/fp16, accumulation, overlap_comm) trained on Gloo processes ends
// with the same parameters, losses and loss scales as the same run on the simulated cluster, and
// every rank issues the same collectives (op, logical bytes, dtype, per group in seq order, from
// the two backends' traces): the seam is the only thing that changes. The reductions share one implementation
// (engine/comm/host_reduce.hpp) and run in group-rank order on both, so the results are
// compared bit for bit.
//
// The Gloo ranks run first, as forked children of a still single-threaded test process (the
// simulator and the kernels' thread pool start threads, which a fork must not follow); they
// write rank 0's results to a file the parent then compares with the simulated run.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "engine/backends/gloo/gloo_backend.hpp"
#include "engine/core/trace_chrome.hpp"
#include "engine/core/trace_merge.hpp"
#include "gloo/multiprocess.hpp"
#include "tests/zero/zero_harness.hpp"

namespace twinspeed::testing {
namespace {

using std::chrono::milliseconds;

struct Case {
  int stage;
  const char* precision;
};

RunSpec spec_for(const Case& c, int world) {
  RunSpec spec{.world = world, .stage = c.stage, .micro = 2, .gas = 2, .steps = 3, .precision = c.precision};
  spec.model = {.widths = {3, 8, 8, 1}, .shared_gain = true, .seed = 3};
  spec.zero = {{"reduce_bucket_size", 20}, {"overlap_comm", true}, {"stage3_param_persistence_threshold", 4}};
  return spec;
}

// Rank 0's per-step parameters, losses and loss scales as text, one number per line, exact (%a).
std::string serialise(const RunResult& r) {
  std::string out;
  for (const auto& step : r.params_per_step)
    for (float v : step) out += fmt::format("p {:a}\n", v);
  for (double v : r.losses) out += fmt::format("l {:a}\n", v);
  for (double v : r.loss_scales) out += fmt::format("s {:a}\n", v);
  return out;
}

// A rank's collectives as text, one per line, with groups numbered 0, 1, ... in id order and
// seqs counted from the first in the list: the processes run several cases on one backend, whose
// groups and sequence numbers go on from case to case, while each simulated case starts afresh.
std::string serialise_collectives(const RankTrace& rank) {
  std::map<int, std::pair<int, std::int64_t>> relabel;  // group id -> (index, first seq)
  const std::vector<IssuedCollective> issued = issued_collectives(rank);
  for (const IssuedCollective& c : issued) {
    relabel.try_emplace(c.group, static_cast<int>(relabel.size()), c.seq);
  }
  std::string out;
  for (const IssuedCollective& c : issued) {
    const auto& [group, first_seq] = relabel.at(c.group);
    out += fmt::format("c {} {} {} {} {}\n", group, c.seq - first_seq, c.op, c.bytes, c.dtype);
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void expect_parity(const std::vector<Case>& cases, int world) {
  const std::string dir = ::testing::TempDir();
  const int port = free_port();
  // One set of processes runs every case in turn (one backend each), so start-up is paid once.
  auto exits = run_ranks(world, [&](int rank) {
    auto backend = std::shared_ptr<comm::Backend>(backends::make_gloo_backend(
        {.rank = rank, .world_size = world, .master_port = port, .connect_timeout = milliseconds(5'000),
         .timeout = milliseconds(5'000)}));
    for (std::size_t i = 0; i < cases.size(); ++i) {
      RunResult result;
      const std::size_t before = backend->tracer().events().size();
      train_rank(spec_for(cases[i], world), backend, result);
      std::vector<TraceEvent> events = backend->tracer().events();
      events.erase(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(before));
      TraceDocument mine;
      mine.add_rank({.rank = rank}, std::move(events));
      std::ofstream(fmt::format("{}/gloo_parity_{}_{}_rank{}.txt", dir, port, i, rank))
          << serialise_collectives(mine.ranks().front());
      if (rank == 0) {
        std::ofstream(fmt::format("{}/gloo_parity_{}_{}.txt", dir, port, i)) << serialise(result);
      }
    }
    return 0;
  }, milliseconds(40'000));
  bool ok = true;
  for (const auto& e : exits) {
    EXPECT_FALSE(e.killed) << "rank " << e.rank << " hung";
    EXPECT_EQ(e.code, 0) << "rank " << e.rank << " (signal " << e.signal << ")";
    ok = ok && e.code == 0;
  }
  if (!ok) return;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string path = fmt::format("{}/gloo_parity_{}_{}.txt", dir, port, i);
    const std::string gloo = read_file(path);
    std::remove(path.c_str());
    const RunResult simulated = run(spec_for(cases[i], world));
    const std::string sim = serialise(simulated);
    EXPECT_FALSE(sim.empty());
    EXPECT_EQ(gloo, sim) << "stage " << cases[i].stage << " " << cases[i].precision << " on " << world << " ranks";
    const TraceDocument sim_trace = read_chrome_trace(simulated.trace);
    for (int r = 0; r < world; ++r) {
      const std::string rank_path = fmt::format("{}/gloo_parity_{}_{}_rank{}.txt", dir, port, i, r);
      const std::string gloo_collectives = read_file(rank_path);
      std::remove(rank_path.c_str());
      const std::string sim_collectives = serialise_collectives(*sim_trace.find_rank(r));
      EXPECT_NE(sim_collectives.find("c 0 0 "), std::string::npos) << "rank " << r << " issued no collective";
      EXPECT_EQ(gloo_collectives, sim_collectives) << "collectives of rank " << r << ", stage " << cases[i].stage
                                                   << " " << cases[i].precision << " on " << world << " ranks";
    }
  }
}

TEST(GlooEngineParity, ZeroStagesAndPrecisionsMatchTheSimulationOnTwoProcesses) {
  expect_parity({{0, "fp32"}, {0, "fp16"}, {1, "fp32"}, {1, "bf16"}, {2, "fp16"}, {2, "bf16"}, {3, "fp32"},
                 {3, "bf16"}, {3, "fp16"}},
                2);
}

TEST(GlooEngineParity, ZeroStagesMatchTheSimulationOnFourProcesses) {
  expect_parity({{0, "bf16"}, {2, "fp32"}, {3, "fp16"}}, 4);
}

}  // namespace
}  // namespace twinspeed::testing
