// Symmetric-rank collapse (DESIGN.md "The simulated cluster"): only representative ranks run;
// collectives complete when the simulated members have issued them and cost the whole group's
// time; represented ranks read their representative's memory and trace.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "engine/core/errors.hpp"
#include "engine/mesh/device_mesh.hpp"
#include "sim/cluster.hpp"

namespace twinspeed::sim {
namespace {

// A collective costs 1000 ns per rank of its group, so a cost tells the group size; compute costs
// its flops in ns.
class PerRankCosts final : public CostModel {
 public:
  std::int64_t compute_ns(int, const comm::ComputeCost& c) const override { return static_cast<std::int64_t>(c.flops); }
  std::int64_t collective_ns(comm::CollectiveOp, std::int64_t, std::span<const int> ranks) const override {
    return 1000 * static_cast<std::int64_t>(ranks.size());
  }
  std::int64_t p2p_ns(std::int64_t bytes, int, int) const override { return bytes; }
};

ClusterOptions collapsed(std::vector<int> representative) {
  return {.world = static_cast<int>(representative.size()),
          .fidelity = Fidelity::shape,
          .costs = std::make_shared<PerRankCosts>(),
          .representative = std::move(representative)};
}

std::vector<int> all_represented_by_zero(int world) { return std::vector<int>(static_cast<std::size_t>(world), 0); }

const TraceEvent* find_event(const std::vector<TraceEvent>& events, const std::string& name) {
  auto it = std::find_if(events.begin(), events.end(), [&](const TraceEvent& e) { return e.name == name; });
  return it == events.end() ? nullptr : &*it;
}

TEST(SimCollapse, ACollectiveOfEightRanksWithOneSimulatedCompletesAndCostsTheEightRankTime) {
  SimCluster cluster(collapsed(all_represented_by_zero(8)));
  std::vector<int> ran;
  int world_size = 0, group_size = 0;
  cluster.run([&](comm::Backend& backend) {
    ran.push_back(backend.rank());
    world_size = backend.world_size();
    group_size = backend.world()->size();
    Buffer x = backend.device().allocate(DType::f32, 16, MemoryTag::grads);
    backend.device().compute_stream().launch("backward", {.op_class = comm::OpClass::matmul, .flops = 300.0}, {});
    backend.world()->all_reduce(x.all())->wait();
  });
  EXPECT_EQ(ran, (std::vector<int>{0}));
  EXPECT_EQ(world_size, 8);
  EXPECT_EQ(group_size, 8);
  EXPECT_EQ(cluster.simulated_ranks(), (std::vector<int>{0}));
  const auto events = cluster.tracer(0).events();
  const TraceEvent* reduce = find_event(events, "all_reduce");
  ASSERT_NE(reduce, nullptr);
  EXPECT_EQ(reduce->start_ns, 300);
  EXPECT_EQ(reduce->duration_ns, 8000) << "costed for the whole group of 8";
}

TEST(SimCollapse, ACollectiveStartsWhenTheLastSimulatedMemberIsReady) {
  // Ranks 0-3 stand for themselves and 4-7 (their tp partners, say); rank r computes 100 (r+1).
  SimCluster cluster(collapsed({0, 1, 2, 3, 0, 1, 2, 3}));
  cluster.run([](comm::Backend& backend) {
    Buffer x = backend.device().allocate(DType::f32, 16, MemoryTag::grads);
    backend.device().compute_stream().launch(
        "backward", {.op_class = comm::OpClass::matmul, .flops = 100.0 * (backend.rank() + 1)}, {});
    backend.world()->all_reduce(x.all())->wait();
  });
  for (int r = 0; r < 4; ++r) {
    const auto events = cluster.tracer(r).events();
    const TraceEvent* reduce = find_event(events, "all_reduce");
    ASSERT_NE(reduce, nullptr);
    EXPECT_EQ(reduce->start_ns, 400) << "rank " << r;
    EXPECT_EQ(reduce->duration_ns, 8000);
  }
}

TEST(SimCollapse, RepresentedRanksReadTheirRepresentativesMemoryAndTrace) {
  SimCluster cluster(collapsed({0, 0, 2, 2}));
  cluster.run([](comm::Backend& backend) {
    // Different bytes per simulated rank, so the test can tell whose stats it reads.
    Buffer params = backend.device().allocate(DType::f32, 100 * (backend.rank() + 1), MemoryTag::params);
    backend.device().compute_stream().launch("forward", {.op_class = comm::OpClass::matmul, .flops = 10.0}, {});
  });
  EXPECT_EQ(cluster.representative(1), 0);
  EXPECT_EQ(cluster.representative(3), 2);
  EXPECT_EQ(cluster.simulated_ranks(), (std::vector<int>{0, 2}));
  EXPECT_EQ(cluster.memory(1).peak(MemoryTag::params), 400);
  EXPECT_EQ(cluster.memory(3).peak(MemoryTag::params), 1200);
  EXPECT_EQ(&cluster.tracer(1), &cluster.tracer(0));
  EXPECT_EQ(&cluster.tracer(3), &cluster.tracer(2));
  EXPECT_THROW((void)cluster.memory(4), std::out_of_range);
}

TEST(SimCollapse, TheTraceHoldsOnlySimulatedRanksEachLabelledWithTheRanksItRepresents) {
  SimCluster cluster(collapsed({0, 0, 2, 3, 0, 0, 2, 3}));  // rank 3 stands for 3 and 7; rank 2 for 2 and 6
  cluster.run([](comm::Backend& backend) {
    backend.device().compute_stream().launch("forward", {.op_class = comm::OpClass::matmul, .flops = 10.0}, {});
  });
  const TraceDocument doc = cluster.trace_document();
  std::vector<int> ranks;
  for (const RankTrace& r : doc.ranks()) ranks.push_back(r.rank);
  EXPECT_EQ(ranks, (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(doc.ranks()[0].represents, (std::vector<int>{0, 1, 4, 5}));
  EXPECT_EQ(doc.ranks()[1].represents, (std::vector<int>{2, 6}));
  EXPECT_EQ(doc.ranks()[2].represents, (std::vector<int>{3, 7}));
  EXPECT_EQ(trace_represents_label(doc.ranks()[0].represents), "represents ranks [0-1, 4-5]");

  SimCluster whole({.world = 2, .fidelity = Fidelity::shape});
  whole.run([](comm::Backend&) {});
  const TraceDocument uncollapsed = whole.trace_document();
  ASSERT_EQ(uncollapsed.ranks().size(), 2u);
  for (const RankTrace& r : uncollapsed.ranks()) EXPECT_TRUE(r.represents.empty()) << "rank " << r.rank;
}

TEST(SimCollapse, BatchP2pToARankThatIsNotSimulatedFailsNamingBothRanks) {
  SimCluster cluster(collapsed({0, 0, 2, 2}));
  try {
    cluster.run([](comm::Backend& backend) {
      Buffer act = backend.device().allocate(DType::f32, 4, MemoryTag::activations);
      const comm::P2POp op{.kind = comm::P2POp::Kind::send, .buffer = act.all(), .peer = backend.rank() + 1, .tag = 0};
      backend.world()->batch_p2p({&op, 1})->wait();
    });
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("rank 0 sends to rank 1, which is not simulated (rank 0 runs for it)"), std::string::npos)
        << what;
    EXPECT_NE(what.find("--all-ranks"), std::string::npos) << what;
  }
}

TEST(SimCollapse, AHungCollectiveNamesOnlySimulatedRanksAsMissing) {
  SimCluster cluster(collapsed({0, 0, 2, 2}));
  try {
    cluster.run([](comm::Backend& backend) {
      if (backend.rank() == 2) return;  // rank 2 (standing for 2 and 3) never issues
      Buffer x = backend.device().allocate(DType::f32, 4, MemoryTag::grads);
      backend.world()->all_reduce(x.all())->wait();
    });
    FAIL() << "expected CommError";
  } catch (const CommError& e) {
    EXPECT_EQ(e.context().missing, (std::vector<int>{2}));
  }
}

TEST(SimCollapse, AStoreWaitThatNeverCompletesNamesTheGlobalRankNotItsSchedulerSlot) {
  SimCluster cluster(collapsed({0, 0, 2, 2}));  // rank 2 runs in slot 1
  try {
    cluster.run([](comm::Backend& backend) {
      if (backend.rank() != 2) return;
      const std::string keys[] = {"never_set"};
      backend.store().wait(keys, std::chrono::seconds(1));
    });
    FAIL() << "expected CommError";
  } catch (const CommError& e) {
    EXPECT_EQ(e.context().rank, 2);
  }
}

TEST(SimCollapse, GroupsKeepCreationOrderIdsAndAGroupWithoutSimulatedMembersNeverBlocks) {
  SimCluster cluster(collapsed({0, 1, 0, 1}));
  std::vector<int> ids;
  cluster.run([&](comm::Backend& backend) {
    const int pairs[2][2] = {{0, 1}, {2, 3}};
    for (const auto& pair : pairs) {
      comm::CommPtr group = backend.new_group(pair, "dp");
      if (group == nullptr) continue;
      ids.push_back(group->id());
      Buffer x = backend.device().allocate(DType::f32, 4, MemoryTag::grads);
      group->all_reduce(x.all())->wait();
    }
  });
  EXPECT_EQ(ids, (std::vector<int>{1, 1})) << "ranks 0 and 1 are members of group 1 only; group 2 has none simulated";
}

TEST(SimCollapse, TheMapIsValidatedAndRefusedWithNumericFidelityOrFaults) {
  auto rule_of = [](ClusterOptions options) -> std::string {
    try {
      SimCluster cluster(std::move(options));
    } catch (const ConfigError& e) {
      return e.path() + ": " + e.what();
    }
    return "accepted";
  };
  EXPECT_EQ(rule_of(collapsed({0, 0, 2, 2})), "accepted");
  ClusterOptions numeric = collapsed({0, 0});
  numeric.fidelity = Fidelity::numeric;
  EXPECT_NE(rule_of(numeric).find("needs shape fidelity"), std::string::npos) << rule_of(numeric);
  ClusterOptions faulty = collapsed({0, 0});
  faulty.faults = {{.kind = Fault::Kind::straggler, .rank = 1, .factor = 2.0}};
  EXPECT_NE(rule_of(faulty).find("cannot honour injected faults"), std::string::npos) << rule_of(faulty);
  ClusterOptions short_map = collapsed({0, 0});
  short_map.world = 3;
  EXPECT_NE(rule_of(short_map).find("one representative per rank"), std::string::npos) << rule_of(short_map);
  EXPECT_NE(rule_of(collapsed({0, 5})).find("representative[1]"), std::string::npos);
  // Rank 2 would be represented by rank 1, which is itself represented by rank 0.
  EXPECT_NE(rule_of(collapsed({0, 0, 1})).find("representative[2]"), std::string::npos) << rule_of(collapsed({0, 0, 1}));
}

// ---- symmetric_representatives (engine/mesh) ------------------------------------------------

TEST(SymmetricRepresentatives, EachRankIsRepresentedByItsPipelineStagesFirstRank) {
  const MeshShape shape{.pp = 2, .dp = 3, .sp = 2, .tp = 2};
  const DeviceMesh mesh(shape);
  const std::vector<int> rep = symmetric_representatives(shape);
  ASSERT_EQ(static_cast<int>(rep.size()), mesh.world());
  for (int r = 0; r < mesh.world(); ++r) {
    const MeshCoord c = mesh.coord_of(r);
    const MeshCoord s = mesh.coord_of(rep[static_cast<std::size_t>(r)]);
    EXPECT_EQ(s.pp, c.pp) << "rank " << r;
    EXPECT_EQ(s.tp, 0) << "rank " << r;
    EXPECT_EQ(s.dp, 0) << "rank " << r;
    EXPECT_EQ(s.sp, 0) << "rank " << r;
    EXPECT_EQ(rep[static_cast<std::size_t>(rep[static_cast<std::size_t>(r)])], rep[static_cast<std::size_t>(r)]);
  }
  EXPECT_EQ(symmetric_representatives({.pp = 2, .dp = 2, .sp = 1, .tp = 2}), (std::vector<int>{0, 0, 0, 0, 4, 4, 4, 4}));
}

}  // namespace
}  // namespace twinspeed::sim
