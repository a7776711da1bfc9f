// Registers the simulated cluster as backend "sim". Linked whole-archive into twinspeed::engine
// so this registration runs in every program that uses the engine.
//
// comm::create_backend("sim", options) returns:
//  - inside SimCluster::run, the calling rank's backend (as a launcher's environment tells a real
//    process its rank);
//  - otherwise, for world_size 1, a one-rank cluster living in the caller's thread.
// Settings: {"fidelity": "numeric"|"shape", "capacity_bytes": N}.

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "engine/comm/registry.hpp"
#include "engine/core/errors.hpp"
#include "sim/cluster.hpp"

namespace twinspeed::sim {
namespace {

ClusterOptions parse_settings(const std::string& text) {
  ClusterOptions o;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw ConfigError("backend", text, "sim backend settings must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (key == "fidelity") {
      if (value == "numeric") o.fidelity = Fidelity::numeric;
      else if (value == "shape") o.fidelity = Fidelity::shape;
      else throw ConfigError("backend.fidelity", value.dump(), "must be \"numeric\" or \"shape\"");
    } else if (key == "capacity_bytes") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0)
        throw ConfigError("backend.capacity_bytes", value.dump(), "must be an integer >= 0");
      o.capacity_bytes = value.get<std::int64_t>();
    } else {
      throw ConfigError("backend." + key, value.dump(), "unknown sim backend setting (known: fidelity, capacity_bytes)");
    }
  }
  return o;
}

// Forwards to a rank's backend; owns the cluster when it is a standalone one-rank cluster.
class BackendHandle final : public comm::Backend {
 public:
  BackendHandle(comm::Backend& target, std::unique_ptr<SimCluster> owned) : target_(target), owned_(std::move(owned)) {}
  std::string_view name() const override { return target_.name(); }
  int rank() const override { return target_.rank(); }
  int world_size() const override { return target_.world_size(); }
  comm::Device& device() override { return target_.device(); }
  comm::Device& host() override { return target_.host(); }
  comm::Store& store() override { return target_.store(); }
  TraceRecorder& tracer() override { return target_.tracer(); }
  comm::CommPtr world() override { return target_.world(); }
  comm::CommPtr new_group(std::span<const int> ranks, std::string_view kind) override {
    return target_.new_group(ranks, kind);
  }

 private:
  comm::Backend& target_;
  std::unique_ptr<SimCluster> owned_;
};

std::unique_ptr<comm::Backend> create(const comm::BackendOptions& options) {
  ClusterOptions settings = parse_settings(options.settings_json);
  if (comm::Backend* current = SimCluster::current_rank_backend()) {
    if ((options.rank >= 0 && current->rank() != options.rank) ||
        (options.world_size >= 0 && current->world_size() != options.world_size)) {
      throw Error(fmt::format("sim backend asked for rank {} of {} on the thread of simulated rank {} of {}",
                              options.rank, options.world_size, current->rank(), current->world_size()));
    }
    return std::make_unique<BackendHandle>(*current, nullptr);
  }
  if ((options.world_size != 1 && options.world_size != -1) || (options.rank != 0 && options.rank != -1)) {
    throw NotImplemented(fmt::format(
        "a {}-rank simulated cluster runs its ranks itself (SimCluster::run); outside it the sim backend has one rank",
        options.world_size));
  }
  settings.world = 1;
  auto cluster = std::make_unique<SimCluster>(settings);
  comm::Backend& rank0 = cluster->standalone_rank0();
  return std::make_unique<BackendHandle>(rank0, std::move(cluster));
}

const bool registered = [] {
  comm::register_backend("sim", create);
  return true;
}();

}  // namespace
}  // namespace twinspeed::sim
