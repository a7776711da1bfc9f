#include "engine/backends/tcp_store.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <optional>
#include <thread>

#include "engine/core/errors.hpp"

namespace twinspeed::backends {

namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;

enum class Command : std::uint8_t { set = 1, get, add, wait, check, missing };
enum class Status : std::uint8_t { ok = 0, timeout = 1 };

CommError store_error(const std::string& message, const std::string& op) {
  return CommError(message, {.op = op});
}

// Length-prefixed frames of little-endian fields.
struct Writer {
  Bytes out;
  void u8(std::uint8_t v) { out.push_back(v); }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void bytes(const void* data, std::size_t n) {
    u64(n);
    const auto* p = static_cast<const std::uint8_t*>(data);
    out.insert(out.end(), p, p + n);
  }
  void str(const std::string& s) { bytes(s.data(), s.size()); }
  void keys(std::span<const std::string> ks) {
    u64(ks.size());
    for (const auto& k : ks) str(k);
  }
};

struct Reader {
  const Bytes& in;
  std::size_t at = 0;
  void need(std::size_t n) const {
    if (at + n > in.size()) throw Error("TCP store: truncated message");
  }
  std::uint8_t u8() {
    need(1);
    return in[at++];
  }
  std::uint64_t u64() {
    need(8);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(in[at++]) << (8 * i);
    return v;
  }
  Bytes bytes() {
    const std::uint64_t n = u64();
    need(n);
    Bytes b(in.begin() + static_cast<std::ptrdiff_t>(at), in.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
    return b;
  }
  std::string str() {
    Bytes b = bytes();
    return std::string(b.begin(), b.end());
  }
  std::vector<std::string> keys() {
    const std::uint64_t n = u64();
    if (n > in.size()) throw Error("TCP store: bad key count");
    std::vector<std::string> ks;
    for (std::uint64_t i = 0; i < n; ++i) ks.push_back(str());
    return ks;
  }
};

// Sends all of data; false when the peer is gone.
bool send_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t sent = ::send(fd, p, n, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    p += sent;
    n -= static_cast<std::size_t>(sent);
  }
  return true;
}

bool send_frame(int fd, const Bytes& payload) {
  Writer header;
  header.u64(payload.size());
  return send_all(fd, header.out.data(), header.out.size()) && send_all(fd, payload.data(), payload.size());
}

enum class RecvResult { ok, closed, timeout };

// Receives exactly n bytes before deadline (none: block).
RecvResult recv_all(int fd, void* data, std::size_t n, std::optional<Clock::time_point> deadline) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      if (left <= 0) return RecvResult::timeout;
      pollfd pfd{.fd = fd, .events = POLLIN, .revents = 0};
      int ready = ::poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(left, 1 << 30)));
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) return RecvResult::timeout;
      if (ready < 0) return RecvResult::closed;
    }
    ssize_t got = ::recv(fd, p, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return RecvResult::closed;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return RecvResult::ok;
}

