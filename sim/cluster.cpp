#include "sim/cluster.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <cstring>
#include <deque>
#include <map>
#include <numeric>
#include <tuple>
#include <optional>

#include "engine/core/errors.hpp"
#include "kernels/cpu/reduce.hpp"
#include "sim/collective_exec.hpp"
#include "sim/scheduler.hpp"
#include "sim/sim_device.hpp"
#include "sim/sim_store.hpp"

namespace twinspeed::sim {

namespace {

// The cluster whose run() is executing on this thread; its scheduler knows which rank is running.
thread_local SimCluster::State* t_current_cluster = nullptr;

std::uint64_t checksum(const void* data, std::size_t n) {
  // FNV-1a over 64-bit words in four interleaved lanes (four independent multiply chains instead of
  // one, so it runs at memory speed on the large inputs every collective checksums twice), then the
  // tail bytes: any write to the buffer changes it with overwhelming probability.
  constexpr std::uint64_t kPrime = 1099511628211ull;
  std::uint64_t lanes[4] = {1469598103934665603ull, 1469598103934665603ull ^ 1, 1469598103934665603ull ^ 2,
                            1469598103934665603ull ^ 3};
  const auto* p = static_cast<const unsigned char*>(data);
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    std::uint64_t words[4];
    std::memcpy(words, p + i, sizeof words);
    for (int k = 0; k < 4; ++k) lanes[k] = (lanes[k] ^ words[k]) * kPrime;
  }
  std::uint64_t h = lanes[0];
  for (int k = 1; k < 4; ++k) h = (h ^ lanes[k]) * kPrime;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, p + i, sizeof word);
    h = (h ^ word) * kPrime;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * kPrime;
  return h;
}

// A view's bytes, in place; nothing for a view without data (shape fidelity holds no payload).
std::span<const std::byte> bytes_of(BufferView v) {
  if (!v.has_data()) return {};
  return {static_cast<const std::byte*>(v.data()), static_cast<std::size_t>(v.bytes())};
}

// A copy of a view's bytes from the cluster's pool; nothing for a view without data.
HostBytes snapshot_of(BufferView v, const std::shared_ptr<HostBlockPool>& pool) {
  const auto bytes = bytes_of(v);
  HostBytes copy(pool, bytes.size());
  if (!bytes.empty()) std::memcpy(copy.data(), bytes.data(), bytes.size());
  return copy;
}

// Fills the parts of out that do not overlap in with poison: what a GPU's output holds until the
// collective is waited on.
void poison_outside(BufferView out, BufferView in) {
  if (!out.has_data()) return;
  auto* o = static_cast<std::byte*>(out.data());
  const auto* i = static_cast<const std::byte*>(in.has_data() ? in.data() : nullptr);
  const std::size_t esize = dtype_size(out.dtype());
  std::byte* o_end = o + out.bytes();
  const std::byte* i_end = i == nullptr ? nullptr : i + in.bytes();
  auto fill = [&](std::byte* from, std::byte* to) {
    if (to > from) kernels::fill_poison(from, out.dtype(), (to - from) / static_cast<std::ptrdiff_t>(esize));
  };
  if (i == nullptr || i_end <= o || i >= o_end) {
    fill(o, o_end);
    return;
  }
  fill(o, const_cast<std::byte*>(std::max<const std::byte*>(i, o)));
  fill(const_cast<std::byte*>(std::min<const std::byte*>(i_end, o_end)), o_end);
}

struct Contribution {
  bool issued = false;
  int global_rank = -1;
  // What the collective reads of this rank's input: its snapshot, or the input itself when the
  // collective executes at this rank's issue (the last to issue), before anything can change it.
  HostBytes snapshot;
  std::span<const std::byte> data;
  std::uint64_t sum = 0;
  BufferView input, output;
  std::int64_t ready_ns = 0;
  std::int64_t timeout_ns = 0;  // the issuer's CollectiveOptions::timeout
  SimStream* stream = nullptr;
  bool delivered = false;
};

// One collective (group, seq) as the ranks issue it.
struct Pending {
  int group = -1;
  std::int64_t seq = -1;
  CollectiveShape shape;
  int first_rank = -1;
  std::vector<Contribution> parts;  // by group rank
  int expected = 0;                 // issuers: the group's simulated members
  int issued = 0;
  bool executed = false;
  std::optional<CommError> error;
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::vector<SharedBytes> results;
  // A reduction folds inputs into acc as they are issued, in group-rank order: the first `folded`
  // group ranks are in; an input issued before its turn waits as a snapshot (folds_inputs()).
  HostBytes acc;
  int folded = 0;
  int delivered = 0;  // participants whose wait() delivered; at `expected` the entry is dropped
};

// One rank's batch_p2p call: complete when every one of its sends and receives is matched.
struct P2PBatch {
  int global_rank = -1;
  int outstanding = 0;
  std::int64_t end_ns = 0;
  std::int64_t deadline_ns = 0;  // issue time + the issuer's timeout
  std::optional<CommError> error;
  std::vector<std::pair<BufferView, HostBytes>> deliveries;  // receive buffer, data
  bool delivered = false;
};

// A posted send or receive waiting for its match on channel (src, dst, tag).
struct P2PEnd {
  std::shared_ptr<P2PBatch> batch;
  BufferView buffer;
  HostBytes data;  // the send's snapshot
  std::int64_t ready_ns = 0;
  SimStream* stream = nullptr;
};

