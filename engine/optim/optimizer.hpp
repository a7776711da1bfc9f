#pragma once
// Optimizers as the engine sees them: something that updates the parameters it was bound to from
// their gradients, and whose per-group hyper-parameters a scheduler can read and write.

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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
  // Where each tensor of the group starts in the views, ascending from 0, for optimizers whose
  // update depends on per-tensor norms (LAMB's trust ratio): DeepSpeed's basic optimizer sees one
  // tensor per parameter at stage 0 and one flat partition per group under ZeRO. Empty: the whole
  // view is one tensor.
  std::vector<std::int64_t> tensor_starts;
};

// What DeepSpeed checks about the basic optimizer when the engine is set up
// (_do_optimizer_sanity_check, _configure_fp16_optimizer).
struct OptimizerSetup {
  int zero_stage = 0;
  bool zero_allow_untested_optimizer = false;
  bool fp16 = false;
  bool dynamic_loss_scale = true;
};

// Throws ConfigError where DeepSpeed 0.19.6 fails for a config optimizer type (any spelling the
// config accepts) in this setup: ZeRO with an optimizer outside ZERO_SUPPORTED_OPTIMIZERS
// without zero_allow_untested_optimizer (LAMB; SGD is a documented exception), and LAMB in fp16
// with a static loss scale.
void check_optimizer_setup(std::string_view type, const OptimizerSetup& setup);

// Builds the optimizer of a config's "optimizer" section over param groups (fp32, or 16-bit master
// weights; each group's lr / weight_decay, when set, override the config's); its state is
// allocated on device with tag optimizer_states in state_dtype (bf16 with
// bf16.bf16_optimizer_states). Errors are ConfigError with paths under "optimizer" (unknown type
// or parameter, with the closest name).
std::unique_ptr<Optimizer> make_config_optimizer(std::string_view type, const nlohmann::json& params,
                                                 comm::Device& device, std::span<const FlatParamGroup> groups,
                                                 DType state_dtype = DType::f32);

}  // namespace twinspeed
