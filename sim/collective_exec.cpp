#include "sim/collective_exec.hpp"

#include <algorithm>
#include <cstring>

#include "engine/comm/host_reduce.hpp"
#include "kernels/cpu/reduce.hpp"

namespace twinspeed::sim {

namespace {

// AVG = SUM then scale, through the code every backend uses.
void average_in_place(const CollectiveShape& s, int n, HostBytes& out, std::int64_t count) {
  comm::finish_average(s.reduce_op, out.data(), s.dtype, count, n);
}

// Reduces `count` elements starting at element `offset` of every input, in group-rank order.
HostBytes reduce_slice(const CollectiveShape& s, const std::vector<std::span<const std::byte>>& inputs,
                       std::int64_t offset, std::int64_t count, const std::shared_ptr<HostBlockPool>& pool) {
  const std::size_t esize = dtype_size(s.dtype);
  std::vector<const void*> parts;
  for (const auto& in : inputs) parts.push_back(in.data() + offset * static_cast<std::int64_t>(esize));
  HostBytes out(pool, static_cast<std::size_t>(count) * esize);  // every element is written below
  comm::reduce_contributions(parts, out.data(), s.dtype, count, s.reduce_op);
  return out;
}

}  // namespace

std::vector<SharedBytes> execute_collective(const CollectiveShape& s,
                                            const std::vector<std::span<const std::byte>>& inputs,
                                            const std::shared_ptr<HostBlockPool>& pool) {
  const int n = static_cast<int>(inputs.size());
  const std::size_t esize = dtype_size(s.dtype);
  std::vector<SharedBytes> results(inputs.size());
  auto share = [](HostBytes b) { return std::make_shared<const HostBytes>(std::move(b)); };
  // Concatenates `bytes` bytes of each input starting at byte `from`, in group-rank order.
  auto concatenate = [&](std::size_t from, std::size_t bytes) {
    HostBytes out(pool, bytes * inputs.size());
    std::byte* at = out.data();
    for (const auto& in : inputs) {
      const std::size_t have = in.size() > from ? std::min(bytes, in.size() - from) : 0;  // a view without data has none
      if (have > 0) std::memcpy(at, in.data() + from, have);
      if (have < bytes) std::memset(at + have, 0, bytes - have);
      at += bytes;
    }
    return out;
  };
  switch (s.op) {
    case comm::CollectiveOp::all_reduce: {
      SharedBytes reduced = share(reduce_slice(s, inputs, 0, s.input_numel, pool));
      for (auto& r : results) r = reduced;
      break;
    }
    case comm::CollectiveOp::reduce:
      results[static_cast<std::size_t>(s.root)] = share(reduce_slice(s, inputs, 0, s.input_numel, pool));
      break;
    case comm::CollectiveOp::reduce_scatter: {
      const std::int64_t chunk = s.input_numel / n;
      for (int r = 0; r < n; ++r) results[static_cast<std::size_t>(r)] = share(reduce_slice(s, inputs, r * chunk, chunk, pool));
      break;
    }
    case comm::CollectiveOp::all_gather: {
      SharedBytes all = share(concatenate(0, static_cast<std::size_t>(s.input_numel) * esize));
      for (auto& r : results) r = all;
      break;
    }
    case comm::CollectiveOp::broadcast: {
      const auto& in = inputs[static_cast<std::size_t>(s.root)];
      HostBytes copy(pool, in.size());
      if (!in.empty()) std::memcpy(copy.data(), in.data(), in.size());
      SharedBytes root = share(std::move(copy));
      for (auto& r : results) r = root;
      break;
    }
    case comm::CollectiveOp::all_to_all: {
      // Rank r's output chunk j is rank j's input chunk r.
      const std::size_t chunk_bytes = static_cast<std::size_t>(s.input_numel / n) * esize;
      for (int r = 0; r < n; ++r) {
        results[static_cast<std::size_t>(r)] = share(concatenate(static_cast<std::size_t>(r) * chunk_bytes, chunk_bytes));
      }
      break;
    }
    case comm::CollectiveOp::barrier:
    case comm::CollectiveOp::batch_p2p:
      break;
  }
  return results;
}

bool is_reduction(comm::CollectiveOp op) {
  return op == comm::CollectiveOp::all_reduce || op == comm::CollectiveOp::reduce ||
         op == comm::CollectiveOp::reduce_scatter;
}

void fold_reduction_input(const CollectiveShape& s, HostBytes& acc, bool first, std::span<const std::byte> input,
                          const std::shared_ptr<HostBlockPool>& pool) {
  if (first) acc = HostBytes(pool, static_cast<std::size_t>(s.input_numel) * kernels::accumulator_size(s.dtype));
  kernels::reduce_into(acc.data(), input.data(), s.dtype, s.input_numel, comm::kernel_reduction(s.reduce_op), first);
}

std::vector<SharedBytes> finish_reduction(const CollectiveShape& s, int n, HostBytes acc,
                                          const std::shared_ptr<HostBlockPool>& pool) {
  const std::size_t esize = dtype_size(s.dtype), asize = kernels::accumulator_size(s.dtype);
  // The result of elements [offset, offset + count): the accumulators themselves when they are the
  // whole result in its own dtype, else rounded into new bytes.
  auto finish = [&](std::int64_t offset, std::int64_t count) {
    HostBytes out;
    if (asize == esize && offset == 0 && count == s.input_numel) {
      out = std::move(acc);
    } else {
      out = HostBytes(pool, static_cast<std::size_t>(count) * esize);
      kernels::reduce_finish(acc.data() + static_cast<std::size_t>(offset) * asize, out.data(), s.dtype, count);
    }
    average_in_place(s, n, out, count);
    return std::make_shared<const HostBytes>(std::move(out));
  };
  std::vector<SharedBytes> results(static_cast<std::size_t>(n));
  switch (s.op) {
    case comm::CollectiveOp::all_reduce: {
      SharedBytes reduced = finish(0, s.input_numel);
      for (auto& r : results) r = reduced;
      break;
    }
    case comm::CollectiveOp::reduce: results[static_cast<std::size_t>(s.root)] = finish(0, s.input_numel); break;
    case comm::CollectiveOp::reduce_scatter: {
      const std::int64_t chunk = s.input_numel / n;
      for (int r = 0; r < n; ++r) results[static_cast<std::size_t>(r)] = finish(r * chunk, chunk);
      break;
    }
    default: break;
  }
  return results;
}

}  // namespace twinspeed::sim
