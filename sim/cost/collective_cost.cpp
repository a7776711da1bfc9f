#include "sim/cost/collective_cost.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace twinspeed::sim {

namespace {

// The two enums must stay in lockstep: CollectiveKind is comm::CollectiveOp for code that cannot
// include engine/comm (engine/core/busbw.hpp).
template <comm::CollectiveOp Op, CollectiveKind Kind>
constexpr bool same_value = static_cast<int>(Op) == static_cast<int>(Kind);
static_assert(same_value<comm::CollectiveOp::all_reduce, CollectiveKind::all_reduce>);
static_assert(same_value<comm::CollectiveOp::reduce, CollectiveKind::reduce>);
static_assert(same_value<comm::CollectiveOp::reduce_scatter, CollectiveKind::reduce_scatter>);
static_assert(same_value<comm::CollectiveOp::all_gather, CollectiveKind::all_gather>);
static_assert(same_value<comm::CollectiveOp::broadcast, CollectiveKind::broadcast>);
static_assert(same_value<comm::CollectiveOp::all_to_all, CollectiveKind::all_to_all>);
static_assert(same_value<comm::CollectiveOp::barrier, CollectiveKind::barrier>);
static_assert(same_value<comm::CollectiveOp::batch_p2p, CollectiveKind::p2p>);

// NCCL's treeCorrectionFactor for the Simple protocol (src/graph/tuning.cc), indexed by
// log2(bytes / 64) for sizes below 256 MiB: trees do not stick to the model at medium sizes.
constexpr std::array<double, 22> kTreeCorrectionSimple = {0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.7, 0.6, 0.6,
                                                          0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.6, 0.7, 0.8, 0.9};

double tree_correction(std::int64_t size_bytes) {
  std::int64_t chunks = size_bytes >> 6;
  int log_size = 0;
  while (chunks > 1) {
    chunks >>= 1;
    ++log_size;
  }
  return log_size < static_cast<int>(kTreeCorrectionSimple.size()) ? kTreeCorrectionSimple[log_size] : 1.0;
}

int ceil_log2(int x) {
  int bits = 0;
  while ((1 << bits) < x) ++bits;
  return bits;
}

std::int64_t to_ns(double seconds) { return std::llround(seconds * 1e9); }

// Bytes per second the network gives a group with ranks_on_node ranks on each node.
double node_network_bytes_per_s(const ClusterSpec& cluster, int ranks_on_node) {
  const InterNodeLink& net = cluster.inter_node;
  const double nics_per_device = static_cast<double>(net.nics_per_node) / cluster.devices_per_node;
  const double nics = std::min<double>(net.nics_per_node, std::max(1.0, ranks_on_node * nics_per_device));
  return nics * net.nic_GBps * 1e9;
}

struct Candidate {
  CollectiveAlgorithm algorithm;
  double latency_us;
  double bandwidth_s;        // seconds of the bandwidth term
  double bus_bytes_per_s;    // effective busbw (for the report)
};

class GroupCost {
 public:
  GroupCost(const ClusterSpec& cluster, CollectiveKind kind, std::int64_t size_bytes, GroupPlacement placement)
      : cluster_(cluster), kind_(kind), size_(size_bytes), g_(placement) {
    const double intra = cluster.intra_node.busbw_GBps * 1e9 * link_efficiency(cluster.intra_node.efficiency, size_);
    if (g_.nodes == 1) {
      busbw_ = intra;
    } else {
      const double net = node_network_bytes_per_s(cluster, g_.max_ranks_per_node);
      busbw_ = g_.max_ranks_per_node > 1 ? std::min(intra, net) : net;
    }
  }

  std::optional<Candidate> ring() const {
    int nsteps = g_.ranks - 1, inter_steps = g_.nodes - 1;
    if (kind_ == CollectiveKind::all_reduce || kind_ == CollectiveKind::barrier) {
      nsteps *= 2;
      inter_steps *= 2;
    }
    const NcclConstants& nccl = cluster_.nccl;
    double latency = nccl.ring_base_latency_us + (nsteps - inter_steps) * cluster_.intra_node.ring_step_latency_us +
                     inter_steps * cluster_.inter_node.ring_step_latency_us;
    return Candidate{CollectiveAlgorithm::ring, latency, bandwidth_seconds(busbw_), busbw_};
  }

