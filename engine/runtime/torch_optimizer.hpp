#pragma once
// A user's torch::optim optimizer seen as a twinspeed Optimizer: schedulers write its groups'
// lr, betas, momentum and weight decay through GroupHyperparams, pushed to torch before each step.
//
// The engine decides what the optimizer updates: each torch param group's parameter list is
// replaced by ONE flat fp32 tensor over the engine's view of that group (the whole group in fp32
// ZeRO-0; the rank's fp32 master partition or shards under ZeRO 1-3 and in 16-bit training), whose
// gradient the engine binds (again at every mixed-precision step). This is exact for optimizers
// that update element by element (SGD, Adam, AdamW, Adagrad, RMSprop), not for LBFGS. The torch
// optimizer must not have stepped yet (its state is keyed by the tensors it held).

#include <twinspeed/torch.hpp>

#include <vector>

namespace twinspeed {

class TorchOptimizer final : public Optimizer {
 public:
  // Throws ConfigError when the optimizer's param groups do not match the engine's.
  TorchOptimizer(std::shared_ptr<torch::optim::Optimizer> optimizer, std::span<const FlatParamGroup> groups);
  std::string_view name() const override { return name_; }
  std::span<GroupHyperparams> param_groups() override { return groups_; }
  void step() override;
  void bind_gradients(std::span<const BufferView> grads) override;
  torch::optim::Optimizer& torch_optimizer() { return *optimizer_; }

 private:
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  std::string name_;
  std::vector<GroupHyperparams> groups_;
  std::vector<torch::Tensor> flat_;  // per group: the tensor the torch optimizer updates
};

}  // namespace twinspeed
