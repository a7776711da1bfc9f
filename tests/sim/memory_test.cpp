// Memory accounting of the simulated cluster under interleaved allocations and releases on many
// ranks: per-tag current and peak bytes, the total peak, and the memory counters in the trace,
// against a model of each rank's ledger kept by the test.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "sim/spmd_program.hpp"

namespace twinspeed::sim::testing {
namespace {

constexpr int kWorld = 6;
constexpr int kRounds = 40;
constexpr std::int64_t kReserved = 1000;

struct Action {
  bool allocate = true;
  MemoryTag tag = MemoryTag::params;
  DType dtype = DType::f32;
  std::int64_t numel = 0;
  std::size_t release = 0;  // index into the rank's live buffers, in allocation order
  std::int64_t flops = 0;   // compute launched after the action
};

// What one rank's ledger must say: sample by sample, and at the end.
struct LedgerModel {
  std::vector<std::tuple<MemoryTag, std::int64_t>> live;  // tag, bytes, in allocation order
  std::map<MemoryTag, std::int64_t> current, peak, at_peak;  // reserved bytes not included
  std::int64_t total = kReserved, total_peak = kReserved;
  std::vector<std::tuple<MemoryTag, std::int64_t>> samples;  // tag, bytes after each action

  void apply(const Action& a) {
    MemoryTag tag = a.tag;
    std::int64_t delta = a.numel * static_cast<std::int64_t>(dtype_size(a.dtype));
    if (!a.allocate) {
      std::tie(tag, delta) = live[a.release];
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(a.release));
      delta = -delta;
    } else {
      live.emplace_back(tag, delta);
    }
    current[tag] += delta;
    peak[tag] = std::max(peak[tag], current[tag]);
    total += delta;
    if (total > total_peak) {
      total_peak = total;
      at_peak = current;
    }
    samples.emplace_back(tag, current[tag]);
  }
};

// Per rank and round, 0 to 3 allocations or releases of random tags, dtypes and sizes, each
// followed by compute of a random cost; the last round releases everything left, in order.
std::vector<std::vector<std::vector<Action>>> make_plans(std::vector<LedgerModel>& models) {
  std::vector<std::vector<std::vector<Action>>> plans(kWorld);
  constexpr DType dtypes[] = {DType::f32, DType::bf16, DType::f64, DType::u8};
  for (int r = 0; r < kWorld; ++r) {
    std::mt19937 rng(static_cast<unsigned>(1000 + r));
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    LedgerModel& model = models[static_cast<std::size_t>(r)];
    for (int round = 0; round < kRounds; ++round) {
      std::vector<Action> actions;
      const int n = round + 1 == kRounds ? static_cast<int>(model.live.size()) : pick(4);
      for (int k = 0; k < n; ++k) {
        Action a;
        a.allocate = round + 1 < kRounds && (model.live.empty() || pick(5) < 3);
        a.tag = kAllMemoryTags[static_cast<std::size_t>(pick(static_cast<int>(kAllMemoryTags.size())))];
        a.dtype = dtypes[pick(4)];
        a.numel = pick(5000);
        const bool nothing_to_pick = round + 1 == kRounds || model.live.empty();
        a.release = nothing_to_pick ? 0 : static_cast<std::size_t>(pick(static_cast<int>(model.live.size())));
        a.flops = pick(3000);
        model.apply(a);
        actions.push_back(a);
      }
      plans[static_cast<std::size_t>(r)].push_back(actions);
    }
  }
  return plans;
}

// Sample times: each rank's compute clock, all ranks meeting at a barrier (1000 ns) per round.
std::vector<std::vector<std::int64_t>> sample_times(const std::vector<std::vector<std::vector<Action>>>& plans) {
  std::vector<std::vector<std::int64_t>> times(kWorld);
  std::vector<std::int64_t> clock(kWorld, 0);
  for (int round = 0; round < kRounds; ++round) {
    std::int64_t latest = 0;
    for (int r = 0; r < kWorld; ++r) {
      for (const Action& a : plans[static_cast<std::size_t>(r)][static_cast<std::size_t>(round)]) {
        times[static_cast<std::size_t>(r)].push_back(clock[static_cast<std::size_t>(r)]);
        clock[static_cast<std::size_t>(r)] += a.flops;
      }
      latest = std::max(latest, clock[static_cast<std::size_t>(r)]);
    }
    for (auto& c : clock) c = latest + 1000;
  }
  return times;
}

class SimMemory : public ::testing::TestWithParam<Fidelity> {};

TEST_P(SimMemory, PerTagPeaksAndCountersFollowEachRanksOwnAllocationsWhenRanksInterleave) {
  std::vector<LedgerModel> models(kWorld);
  const auto plans = make_plans(models);
  const auto times = sample_times(plans);
  SimCluster cluster({.world = kWorld,
                      .fidelity = GetParam(),
                      .reserved_bytes = kReserved,
                      .costs = std::make_shared<TestCosts>()});
  cluster.run([&](comm::Backend& backend) {
    std::vector<Buffer> live;
    for (const auto& round : plans[static_cast<std::size_t>(backend.rank())]) {
      for (const Action& a : round) {
        if (a.allocate) {
          live.push_back(backend.device().allocate(a.dtype, a.numel, a.tag));
        } else {
          live[a.release].reset();
          live.erase(live.begin() + static_cast<std::ptrdiff_t>(a.release));
        }
        backend.device().compute_stream().launch("work", {.flops = static_cast<double>(a.flops)}, {});
      }
      // Hands the baton round: every rank's allocations interleave with the others'.
      backend.world()->barrier()->wait();
    }
  });
  for (int r = 0; r < kWorld; ++r) {
    const LedgerModel& model = models[static_cast<std::size_t>(r)];
    const comm::MemoryStats stats = cluster.memory(r);
    for (MemoryTag tag : kAllMemoryTags) {
      const std::int64_t reserved = tag == MemoryTag::reserved ? kReserved : 0;
      EXPECT_EQ(stats.peak(tag), std::max(reserved, model.peak.contains(tag) ? model.peak.at(tag) + reserved : 0))
          << "rank " << r << " " << memory_tag_name(tag);
      EXPECT_EQ(stats.current(tag), reserved) << "rank " << r << " " << memory_tag_name(tag);
    }
    EXPECT_EQ(stats.total_peak_bytes, model.total_peak) << "rank " << r;
    EXPECT_EQ(stats.total_current_bytes, kReserved) << "rank " << r;
    // The per-tag bytes live at the total peak: the model's snapshot, summing to the peak.
    std::int64_t at_peak_sum = 0;
    for (MemoryTag tag : kAllMemoryTags) {
      const auto it = model.at_peak.find(tag);
      const std::int64_t reserved = tag == MemoryTag::reserved ? kReserved : 0;
      EXPECT_EQ(stats.at_peak(tag), (it == model.at_peak.end() ? 0 : it->second) + reserved)
          << "rank " << r << " " << memory_tag_name(tag);
      at_peak_sum += stats.at_peak(tag);
    }
    EXPECT_EQ(at_peak_sum, stats.total_peak_bytes) << "rank " << r;
    // The runtime's reserved bytes are the first sample, at time 0; then the model's.
    const auto samples = cluster.tracer(r).memory_samples();
    ASSERT_EQ(samples.size(), model.samples.size() + 1) << "rank " << r;
    EXPECT_EQ(std::make_tuple(samples[0].rank, samples[0].tag, samples[0].bytes, samples[0].time_ns),
              std::make_tuple(r, MemoryTag::reserved, kReserved, std::int64_t{0}));
    for (std::size_t k = 0; k < model.samples.size(); ++k) {
      const auto [tag, bytes] = model.samples[k];
      const std::int64_t reserved = tag == MemoryTag::reserved ? kReserved : 0;
      EXPECT_EQ(std::make_tuple(samples[k + 1].rank, samples[k + 1].tag, samples[k + 1].bytes, samples[k + 1].time_ns),
                std::make_tuple(r, tag, bytes + reserved, times[static_cast<std::size_t>(r)][k]))
          << "rank " << r << " sample " << k;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BothFidelities, SimMemory, ::testing::Values(Fidelity::numeric, Fidelity::shape),
                         [](const auto& info) { return info.param == Fidelity::numeric ? "numeric" : "shape"; });

}  // namespace
}  // namespace twinspeed::sim::testing

namespace twinspeed {
namespace {

TEST(SimMemory, ChargedBytesCountAgainstCapacityWithoutHoldingMemory) {
  sim::SimCluster cluster({.world = 1, .capacity_bytes = 1000});
  comm::Device& device = cluster.standalone_rank0().device();
  {
    Buffer charged = device.charge(MemoryTag::activations, 600);
    EXPECT_FALSE(charged.has_data());
    EXPECT_EQ(charged.bytes(), 600);
    EXPECT_EQ(device.memory().current(MemoryTag::activations), 600);
    EXPECT_THROW(device.allocate(DType::f32, 101, MemoryTag::params), OutOfMemory);
    EXPECT_THROW(device.charge(MemoryTag::activations, -1), Error);
  }
  EXPECT_EQ(device.memory().current(MemoryTag::activations), 0);
  EXPECT_EQ(device.memory().peak(MemoryTag::activations), 600);
}

}  // namespace
}  // namespace twinspeed
