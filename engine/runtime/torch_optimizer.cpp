#include "engine/runtime/torch_optimizer.hpp"

#include <fmt/format.h>

#include "engine/core/errors.hpp"

namespace twinspeed {

namespace {

// Reads (or, with write, writes) one group's hyper-parameters from the option types that carry
// them; other optimizers expose the learning rate only.
void sync(torch::optim::OptimizerOptions& options, GroupHyperparams& h, bool write) {
  auto betas = [&](auto& o) {
    if (write && h.betas) o.betas(std::make_tuple((*h.betas)[0], (*h.betas)[1]));
    if (!write) h.betas = std::array<double, 2>{std::get<0>(o.betas()), std::get<1>(o.betas())};
  };
  auto decay = [&](auto& o) {
    if (write) o.weight_decay(h.weight_decay);
    else h.weight_decay = o.weight_decay();
  };
  if (write) options.set_lr(h.lr);
  else h.lr = options.get_lr();
  if (auto* adam = dynamic_cast<torch::optim::AdamOptions*>(&options)) {
    betas(*adam);
    decay(*adam);
  } else if (auto* adamw = dynamic_cast<torch::optim::AdamWOptions*>(&options)) {
    betas(*adamw);
    decay(*adamw);
  } else if (auto* sgd = dynamic_cast<torch::optim::SGDOptions*>(&options)) {
    decay(*sgd);
    if (write && h.momentum) sgd->momentum(*h.momentum);
    if (!write) h.momentum = sgd->momentum();
  }
}

std::string torch_name(const torch::optim::Optimizer& o) {
  if (dynamic_cast<const torch::optim::AdamW*>(&o)) return "AdamW";
  if (dynamic_cast<const torch::optim::Adam*>(&o)) return "Adam";
  if (dynamic_cast<const torch::optim::SGD*>(&o)) return "SGD";
  if (dynamic_cast<const torch::optim::Adagrad*>(&o)) return "Adagrad";
  if (dynamic_cast<const torch::optim::RMSprop*>(&o)) return "RMSprop";
  return "torch.optim";
}

}  // namespace

TorchOptimizer::TorchOptimizer(std::shared_ptr<torch::optim::Optimizer> optimizer,
                               std::span<const FlatParamGroup> groups)
    : optimizer_(std::move(optimizer)), name_(torch_name(*optimizer_)) {
  auto& torch_groups = optimizer_->param_groups();
  if (torch_groups.size() != groups.size()) {
    throw ConfigError("optimizer", name_,
                      fmt::format("the torch optimizer has {} param groups but the engine {}; pass model_parameters "
                                  "with the same groups to initialize()",
                                  torch_groups.size(), groups.size()));
  }
  for (std::size_t g = 0; g < groups.size(); ++g) {
    GroupHyperparams h;
    sync(torch_groups[g].options(), h, /*write=*/false);
    groups_.push_back(h);
    torch::Tensor flat;
    if (groups[g].params.has_data()) {
      flat = torch::from_blob(groups[g].params.data(), {groups[g].params.numel}, torch::kFloat32);
    } else {
      flat = torch::empty({0}, torch::kFloat32);  // shape-only fidelity: nothing to update
    }
    flat_.push_back(flat);
    torch_groups[g].params() = {flat};
  }
  std::vector<BufferView> grads;
  for (const auto& g : groups) grads.push_back(g.grads);
  bind_gradients(grads);
}

void TorchOptimizer::bind_gradients(std::span<const BufferView> grads) {
  for (std::size_t g = 0; g < flat_.size() && g < grads.size(); ++g) {
    flat_[g].mutable_grad() = grads[g].has_data()
                                  ? torch::from_blob(grads[g].data(), {grads[g].numel}, torch::kFloat32)
                                  : torch::Tensor();
  }
}

void TorchOptimizer::step() {
  auto& torch_groups = optimizer_->param_groups();
  for (std::size_t i = 0; i < torch_groups.size() && i < groups_.size(); ++i) {
    sync(torch_groups[i].options(), groups_[i], /*write=*/true);
  }
  optimizer_->step();
}

}  // namespace twinspeed
