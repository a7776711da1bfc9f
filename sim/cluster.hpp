#pragma once
// SimCluster: N simulated ranks running ordinary SPMD engine code (DESIGN.md "The simulated
// cluster"). Each rank gets a comm::Backend; collectives execute exactly (numeric fidelity) when
// their last participant issues them, virtual time advances per stream from a CostModel, memory
// is charged byte for byte, and hangs and desyncs become CommErrors instead of real hangs.
//
//   SimCluster cluster({.world = 8});
//   cluster.run([](comm::Backend& backend) { ... the same code a real rank runs ... });
//
// Inside run(), comm::create_backend("sim", {...}) on a rank's thread returns that rank's backend,
// the way a real launcher's environment tells a process its rank.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/comm/backend.hpp"
#include "engine/core/trace.hpp"
#include "engine/core/trace_document.hpp"
#include "sim/cost_model.hpp"
#include "sim/faults.hpp"

namespace twinspeed::sim {

enum class Fidelity { numeric, shape };

// How ranks run: OS threads (required when ranks run LibTorch code), or fibers on one thread
// (shape-only runs of thousands of ranks). automatic: threads for numeric, fibers for shape.
enum class RankExecution { automatic, threads, fibers };

struct ClusterOptions {
  int world = 1;
  Fidelity fidelity = Fidelity::numeric;
  std::int64_t capacity_bytes = 0;  // per device; 0 = unbounded
  // Held by the runtime outside the engine (CUDA context, communicator buffers, allocator slack),
  // charged to tag `reserved` on every device at start (device presets give it).
  std::int64_t reserved_bytes = 0;
  // Host memory per node (Backend::host(): ZeRO-Offload's master weights and optimizer states),
  // shared by the node's ranks; 0 = unbounded. Global rank r is on node r / ranks_per_node.
  std::int64_t host_capacity_bytes = 0;
  int ranks_per_node = 1;
  std::shared_ptr<const CostModel> costs;  // null: time stands still (ZeroCostModel)
  std::vector<Fault> faults;               // injected faults (sim/faults.hpp)
  RankExecution execution = RankExecution::automatic;
  // Symmetric-rank collapse (DESIGN.md "The simulated cluster"). Empty: every rank is simulated.
  // Otherwise `world` entries: representative[r] is the simulated rank whose run stands for rank r,
  // and representative[s] == s for every simulated rank s. Only simulated ranks run the program;
  // a collective completes once its simulated members have issued it and is costed for the whole
  // group. The caller vouches that the represented ranks would run exactly what their
  // representative runs (e.g. symmetric_representatives, engine/mesh/device_mesh.hpp). Shape
  // fidelity only, and no faults (they hit individual ranks); ConfigError otherwise.
  std::vector<int> representative;
};

class SimCluster {
 public:
  explicit SimCluster(ClusterOptions options);
  ~SimCluster();
  SimCluster(const SimCluster&) = delete;
  SimCluster& operator=(const SimCluster&) = delete;

  int world() const;
  // The simulated rank whose run stands for `rank` (rank itself without collapse). Throws
  // std::out_of_range outside [0, world).
  int representative(int rank) const;
  // The ranks that run the program, ascending (every rank without collapse).
  const std::vector<int>& simulated_ranks() const;
  // Runs program on every simulated rank (one OS thread each, scheduled by the rule of DESIGN.md) and
  // returns when all are done. If ranks failed, rethrows the error of the rank that failed first
  // in execution order (the cause; the others are usually its consequences).
  void run(const std::function<void(comm::Backend& backend)>& program);
  // A backend for rank 0 of a one-rank cluster, used in the caller's thread (no run()).
  comm::Backend& standalone_rank0();

  // A rank's trace and memory; a represented rank's are its representative's.
  const TraceRecorder& tracer(int rank) const;
  // Every simulated rank's trace as one validated document (write it with write_chrome_trace).
  // coordinates gives rank r's mesh position; by default a data-parallel-only mesh (dp = r). A
  // rank that stands for others lists them all, itself included, in `represents`.
  TraceDocument trace_document(const std::function<MeshCoordinates(int)>& coordinates = {}) const;
  comm::MemoryStats memory(int rank) const;
  // The host memory of the node holding `rank`: every rank of the node, represented ones included
  // (a representative charges each node once per rank of it that it stands for).
  comm::MemoryStats host_memory(int rank) const;
  // The backend of the rank running on the calling thread inside run() (thread or fiber), or null.
  static comm::Backend* current_rank_backend();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace twinspeed::sim
