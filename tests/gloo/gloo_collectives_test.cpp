// Every collective of the Gloo backend on real processes over loopback (2 and 4 ranks), on
// several group shapes (world, pairs, strided, reversed group-rank order) and dtypes, compared
// with values computed here. Inputs are small integers, so every expected value (sums, averages
// by 2 or 4, min, max) is exact in fp32, bf16 and fp16.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <cstdio>
#include <vector>

#include "engine/backends/gloo/gloo_backend.hpp"
#include "engine/comm/registry.hpp"
#include "engine/core/errors.hpp"
#include "gloo/multiprocess.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed {
namespace {

using backends::GlooOptions;
using comm::ReduceOp;
using std::chrono::milliseconds;
using testing::run_ranks;

GlooOptions options_for(int rank, int world, int port) {
  return {.rank = rank, .world_size = world, .master_addr = "127.0.0.1", .master_port = port,
          .connect_timeout = milliseconds(5'000), .timeout = milliseconds(2'000)};
}

// Rank r's input element i: small integers of both signs.
float input(int rank, std::int64_t i) {
  const float v = static_cast<float>((rank + 1) * (i % 5 + 1));
  return (rank + i) % 3 == 0 ? -v : v;
}

class Checker {
 public:
  Checker(comm::Device& device, DType dtype, int rank) : device_(device), dtype_(dtype), rank_(rank) {}

  Buffer make(std::int64_t numel, const std::function<float(std::int64_t)>& value) {
    Buffer f = device_.allocate(DType::f32, numel, MemoryTag::temporaries);
    for (std::int64_t i = 0; i < numel; ++i) static_cast<float*>(f.data())[i] = value(i);
    Buffer b = device_.allocate(dtype_, numel, MemoryTag::temporaries);
    kernels::copy(b.all(), f.all());
    return b;
  }
  void expect(const std::string& what, BufferView got, const std::function<float(std::int64_t)>& want) {
    Buffer f = device_.allocate(DType::f32, got.numel, MemoryTag::temporaries);
    kernels::copy(f.all(), got);
    for (std::int64_t i = 0; i < got.numel; ++i) {
      const float g = static_cast<float*>(f.data())[i], w = want(i);
      if (g != w) {
        if (failures_ < 20) {
          std::fprintf(stderr, "[rank %d] %s %s element %lld: got %g, want %g\n", rank_, what.c_str(),
                       std::string(dtype_name(dtype_)).c_str(), static_cast<long long>(i), g, w);
        }
        ++failures_;
      }
    }
  }
  int failures() const { return failures_; }
  // v rounded to the checked dtype (to nearest even, as the kernels round).
  float round(float v) {
    *static_cast<float*>(one_f32_.data()) = v;
    kernels::copy(one_.all(), one_f32_.all());
    kernels::copy(one_f32_.all(), one_.all());
    return *static_cast<float*>(one_f32_.data());
  }
  // The backend's contract: combine in fp32 in group-rank order, round to the dtype once; AVG
  // then scales by float(1/n) and rounds again.
  float combine(ReduceOp op, const std::vector<float>& values) {
    float acc = values[0];
    for (std::size_t k = 1; k < values.size(); ++k) {
      if (op == ReduceOp::min) acc = std::min(acc, values[k]);
      else if (op == ReduceOp::max) acc = std::max(acc, values[k]);
      else acc += values[k];
    }
    acc = round(acc);
    return op == ReduceOp::avg ? round(acc * static_cast<float>(1.0 / static_cast<double>(values.size()))) : acc;
  }

