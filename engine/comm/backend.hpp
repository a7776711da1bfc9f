#pragma once
// Backend: one rank's view of a cluster runtime (simulated, Gloo, NCCL). The engine reaches
// devices, groups, the store and the tracer only through it. Backends are chosen at run time by
// name through the registry (registry.hpp), never at build time.

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "engine/comm/comm.hpp"
#include "engine/comm/device.hpp"
#include "engine/comm/store.hpp"
#include "engine/core/trace.hpp"

namespace twinspeed::comm {

// What every backend needs to start one rank. Backend-specific settings (cluster preset,
// fidelity, addresses) travel as JSON so the registry stays backend-agnostic.
struct BackendOptions {
  // -1: the backend decides from its environment (a simulated rank's thread; RANK and
  // WORLD_SIZE for real launchers), as torch.distributed does.
  int rank = -1;
  int world_size = -1;
  std::string settings_json = "{}";
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual Device& device() = 0;
  // The host (CPU) memory of this rank's node, as a Device: where ZeRO-Offload keeps master weights
  // and optimizer states, and whose compute stream is the CPU running the offloaded optimizer step.
  // Host bytes are the node's: its ranks share one capacity, and memory() reports the node's.
  // Copies between host() and device() Buffers are device().copy() on a device stream and cross
  // the host link (PCIe on a GPU node). A CPU backend, whose device is host memory, returns device().
  virtual Device& host() = 0;
  virtual Store& store() = 0;
  virtual TraceRecorder& tracer() = 0;
  // The group of all ranks (id 0).
  virtual CommPtr world() = 0;
  // Collective: every rank calls it for every group, in the same (mesh) order, including groups
  // it is not part of (then it returns null). ranks are global ranks in group-rank order.
  virtual CommPtr new_group(std::span<const int> ranks, std::string_view kind) = 0;
};

}  // namespace twinspeed::comm