RecvResult recv_frame(int fd, Bytes& payload, std::optional<Clock::time_point> deadline) {
  std::uint8_t header[8];
  if (auto r = recv_all(fd, header, 8, deadline); r != RecvResult::ok) return r;
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(header[i]) << (8 * i);
  if (n > (std::uint64_t{1} << 32)) return RecvResult::closed;  // not our protocol
  payload.resize(n);
  return recv_all(fd, payload.data(), n, deadline);
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Server

struct TcpStoreServer::State {
  int listen_fd = -1;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::mutex mutex;  // guards values, clients
  std::condition_variable changed;
  std::map<std::string, Bytes> values;
  std::vector<int> clients;
  std::vector<std::thread> threads;
  std::thread acceptor;

  bool has_all(const std::vector<std::string>& keys) const {
    for (const auto& k : keys)
      if (!values.contains(k)) return false;
    return true;
  }

  // Blocks until every key exists, the timeout passes or the server stops.
  bool wait_for(std::unique_lock<std::mutex>& lock, const std::vector<std::string>& keys, std::uint64_t timeout_ms) {
    return changed.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                            [&] { return stopping.load() || has_all(keys); }) &&
           has_all(keys);
  }

  Bytes handle(const Bytes& request) {
    Reader in{request};
    Writer out;
    auto command = static_cast<Command>(in.u8());
    std::unique_lock lock(mutex);
    switch (command) {
      case Command::set: {
        std::string key = in.str();
        values[key] = in.bytes();
        changed.notify_all();
        out.u8(static_cast<std::uint8_t>(Status::ok));
        break;
      }
      case Command::get: {
        std::vector<std::string> key{in.str()};
        const std::uint64_t timeout_ms = in.u64();
        if (wait_for(lock, key, timeout_ms)) {
          out.u8(static_cast<std::uint8_t>(Status::ok));
          const Bytes& v = values[key[0]];
          out.bytes(v.data(), v.size());
        } else {
          out.u8(static_cast<std::uint8_t>(Status::timeout));
        }
        break;
      }
      case Command::add: {
        std::string key = in.str();
        const auto delta = static_cast<std::int64_t>(in.u64());
        std::int64_t value = 0;
        if (auto it = values.find(key); it != values.end()) {
          value = std::stoll(std::string(it->second.begin(), it->second.end()));
        }
        value += delta;
        std::string text = std::to_string(value);
        values[key] = Bytes(text.begin(), text.end());
        changed.notify_all();
        out.u8(static_cast<std::uint8_t>(Status::ok));
        out.u64(static_cast<std::uint64_t>(value));
        break;
      }
      case Command::wait: {
        std::vector<std::string> keys = in.keys();
        const std::uint64_t timeout_ms = in.u64();
        out.u8(static_cast<std::uint8_t>(wait_for(lock, keys, timeout_ms) ? Status::ok : Status::timeout));
        break;
      }
      case Command::check:
      case Command::missing: {
        std::vector<std::string> keys = in.keys();
        out.u8(static_cast<std::uint8_t>(Status::ok));
        if (command == Command::check) {
          out.u8(has_all(keys) ? 1 : 0);
        } else {
          std::vector<std::string> absent;
          for (const auto& k : keys)
            if (!values.contains(k)) absent.push_back(k);
          out.keys(absent);
        }
        break;
      }
      default: throw Error("TCP store: unknown command");
    }
    return out.out;
  }

  void serve(int fd) {
    Bytes request;
    while (!stopping.load() && recv_frame(fd, request, std::nullopt) == RecvResult::ok) {
      Bytes reply;
      try {
        reply = handle(request);
      } catch (const std::exception&) {
        break;  // a client speaking something else: drop it
      }
      if (!send_frame(fd, reply)) break;
    }
  }

  void accept_loop() {
    while (!stopping.load()) {
      pollfd pfd{.fd = listen_fd, .events = POLLIN, .revents = 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      int fd = ::accept(listen_fd, nullptr, nullptr);
      if (fd < 0) continue;
      set_nodelay(fd);
      std::lock_guard lock(mutex);
      if (stopping.load()) {
        ::close(fd);
        break;
      }
      clients.push_back(fd);
      threads.emplace_back([this, fd] { serve(fd); });
    }
  }
};

TcpStoreServer::TcpStoreServer(int port) : state_(std::make_unique<State>()) {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  bool v6 = fd >= 0;
  if (!v6) fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw store_error(fmt::format("TCP store: socket() failed: {}", std::strerror(errno)), "store.listen");
  int one = 1, zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc = 0;
  if (v6) {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));  // IPv4 clients too
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_any;
    addr.sin6_port = htons(static_cast<std::uint16_t>(port));
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  }
  if (rc != 0 || ::listen(fd, 128) != 0) {
    const int err = errno;
    ::close(fd);
    throw store_error(fmt::format("TCP store: cannot listen on port {}: {} (is another run using MASTER_PORT {}?)",
                                  port, std::strerror(err), port),
                      "store.listen");
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  state_->port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                    : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  state_->listen_fd = fd;
  state_->acceptor = std::thread([s = state_.get()] { s->accept_loop(); });
}

TcpStoreServer::~TcpStoreServer() {
  state_->stopping.store(true);
  state_->acceptor.join();
  {
    std::lock_guard lock(state_->mutex);
    for (int fd : state_->clients) ::shutdown(fd, SHUT_RDWR);
    state_->changed.notify_all();
  }
  for (auto& t : state_->threads) t.join();
  for (int fd : state_->clients) ::close(fd);
  ::close(state_->listen_fd);
}

int TcpStoreServer::port() const { return state_->port; }

// ---------------------------------------------------------------------------------------------
// Client