 private:
  comm::Device& device_;
  DType dtype_;
  int rank_;
  int failures_ = 0;
  Buffer one_f32_ = device_.allocate(DType::f32, 1, MemoryTag::temporaries);
  Buffer one_ = device_.allocate(dtype_, 1, MemoryTag::temporaries);
};

// Issues every collective on the group without waiting in between (so they queue on its comm
// stream while other groups' run on theirs), then waits and checks. Returns the failure count.
int exercise(comm::Backend& backend, comm::Comm& group, DType dtype) {
  const int me = backend.rank(), n = group.size(), gr = group.rank();
  const std::vector<int> members(group.global_ranks().begin(), group.global_ranks().end());
  const std::string where = fmt::format("group {} '{}'", group.id(), group.kind());
  Checker check(backend.device(), dtype, me);
  std::vector<comm::WorkPtr> works;
  std::vector<std::function<void()>> verify;
  auto contributions = [&](std::int64_t i, const std::function<float(int member, std::int64_t i)>& f) {
    std::vector<float> v;
    for (int m : members) v.push_back(f(m, i));
    return v;
  };
  std::vector<Buffer> keep;
  auto hold = [&](Buffer b) -> const Buffer& {
    keep.push_back(std::move(b));
    return keep.back();
  };
  keep.reserve(64);

  // all_reduce with every op, on lengths that do not divide by the group size: small (one
  // all-gather) and large (all-to-all, reduce, all-gather).
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::avg, ReduceOp::min, ReduceOp::max})
  for (std::int64_t numel : {13, 40'001}) {
    const Buffer& b = hold(check.make(numel, [&](std::int64_t i) { return input(me, i); }));
    works.push_back(group.all_reduce(b.all(), {.reduce_op = op}));
    verify.push_back([&, op, view = b.all()] {
      check.expect(fmt::format("{} all_reduce {} of {}", where, comm::reduce_op_name(op), view.numel), view,
                   [&](std::int64_t i) { return check.combine(op, contributions(i, input)); });
    });
  }
  {  // reduce to group rank 1 % n
    const int root = 1 % n;
    const Buffer& b = hold(check.make(7, [&](std::int64_t i) { return input(me, i); }));
    works.push_back(group.reduce(b.all(), root, {.reduce_op = ReduceOp::sum}));
    verify.push_back([&, root, view = b.all()] {
      check.expect(where + " reduce", view, [&](std::int64_t i) {
        return gr == root ? check.combine(ReduceOp::sum, contributions(i, input)) : input(me, i);
      });
    });
  }
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::avg}) {  // reduce_scatter, 5 per rank
    const Buffer& in = hold(check.make(5 * n, [&](std::int64_t i) { return input(me, i); }));
    const Buffer& out = hold(check.make(5, [](std::int64_t) { return 0.0f; }));
    works.push_back(group.reduce_scatter(in.all(), out.all(), {.reduce_op = op}));
    verify.push_back([&, op, view = out.all()] {
      check.expect(fmt::format("{} reduce_scatter {}", where, comm::reduce_op_name(op)), view,
                   [&](std::int64_t j) { return check.combine(op, contributions(gr * 5 + j, input)); });
    });
  }
  {  // reduce_scatter in place: the output is the input's own chunk
    const Buffer& b = hold(check.make(4 * n, [&](std::int64_t i) { return input(me, i); }));
    works.push_back(group.reduce_scatter(b.all(), b.view(gr * 4, 4)));
    verify.push_back([&, view = b.view(gr * 4, 4)] {
      check.expect(where + " reduce_scatter in place", view,
                   [&](std::int64_t j) { return check.combine(ReduceOp::sum, contributions(gr * 4 + j, input)); });
    });
  }
  {  // all_gather, 3 per rank, and in place
    const Buffer& in = hold(check.make(3, [&](std::int64_t i) { return input(me, i); }));
    const Buffer& out = hold(check.make(3 * n, [](std::int64_t) { return 0.0f; }));
    works.push_back(group.all_gather(in.all(), out.all()));
    const Buffer& inplace = hold(check.make(3 * n, [&](std::int64_t i) { return i / 3 == gr ? input(me, i % 3) : 0.0f; }));
    works.push_back(group.all_gather(inplace.view(gr * 3, 3), inplace.all()));
    for (BufferView view : {out.all(), inplace.all()}) {
      verify.push_back([&, view] {
        check.expect(where + " all_gather", view, [&](std::int64_t i) { return input(members[i / 3], i % 3); });
      });
    }
  }
  {  // broadcast from the last group rank
    const Buffer& b = hold(check.make(6, [&](std::int64_t i) { return input(me, i); }));
    works.push_back(group.broadcast(b.all(), n - 1));
    verify.push_back([&, view = b.all()] {
      check.expect(where + " broadcast", view, [&](std::int64_t i) { return input(members[n - 1], i); });
    });
  }
  {  // all_to_all, 2 per rank
    const Buffer& in = hold(check.make(2 * n, [&](std::int64_t i) { return input(me, i); }));
    const Buffer& out = hold(check.make(2 * n, [](std::int64_t) { return 0.0f; }));
    works.push_back(group.all_to_all(in.all(), out.all()));
    verify.push_back([&, view = out.all()] {
      check.expect(where + " all_to_all", view, [&](std::int64_t i) { return input(members[i / 2], gr * 2 + i % 2); });
    });
  }
  works.push_back(group.barrier());
  if (n > 1) {  // batch_p2p around the ring: two messages on one channel keep their order
    const int next = (gr + 1) % n, prev = (gr + n - 1) % n;
    const Buffer& s1 = hold(check.make(4, [&](std::int64_t i) { return input(me, i); }));
    const Buffer& s2 = hold(check.make(4, [&](std::int64_t i) { return input(me, i) + 100; }));
    const Buffer& r1 = hold(check.make(4, [](std::int64_t) { return 0.0f; }));
    const Buffer& r2 = hold(check.make(4, [](std::int64_t) { return 0.0f; }));
    std::vector<comm::P2POp> ops = {
        {.kind = comm::P2POp::Kind::send, .buffer = s1.all(), .peer = next, .tag = 7},
        {.kind = comm::P2POp::Kind::recv, .buffer = r1.all(), .peer = prev, .tag = 7},
        {.kind = comm::P2POp::Kind::send, .buffer = s2.all(), .peer = next, .tag = 7},
        {.kind = comm::P2POp::Kind::recv, .buffer = r2.all(), .peer = prev, .tag = 7}};
    works.push_back(group.batch_p2p(ops));
    verify.push_back([&, prev, a = r1.all(), b = r2.all()] {
      check.expect(where + " batch_p2p first", a, [&](std::int64_t i) { return input(members[prev], i); });
      check.expect(where + " batch_p2p second", b, [&](std::int64_t i) { return input(members[prev], i) + 100; });
    });
  }
  for (auto& w : works) w->wait();
  for (auto& v : verify) v();
  return check.failures();
}