struct Group {
  int id = -1;
  std::string kind;
  std::vector<int> ranks;
  int simulated = 0;  // members that run (all of them unless ranks are collapsed)
  std::map<std::int64_t, std::shared_ptr<Pending>> pending;
  using Channel = std::tuple<int, int, int>;  // src group rank, dst group rank, tag
  std::map<Channel, std::deque<P2PEnd>> sends, recvs;
};

}  // namespace

struct RankContext;

struct SimCluster::State {
  ClusterOptions options;
  // Host memory of every device and collective payload; declared before the ranks, whose Buffers
  // return to it.
  std::shared_ptr<HostBlockPool> pool = std::make_shared<HostBlockPool>();
  std::shared_ptr<const CostModel> costs;
  std::vector<int> representative;  // by rank: the simulated rank standing for it (identity: no collapse)
  std::vector<int> simulated;       // the ranks that run, ascending; slot i runs simulated[i]
  std::unique_ptr<Scheduler> scheduler_owner;
  Scheduler& scheduler;
  ThreadScheduler* thread_scheduler = nullptr;  // set when ranks are threads (standalone needs it)
  SimStore store;
  std::vector<std::unique_ptr<RankContext>> ranks;  // by scheduler slot: one per simulated rank
  std::vector<int> slot_of;                         // by global rank: its slot, -1 if not simulated
  std::vector<std::unique_ptr<Group>> groups;       // by id (creation order); null until created
  std::map<int, std::shared_ptr<comm::MemoryLedger>> node_host;  // by node: its host memory (Backend::host())

  RunAhead run_ahead;            // ranks waiting for their own stream (sim_device.hpp)
  int silent_blocked = 0;        // ranks stopped by a silent_rank fault
  std::int64_t next_flow_id = 0; // links a p2p send to its receive in traces
  std::uint64_t silent_release = 0;

  explicit State(ClusterOptions o)
      : options(std::move(o)),
        costs(make_costs(options)),
        representative(representatives_of(options)),
        simulated(simulated_ranks_of(representative)),
        scheduler_owner(make_scheduler(options, static_cast<int>(simulated.size()))),
        scheduler(*scheduler_owner),
        thread_scheduler(dynamic_cast<ThreadScheduler*>(scheduler_owner.get())),
        store(scheduler) {}

  static std::unique_ptr<Scheduler> make_scheduler(const ClusterOptions& o, int slots) {
    bool fibers = o.execution == RankExecution::fibers ||
                  (o.execution == RankExecution::automatic && o.fidelity == Fidelity::shape && o.world > 1);
    if (fibers) return std::make_unique<FiberScheduler>(slots);
    return std::make_unique<ThreadScheduler>(slots);
  }
  static std::vector<int> representatives_of(const ClusterOptions& o);
  static std::vector<int> simulated_ranks_of(const std::vector<int>& representative);
  bool fail_hung_operations();
  // Drops a collective every participant has waited on (its memory goes with the last Work).
  void release_pending(int group, std::int64_t seq) { groups[static_cast<std::size_t>(group)]->pending.erase(seq); }
  bool is_simulated(int rank) const { return slot_of[static_cast<std::size_t>(rank)] >= 0; }
  int node_of(int rank) const { return rank / std::max(1, options.ranks_per_node); }
  std::shared_ptr<comm::MemoryLedger>& node_ledger(int node) {
    auto& ledger = node_host[node];
    if (!ledger) {
      ledger = std::make_shared<comm::MemoryLedger>(node * std::max(1, options.ranks_per_node), options.host_capacity_bytes);
    }
    return ledger;
  }
  // The host side of a simulated rank: its own node's ledger first, then every other node holding
  // ranks it stands for, each with how many (sim_device.hpp HostSide).
  HostSide host_side(int rank) {
    std::map<int, int> weights;  // node -> ranks of it this rank stands for
    for (int r = 0; r < options.world; ++r) {
      if (representative[static_cast<std::size_t>(r)] == rank) ++weights[node_of(r)];
    }
    HostSide side;
    side.shares.push_back({node_ledger(node_of(rank)), weights[node_of(rank)]});
    for (const auto& [node, weight] : weights) {
      if (node != node_of(rank)) side.shares.push_back({node_ledger(node), weight});
    }
    return side;
  }
  // The context of a simulated rank.
  RankContext& context(int rank) const;
  // The group with this id, created with these members on first use (ids are creation indices:
  // every rank creates the same groups in the same order, the first one to get there makes it).
  Group& group(int id, std::span<const int> members, std::string_view kind);

  static std::shared_ptr<const CostModel> make_costs(const ClusterOptions& o) {
    validate_faults(o.faults, o.world);
    std::shared_ptr<const CostModel> base = o.costs ? o.costs : std::make_shared<ZeroCostModel>();
    if (o.faults.empty()) return base;
    return std::make_shared<FaultyCostModel>(base, o.faults);
  }
};

namespace {

class SimWork final : public comm::Work {
 public:
  SimWork(SimCluster::State& cluster, std::shared_ptr<Pending> pending, int group_rank, SimDevice& device)
      : cluster_(cluster), pending_(std::move(pending)), group_rank_(group_rank), device_(device) {}

