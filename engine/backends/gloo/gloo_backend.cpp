#include "engine/backends/gloo/gloo_backend.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <unistd.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include "engine/backends/gloo/cpu_device.hpp"
#include "engine/backends/gloo/gloo_comm.hpp"
#include "engine/backends/tcp_store.hpp"
#include "engine/core/errors.hpp"

namespace twinspeed::backends {

namespace {

using std::chrono::milliseconds;

std::vector<std::uint8_t> text_bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string bytes_text(const std::vector<std::uint8_t>& b) { return {b.begin(), b.end()}; }

// Gloo's rendezvous store over ours, under a key prefix (one per group).
class GlooStoreAdapter final : public gloo::rendezvous::Store {
 public:
  GlooStoreAdapter(comm::Store& store, std::string prefix, milliseconds timeout)
      : store_(store), prefix_(std::move(prefix)), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override {
    store_.set(prefix_ + key, std::vector<std::uint8_t>(data.begin(), data.end()));
  }
  std::vector<char> get(const std::string& key) override {
    auto v = store_.get(prefix_ + key, timeout_);
    return {v.begin(), v.end()};
  }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const milliseconds& timeout) override {
    std::vector<std::string> full;
    for (const auto& k : keys) full.push_back(prefix_ + k);
    store_.wait(full, timeout);
  }

 private:
  comm::Store& store_;
  std::string prefix_;
  milliseconds timeout_;
};

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

class GlooBackend final : public comm::Backend {
 public:
  explicit GlooBackend(const GlooOptions& o);
  ~GlooBackend() override;

  std::string_view name() const override { return "gloo"; }
  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }
  comm::Device& device() override { return *device_; }
  // A CPU rank's device is host memory: offloading to it is a copy within the same memory.
  comm::Device& host() override { return *device_; }
  comm::Store& store() override { return *store_; }
  TraceRecorder& tracer() override { return tracer_; }
  comm::CommPtr world() override { return world_; }
  comm::CommPtr new_group(std::span<const int> ranks, std::string_view kind) override;

 private:
  comm::CommPtr create_group(std::span<const int> ranks, std::string_view kind);
  void join();
  std::vector<std::string> wait_for_every_rank(std::string_view prefix, std::string_view verb);

  GlooOptions options_;
  TraceRecorder tracer_;
  // Before the device: its comm-stream threads record into it until they stop.
  std::unique_ptr<FlightRecorder> flight_;
  std::unique_ptr<TcpStoreServer> server_;  // rank 0 only
  std::unique_ptr<TcpStore> store_;
  std::shared_ptr<gloo::transport::Device> transport_;
  std::unique_ptr<CpuDevice> device_;
  GlooRank shared_;
  int next_group_id_ = 0;
  comm::CommPtr world_;
};