// Creates the group shapes of a world of 2 or 4 (the same calls, in the same order, on every rank).
std::vector<comm::CommPtr> make_groups(comm::Backend& backend) {
  std::vector<comm::CommPtr> groups{backend.world()};
  auto add = [&](std::vector<int> ranks, const char* kind) {
    if (auto g = backend.new_group(ranks, kind)) groups.push_back(g);
  };
  if (backend.world_size() == 4) {
    add({0, 1}, "pair");
    add({2, 3}, "pair");
    add({0, 2}, "stride");
    add({1, 3}, "stride");
    add({3, 2, 1, 0}, "reversed");
    add({1, 2, 3}, "three");
  } else {
    add({1, 0}, "reversed");
    add({1}, "solo");
  }
  return groups;
}

int run_all(int rank, int world, int port) {
  auto backend = backends::make_gloo_backend(options_for(rank, world, port));
  int failures = 0;
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    std::vector<comm::CommPtr> groups = make_groups(*backend);
    for (auto& g : groups) failures += exercise(*backend, *g, dtype);
  }
  // Every collective left a trace event with its group and sequence number.
  int traced = 0;
  for (const TraceEvent& e : backend->tracer().events()) traced += e.category == TraceCategory::comm && e.group >= 0 && e.seq >= 0;
  if (traced < 30) {
    std::fprintf(stderr, "[rank %d] only %d comm trace events\n", rank, traced);
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}

