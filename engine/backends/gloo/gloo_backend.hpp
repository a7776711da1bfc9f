#pragma once
// The Gloo backend: real ranks in separate processes, collectives over libgloo's TCP transport
// (loopback or a real network), the Store over TCP (engine/backends/tcp_store.hpp, served by rank
// 0), a CPU device (cpu_device.hpp). Registered as backend "gloo" (register.cpp).
//
// Start-up (the constructor, collective over the world): rank 0 starts the store server; every
// rank connects, claims its rank, posts its world size and waits for every other rank. A rank
// outside the world, a rank claimed twice, world sizes that differ and ranks that never join are
// errors naming the rank and the variable, within connect_timeout; nothing hangs.
//
// Collectives run on a worker thread per comm stream. Reductions go through the shared host
// reduction (engine/comm/host_reduce.hpp) in group-rank order, like the simulator, so a Gloo run
// and a simulated one reduce to the same bits: an all-to-all gives each rank every rank's copy of
// one chunk, the rank reduces it, and an all-gather spreads the reduced chunks (the bytes of a
// ring all-reduce, 2(n-1)/n per rank).
//
// Failures: before blocking in an operation a rank posts (seq, op, bytes) for the group to the
// store; an operation that times out or loses a peer fails with a CommError naming the group,
// seq, op and, from those posts, the ranks that never issued it (or issued something else).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/comm/backend.hpp"
#include "engine/comm/dist_env.hpp"

namespace twinspeed::backends {

struct GlooOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = comm::kDefaultMasterPort;
  // The address this rank's Gloo transport listens on; empty: 127.0.0.1 when the master is on
  // loopback, else this host's name.
  std::string hostname;
  // How long start-up waits for the store and the other ranks.
  std::chrono::milliseconds connect_timeout{30'000};
  // A collective's timeout when its CollectiveOptions leave it unset (c10d's process-group
  // timeout); an explicit per-operation timeout wins.
  std::chrono::milliseconds timeout = comm::kDefaultCommTimeout;
  std::int64_t capacity_bytes = 0;  // 0: unbounded host memory
  // Where the flight recorder (engine/backends/flight_recorder.hpp) writes this rank's last
  // operations when one fails; empty: $TMPDIR, else /tmp.
  std::string flight_recorder_dir;
};

// Options from the registry's BackendOptions: rank and world from options when >= 0, else from
// the launcher's environment (comm::discover_dist_env); settings_json may set "master_addr",
// "master_port", "hostname", "timeout_ms", "connect_timeout_ms", "capacity_bytes",
// "flight_recorder_dir" (it wins over the
// environment). Throws ConfigError naming the setting or variable.
GlooOptions gloo_options(const comm::BackendOptions& options, const comm::EnvLookup& env);

// Starts this rank (see above). Throws ConfigError or CommError.
std::unique_ptr<comm::Backend> make_gloo_backend(const GlooOptions& options);

}  // namespace twinspeed::backends
