// Registers the Gloo backend as "gloo". Linked whole-archive into twinspeed::engine (like
// sim/register.cpp) so the registration runs in every program that uses the engine.

#include "engine/backends/gloo/gloo_backend.hpp"
#include "engine/comm/registry.hpp"

namespace twinspeed::backends {
namespace {

const bool registered = [] {
  comm::register_backend("gloo", [](const comm::BackendOptions& options) {
    return make_gloo_backend(gloo_options(options, comm::process_env()));
  });
  return true;
}();

}  // namespace
}  // namespace twinspeed::backends
