// The oracle of virtual time for synthetic programs (spmd_program.hpp): stream clocks advanced
// step by step for all ranks at once, with no scheduler, so its answer cannot depend on the order
// the simulator happens to run ranks in.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "sim/spmd_program.hpp"

namespace twinspeed::sim::testing {

namespace {

struct RankClocks {
  std::int64_t compute = 0;
  std::map<std::string, std::int64_t> lanes;  // comm lanes and "p2p"
};

TraceEvent slice(int rank, std::string lane, std::string name, TraceCategory category, std::int64_t start,
                 std::int64_t duration) {
  TraceEvent e;
  e.rank = rank;
  e.lane = std::move(lane);
  e.name = std::move(name);
  e.category = category;
  e.start_ns = start;
  e.duration_ns = duration;
  return e;
}

class Oracle {
 public:
  explicit Oracle(const Program& p)
      : p_(p), clocks_(static_cast<std::size_t>(p.world)), trace_(static_cast<std::size_t>(p.world)) {}

  std::vector<std::vector<TraceEvent>> run() {
    for (std::size_t s = 0; s < p_.steps.size(); ++s) {
      step_ = static_cast<int>(s);
      if (const auto* c = std::get_if<ComputeStep>(&p_.steps[s])) launch_all("compute", c->flops, c->bytes);
      if (const auto* c = std::get_if<CollectiveStep>(&p_.steps[s])) collectives(*c);
      if (const auto* c = std::get_if<P2PRingStep>(&p_.steps[s])) ring(*c);
    }
    return std::move(trace_);
  }

 private:
  RankClocks& at(int rank) { return clocks_[static_cast<std::size_t>(rank)]; }

  void launch_all(const char* what, const std::vector<std::int64_t>& flops, std::int64_t bytes) {
    for (int r = 0; r < p_.world; ++r) {
      TraceEvent e = slice(r, "compute", fmt::format("{}{}", what, step_), TraceCategory::compute, at(r).compute,
                           flops[static_cast<std::size_t>(r)]);
      e.op = std::string(comm::op_class_name(comm::OpClass::matmul));
      e.bytes = bytes;
      trace_[static_cast<std::size_t>(r)].push_back(e);
      at(r).compute += flops[static_cast<std::size_t>(r)];
    }
  }

  std::string lane_of(const CollectiveSpec& c) const {
    switch (c.stream) {
      case StreamChoice::compute: return "compute";
      case StreamChoice::side: return std::string(kSideLane);
      default: return "comm-" + p_.partitions[static_cast<std::size_t>(c.partition)].kind;
    }
  }

  std::int64_t& stream_clock(int rank, const CollectiveSpec& c) {
    return c.stream == StreamChoice::compute ? at(rank).compute : at(rank).lanes[lane_of(c)];
  }

  // When rank's stream is ready for c: a group lane is also ordered after compute at issue (as
  // c10d orders its comm stream); a stream passed explicitly is taken as it is.
  std::int64_t ready_on(int rank, const CollectiveSpec& c) {
    std::int64_t& clock = stream_clock(rank, c);
    if (c.stream == StreamChoice::group_lane) clock = std::max(clock, at(rank).compute);
    return clock;
  }

  void collectives(const CollectiveStep& step) {
    // end[i][r]: when collective i ends for rank r.
    std::vector<std::vector<std::int64_t>> end(step.collectives.size(),
                                               std::vector<std::int64_t>(static_cast<std::size_t>(p_.world), 0));
    for (std::size_t i = 0; i < step.collectives.size(); ++i) {
      const CollectiveSpec& c = step.collectives[i];
      const Partition& part = p_.partitions[static_cast<std::size_t>(c.partition)];
      for (const auto& group : part.groups) {
        std::int64_t start = 0;
        for (int r : group) start = std::max(start, ready_on(r, c));
        const auto gs = static_cast<int>(group.size());
        const std::int64_t bytes = input_numel(c, gs) * 4;
        const std::int64_t finish = start + 1000 + bytes * gs;
        for (int r : group) {
          // Streams are FIFO: what comes next on this one starts after the collective ends.
          stream_clock(r, c) = finish;
          end[i][static_cast<std::size_t>(r)] = finish;
          const std::string op(comm::collective_op_name(c.op));
          TraceEvent e = slice(r, lane_of(c), op, TraceCategory::comm, start, finish - start);
          e.op = op;
          e.group = group_id(p_, c.partition, r);
          e.seq = sequence_number(p_, step_, static_cast<int>(i));
          e.bytes = bytes;
          e.dtype = std::string(comm::collective_trace_dtype(c.op, DType::f32));
          trace_[static_cast<std::size_t>(r)].push_back(e);
        }
      }
    }
    if (!step.between_flops.empty()) launch_all("between", step.between_flops, 0);
    for (int r = 0; r < p_.world; ++r) {
      for (const auto& e : end) at(r).compute = std::max(at(r).compute, e[static_cast<std::size_t>(r)]);
    }
  }

