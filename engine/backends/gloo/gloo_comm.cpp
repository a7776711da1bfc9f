#include "engine/backends/gloo/gloo_comm.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <fmt/ranges.h>
#include <gloo/allgather.h>
#include <gloo/alltoall.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/context.h>
#include <gloo/gather.h>
#include <gloo/transport/unbound_buffer.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <optional>
#include <sstream>
#include <thread>

#include "engine/comm/host_reduce.hpp"
#include "engine/core/errors.hpp"

namespace twinspeed::backends {

namespace {

using Bytes = std::vector<std::byte>;

// All-reduces whose gathered inputs fit in this many bytes run as one all-gather (latency bound).
constexpr std::size_t kSmallAllReduceBytes = 256 * 1024;

class GlooWork final : public comm::Work {
 public:
  void finish(std::optional<CommError> error) {
    {
      std::lock_guard lock(mutex_);
      error_ = std::move(error);
      done_ = true;
    }
    done_cv_.notify_all();
  }
  void wait(comm::Stream*) override { synchronize(); }
  void synchronize() override {
    std::unique_lock lock(mutex_);
    done_cv_.wait(lock, [this] { return done_; });
    if (error_) throw *error_;
  }
  bool is_completed() const override {
    std::lock_guard lock(mutex_);
    return done_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::optional<CommError> error_;
};

// The key a rank posts its progress in a group to, and the value: "seq op bytes".
// How long a member whose operation failed waits for its peers' failure reports (failure()).
constexpr std::chrono::milliseconds kFailureReportWindow{3'000};

std::string progress_key(int group, int global_rank) { return fmt::format("ts/progress/g{}/r{}", group, global_rank); }

struct Progress {
  std::int64_t seq = -1;
  std::string op;
  std::int64_t bytes = 0;
};

std::optional<Progress> parse_progress(const std::vector<std::uint8_t>& value) {
  std::istringstream in(std::string(value.begin(), value.end()));
  Progress p;
  if (!(in >> p.seq >> p.op >> p.bytes)) return std::nullopt;
  return p;
}

bool overlaps(BufferView a, BufferView b) {
  if (!a.has_data() || !b.has_data()) return false;
  const auto* a0 = static_cast<const std::byte*>(a.data());
  const auto* b0 = static_cast<const std::byte*>(b.data());
  return a0 < b0 + b.bytes() && b0 < a0 + a.bytes();
}

class GlooComm final : public comm::Comm, public std::enable_shared_from_this<GlooComm> {
 public:
  explicit GlooComm(std::shared_ptr<GlooGroup> group) : g_(std::move(group)) {}

  std::string_view backend_name() const override { return "gloo"; }
  int id() const override { return g_->id; }
  std::string_view kind() const override { return g_->kind; }
  int rank() const override { return g_->group_rank; }
  int size() const override { return static_cast<int>(g_->ranks.size()); }
  std::span<const int> global_ranks() const override { return g_->ranks; }

  comm::WorkPtr all_reduce(BufferView data, const comm::CollectiveOptions& o) override {
    check_data(comm::CollectiveOp::all_reduce, {data});
    return issue(comm::CollectiveOp::all_reduce, data, o, [this, data, o](std::uint32_t tag, std::chrono::milliseconds t) {
      const int n = size();
      if (n == 1) return;  // one contribution: the reduction (any op, any dtype) is the identity
      const std::size_t esize = dtype_size(data.dtype());
      const std::size_t bytes = static_cast<std::size_t>(data.bytes());
      if (bytes * static_cast<std::size_t>(n) <= kSmallAllReduceBytes) {
        // Small: one Gloo operation instead of two (each costs a few round trips); every rank
        // reduces all of it, in the same order, so the bits are those of the chunked path.
        Bytes all(bytes * static_cast<std::size_t>(n));
        allgather(data.data(), all.data(), bytes, tag, t);
        reduce_chunks(all.data(), bytes, data.data(), data.dtype(), data.numel, o.reduce_op);
        return;
      }
      const std::int64_t chunk = (data.numel + n - 1) / n;
      const std::size_t chunk_bytes = static_cast<std::size_t>(chunk) * esize;
      const std::size_t padded = chunk_bytes * static_cast<std::size_t>(n);
      // Zero padding reduces to zero in every op and dtype; it is never copied out.
      Bytes send(padded), received(padded), mine(chunk_bytes), gathered(padded);
      std::memcpy(send.data(), data.data(), static_cast<std::size_t>(data.bytes()));
      alltoall(send.data(), received.data(), padded, tag, t);
      reduce_chunks(received.data(), chunk_bytes, mine.data(), data.dtype(), chunk, o.reduce_op);
      allgather(mine.data(), gathered.data(), chunk_bytes, tag, t);
      std::memcpy(data.data(), gathered.data(), static_cast<std::size_t>(data.bytes()));
    });
  }

  comm::WorkPtr reduce(BufferView data, int root, const comm::CollectiveOptions& o) override {
    check_data(comm::CollectiveOp::reduce, {data});
    check_root(comm::CollectiveOp::reduce, root);
    return issue(comm::CollectiveOp::reduce, data, o, [this, data, root, o](std::uint32_t tag, std::chrono::milliseconds t) {
      if (size() == 1) return;
      const std::size_t bytes = static_cast<std::size_t>(data.bytes());
      gloo::GatherOptions opts(g_->context);
      opts.setInput(static_cast<char*>(data.data()), bytes);
      Bytes all;
      if (rank() == root) {
        all.resize(bytes * static_cast<std::size_t>(size()));
        opts.setOutput(reinterpret_cast<char*>(all.data()), all.size());
      }
      opts.setRoot(root);
      opts.setTag(tag);
      opts.setTimeout(t);
      gloo::gather(opts);
      if (rank() == root) reduce_chunks(all.data(), bytes, data.data(), data.dtype(), data.numel, o.reduce_op);
    });
  }

  comm::WorkPtr reduce_scatter(BufferView input, BufferView output, const comm::CollectiveOptions& o) override {
    check_data(comm::CollectiveOp::reduce_scatter, {input, output});
    check_chunks(comm::CollectiveOp::reduce_scatter, output, input);
    return issue(comm::CollectiveOp::reduce_scatter, input, o, [this, input, output, o](std::uint32_t tag, std::chrono::milliseconds t) {
      if (size() == 1) return move_local(output, input);
      // The all-to-all lands in a separate buffer, so output may alias input.
      Bytes received(static_cast<std::size_t>(input.bytes()));
      alltoall(input.data(), received.data(), received.size(), tag, t);
      reduce_chunks(received.data(), static_cast<std::size_t>(output.bytes()), output.data(), output.dtype(),
                    output.numel, o.reduce_op);
    });
  }

  comm::WorkPtr all_gather(BufferView input, BufferView output, const comm::CollectiveOptions& o) override {
    check_data(comm::CollectiveOp::all_gather, {input, output});
    check_chunks(comm::CollectiveOp::all_gather, input, output);
    return issue(comm::CollectiveOp::all_gather, input, o, [this, input, output](std::uint32_t tag, std::chrono::milliseconds t) {
      if (size() == 1) return move_local(output, input);
      Bytes copy;  // ZeRO gathers in place: the input is the output's own slice
      const void* in = input.data();
      if (overlaps(input, output)) {
        copy.assign(static_cast<const std::byte*>(input.data()), static_cast<const std::byte*>(input.data()) + input.bytes());
        in = copy.data();
      }
      allgather(in, output.data(), static_cast<std::size_t>(input.bytes()), tag, t);
    });
  }

  comm::WorkPtr broadcast(BufferView data, int root, const comm::CollectiveOptions& o) override {
    check_data(comm::CollectiveOp::broadcast, {data});
    check_root(comm::CollectiveOp::broadcast, root);
    return issue(comm::CollectiveOp::broadcast, data, o, [this, data, root](std::uint32_t tag, std::chrono::milliseconds t) {
      if (size() == 1) return;
      gloo::BroadcastOptions opts(g_->context);
      opts.setOutput(static_cast<char*>(data.data()), static_cast<std::size_t>(data.bytes()));
      opts.setRoot(root);
      opts.setTag(tag);
      opts.setTimeout(t);
      gloo::broadcast(opts);
    });
  }

  comm::WorkPtr all_to_all(BufferView input, BufferView output, const comm::CollectiveOptions& o) override {
    check_data(comm::CollectiveOp::all_to_all, {input, output});
    if (input.numel != output.numel || input.numel % size() != 0) {
      throw invalid(comm::CollectiveOp::all_to_all,
                    fmt::format("input ({}) and output ({}) must have the same numel, a multiple of the group size {}",
                                input.numel, output.numel, size()));
    }
    return issue(comm::CollectiveOp::all_to_all, input, o, [this, input, output](std::uint32_t tag, std::chrono::milliseconds t) {
      if (size() == 1) return move_local(output, input);
      Bytes copy;
      const void* in = input.data();
      if (overlaps(input, output)) {
        copy.assign(static_cast<const std::byte*>(input.data()), static_cast<const std::byte*>(input.data()) + input.bytes());
        in = copy.data();
      }
      alltoall(in, output.data(), static_cast<std::size_t>(input.bytes()), tag, t);
    });
  }

  comm::WorkPtr barrier(const comm::CollectiveOptions& o) override {
    return issue(comm::CollectiveOp::barrier, BufferView{}, o, [this](std::uint32_t tag, std::chrono::milliseconds t) {
      if (size() == 1) return;
      gloo::BarrierOptions opts(g_->context);
      opts.setTag(tag);
      opts.setTimeout(t);
      gloo::barrier(opts);
    }, /*skip_empty=*/false);
  }

  comm::WorkPtr batch_p2p(std::span<const comm::P2POp> ops, const comm::CollectiveOptions& o) override;

 private:
  CommError invalid(comm::CollectiveOp op, const std::string& what) const {
    return CommError(fmt::format("gloo {} on group {} ('{}'): {}", comm::collective_op_name(op), g_->id, g_->kind, what),
                     {.group = g_->id, .op = std::string(comm::collective_op_name(op)), .rank = g_->owner->global_rank});
  }
  void check_data(comm::CollectiveOp op, std::initializer_list<BufferView> views) const {
    DType dtype = views.begin()->dtype();
    for (const BufferView& v : views) {
      if (v.numel > 0 && !v.has_data()) throw invalid(op, "a buffer without data (shape-only buffers cannot be sent)");
      if (v.dtype() != dtype) throw invalid(op, "input and output dtypes differ");
    }
  }
  void check_root(comm::CollectiveOp op, int root) const {
    if (root < 0 || root >= size()) throw invalid(op, fmt::format("root {} is outside a group of {}", root, size()));
  }
  // chunk.numel * size() == whole.numel (reduce_scatter's output, all_gather's input).
  void check_chunks(comm::CollectiveOp op, BufferView chunk, BufferView whole) const {
    if (chunk.numel * size() != whole.numel) {
      throw invalid(op, fmt::format("{} elements per rank x {} ranks != {} elements", chunk.numel, size(), whole.numel));
    }
  }

  // A group of one rank: every collective is the identity or a copy of its input to its output
  // (which may overlap it), done here without Gloo or staging buffers. The simulator gives the
  // same bits: one contribution reduced in fp32 rounds back to itself.
  static void move_local(BufferView to, BufferView from) {
    if (to.data() != from.data()) std::memmove(to.data(), from.data(), static_cast<std::size_t>(from.bytes()));
  }

  std::chrono::milliseconds timeout_of(const comm::CollectiveOptions& o) const {
    return comm::resolve_timeout(o.timeout, g_->owner->timeout);
  }

  void alltoall(const void* in, void* out, std::size_t bytes, std::uint32_t tag, std::chrono::milliseconds t) {
    gloo::AlltoallOptions opts(g_->context);
    opts.setInput(const_cast<char*>(static_cast<const char*>(in)), bytes);
    opts.setOutput(static_cast<char*>(out), bytes);
    opts.setTag(tag);
    opts.setTimeout(t);
    gloo::alltoall(opts);
  }
  void allgather(const void* in, void* out, std::size_t chunk_bytes, std::uint32_t tag, std::chrono::milliseconds t) {
    gloo::AllgatherOptions opts(g_->context);
    opts.setInput(const_cast<char*>(static_cast<const char*>(in)), chunk_bytes);
    opts.setOutput(static_cast<char*>(out), chunk_bytes * static_cast<std::size_t>(size()));
    opts.setTag(tag);
    opts.setTimeout(t);
    gloo::allgather(opts);
  }
  // out = the size() chunks of chunk_bytes at `chunks`, reduced in group-rank order.
  void reduce_chunks(const std::byte* chunks, std::size_t chunk_bytes, void* out, DType dtype, std::int64_t numel,
                     comm::ReduceOp op) {
    std::vector<const void*> parts;
    for (int r = 0; r < size(); ++r) parts.push_back(chunks + static_cast<std::size_t>(r) * chunk_bytes);
    comm::reduce_contributions(parts, out, dtype, numel, op);
  }

  using Body = std::function<void(std::uint32_t tag, std::chrono::milliseconds timeout)>;
  comm::WorkPtr issue(comm::CollectiveOp op, BufferView input, const comm::CollectiveOptions& o, Body body,
                      bool skip_empty = true);
  // The CommError of a failed operation; also ends its flight record entry (flight_id) and dumps
  // the rank's flight record, saying where in the error's details (stderr's first line stays the
  // error's).
  CommError failure(comm::CollectiveOp op, std::int64_t seq, std::int64_t bytes, const std::string& cause,
                    std::chrono::steady_clock::time_point deadline, std::uint64_t flight_id) const;

  std::shared_ptr<GlooGroup> g_;
};

comm::WorkPtr GlooComm::issue(comm::CollectiveOp op, BufferView input, const comm::CollectiveOptions& o, Body body,
                              bool skip_empty) {
  GlooRank& owner = *g_->owner;
  CpuStream& stream = owner.device->stream_for(o.stream, fmt::format("comm-{}", g_->kind));
  const std::int64_t seq = g_->next_seq++;
  const std::int64_t bytes = input.bytes();
  const std::chrono::milliseconds timeout = timeout_of(o);
  auto work = std::make_shared<GlooWork>();
  const std::uint64_t flight_id = owner.flight->queued(g_->id, g_->kind, seq, std::string(comm::collective_op_name(op)),
                                                       bytes, owner.device->clock().now_ns());
  // The task keeps this Comm (its body's `this`) alive until it has run.
  stream.submit([this, self = shared_from_this(), g = g_, &stream, op, seq, bytes, timeout, dtype = input.dtype(), body = std::move(body), work,
                 skip = skip_empty && bytes == 0, flight_id] {
    GlooRank& r = *g->owner;
    const std::int64_t start = r.device->clock().now_ns();
    r.flight->started(flight_id, start);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::optional<CommError> error;
    try {
      r.store->set(progress_key(g->id, r.global_rank),
                   [&] {
                     std::string text = fmt::format("{} {} {}", seq, comm::collective_op_name(op), bytes);
                     return std::vector<std::uint8_t>(text.begin(), text.end());
                   }());
      if (!skip) body(static_cast<std::uint32_t>(seq), timeout);
    } catch (const std::exception& e) {
      error = failure(op, seq, bytes, e.what(), deadline, flight_id);
    }
    if (!error) r.flight->ended(flight_id, true, r.device->clock().now_ns());
    r.tracer->record({.rank = r.global_rank,
                      .lane = std::string(stream.name()),
                      .name = std::string(comm::collective_op_name(op)),
                      .category = TraceCategory::comm,
                      .start_ns = start,
                      .duration_ns = r.device->clock().now_ns() - start,
                      .op = std::string(comm::collective_op_name(op)),
                      .group = g->id,
                      .seq = seq,
                      .bytes = bytes,
                      .dtype = std::string(comm::collective_trace_dtype(op, dtype))});
    work->finish(std::move(error));
  });
  return work;
}

// Names the ranks that never issued (group, seq) or issued something else, from the progress
// every member posts to the store before blocking. A peer that died makes the operation fail at
// once, before the live members have necessarily posted: a member counts as missing only if it
// has not arrived by the operation's deadline.
CommError GlooComm::failure(comm::CollectiveOp op, std::int64_t seq, std::int64_t bytes, const std::string& cause,
                            std::chrono::steady_clock::time_point deadline, std::uint64_t flight_id) const {
  GlooRank& r = *g_->owner;
  const std::string op_name(comm::collective_op_name(op));
  std::vector<int> missing, desynced;
  std::vector<std::string> notes;
  try {
    std::vector<std::string> keys;
    std::vector<int> behind;
    for (int member : g_->ranks) {
      if (member != r.global_rank) behind.push_back(member);
    }
    while (true) {
      std::vector<int> still;
      notes.clear();
      for (int member : behind) {
        const std::string key = progress_key(g_->id, member);
        const std::string one[] = {key};
        if (!r.store->missing(one).empty()) {
          still.push_back(member);
          notes.push_back(fmt::format("rank {} issued nothing on this group", member));
          continue;
        }
        std::optional<Progress> p = parse_progress(r.store->get(key, std::chrono::milliseconds(1000)));
        if (!p) continue;
        if (p->seq < seq) {
          still.push_back(member);
          notes.push_back(fmt::format("rank {}'s last was seq {} ({})", member, p->seq, p->op));
        } else if (p->seq == seq && (p->op != op_name || p->bytes != bytes)) {
          desynced.push_back(member);  // it will not arrive with this op
          notes.push_back(fmt::format("desync: rank {} issued {} of {} bytes at seq {}", member, p->op, p->bytes, seq));
        }
      }
      behind = std::move(still);
      if (behind.empty() || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    missing = std::move(behind);
  } catch (const std::exception& e) {
    notes.push_back(fmt::format("the store could not say who is missing: {}", e.what()));
  }
  // Every member issued the operation, yet it failed: a member that died during it (its peers see
  // the connection reset) never reports the failure that every live member reports here. Live
  // members fail within moments of each other (a reset, or the same timeout), so their reports are
  // awaited for kFailureReportWindow, not until the operation's deadline: a survivor names the
  // dead rank seconds after the reset however long the timeout, before the launcher's grace ends.
  std::vector<int> gone;
  if (missing.empty() && desynced.empty()) {
    const auto reports_until = std::chrono::steady_clock::now() + kFailureReportWindow;
    try {
      auto failed_key = [&](int member) { return fmt::format("ts/failed/g{}/s{}/r{}", g_->id, seq, member); };
      r.store->set(failed_key(r.global_rank), {});
      std::vector<std::string> keys;
      for (int member : g_->ranks) {
        if (member != r.global_rank) keys.push_back(failed_key(member));
      }
      while (true) {
        const std::vector<std::string> silent = r.store->missing(keys);
        if (silent.empty() || std::chrono::steady_clock::now() >= reports_until) {
          for (const std::string& k : silent) gone.push_back(std::stoi(k.substr(k.rfind("/r") + 2)));
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      std::sort(gone.begin(), gone.end());
    } catch (const std::exception& e) {
      notes.push_back(fmt::format("the store could not say who went away: {}", e.what()));
    }
  }
  std::vector<std::string> whos;
  if (!missing.empty()) whos.push_back(fmt::format("ranks {} did not arrive", missing));
  if (!gone.empty()) {
    whos.push_back(fmt::format("ranks {} issued it and went away during it (no failure report from them within {} "
                               "s: died or stalled)",
                               gone, std::chrono::duration_cast<std::chrono::seconds>(kFailureReportWindow).count()));
  }
  if (!desynced.empty()) whos.push_back(fmt::format("desync: ranks {} issued another op or size at this seq", desynced));
  std::string who = whos.empty() ? "every rank arrived" : fmt::format("{}", fmt::join(whos, "; "));
  missing.insert(missing.end(), desynced.begin(), desynced.end());
  missing.insert(missing.end(), gone.begin(), gone.end());
  std::sort(missing.begin(), missing.end());
  const std::string message = fmt::format("gloo {} (group {} '{}', seq {}, {} bytes) failed on rank {}: {}", op_name,
                                          g_->id, g_->kind, seq, bytes, r.global_rank, who);
  const CommError::Context context{.group = g_->id, .seq = seq, .op = op_name, .rank = r.global_rank, .missing = missing};
  const std::string details = fmt::format("{}{}{}", cause, notes.empty() ? "" : "; ", fmt::join(notes, "; "));
  r.flight->ended(flight_id, false, r.device->clock().now_ns());
  if (!r.flight->dump(r.flight_path, CommError(message, context, details).what())) return CommError(message, context, details);
  return CommError(message, context,
                   fmt::format("{}\nrank {}'s last operations (flight recorder): {}", details, r.global_rank,
                               r.flight_path));
}

comm::WorkPtr GlooComm::batch_p2p(std::span<const comm::P2POp> ops, const comm::CollectiveOptions& o) {
  struct End {
    comm::P2POp op;
    std::uint64_t slot = 0;
  };
  std::vector<End> ends;
  for (const comm::P2POp& op : ops) {
    if (op.peer < 0 || op.peer >= size() || op.peer == rank()) {
      throw invalid(comm::CollectiveOp::batch_p2p, fmt::format("peer {} in a group of {} (this rank is {})", op.peer, size(), rank()));
    }
    if (op.buffer.numel > 0 && !op.buffer.has_data()) throw invalid(comm::CollectiveOp::batch_p2p, "a buffer without data");
    if (op.tag < 0 || op.tag > 0xffff) throw invalid(comm::CollectiveOp::batch_p2p, fmt::format("tag {} outside [0, 65535]", op.tag));
    auto& counters = op.kind == comm::P2POp::Kind::send ? g_->sends : g_->recvs;
    const std::uint64_t n = counters[{op.peer, op.tag}]++;
    // Above gloo's own slot prefixes (small numbers in the top byte).
    const std::uint64_t slot = (std::uint64_t{0x7a} << 56) | (static_cast<std::uint64_t>(op.tag) << 40) | (n & ((std::uint64_t{1} << 40) - 1));
    ends.push_back({op, slot});
  }
  GlooRank& owner = *g_->owner;
  CpuStream& stream = owner.device->stream_for(o.stream, fmt::format("comm-{}", g_->kind));
  const std::chrono::milliseconds timeout = timeout_of(o);
  auto work = std::make_shared<GlooWork>();
  stream.submit([g = g_, &stream, ends = std::move(ends), timeout, work] {
    GlooRank& r = *g->owner;
    const std::int64_t start = r.device->clock().now_ns();
    std::optional<CommError> error;
    std::int64_t bytes = 0;
    std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> buffers(ends.size());
    std::size_t i = 0;
    try {
      for (; i < ends.size(); ++i) {
        const comm::P2POp& op = ends[i].op;
        bytes += op.buffer.bytes();
        if (op.buffer.bytes() == 0) continue;
        buffers[i] = g->context->createUnboundBuffer(op.buffer.data(), static_cast<std::size_t>(op.buffer.bytes()));
        if (op.kind == comm::P2POp::Kind::send) buffers[i]->send(op.peer, ends[i].slot);
        else buffers[i]->recv(op.peer, ends[i].slot);
      }
      for (i = 0; i < ends.size(); ++i) {
        if (!buffers[i]) continue;
        if (ends[i].op.kind == comm::P2POp::Kind::send) buffers[i]->waitSend(timeout);
        else buffers[i]->waitRecv(timeout);
      }
    } catch (const std::exception& e) {
      const comm::P2POp& op = ends[std::min(i, ends.size() - 1)].op;
      const int peer = g->ranks[static_cast<std::size_t>(op.peer)];
      error = CommError(fmt::format("gloo batch_p2p (group {} '{}') failed on rank {}: the {} rank {} (tag {}) did not complete",
                                    g->id, g->kind, r.global_rank, op.kind == comm::P2POp::Kind::send ? "send to" : "receive from",
                                    peer, op.tag),
                        {.group = g->id, .op = "batch_p2p", .rank = r.global_rank, .missing = {peer}}, e.what());
    }
    r.tracer->record({.rank = r.global_rank, .lane = std::string(stream.name()), .name = "batch_p2p",
                      .category = TraceCategory::p2p, .start_ns = start, .duration_ns = r.device->clock().now_ns() - start,
                      .op = "batch_p2p", .group = g->id, .bytes = bytes});
    work->finish(std::move(error));
  });
  return work;
}

}  // namespace

comm::CommPtr make_gloo_comm(std::shared_ptr<GlooGroup> group) { return std::make_shared<GlooComm>(std::move(group)); }

}  // namespace twinspeed::backends