TcpStore::TcpStore(TcpStoreOptions options) : options_(std::move(options)) {
  const auto deadline = Clock::now() + options_.connect_timeout;
  std::string last_error = "timed out";
  while (true) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(options_.port);
    int rc = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0) {
      last_error = ::gai_strerror(rc);
    } else {
      for (addrinfo* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
          fd_ = fd;
        } else {
          last_error = std::strerror(errno);
          ::close(fd);
        }
      }
      ::freeaddrinfo(found);
    }
    if (fd_ >= 0) break;
    if (Clock::now() >= deadline) {
      throw CommError(fmt::format("cannot reach the TCP store at {}:{} within {} ms ({}): check MASTER_ADDR and "
                                  "MASTER_PORT, and that rank 0 is running",
                                  options_.host, options_.port, options_.connect_timeout.count(), last_error),
                      {.op = "store.connect", .rank = options_.rank});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  set_nodelay(fd_);
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
}

Bytes TcpStore::request(const Bytes& message, std::chrono::milliseconds reply_within, const char* what) {
  std::lock_guard lock(mutex_);
  if (fd_ < 0) {
    throw CommError(fmt::format("TCP store at {}:{}: connection lost earlier", options_.host, options_.port),
                    {.op = what});
  }
  Bytes reply;
  RecvResult r = RecvResult::closed;
  if (send_frame(fd_, message)) r = recv_frame(fd_, reply, Clock::now() + reply_within);
  if (r != RecvResult::ok) {
    // The connection is unusable now (a late reply would answer the next request).
    ::close(fd_);
    fd_ = -1;
    throw CommError(fmt::format("TCP store at {}:{}: {} during {} (the store lives in rank 0: did it exit?)",
                                options_.host, options_.port, r == RecvResult::timeout ? "no reply" : "connection lost",
                                what),
                    {.op = what});
  }
  return reply;
}

namespace {
// The server waits up to the caller's timeout; the client allows it this much more to answer.
constexpr std::chrono::milliseconds kReplyGrace{5'000};
}  // namespace

void TcpStore::set(const std::string& key, std::vector<std::uint8_t> value) {
  Writer w;
  w.u8(static_cast<std::uint8_t>(Command::set));
  w.str(key);
  w.bytes(value.data(), value.size());
  request(w.out, options_.io_timeout, "store.set");
}

std::vector<std::uint8_t> TcpStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  Writer w;
  w.u8(static_cast<std::uint8_t>(Command::get));
  w.str(key);
  w.u64(static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout.count())));
  Bytes reply = request(w.out, timeout + kReplyGrace, "store.get");
  Reader in{reply};
  if (static_cast<Status>(in.u8()) != Status::ok) {
    throw CommError(fmt::format("store key '{}' was not set within {} ms", key, timeout.count()), {.op = "store.get"});
  }
  return in.bytes();
}

std::int64_t TcpStore::add(const std::string& key, std::int64_t delta) {
  Writer w;
  w.u8(static_cast<std::uint8_t>(Command::add));
  w.str(key);
  w.u64(static_cast<std::uint64_t>(delta));
  Bytes reply = request(w.out, options_.io_timeout, "store.add");
  Reader in{reply};
  in.u8();
  return static_cast<std::int64_t>(in.u64());
}

void TcpStore::wait(std::span<const std::string> keys, std::chrono::milliseconds timeout) {
  Writer w;
  w.u8(static_cast<std::uint8_t>(Command::wait));
  w.keys(keys);
  w.u64(static_cast<std::uint64_t>(std::max<std::int64_t>(0, timeout.count())));
  Bytes reply = request(w.out, timeout + kReplyGrace, "store.wait");
  if (static_cast<Status>(Reader{reply}.u8()) != Status::ok) {
    throw CommError(fmt::format("store keys [{}] were not all set within {} ms", fmt::join(missing(keys), ", "),
                                timeout.count()),
                    {.op = "store.wait"});
  }
}

bool TcpStore::check(std::span<const std::string> keys) {
  Writer w;
  w.u8(static_cast<std::uint8_t>(Command::check));
  w.keys(keys);
  Bytes reply = request(w.out, options_.io_timeout, "store.check");
  Reader in{reply};
  in.u8();
  return in.u8() != 0;
}

std::vector<std::string> TcpStore::missing(std::span<const std::string> keys) {
  Writer w;
  w.u8(static_cast<std::uint8_t>(Command::missing));
  w.keys(keys);
  Bytes reply = request(w.out, options_.io_timeout, "store.check");
  Reader in{reply};
  in.u8();
  return in.keys();
}

int unused_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(fmt::format("unused_loopback_port: socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw Error(fmt::format("unused_loopback_port: bind: {}", std::strerror(errno)));
  return ntohs(addr.sin_port);
}

}  // namespace twinspeed::backends