  std::optional<Candidate> tree() const {
    if (!is_all_reduce()) return std::nullopt;
    const NcclConstants& nccl = cluster_.nccl;
    double latency = nccl.tree_base_latency_us +
                     2.0 * ((g_.max_ranks_per_node - 1) * cluster_.intra_node.tree_step_latency_us +
                            ceil_log2(g_.nodes) * cluster_.inter_node.tree_step_latency_us);
    double busbw = nccl.tree_bandwidth_factor * busbw_ * tree_correction(size_);
    // NCCL's tree moves S out and S back per rank: algbw = busbw / 2.
    double seconds = size_ > 0 ? 2.0 * static_cast<double>(size_) / busbw : 0.0;
    return Candidate{CollectiveAlgorithm::tree, latency, seconds, busbw};
  }

  std::optional<Candidate> nvls() const {
    if (!is_all_reduce() || g_.nodes != 1 || cluster_.intra_node.nvls_busbw_GBps <= 0.0) return std::nullopt;
    double busbw = cluster_.intra_node.nvls_busbw_GBps * 1e9 * link_efficiency(cluster_.intra_node.efficiency, size_);
    return Candidate{CollectiveAlgorithm::nvls, cluster_.nccl.nvls_latency_us, bandwidth_seconds(busbw), busbw};
  }

  Candidate all_to_all() const {
    const IntraNodeLink& link = cluster_.intra_node;
    const int p = g_.max_ranks_per_node;
    double latency = cluster_.nccl.ring_base_latency_us + (p > 1 ? link.ring_step_latency_us : 0.0) +
                     (g_.nodes > 1 ? cluster_.inter_node.ring_step_latency_us : 0.0);
    const double size = static_cast<double>(size_);
    const double intra = link.busbw_GBps * 1e9 * link_efficiency(link.efficiency, size_);
    double intra_s = size * (p - 1) / g_.ranks / intra;
    double inter_s = 0.0;
    if (g_.nodes > 1) inter_s = size * (g_.ranks - p) / g_.ranks / (node_network_bytes_per_s(cluster_, p) / p);
    double seconds = std::max(intra_s, inter_s);
    double busbw = seconds > 0.0 ? bus_bandwidth(kind_, g_.ranks, size, seconds) : 0.0;
    return Candidate{CollectiveAlgorithm::ring, latency, seconds, busbw};
  }

 private:
  bool is_all_reduce() const { return kind_ == CollectiveKind::all_reduce || kind_ == CollectiveKind::barrier; }
  double bandwidth_seconds(double busbw) const {
    return size_ > 0 ? seconds_at_bus_bandwidth(kind_, g_.ranks, static_cast<double>(size_), busbw) : 0.0;
  }

  const ClusterSpec& cluster_;
  CollectiveKind kind_;
  std::int64_t size_;
  GroupPlacement g_;
  double busbw_ = 0.0;
};

double total_us(const Candidate& c) { return c.latency_us + c.bandwidth_s * 1e6; }

CollectiveEstimate to_estimate(const Candidate& c) {
  return {to_ns(c.latency_us * 1e-6 + c.bandwidth_s), c.algorithm, c.latency_us,
          c.bandwidth_s > 0.0 ? c.bus_bytes_per_s / 1e9 : 0.0};
}

}  // namespace

CollectiveKind to_collective_kind(comm::CollectiveOp op) { return static_cast<CollectiveKind>(op); }

std::string_view collective_algorithm_name(CollectiveAlgorithm algorithm) {
  switch (algorithm) {
    case CollectiveAlgorithm::automatic: return "auto";
    case CollectiveAlgorithm::ring: return "ring";
    case CollectiveAlgorithm::tree: return "tree";
    case CollectiveAlgorithm::nvls: return "nvls";
  }
  return "unknown";
}

GroupPlacement place_group(const ClusterSpec& cluster, std::span<const int> global_ranks) {
  if (global_ranks.empty()) throw std::invalid_argument("place_group: a group needs at least one rank");
  const int world = cluster.world_size();
  // Sorted, so that repeats are neighbours and a node's ranks are consecutive: the cost is the
  // group's size, not the cluster's (every simulated collective places its group).
  std::vector<int> sorted(global_ranks.begin(), global_ranks.end());
  std::sort(sorted.begin(), sorted.end());
  if (sorted.front() < 0 || sorted.back() >= world) {
    const int rank = sorted.front() < 0 ? sorted.front() : sorted.back();
    throw std::invalid_argument("place_group: rank " + std::to_string(rank) + " outside the cluster's " +
                                std::to_string(world) + " devices");
  }
  GroupPlacement placement;
  placement.ranks = static_cast<int>(sorted.size());
  int run = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0 && sorted[i] == sorted[i - 1]) {
      throw std::invalid_argument("place_group: rank " + std::to_string(sorted[i]) + " appears twice");
    }
    const bool same_node = i > 0 && sorted[i] / cluster.devices_per_node == sorted[i - 1] / cluster.devices_per_node;
    run = same_node ? run + 1 : 1;
    if (!same_node) ++placement.nodes;
    placement.max_ranks_per_node = std::max(placement.max_ranks_per_node, run);
  }
  return placement;
}