  void wait(comm::Stream* stream) override {
    Pending& p = *pending_;
    cluster_.scheduler.block_until([pending = pending_] { return pending->executed || pending->error.has_value(); });
    Contribution& mine = p.parts[static_cast<std::size_t>(group_rank_)];
    if (p.error) {
      if (stream != nullptr) {
        if (auto* s = dynamic_cast<SimStream*>(stream)) s->advance_to(p.end_ns);
      }
      throw *p.error;
    }
    if (!mine.delivered) {
      if (mine.input.has_data() &&
          checksum(mine.input.data(), static_cast<std::size_t>(mine.input.bytes())) != mine.sum) {
        throw CommError("input buffer written between issue and wait() (a GPU would race here)",
                        {.group = p.group, .seq = p.seq, .op = std::string(comm::collective_op_name(p.shape.op)),
                         .rank = mine.global_rank});
      }
      SharedBytes& result = p.results[static_cast<std::size_t>(group_rank_)];
      if (mine.output.has_data() && result && !result->empty()) {
        std::memcpy(mine.output.data(), result->data(), result->size());
      }
      result.reset();
      mine.delivered = true;
      if (++p.delivered == p.expected) cluster_.release_pending(p.group, p.seq);
    }
    SimStream& target = stream != nullptr ? dynamic_cast<SimStream&>(*stream) : device_.compute();
    target.settle();
    target.advance_to(p.end_ns);
  }
  void synchronize() override { wait(nullptr); }
  bool is_completed() const override { return pending_->executed || pending_->error.has_value(); }

 private:
  SimCluster::State& cluster_;
  std::shared_ptr<Pending> pending_;
  int group_rank_;
  SimDevice& device_;
};

class P2PWork final : public comm::Work {
 public:
  P2PWork(SimCluster::State& cluster, std::shared_ptr<P2PBatch> batch, SimDevice& device)
      : cluster_(cluster), batch_(std::move(batch)), device_(device) {}
  void wait(comm::Stream* stream) override {
    cluster_.scheduler.block_until([b = batch_] { return b->outstanding == 0 || b->error.has_value(); });
    if (batch_->error) throw *batch_->error;
    SimStream& target = stream != nullptr ? dynamic_cast<SimStream&>(*stream) : device_.compute();
    target.settle();
    if (!batch_->delivered) {
      for (auto& [buffer, data] : batch_->deliveries) {
        if (buffer.has_data() && !data.empty()) std::memcpy(buffer.data(), data.data(), data.size());
      }
      batch_->delivered = true;
    }
    target.advance_to(batch_->end_ns);
  }
  void synchronize() override { wait(nullptr); }
  bool is_completed() const override { return batch_->outstanding == 0 || batch_->error.has_value(); }

 private:
  SimCluster::State& cluster_;
  std::shared_ptr<P2PBatch> batch_;
  SimDevice& device_;
};

}  // namespace

// One rank: its device, tracer, groups and per-group sequence numbers.
struct RankContext final : comm::Backend {
  SimCluster::State& cluster;
  int rank_;
  TraceRecorder tracer_;
  SimDevice device_;
  SimDevice host_;  // the node's host memory and CPU, as this rank sees them
  int next_group_id = 1;
  std::map<int, std::int64_t> next_seq;
  std::int64_t next_op = 0;  // collectives issued so far, every group
  // A rank's outgoing and incoming links carry one transfer at a time: when each is next free.
  std::int64_t send_link_free_ns = 0;
  std::int64_t recv_link_free_ns = 0;
  comm::CommPtr world_;

  RankContext(SimCluster::State& c, int rank)
      : cluster(c),
        rank_(rank),
        device_(rank, c.options.fidelity == Fidelity::numeric, c.options.capacity_bytes, *c.costs, tracer_,
                &c.scheduler, &c.run_ahead, c.pool),
        host_(rank, c.options.fidelity == Fidelity::numeric, 0, *c.costs, tracer_, &c.scheduler, &c.run_ahead, c.pool,
              c.host_side(rank)) {
    if (c.options.reserved_bytes > 0) device_.reserve(c.options.reserved_bytes);
  }

  std::string_view name() const override { return "sim"; }
  int rank() const override { return rank_; }
  int world_size() const override { return cluster.options.world; }
  comm::Device& device() override { return device_; }
  comm::Device& host() override { return host_; }
  comm::Store& store() override { return cluster.store; }
  TraceRecorder& tracer() override { return tracer_; }
  comm::CommPtr world() override;
  comm::CommPtr new_group(std::span<const int> ranks, std::string_view kind) override;
  comm::CommPtr make_comm(Group& group);
};

namespace {

class SimComm final : public comm::Comm {
 public:
  SimComm(RankContext& rank, Group& group) : rank_(rank), group_(group) {
    auto it = std::find(group.ranks.begin(), group.ranks.end(), rank.rank_);
    group_rank_ = static_cast<int>(it - group.ranks.begin());
  }
  std::string_view backend_name() const override { return "sim"; }
  int id() const override { return group_.id; }
  std::string_view kind() const override { return group_.kind; }
  int rank() const override { return group_rank_; }
  int size() const override { return static_cast<int>(group_.ranks.size()); }
  std::span<const int> global_ranks() const override { return group_.ranks; }

  comm::WorkPtr all_reduce(BufferView data, const comm::CollectiveOptions& o) override {
    return issue(comm::CollectiveOp::all_reduce, data, data, 0, o);
  }
  comm::WorkPtr reduce(BufferView data, int root, const comm::CollectiveOptions& o) override {
    return issue(comm::CollectiveOp::reduce, data, data, root, o);
  }
  comm::WorkPtr reduce_scatter(BufferView in, BufferView out, const comm::CollectiveOptions& o) override {
    return issue(comm::CollectiveOp::reduce_scatter, in, out, 0, o);
  }
  comm::WorkPtr all_gather(BufferView in, BufferView out, const comm::CollectiveOptions& o) override {
    return issue(comm::CollectiveOp::all_gather, in, out, 0, o);
  }
  comm::WorkPtr broadcast(BufferView data, int root, const comm::CollectiveOptions& o) override {
    return issue(comm::CollectiveOp::broadcast, data, data, root, o);
  }
  comm::WorkPtr all_to_all(BufferView in, BufferView out, const comm::CollectiveOptions& o) override {
    return issue(comm::CollectiveOp::all_to_all, in, out, 0, o);
  }
  comm::WorkPtr barrier(const comm::CollectiveOptions& o) override {
    return issue(comm::CollectiveOp::barrier, BufferView{}, BufferView{}, 0, o);
  }
  comm::WorkPtr batch_p2p(std::span<const comm::P2POp> ops, const comm::CollectiveOptions& o) override;