void expect_all_zero(const std::vector<testing::ChildExit>& exits) {
  for (const auto& e : exits) {
    EXPECT_FALSE(e.killed) << "rank " << e.rank << " hung";
    EXPECT_EQ(e.code, 0) << "rank " << e.rank;
  }
}

TEST(GlooCollectives, EveryOpGroupAndDtypeOnTwoProcesses) {
  const int port = testing::free_port();
  expect_all_zero(run_ranks(2, [&](int rank) { return run_all(rank, 2, port); }));
}

TEST(GlooCollectives, EveryOpGroupAndDtypeOnFourProcesses) {
  const int port = testing::free_port();
  expect_all_zero(run_ranks(4, [&](int rank) { return run_all(rank, 4, port); }));
}

// Through the registry, as the engine creates it: settings JSON, rank and world in BackendOptions.
TEST(GlooCollectives, RegistryCreatesGlooWithSettings) {
  const int port = testing::free_port();
  expect_all_zero(run_ranks(2, [&](int rank) {
    auto backend = comm::create_backend(
        "gloo", {.rank = rank, .world_size = 2,
                 .settings_json = fmt::format(R"({{"master_addr": "127.0.0.1", "master_port": {}, "timeout_ms": 2000}})", port)});
    if (backend->name() != "gloo" || backend->world_size() != 2 || backend->rank() != rank) return 2;
    Buffer b = backend->device().allocate(DType::f32, 3, MemoryTag::grads);
    static_cast<float*>(b.data())[0] = static_cast<float>(rank + 1);
    backend->world()->all_reduce(b.all(), {.reduce_op = ReduceOp::avg})->wait();
    const bool ok = static_cast<float*>(b.data())[0] == 1.5f && backend->device().memory().current(MemoryTag::grads) == 12;
    return ok ? 0 : 3;
  }));
}

// A collective is queued on its comm stream's worker: the host goes on computing while it waits
// for a late peer, and wait() then delivers the result.
TEST(GlooCollectives, CommunicationOverlapsCompute) {
  const int port = testing::free_port();
  expect_all_zero(run_ranks(2, [&](int rank) {
    auto backend = backends::make_gloo_backend(options_for(rank, 2, port));
    Buffer b = backend->device().allocate(DType::f32, 1 << 16, MemoryTag::grads);
    for (std::int64_t i = 0; i < b.numel(); ++i) static_cast<float*>(b.data())[i] = static_cast<float>(rank + 1);
    if (rank == 1) std::this_thread::sleep_for(milliseconds(300));
    const auto start = std::chrono::steady_clock::now();
    comm::WorkPtr work = backend->world()->all_reduce(b.all());
    bool computed_meanwhile = false;
    backend->device().compute_stream().launch("compute", {}, [&] { computed_meanwhile = !work->is_completed(); });
    const auto issued = std::chrono::steady_clock::now() - start;
    work->wait();
    if (rank == 0 && (!computed_meanwhile || issued > milliseconds(100))) return 4;
    return static_cast<float*>(b.data())[b.numel() - 1] == 3.0f ? 0 : 5;
  }));
}

TEST(GlooOptions, UnknownSettingAndMissingEnvironmentAreConfigErrors) {
  auto no_env = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  EXPECT_THROW(backends::gloo_options({.rank = 0, .world_size = 1, .settings_json = R"({"bogus": 1})"}, no_env), ConfigError);
  EXPECT_THROW(backends::gloo_options({}, no_env), ConfigError);
  auto env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "RANK") return "1";
    if (name == "WORLD_SIZE") return "2";
    if (name == "MASTER_ADDR") return "10.0.0.7";
    if (name == "MASTER_PORT") return "1234";
    return std::nullopt;
  };
  backends::GlooOptions o = backends::gloo_options({}, env);
  EXPECT_EQ(o.rank, 1);
  EXPECT_EQ(o.world_size, 2);
  EXPECT_EQ(o.master_addr, "10.0.0.7");
  EXPECT_EQ(o.master_port, 1234);
}

}  // namespace
}  // namespace twinspeed
