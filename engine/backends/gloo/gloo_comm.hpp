#pragma once
// One process group of the Gloo backend (internal to engine/backends/gloo).

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/backends/flight_recorder.hpp"
#include "engine/backends/gloo/cpu_device.hpp"
#include "engine/backends/tcp_store.hpp"
#include "engine/comm/comm.hpp"

namespace gloo {
class Context;
}

namespace twinspeed::backends {

// What every group of one rank shares; owned by the backend, which outlives its work.
struct GlooRank {
  int global_rank = 0;
  CpuDevice* device = nullptr;
  TcpStore* store = nullptr;
  TraceRecorder* tracer = nullptr;
  std::chrono::milliseconds timeout{};
  FlightRecorder* flight = nullptr;
  std::string flight_path;  // where the flight record is written when an operation fails
};

struct GlooGroup {
  int id = 0;
  std::string kind;
  std::vector<int> ranks;  // global ranks in group-rank order
  int group_rank = 0;
  std::shared_ptr<gloo::Context> context;
  GlooRank* owner = nullptr;
  std::atomic<std::int64_t> next_seq{0};
  // Point-to-point channels, counted in posting order per (peer, tag): the n-th send to a peer
  // on a tag meets the n-th receive from this rank on that tag.
  std::map<std::pair<int, int>, std::uint64_t> sends, recvs;
};

comm::CommPtr make_gloo_comm(std::shared_ptr<GlooGroup> group);

}  // namespace twinspeed::backends