 private:
  comm::WorkPtr issue(comm::CollectiveOp op, BufferView in, BufferView out, int root, const comm::CollectiveOptions& o);
  void validate(comm::CollectiveOp op, BufferView in, BufferView out, int root) const;
  CommError error(const std::string& message, const Pending& p, std::vector<int> missing = {}) const {
    return CommError(message, {.group = group_.id, .seq = p.seq, .op = std::string(comm::collective_op_name(p.shape.op)),
                               .rank = rank_.rank_, .missing = std::move(missing)});
  }
  void execute(Pending& p);
  bool folds_inputs(const CollectiveShape& shape) const {
    return rank_.cluster.options.fidelity == Fidelity::numeric && is_reduction(shape.op) && shape.input_numel > 0;
  }
  void fold_in_turn(Pending& p, std::span<const std::byte> input);
  [[noreturn]] void fall_silent(std::int64_t seq, comm::CollectiveOp op);

  RankContext& rank_;
  Group& group_;
  int group_rank_ = -1;
};

void SimComm::validate(comm::CollectiveOp op, BufferView in, BufferView out, int root) const {
  const int n = size();
  auto fail = [&](const std::string& why) {
    throw Error(fmt::format("{} on group {} ({}): {}", comm::collective_op_name(op), group_.id, group_.kind, why));
  };
  if ((op == comm::CollectiveOp::reduce || op == comm::CollectiveOp::broadcast) && (root < 0 || root >= n)) {
    fail(fmt::format("root {} is not a rank of a group of {}", root, n));
  }
  if (op == comm::CollectiveOp::barrier) return;
  if (in.buffer == nullptr) fail("no input buffer");
  if (in.dtype() != out.dtype()) fail("input and output dtypes differ");
  if (op == comm::CollectiveOp::reduce_scatter && in.numel != out.numel * n) {
    fail(fmt::format("input of {} elements must be {} x the output's {} (equal chunks; padding is the partition's job)",
                     in.numel, n, out.numel));
  }
  if (op == comm::CollectiveOp::all_gather && out.numel != in.numel * n) {
    fail(fmt::format("output of {} elements must be {} x the input's {}", out.numel, n, in.numel));
  }
  if (op == comm::CollectiveOp::all_to_all && (in.numel != out.numel || in.numel % n != 0)) {
    fail(fmt::format("input and output must be equal and divisible by {} ({} and {})", n, in.numel, out.numel));
  }
}

comm::WorkPtr SimComm::issue(comm::CollectiveOp op, BufferView in, BufferView out, int root,
                             const comm::CollectiveOptions& o) {
  validate(op, in, out, root);
  SimCluster::State& cluster = rank_.cluster;
  // With no stream given the collective runs on the group's comm stream, after the work already
  // launched on the compute stream (c10d's ProcessGroupNCCL makes its stream wait the same way).
  // Streams settle before the collective is registered: a rank waiting for its stream has not
  // issued this collective yet.
  SimStream& stream = o.stream != nullptr ? dynamic_cast<SimStream&>(*o.stream)
                                          : rank_.device_.sim_stream(fmt::format("comm-{}", group_.kind));
  stream.settle();
  if (o.stream == nullptr) {
    rank_.device_.compute().settle();
    stream.advance_to(rank_.device_.compute().clock_ns());
  }
  const std::int64_t seq = rank_.next_seq[group_.id]++;
  const Fault* fault = collective_fault(cluster.options.faults, rank_.rank_, rank_.next_op++, group_.id, seq);
  if (fault != nullptr && fault->kind == Fault::Kind::silent_rank) fall_silent(seq, op);
  CollectiveShape shape{.op = op,
                        .reduce_op = o.reduce_op,
                        .dtype = in.buffer != nullptr ? in.dtype() : DType::u8,
                        .input_numel = in.numel,
                        .root = root};
  auto& slot = group_.pending[seq];
  if (!slot) {
    slot = std::make_shared<Pending>();
    slot->group = group_.id;
    slot->seq = seq;
    slot->shape = shape;
    slot->first_rank = rank_.rank_;
    slot->parts.resize(group_.ranks.size());
    slot->expected = group_.simulated;
  }
  Pending& p = *slot;
  auto work = std::make_shared<SimWork>(cluster, slot, group_rank_, rank_.device_);
  if (fault != nullptr && !p.error) {
    p.error = error(fmt::format("injected fault: the collective failed on rank {}", rank_.rank_), p, {rank_.rank_});
  }
  // A collective that already failed (a fault, a desync seen by another rank) fails at wait().
  if (p.error) return work;
  const CollectiveShape& first = p.shape;
  if (first.op != shape.op || first.dtype != shape.dtype || first.input_numel != shape.input_numel ||
      first.root != shape.root || first.reduce_op != shape.reduce_op) {
    p.error = error(fmt::format("desync: rank {} issued {} of {} x {} (root {}, {}) where rank {} issued {} of {} x {} "
                                "(root {}, {})",
                                rank_.rank_, comm::collective_op_name(op), shape.input_numel, dtype_name(shape.dtype),
                                root, comm::reduce_op_name(shape.reduce_op), p.first_rank,
                                comm::collective_op_name(first.op), first.input_numel, dtype_name(first.dtype),
                                first.root, comm::reduce_op_name(first.reduce_op)),
                    p, {rank_.rank_, p.first_rank});
    throw *p.error;
  }
  Contribution& mine = p.parts[static_cast<std::size_t>(group_rank_)];
  mine.issued = true;
  mine.global_rank = rank_.rank_;
  mine.input = in;
  mine.output = out;
  // Only inputs the collective reads are copied (a broadcast reads its root's alone), and not the
  // last issuer's: the collective executes below, before this rank can write its input. A
  // reduction copies only inputs issued before their turn to be folded in. Every rank's checksum
  // is kept for the write-before-wait check.
  if (folds_inputs(p.shape)) {
    if (!in.has_data()) throw Error(fmt::format("{} on group {}: a numeric input without data", comm::collective_op_name(op), group_.id));
    if (group_rank_ == p.folded) {
      fold_in_turn(p, bytes_of(in));
    } else {
      mine.snapshot = snapshot_of(in, cluster.pool);
    }
  } else if (op != comm::CollectiveOp::broadcast || group_rank_ == root) {
    if (p.issued + 1 == p.expected) {
      mine.data = bytes_of(in);
    } else {
      mine.snapshot = snapshot_of(in, cluster.pool);
      mine.data = {mine.snapshot.data(), mine.snapshot.size()};
    }
  }
  mine.sum = in.has_data() ? checksum(in.data(), static_cast<std::size_t>(in.bytes())) : 0;
  mine.ready_ns = stream.clock_ns();
  mine.timeout_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(comm::resolve_timeout(o.timeout, comm::kDefaultCommTimeout))
          .count();
  mine.stream = &stream;
  if (op != comm::CollectiveOp::reduce || group_rank_ == root) poison_outside(out, in);
  if (++p.issued == p.expected) execute(p);
  if (!p.executed) stream.set_blocker([pending = slot] { return pending->executed || pending->error.has_value(); });
  return work;
}

// A silenced rank never issues: it blocks until the deadlock handler has failed everyone waiting
// for it, then stops with its own error.
void SimComm::fall_silent(std::int64_t seq, comm::CollectiveOp op) {
  SimCluster::State& cluster = rank_.cluster;
  {
    ScopedCount silent(cluster.silent_blocked);
    const std::uint64_t release = cluster.silent_release;
    cluster.scheduler.block_until([&cluster, release] { return cluster.silent_release != release; });
  }
  throw CommError(fmt::format("injected fault: rank {} fell silent before issuing this collective", rank_.rank_),
                  {.group = group_.id, .seq = seq, .op = std::string(comm::collective_op_name(op)), .rank = rank_.rank_});
}

// Folds the input of group rank p.folded (this rank's, at its issue), then every input issued
// ahead of its turn that is now next.
void SimComm::fold_in_turn(Pending& p, std::span<const std::byte> input) {
  fold_reduction_input(p.shape, p.acc, p.folded == 0, input, rank_.cluster.pool);
  ++p.folded;
  while (p.folded < size() && !p.parts[static_cast<std::size_t>(p.folded)].snapshot.empty()) {
    HostBytes& waiting = p.parts[static_cast<std::size_t>(p.folded)].snapshot;
    fold_reduction_input(p.shape, p.acc, false, {waiting.data(), waiting.size()}, rank_.cluster.pool);
    waiting.reset();
    ++p.folded;
  }
}

void SimComm::execute(Pending& p) {
  SimCluster::State& cluster = rank_.cluster;
  std::vector<std::span<const std::byte>> inputs;
  for (const auto& c : p.parts) inputs.push_back(c.data);
  if (folds_inputs(p.shape)) {
    p.results = finish_reduction(p.shape, size(), std::move(p.acc), cluster.pool);
  } else if (cluster.options.fidelity == Fidelity::numeric) {
    p.results = execute_collective(p.shape, inputs, cluster.pool);
  } else {
    p.results.assign(p.parts.size(), nullptr);
  }
  for (auto& c : p.parts) {  // executed: only the results are needed now
    c.snapshot.reset();
    c.data = {};
  }
  // Ranks that are not simulated are represented by simulated members that ran the same program:
  // they would have been ready at the same time. The cost is the whole group's.
  std::int64_t start = 0;
  for (const auto& c : p.parts) start = std::max(start, c.ready_ns);
  const std::int64_t bytes = p.shape.input_numel * static_cast<std::int64_t>(dtype_size(p.shape.dtype));
  p.start_ns = start;
  p.end_ns = start + cluster.costs->collective_ns(p.shape.op, bytes, group_.ranks);
  for (const auto& c : p.parts) {
    if (!c.issued) continue;
    c.stream->advance_to(p.end_ns);
    RankContext& owner = cluster.context(c.global_rank);
    owner.tracer_.record({.rank = c.global_rank,
                          .lane = std::string(c.stream->name()),
                          .name = std::string(comm::collective_op_name(p.shape.op)),
                          .category = TraceCategory::comm,
                          .start_ns = p.start_ns,
                          .duration_ns = p.end_ns - p.start_ns,
                          .op = std::string(comm::collective_op_name(p.shape.op)),
                          .group = p.group,
                          .seq = p.seq,
                          .bytes = bytes,
                          .dtype = std::string(comm::collective_trace_dtype(p.shape.op, p.shape.dtype))});
  }
  p.executed = true;
}

// Grouped sends and receives: each is matched, in posting order, with the opposite end on the same
// (src, dst, tag) channel; the transfer starts when both ends are ready.
comm::WorkPtr SimComm::batch_p2p(std::span<const comm::P2POp> ops, const comm::CollectiveOptions& o) {
  SimCluster::State& cluster = rank_.cluster;
  for (const auto& op : ops) {
    if (op.peer < 0 || op.peer >= size()) {
      throw Error(fmt::format("batch_p2p on group {}: peer {} is not a rank of a group of {}", group_.id, op.peer, size()));
    }
    const int peer = group_.ranks[static_cast<std::size_t>(op.peer)];
    if (!cluster.is_simulated(peer)) {
      // A represented rank runs nothing, so nothing would ever match this end: the program talks
      // to ranks its representatives do not stand for, and the collapse is wrong for it.
      throw Error(fmt::format("batch_p2p on group {} ({}): rank {} {} rank {}, which is not simulated (rank {} runs "
                              "for it); the symmetric-rank collapse does not hold for this program: simulate every "
                              "rank (--all-ranks)",
                              group_.id, group_.kind, rank_.rank_,
                              op.kind == comm::P2POp::Kind::send ? "sends to" : "receives from", peer,
                              cluster.representative[static_cast<std::size_t>(peer)]));
    }
  }
  auto batch = std::make_shared<P2PBatch>();
  batch->global_rank = rank_.rank_;
  batch->outstanding = static_cast<int>(ops.size());
  SimStream& stream = o.stream != nullptr ? dynamic_cast<SimStream&>(*o.stream) : rank_.device_.sim_stream("p2p");
  stream.settle();
  if (o.stream == nullptr) {
    rank_.device_.compute().settle();
    stream.advance_to(rank_.device_.compute().clock_ns());
  }
  // Every op of the batch is ready when the batch is issued (not after earlier ops of the same
  // batch were matched and moved the stream).
  const std::int64_t ready_ns = stream.clock_ns();
  batch->deadline_ns =
      ready_ns +
      std::chrono::duration_cast<std::chrono::nanoseconds>(comm::resolve_timeout(o.timeout, comm::kDefaultCommTimeout))
          .count();
  for (const auto& op : ops) {
    const bool is_send = op.kind == comm::P2POp::Kind::send;
    Group::Channel channel = is_send ? Group::Channel{group_rank_, op.peer, op.tag} : Group::Channel{op.peer, group_rank_, op.tag};
    P2PEnd end{.batch = batch, .buffer = op.buffer, .data = is_send ? snapshot_of(op.buffer, cluster.pool) : HostBytes{},
               .ready_ns = ready_ns, .stream = &stream};
    if (!is_send) poison_outside(op.buffer, BufferView{});
    auto& opposite = (is_send ? group_.recvs : group_.sends)[channel];
    if (opposite.empty()) {
      (is_send ? group_.sends : group_.recvs)[channel].push_back(std::move(end));
      continue;
    }
    P2PEnd other = std::move(opposite.front());
    opposite.pop_front();
    P2PEnd& send = is_send ? end : other;
    P2PEnd& recv = is_send ? other : end;
    if (send.buffer.dtype() != recv.buffer.dtype() || send.buffer.numel != recv.buffer.numel) {
      CommError e(fmt::format("batch_p2p desync on channel {} -> {} tag {}: send of {} x {}, receive of {} x {}",
                              group_.ranks[static_cast<std::size_t>(std::get<0>(channel))],
                              group_.ranks[static_cast<std::size_t>(std::get<1>(channel))], std::get<2>(channel),
                              send.buffer.numel, dtype_name(send.buffer.dtype()), recv.buffer.numel,
                              dtype_name(recv.buffer.dtype())),
                  {.group = group_.id, .op = "batch_p2p", .rank = rank_.rank_,
                   .missing = {send.batch->global_rank, recv.batch->global_rank}});
      send.batch->error = e;
      recv.batch->error = e;
      throw e;
    }
    const std::int64_t bytes = send.buffer.bytes();
    RankContext& sender = cluster.context(send.batch->global_rank);
    RankContext& receiver = cluster.context(recv.batch->global_rank);
    const std::int64_t start =
        std::max({send.ready_ns, recv.ready_ns, sender.send_link_free_ns, receiver.recv_link_free_ns});
    const std::int64_t finish = start + cluster.costs->p2p_ns(bytes, send.batch->global_rank, recv.batch->global_rank);
    sender.send_link_free_ns = finish;
    receiver.recv_link_free_ns = finish;
    recv.batch->deliveries.emplace_back(recv.buffer, std::move(send.data));
    const std::int64_t flow = cluster.next_flow_id++;
    for (P2PEnd* e : {&send, &recv}) {
      e->batch->end_ns = std::max(e->batch->end_ns, finish);
      --e->batch->outstanding;
      e->stream->advance_to(finish);
      cluster.context(e->batch->global_rank).tracer_.record(
          {.rank = e->batch->global_rank, .lane = e == &send ? "p2p-send" : "p2p-recv",
           .name = e == &send ? "send" : "recv", .category = TraceCategory::p2p, .start_ns = start,
           .duration_ns = finish - start, .op = "batch_p2p", .group = group_.id, .bytes = bytes,
           .dtype = std::string(dtype_name(send.buffer.dtype())), .flow_out = e == &send ? flow : -1,
           .flow_in = e == &recv ? flow : -1});
    }
  }
  if (batch->outstanding > 0) {
    stream.set_blocker([batch] { return batch->outstanding == 0 || batch->error.has_value(); });
  }
  return std::make_shared<P2PWork>(cluster, batch, rank_.device_);
}

}  // namespace

