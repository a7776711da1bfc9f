#pragma once
// The Store of a real (multi-process) run over TCP: rank 0 hosts the server (a thread per client
// connection, keys in memory), every rank talks to it through a client. Backend-agnostic: Gloo
// uses it for rendezvous and desync detection, NCCL will for its unique id.
//
// Timeouts: get/wait block on the server until the keys exist or the caller's timeout passes (a
// CommError naming the keys that are still missing); every other call fails after io_timeout. A
// server that went away (rank 0 exited) is a CommError saying so, never a hang.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/comm/store.hpp"

namespace twinspeed::backends {

// Listens on port (0: any free port) on every interface and serves until destroyed.
class TcpStoreServer {
 public:
  explicit TcpStoreServer(int port);
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;
  int port() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct TcpStoreOptions {
  std::string host = "127.0.0.1";
  int port = 29500;
  // How long to keep trying to connect (rank 0 may start later than the others).
  std::chrono::milliseconds connect_timeout{10'000};
  // Bound on a reply to a non-blocking request (set, add, check).
  std::chrono::milliseconds io_timeout{30'000};
  // The rank this client serves, for error messages (-1: not a rank, e.g. a test or a tool).
  int rank = -1;
};

class TcpStore final : public comm::Store {
 public:
  // Connects (retrying until connect_timeout). Throws CommError naming host:port when it cannot.
  explicit TcpStore(TcpStoreOptions options);
  ~TcpStore() override;
  void set(const std::string& key, std::vector<std::uint8_t> value) override;
  std::vector<std::uint8_t> get(const std::string& key, std::chrono::milliseconds timeout) override;
  std::int64_t add(const std::string& key, std::int64_t delta) override;
  void wait(std::span<const std::string> keys, std::chrono::milliseconds timeout) override;
  bool check(std::span<const std::string> keys) override;
  // Keys of `keys` that do not exist yet (for error messages).
  std::vector<std::string> missing(std::span<const std::string> keys);
  const TcpStoreOptions& options() const { return options_; }

 private:
  std::vector<std::uint8_t> request(const std::vector<std::uint8_t>& message, std::chrono::milliseconds reply_within,
                                    const char* what);
  TcpStoreOptions options_;
  std::mutex mutex_;  // one request at a time on the connection
  int fd_ = -1;
};

// A TCP port on 127.0.0.1 that nothing listens on now (bound to port 0, then released: another
// process may still take it first). For tests and benchmarks that start a store.
int unused_loopback_port();

}  // namespace twinspeed::backends