  void ring(const P2PRingStep& step) {
    // Every end of a batch is ready when the batch is issued: grouped operations run concurrently.
    // (Each rank sends once and receives once per ring, so its send and receive links never make
    // one transfer of the ring wait for another.)
    const auto world = static_cast<std::size_t>(p_.world);
    std::vector<std::int64_t> ready(world), batch_end(world, 0);
    for (int r = 0; r < p_.world; ++r) {
      std::int64_t& l = at(r).lanes["p2p"];
      l = std::max(l, at(r).compute);
      ready[static_cast<std::size_t>(r)] = l;
    }
    const std::int64_t bytes = step.numel * 4;
    for (const auto& group : p_.partitions[static_cast<std::size_t>(step.partition)].groups) {
      const auto gs = static_cast<int>(group.size());
      for (int gr = 0; gr < gs; ++gr) {
        const int src = group[static_cast<std::size_t>(gr)];
        const int dst = group[static_cast<std::size_t>((gr + step.shift) % gs)];
        const std::int64_t start = std::max(ready[static_cast<std::size_t>(src)], ready[static_cast<std::size_t>(dst)]);
        const std::int64_t finish = start + bytes;
        for (auto [rank, name] : {std::pair{src, "send"}, std::pair{dst, "recv"}}) {
          TraceEvent e = slice(rank, fmt::format("p2p-{}", name), name, TraceCategory::p2p, start, finish - start);
          e.op = "batch_p2p";
          e.group = group_id(p_, step.partition, rank);
          e.bytes = bytes;
          e.dtype = std::string(dtype_name(DType::f32));
          trace_[static_cast<std::size_t>(rank)].push_back(e);
          batch_end[static_cast<std::size_t>(rank)] = std::max(batch_end[static_cast<std::size_t>(rank)], finish);
        }
      }
    }
    for (int r = 0; r < p_.world; ++r) {
      at(r).lanes["p2p"] = std::max(at(r).lanes["p2p"], batch_end[static_cast<std::size_t>(r)]);
      at(r).compute = std::max(at(r).compute, batch_end[static_cast<std::size_t>(r)]);
    }
  }

  const Program& p_;
  std::vector<RankClocks> clocks_;
  std::vector<std::vector<TraceEvent>> trace_;
  int step_ = -1;
};

}  // namespace

std::vector<std::vector<TraceEvent>> oracle_trace(const Program& program) { return Oracle(program).run(); }

const TraceEvent* find_slice(const std::vector<TraceEvent>& events, std::string_view name) {
  for (const auto& e : events) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

TraceKey trace_key(const TraceEvent& e) {
  return {e.rank,  e.lane, e.name,  trace_category_name(e.category), e.start_ns, e.duration_ns, e.op,
          e.group, e.seq,  e.bytes, e.dtype, e.micro_batch, e.step, e.stage};
}

std::vector<TraceKey> sorted_keys(const std::vector<TraceEvent>& events) {
  std::vector<TraceKey> keys;
  for (const auto& e : events) keys.push_back(trace_key(e));
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::string describe(const Program& program) {
  std::ostringstream out;
  out << "world " << program.world << "\n";
  for (std::size_t p = 0; p < program.partitions.size(); ++p) {
    out << "partition " << p << " (" << program.partitions[p].kind << "):";
    for (const auto& g : program.partitions[p].groups) out << fmt::format(" [{}]", fmt::join(g, ","));
    out << "\n";
  }
  for (std::size_t s = 0; s < program.steps.size(); ++s) {
    out << "step " << s << ": ";
    if (const auto* c = std::get_if<ComputeStep>(&program.steps[s])) {
      out << fmt::format("compute flops [{}]", fmt::join(c->flops, ","));
    } else if (const auto* c = std::get_if<CollectiveStep>(&program.steps[s])) {
      for (const auto& x : c->collectives) {
        static constexpr const char* kStreams[] = {"group lane", "compute stream", "side stream"};
        out << fmt::format("{}(partition {}, {}, root {}, chunk {}, seed {}, {}, {}) ", comm::collective_op_name(x.op),
                           x.partition, comm::reduce_op_name(x.reduce_op), x.root, x.chunk, x.seed,
                           memory_tag_name(x.tag), kStreams[static_cast<int>(x.stream)]);
      }
      if (!c->between_flops.empty()) out << fmt::format("between [{}] ", fmt::join(c->between_flops, ","));
      out << fmt::format("waits [{}]", fmt::join(c->wait_order, ","));
    } else if (const auto* c = std::get_if<P2PRingStep>(&program.steps[s])) {
      out << fmt::format("ring(partition {}, shift {}, numel {}, tag {}{})", c->partition, c->shift, c->numel, c->tag,
                         c->recv_first ? ", recv first" : "");
    }
    out << "\n";
  }
  return out.str();
}

void showValue(const Program& program, std::ostream& os) { os << describe(program); }

void showValue(const ProgramFault& fault, std::ostream& os) {
  static constexpr const char* kKinds[] = {"none", "skip", "resize", "write_before_wait"};
  os << fmt::format("{} by rank {} at step {} collective {}", kKinds[static_cast<int>(fault.kind)], fault.rank,
                    fault.step, fault.index);
}

}  // namespace twinspeed::sim::testing