comm::CommPtr RankContext::make_comm(Group& group) { return std::make_shared<SimComm>(*this, group); }

comm::CommPtr RankContext::world() {
  if (!world_) {
    std::vector<int> everyone(static_cast<std::size_t>(cluster.options.world));
    std::iota(everyone.begin(), everyone.end(), 0);
    world_ = make_comm(cluster.group(0, everyone, "world"));
  }
  return world_;
}

Group& SimCluster::State::group(int id, std::span<const int> members, std::string_view kind) {
  if (static_cast<std::size_t>(id) >= groups.size()) groups.resize(static_cast<std::size_t>(id) + 1);
  std::unique_ptr<Group>& slot = groups[static_cast<std::size_t>(id)];
  if (!slot) {
    slot = std::make_unique<Group>();
    slot->id = id;
    slot->kind = std::string(kind);
    slot->ranks.assign(members.begin(), members.end());
    slot->simulated = static_cast<int>(std::count_if(members.begin(), members.end(), [this](int r) { return is_simulated(r); }));
  }
  return *slot;
}

// Every simulated rank creates every group, so at thousands of ranks this runs millions of times:
// a group that exists is compared in place, nothing is copied.
comm::CommPtr RankContext::new_group(std::span<const int> ranks, std::string_view kind) {
  const int id = next_group_id++;
  bool member = false;
  for (int r : ranks) {
    if (r < 0 || r >= cluster.options.world) {
      throw Error(fmt::format("group {} ('{}') names rank {} outside a world of {}", id, kind, r, cluster.options.world));
    }
    member = member || r == rank_;
  }
  Group& g = cluster.group(id, ranks, kind);
  if (!std::equal(g.ranks.begin(), g.ranks.end(), ranks.begin(), ranks.end()) || g.kind != kind) {
    throw CommError(fmt::format("desync: rank {} created group {} as '{}' {} but another rank created it as '{}' {}",
                                rank_, id, kind, ranks, g.kind, g.ranks),
                    {.group = id, .op = "new_group", .rank = rank_});
  }
  return member ? make_comm(g) : nullptr;
}