double link_efficiency(std::span<const EfficiencyPoint> curve, std::int64_t size_bytes) {
  if (curve.empty()) return 1.0;
  if (size_bytes <= curve.front().size_bytes) return curve.front().efficiency;
  if (size_bytes >= curve.back().size_bytes) return curve.back().efficiency;
  auto upper = std::upper_bound(curve.begin(), curve.end(), size_bytes,
                                [](std::int64_t s, const EfficiencyPoint& p) { return s < p.size_bytes; });
  const EfficiencyPoint& hi = *upper;
  const EfficiencyPoint& lo = *(upper - 1);
  const double x = (std::log2(static_cast<double>(size_bytes)) - std::log2(static_cast<double>(lo.size_bytes))) /
                   (std::log2(static_cast<double>(hi.size_bytes)) - std::log2(static_cast<double>(lo.size_bytes)));
  return lo.efficiency + (hi.efficiency - lo.efficiency) * x;
}

CollectiveEstimate estimate_collective(const ClusterSpec& cluster, CollectiveKind kind,
                                       std::int64_t input_bytes_per_rank, std::span<const int> global_ranks,
                                       CollectiveAlgorithm algorithm) {
  if (input_bytes_per_rank < 0) throw std::invalid_argument("estimate_collective: bytes must be >= 0");
  if (kind == CollectiveKind::p2p) {
    throw std::invalid_argument("estimate_collective: p2p has a source and a destination; use p2p_time_ns");
  }
  const GroupPlacement placement = place_group(cluster, global_ranks);
  if (placement.ranks == 1) return {0, CollectiveAlgorithm::ring, 0.0, 0.0};
  const std::int64_t size = kind == CollectiveKind::barrier
                                ? 0
                                : nccl_size_bytes(kind, input_bytes_per_rank, placement.ranks);
  GroupCost cost(cluster, kind, size, placement);
  if (kind == CollectiveKind::all_to_all) return to_estimate(cost.all_to_all());

  if (algorithm == CollectiveAlgorithm::automatic) algorithm = cluster.nccl.algorithm;
  const std::optional<Candidate> candidates[] = {cost.ring(), cost.tree(), cost.nvls()};
  const Candidate* best = nullptr;
  for (const auto& candidate : candidates) {
    if (!candidate) continue;
    bool wanted = algorithm == CollectiveAlgorithm::automatic || candidate->algorithm == algorithm;
    if (wanted && (best == nullptr || total_us(*candidate) < total_us(*best))) best = &*candidate;
  }
  if (best == nullptr) {
    throw std::invalid_argument("estimate_collective: algorithm " + std::string(collective_algorithm_name(algorithm)) +
                                " does not apply to " + std::string(collective_kind_name(kind)) + " on this group");
  }
  return to_estimate(*best);
}

std::int64_t collective_time_ns(const ClusterSpec& cluster, CollectiveKind kind, std::int64_t input_bytes_per_rank,
                                std::span<const int> global_ranks, CollectiveAlgorithm algorithm) {
  return estimate_collective(cluster, kind, input_bytes_per_rank, global_ranks, algorithm).time_ns;
}

std::int64_t p2p_time_ns(const ClusterSpec& cluster, std::int64_t bytes, int src_global_rank, int dst_global_rank) {
  if (bytes < 0) throw std::invalid_argument("p2p_time_ns: bytes must be >= 0");
  const int ranks[] = {src_global_rank, dst_global_rank};
  if (src_global_rank == dst_global_rank) {
    place_group(cluster, std::span<const int>(ranks, 1));  // range check
    return 0;
  }
  const GroupPlacement placement = place_group(cluster, ranks);
  const bool same_node = placement.nodes == 1;
  const double step_us = same_node ? cluster.intra_node.ring_step_latency_us : cluster.inter_node.ring_step_latency_us;
  const double bandwidth =
      same_node ? cluster.intra_node.busbw_GBps * 1e9 * link_efficiency(cluster.intra_node.efficiency, bytes)
                : node_network_bytes_per_s(cluster, 1);
  const double seconds = (cluster.nccl.ring_base_latency_us + step_us) * 1e-6 +
                         (bytes > 0 ? static_cast<double>(bytes) / bandwidth : 0.0);
  return to_ns(seconds);
}

}  // namespace twinspeed::sim
