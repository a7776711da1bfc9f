#pragma once
// Optimizers as the engine sees them: something that updates the parameters it was bound to from
// their gradients, and whose per-group hyper-parameters a scheduler can read and write.

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/comm/device.hpp"
#include "engine/core/buffer.hpp"
#include "engine/optim/hyperparams.hpp"

namespace twinspeed {

class Optimizer : public HyperparamTarget {
 public:
  // The name as DeepSpeed reports it ("adamw", "adam", "sgd", or the wrapped optimizer's).
  virtual std::string_view name() const = 0;
  // Applies one update from the bound gradients.
  virtual void step() = 0;
  // Points the optimizer at new gradient storage, one view per param group (same sizes). The
  // engine gives mixed-precision steps fp32 gradients that live only during the step, as
  // DeepSpeed does. Optimizers that cannot move their gradients throw NotImplemented.
  virtual void bind_gradients(std::span<const BufferView> grads);
};

// One optimizer param group over engine memory: its parameters and gradients as contiguous views
// of the flat buffers, and the hyper-parameters it overrides (DeepSpeed's model_parameters dicts).
struct FlatParamGroup {
  BufferView params;
  BufferView grads;
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

// Builds the optimizer of a config's "optimizer" section over param groups (fp32, or 16-bit master
// weights; each group's lr / weight_decay, when set, override the config's); its state is
// allocated on device with tag optimizer_states in state_dtype (bf16 with
// bf16.bf16_optimizer_states). Errors are ConfigError with paths under "optimizer" (unknown type
// or parameter, with the closest name).
std::unique_ptr<Optimizer> make_config_optimizer(std::string_view type, const nlohmann::json& params,
                                                 comm::Device& device, std::span<const FlatParamGroup> groups,
                                                 DType state_dtype = DType::f32);

}  // namespace twinspeed