bool SimCluster::State::fail_hung_operations() {
  // First let ranks that only wait for their own stream run ahead, as a GPU host would; only what
  // is still stuck after that is hung.
  if (run_ahead.waiting > 0) {
    ++run_ahead.generation;
    return true;
  }
  bool failed_any = false;
  for (auto& group_slot : groups) {
    if (!group_slot) continue;
    Group& group = *group_slot;
    const int id = group.id;
    for (auto& [seq, pending] : group.pending) {
      Pending& p = *pending;
      if (p.executed || p.error) continue;
      // It times out at the earliest deadline among the ranks that issued it. Represented ranks
      // run nothing: only simulated ones can be missing.
      std::vector<int> missing;
      std::int64_t deadline = std::numeric_limits<std::int64_t>::max();
      for (std::size_t r = 0; r < p.parts.size(); ++r) {
        if (p.parts[r].issued) deadline = std::min(deadline, p.parts[r].ready_ns + p.parts[r].timeout_ns);
        else if (is_simulated(group.ranks[r])) missing.push_back(group.ranks[r]);
      }
      p.end_ns = deadline;
      p.error = CommError(fmt::format("collective timed out at virtual time {} ns: ranks {} never issued it",
                                      p.end_ns, missing),
                          {.group = id, .seq = seq, .op = std::string(comm::collective_op_name(p.shape.op)),
                           .rank = -1, .missing = missing});
      failed_any = true;
    }
  }
  for (auto& group_slot : groups) {
    if (!group_slot) continue;
    Group& group = *group_slot;
    const int id = group.id;
    for (auto* queues : {&group.sends, &group.recvs}) {
      const bool sends = queues == &group.sends;
      for (auto& [channel, ends] : *queues) {
        for (P2PEnd& end : ends) {
          if (end.batch->error) continue;
          const int src = group.ranks[static_cast<std::size_t>(std::get<0>(channel))];
          const int dst = group.ranks[static_cast<std::size_t>(std::get<1>(channel))];
          const int self = sends ? src : dst;
          const int peer = sends ? dst : src;
          end.batch->end_ns = end.batch->deadline_ns;
          end.batch->error = CommError(
              fmt::format("batch_p2p timed out at virtual time {} ns: rank {}'s {} rank {} (tag {}) was never matched",
                          end.batch->deadline_ns, self, sends ? "send to" : "receive from", peer, std::get<2>(channel)),
              {.group = id, .op = "batch_p2p", .rank = end.batch->global_rank, .missing = {peer}});
          failed_any = true;
        }
        // A failed end must never match a later operation on its channel.
        std::erase_if(ends, [](const P2PEnd& end) { return end.batch->error.has_value(); });
      }
    }
  }
  if (store.fail_waiters()) failed_any = true;
  if (!failed_any && silent_blocked > 0) {
    // Only silenced ranks are left: let them stop.
    ++silent_release;
    return true;
  }
  return failed_any;
}