GlooBackend::GlooBackend(const GlooOptions& o) : options_(o) {
  if (o.world_size < 1) throw ConfigError("WORLD_SIZE", std::to_string(o.world_size), "must be at least 1");
  if (o.rank < 0 || o.rank >= o.world_size) {
    throw ConfigError("RANK", std::to_string(o.rank), fmt::format("must be in [0, WORLD_SIZE={})", o.world_size));
  }
  if (o.master_port < 1 || o.master_port > 65535) {
    throw ConfigError("MASTER_PORT", std::to_string(o.master_port), "must be a TCP port in [1, 65535]");
  }
  // A peer that dies closes its sockets; writing to one must be an error (EPIPE), not the end of
  // this process. Process-wide, as in every networked runtime; a handler set by the program stays.
  if (struct sigaction current{}; ::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
  if (o.rank == 0) server_ = std::make_unique<TcpStoreServer>(o.master_port);
  store_ = std::make_unique<TcpStore>(TcpStoreOptions{.host = o.master_addr,
                                                      .port = o.master_port,
                                                      .connect_timeout = o.connect_timeout,
                                                      .io_timeout = std::max(o.connect_timeout, milliseconds(30'000)),
                                                      .rank = o.rank});
  join();

  gloo::transport::tcp::attr attr;
  if (!o.hostname.empty()) {
    attr.hostname = o.hostname;
  } else if (is_loopback(o.master_addr)) {
    attr.hostname = "127.0.0.1";
  } else {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    attr.hostname = host;
  }
  try {
    transport_ = gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception& e) {
    throw CommError(fmt::format("gloo: cannot create the TCP transport on '{}': {}", attr.hostname, e.what()),
                    {.op = "init", .rank = o.rank});
  }
  device_ = std::make_unique<CpuDevice>(o.rank, o.capacity_bytes, tracer_);
  flight_ = std::make_unique<FlightRecorder>(o.rank);
  shared_ = GlooRank{.global_rank = o.rank, .device = device_.get(), .store = store_.get(), .tracer = &tracer_,
                     .timeout = o.timeout, .flight = flight_.get(),
                     .flight_path = flight_record_path(o.flight_recorder_dir, o.rank)};
  std::vector<int> all(static_cast<std::size_t>(o.world_size));
  for (int r = 0; r < o.world_size; ++r) all[static_cast<std::size_t>(r)] = r;
  world_ = create_group(all, "world");
  // A start barrier gives every rank's trace the same epoch (to within the barrier's skew). It goes
  // through the store, not the world group: a collective would take the world's seq 0, and the
  // engine's collectives would then be numbered unlike the simulator's.
  store_->set(fmt::format("ts/start/{}", o.rank), text_bytes("1"));
  wait_for_every_rank("ts/start", "start");
  device_->clock().set_epoch(std::chrono::steady_clock::now());
}

namespace {
constexpr const char* kSameWorldSize =
    "every rank must be started with the same WORLD_SIZE: under twinspeed launch, the same --nnodes and "
    "--nproc-per-node on every node";
}  // namespace

// Claims this rank, checks the world size against rank 0's and waits for every rank.
void GlooBackend::join() {
  const int r = options_.rank, w = options_.world_size;
  if (store_->add(fmt::format("ts/join/claims/{}", r), 1) > 1) {
    throw ConfigError("RANK", std::to_string(r), "another process already joined as this rank");
  }
  store_->set(fmt::format("ts/join/rank/{}", r), text_bytes(fmt::format("{} {}", w, ::getpid())));
  if (r != 0) {
    std::string rank0 = bytes_text(store_->get("ts/join/rank/0", options_.connect_timeout));
    const int rank0_world = std::stoi(rank0.substr(0, rank0.find(' ')));
    if (rank0_world != w) {
      throw ConfigError("WORLD_SIZE", std::to_string(w),
                        fmt::format("rank {} has WORLD_SIZE {} but rank 0 has {}", r, w, rank0_world), kSameWorldSize);
    }
  }
  const std::vector<std::string> keys = wait_for_every_rank("ts/join/rank", "join");
  for (int i = 0; i < w; ++i) {
    std::string posted = bytes_text(store_->get(keys[static_cast<std::size_t>(i)], options_.connect_timeout));
    const int their_world = std::stoi(posted.substr(0, posted.find(' ')));
    if (their_world != w) {
      throw ConfigError("WORLD_SIZE", std::to_string(w),
                        fmt::format("rank {} has WORLD_SIZE {} but rank {} has {}", i, their_world, r, w), kSameWorldSize);
    }
  }
}

// Every rank's "<prefix>/<rank>" key, once all exist. The ranks whose key is still missing after
// the connect timeout are named in the CommError ("did not <verb>").
std::vector<std::string> GlooBackend::wait_for_every_rank(std::string_view prefix, std::string_view verb) {
  const int r = options_.rank, w = options_.world_size;
  std::vector<std::string> keys;
  for (int i = 0; i < w; ++i) keys.push_back(fmt::format("{}/{}", prefix, i));
  try {
    store_->wait(keys, options_.connect_timeout);
  } catch (const CommError&) {
    std::vector<int> absent;
    try {
      for (const auto& k : store_->missing(keys)) absent.push_back(std::stoi(k.substr(k.rfind('/') + 1)));
    } catch (const CommError& lost) {
      throw CommError(fmt::format("gloo start-up: not every rank of a world of {} did {}, and the store went away "
                                  "(rank 0 gave up first or exited); rank {} waited",
                                  w, verb, r),
                      {.op = "init", .rank = r}, lost.what());
    }
    throw CommError(fmt::format("gloo start-up: ranks {} of a world of {} did not {} within {} ms (rank {} waited; "
                                "check WORLD_SIZE and that every rank was started)",
                                absent, w, verb, options_.connect_timeout.count(), r),
                    {.op = "init", .rank = r, .missing = absent});
  }
  return keys;
}

comm::CommPtr GlooBackend::create_group(std::span<const int> ranks, std::string_view kind) {
  const int id = next_group_id_++;
  auto g = std::make_shared<GlooGroup>();
  g->id = id;
  g->kind = std::string(kind);
  g->owner = &shared_;
  bool member = false;
  for (int r : ranks) {
    if (r < 0 || r >= options_.world_size) {
      throw Error(fmt::format("group {} ('{}') names rank {} outside a world of {}", id, kind, r, options_.world_size));
    }
    if (std::find(g->ranks.begin(), g->ranks.end(), r) != g->ranks.end()) {
      throw Error(fmt::format("group {} ('{}') names rank {} twice", id, kind, r));
    }
    if (r == options_.rank) {
      member = true;
      g->group_rank = static_cast<int>(g->ranks.size());
    }
    g->ranks.push_back(r);
  }
  if (!member) return nullptr;
  GlooStoreAdapter prefixed(*store_, fmt::format("ts/gloo/g{}/", id), options_.connect_timeout);
  auto context = std::make_shared<gloo::rendezvous::Context>(g->group_rank, static_cast<int>(g->ranks.size()));
  context->setTimeout(options_.timeout);
  try {
    context->connectFullMesh(prefixed, transport_);
  } catch (const std::exception& e) {
    throw CommError(fmt::format("gloo: connecting group {} ('{}', ranks {}) failed on rank {}", id, kind, g->ranks,
                                options_.rank),
                    {.group = id, .op = "new_group", .rank = options_.rank}, e.what());
  }
  g->context = std::move(context);
  return make_gloo_comm(std::move(g));
}

comm::CommPtr GlooBackend::new_group(std::span<const int> ranks, std::string_view kind) {
  return create_group(ranks, kind);
}

GlooBackend::~GlooBackend() {
  // Work still queued finishes first (it may need the store to report a failure); then rank 0
  // keeps the store up until every rank has said goodbye, or the timeout passes.
  if (device_) device_->drain();
  try {
    store_->set(fmt::format("ts/exit/{}", options_.rank), {});
    if (server_) {
      std::vector<std::string> keys;
      for (int i = 0; i < options_.world_size; ++i) keys.push_back(fmt::format("ts/exit/{}", i));
      store_->wait(keys, std::min(options_.timeout, options_.connect_timeout));
    }
  } catch (const std::exception&) {
    // A rank that died never says goodbye; nothing to do about it here.
  }
}

std::int64_t json_integer(const nlohmann::json& value, const std::string& key, std::int64_t lo, std::int64_t hi) {
  if (!value.is_number_integer() || value.get<std::int64_t>() < lo || value.get<std::int64_t>() > hi) {
    throw ConfigError("backend." + key, value.dump(), fmt::format("must be an integer in [{}, {}]", lo, hi));
  }
  return value.get<std::int64_t>();
}

}  // namespace

GlooOptions gloo_options(const comm::BackendOptions& options, const comm::EnvLookup& env) {
  GlooOptions o;
  if (options.rank < 0 || options.world_size < 0) {
    std::optional<comm::DistEnv> found = comm::discover_dist_env(env);
    if (!found) {
      throw ConfigError("RANK", "", "the gloo backend needs its rank and world: set RANK and WORLD_SIZE (torchrun, "
                                    "twinspeed launch), run under mpirun or srun, or pass them in BackendOptions");
    }
    o.rank = found->rank;
    o.world_size = found->world_size;
    o.master_addr = found->master_addr;
    o.master_port = found->master_port;
  }
  if (options.rank >= 0) o.rank = options.rank;
  if (options.world_size >= 0) o.world_size = options.world_size;
  if (options.rank >= 0 && options.world_size >= 0) {
    // Given explicitly: the master may still come from the environment.
    if (auto addr = env("MASTER_ADDR")) o.master_addr = *addr;
    if (auto port = env("MASTER_PORT")) {
      try {
        o.master_port = std::stoi(*port);
      } catch (const std::exception&) {
        throw ConfigError("MASTER_PORT", *port, "must be an integer");
      }
    }
  }
  nlohmann::json j = nlohmann::json::parse(options.settings_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    throw ConfigError("backend", options.settings_json, "gloo backend settings must be a JSON object");
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "master_addr" || key == "hostname") {
      if (!value.is_string()) throw ConfigError("backend." + key, value.dump(), "must be a string");
      (key == "hostname" ? o.hostname : o.master_addr) = value.get<std::string>();
    } else if (key == "master_port") {
      o.master_port = static_cast<int>(json_integer(value, key, 1, 65535));
    } else if (key == "timeout_ms") {
      o.timeout = milliseconds(json_integer(value, key, 1, std::int64_t{1} << 40));
    } else if (key == "connect_timeout_ms") {
      o.connect_timeout = milliseconds(json_integer(value, key, 1, std::int64_t{1} << 40));
    } else if (key == "capacity_bytes") {
      o.capacity_bytes = json_integer(value, key, 0, std::numeric_limits<std::int64_t>::max());
    } else if (key == "flight_recorder_dir") {
      if (!value.is_string()) throw ConfigError("backend." + key, value.dump(), "must be a string");
      o.flight_recorder_dir = value.get<std::string>();
    } else {
      throw ConfigError("backend." + key, value.dump(),
                        "unknown gloo backend setting (known: master_addr, master_port, hostname, timeout_ms, "
                        "connect_timeout_ms, capacity_bytes, flight_recorder_dir)");
    }
  }
  return o;
}

std::unique_ptr<comm::Backend> make_gloo_backend(const GlooOptions& options) {
  return std::make_unique<GlooBackend>(options);
}

}  // namespace twinspeed::backends