std::vector<int> SimCluster::State::representatives_of(const ClusterOptions& o) {
  if (o.world < 1) throw ConfigError("world", std::to_string(o.world), "must be >= 1");
  std::vector<int> identity(static_cast<std::size_t>(o.world));
  std::iota(identity.begin(), identity.end(), 0);
  const std::vector<int>& map = o.representative;
  if (map.empty()) return identity;
  if (o.fidelity != Fidelity::shape) {
    throw ConfigError("representative", fmt::format("{} entries", map.size()),
                      "symmetric-rank collapse needs shape fidelity: numeric ranks hold different values");
  }
  if (!o.faults.empty()) {
    throw ConfigError("representative", fmt::format("{} entries", map.size()),
                      "symmetric-rank collapse cannot honour injected faults: they hit individual ranks, and a "
                      "collapsed run does not simulate every rank");
  }
  if (static_cast<int>(map.size()) != o.world) {
    throw ConfigError("representative", fmt::format("{} entries", map.size()),
                      fmt::format("must name one representative per rank of the world of {}", o.world));
  }
  for (std::size_t r = 0; r < map.size(); ++r) {
    const std::string path = fmt::format("representative[{}]", r);
    if (map[r] < 0 || map[r] >= o.world) {
      throw ConfigError(path, std::to_string(map[r]), fmt::format("must be a rank of the world of {}", o.world));
    }
    const int of_representative = map[static_cast<std::size_t>(map[r])];
    if (of_representative != map[r]) {
      throw ConfigError(path, std::to_string(map[r]),
                        fmt::format("must be a simulated rank, one that represents itself (representative[{}] is {})",
                                    map[r], of_representative));
    }
  }
  return map;
}

std::vector<int> SimCluster::State::simulated_ranks_of(const std::vector<int>& representative) {
  std::vector<int> simulated;
  for (std::size_t r = 0; r < representative.size(); ++r) {
    if (representative[r] == static_cast<int>(r)) simulated.push_back(static_cast<int>(r));
  }
  return simulated;
}

RankContext& SimCluster::State::context(int rank) const {
  return *ranks[static_cast<std::size_t>(slot_of[static_cast<std::size_t>(rank)])];
}

SimCluster::SimCluster(ClusterOptions options) : state_(std::make_unique<State>(std::move(options))) {
  State& state = *state_;
  state.slot_of.assign(static_cast<std::size_t>(state.options.world), -1);
  for (int rank : state.simulated) {
    state.slot_of[static_cast<std::size_t>(rank)] = static_cast<int>(state.ranks.size());
    state.ranks.push_back(std::make_unique<RankContext>(state, rank));
  }
  state.scheduler.set_slot_ranks(state.simulated);
  state.scheduler.set_deadlock_handler([s = &state] { return s->fail_hung_operations(); });
}

SimCluster::~SimCluster() = default;

int SimCluster::world() const { return state_->options.world; }

int SimCluster::representative(int rank) const { return state_->representative.at(static_cast<std::size_t>(rank)); }

const std::vector<int>& SimCluster::simulated_ranks() const { return state_->simulated; }

void SimCluster::run(const std::function<void(comm::Backend&)>& program) {
  std::vector<int> order;
  std::mutex order_mutex;
  State* state = state_.get();
  auto errors = state->scheduler.run([&](int slot) {
    RankContext& ctx = *state->ranks[static_cast<std::size_t>(slot)];
    t_current_cluster = state;
    try {
      program(ctx);
    } catch (...) {
      std::lock_guard lock(order_mutex);
      order.push_back(slot);
      throw;
    }
  });
  t_current_cluster = nullptr;
  if (!order.empty()) std::rethrow_exception(errors[static_cast<std::size_t>(order.front())]);
}

comm::Backend& SimCluster::standalone_rank0() {
  if (state_->options.world != 1) throw Error("standalone_rank0 needs a one-rank cluster");
  if (state_->thread_scheduler == nullptr) throw Error("standalone_rank0 needs thread execution");
  state_->thread_scheduler->adopt_current_thread_as_rank0();
  return *state_->ranks[0];
}

const TraceRecorder& SimCluster::tracer(int rank) const { return state_->context(representative(rank)).tracer_; }

TraceDocument SimCluster::trace_document(const std::function<MeshCoordinates(int)>& coordinates) const {
  const State& state = *state_;
  // The ranks each simulated rank stands for, when it stands for more than itself.
  std::vector<std::vector<int>> represents(state.ranks.size());
  for (int r = 0; r < state.options.world; ++r) {
    const int slot = state.slot_of[static_cast<std::size_t>(state.representative[static_cast<std::size_t>(r)])];
    represents[static_cast<std::size_t>(slot)].push_back(r);
  }
  TraceDocument doc;
  doc.metadata.simulated = true;
  for (std::size_t slot = 0; slot < state.ranks.size(); ++slot) {
    const RankContext& rank = *state.ranks[slot];
    MeshCoordinates where = coordinates ? coordinates(rank.rank_) : MeshCoordinates{.dp = rank.rank_};
    std::vector<int>& stands_for = represents[slot];
    if (stands_for.size() == 1) stands_for.clear();  // itself only: nothing collapsed into it
    doc.add_recorder({.rank = rank.rank_, .mesh = where, .represents = std::move(stands_for)}, rank.tracer_);
  }
  doc.validate();
  return doc;
}

comm::MemoryStats SimCluster::memory(int rank) const { return state_->context(representative(rank)).device_.memory(); }

comm::MemoryStats SimCluster::host_memory(int rank) const {
  auto it = state_->node_host.find(state_->node_of(rank));
  return it != state_->node_host.end() ? it->second->stats() : comm::MemoryStats{};
}

comm::Backend* SimCluster::current_rank_backend() {
  State* state = t_current_cluster;
  if (state == nullptr) return nullptr;
  const int slot = state->scheduler.current();
  if (slot < 0) return nullptr;
  return state->ranks[static_cast<std::size_t>(slot)].get();
}

}  // namespace twinspeed::sim
