#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <vector>

#include "engine/core/errors.hpp"
#include "engine/core/text.hpp"
#include "engine/optim/optimizer.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed {

namespace {


// Reads the keys of an "optimizer.params" object by name and type; unknown keys are an error, as
// DeepSpeed passes **params to the optimizer's constructor (a TypeError there).
class ParamsReader {
 public:
  explicit ParamsReader(const nlohmann::json& params) : params_(params) {
    if (!params_.is_object() && !params_.is_null()) {
      throw ConfigError("optimizer.params", params_.dump(), "must be an object");
    }
  }
  double number(const std::string& key, double fallback) {
    return read<double>(key, fallback, &nlohmann::json::is_number, "must be a number");
  }
  bool boolean(const std::string& key, bool fallback) {
    return read<bool>(key, fallback, &nlohmann::json::is_boolean, "must be true or false");
  }
  std::array<double, 2> pair(const std::string& key, std::array<double, 2> fallback) {
    known_.push_back(key);
    if (!has(key)) return fallback;
    const auto& v = params_.at(key);
    if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number()) {
      throw ConfigError(path(key), v.dump(), "must be a list of two numbers");
    }
    return {v[0].get<double>(), v[1].get<double>()};
  }
  // Throws for the first key that was never read.
  void reject_unknown(std::string_view optimizer) const {
    if (!params_.is_object()) return;
    for (const auto& [key, value] : params_.items()) {
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      auto suggestion = closest_match(key, known_);
      throw ConfigError(path(key), value.dump(),
                        fmt::format("{} has no parameter '{}'{}; it takes: {}", optimizer, key,
                                    suggestion ? fmt::format(" (did you mean '{}'?)", *suggestion) : "",
                                    fmt::join(known_, ", ")));
    }
  }

 private:
  template <typename T>
  T read(const std::string& key, T fallback, bool (nlohmann::json::*is_type)() const noexcept, const char* rule) {
    known_.push_back(key);
    if (!has(key)) return fallback;
    const auto& v = params_.at(key);
    if (!(v.*is_type)()) throw ConfigError(path(key), v.dump(), rule);
    return v.get<T>();
  }
  bool has(const std::string& key) const { return params_.is_object() && params_.contains(key); }
  static std::string path(const std::string& key) { return "optimizer.params." + key; }
  const nlohmann::json& params_;
  std::vector<std::string> known_;
};

void check_range(const std::string& key, double value, bool ok, const char* rule) {
  if (!ok) throw ConfigError("optimizer.params." + key, fmt::format("{}", value), rule);
}

// Adam's and LAMB's betas: each in [0, 1).
void check_betas_below_one(double beta1, double beta2) {
  check_range("betas", beta1, beta1 >= 0 && beta1 < 1, "betas[0] must be in [0, 1)");
  check_range("betas", beta2, beta2 >= 0 && beta2 < 1, "betas[1] must be in [0, 1)");
}

// Param groups over flat engine memory. Each state buffer (Adam's two moments, SGD's momentum)
// is one allocation laid out group after group, like the parameters.
class FlatGroupsOptimizer : public Optimizer {
 public:
  std::span<GroupHyperparams> param_groups() override { return hyper_; }
  void bind_gradients(std::span<const BufferView> grads) override {
    if (grads.size() != groups_.size()) {
      throw Error(fmt::format("optimizer: {} gradient views for {} param groups", grads.size(), groups_.size()));
    }
    for (std::size_t g = 0; g < grads.size(); ++g) {
      if (grads[g].numel != groups_[g].params.numel) {
        throw Error(fmt::format("optimizer: param group {} has {} elements but its gradient view {}", g,
                                groups_[g].params.numel, grads[g].numel));
      }
      groups_[g].grads = grads[g];
    }
  }

 protected:
  FlatGroupsOptimizer(std::span<const FlatParamGroup> groups, const GroupHyperparams& defaults, comm::Device& device,
                      int state_buffers, DType state_dtype)
      : groups_(groups.begin(), groups.end()) {
    std::int64_t total = 0;
    for (const auto& g : groups_) {
      GroupHyperparams h = defaults;
      if (g.lr) h.lr = *g.lr;
      if (g.weight_decay) h.weight_decay = *g.weight_decay;
      hyper_.push_back(h);
      offsets_.push_back(total);
      total += g.params.numel;
    }
    for (int i = 0; i < state_buffers; ++i) states_.push_back(device.allocate(state_dtype, total, MemoryTag::optimizer_states));
  }
  std::size_t group_count() const { return groups_.size(); }
  const FlatParamGroup& group(std::size_t g) const { return groups_[g]; }
  const GroupHyperparams& hyper(std::size_t g) const { return hyper_[g]; }
  BufferView state(std::size_t buffer, std::size_t g) const {
    return states_[buffer].view(offsets_[g], groups_[g].params.numel);
  }

 private:
  std::vector<FlatParamGroup> groups_;
  std::vector<GroupHyperparams> hyper_;
  std::vector<std::int64_t> offsets_;
  std::vector<Buffer> states_;
};

class FlatAdam final : public FlatGroupsOptimizer {
 public:
  FlatAdam(std::string name, kernels::AdamParams p, comm::Device& device, std::span<const FlatParamGroup> groups,
           DType state_dtype)
      : FlatGroupsOptimizer(groups,
                            {.lr = p.lr, .weight_decay = p.weight_decay, .momentum = std::nullopt,
                             .betas = {{p.beta1, p.beta2}}},
                            device, /*state_buffers=*/2, state_dtype),
        name_(std::move(name)),
        params_(p) {}
  std::string_view name() const override { return name_; }
  void step() override {
    ++step_;
    for (std::size_t g = 0; g < group_count(); ++g) {
      kernels::AdamParams p = params_;
      const GroupHyperparams& h = hyper(g);
      p.lr = h.lr;
      p.weight_decay = h.weight_decay;
      if (h.betas) std::tie(p.beta1, p.beta2) = std::pair((*h.betas)[0], (*h.betas)[1]);
      p.step = step_;
      kernels::adam_step(group(g).params, group(g).grads, state(0, g), state(1, g), p);
    }
  }

 private:
  std::string name_;
  kernels::AdamParams params_;
  std::int64_t step_ = 0;
};

class FlatSgd final : public FlatGroupsOptimizer {
 public:
  FlatSgd(kernels::SgdParams p, comm::Device& device, std::span<const FlatParamGroup> groups, DType state_dtype)
      : FlatGroupsOptimizer(groups,
                            {.lr = p.lr, .weight_decay = p.weight_decay, .momentum = p.momentum, .betas = std::nullopt},
                            device, /*state_buffers=*/0, state_dtype),
        params_(p),
        device_(device),
        state_dtype_(state_dtype),
        momentum_(groups.size()) {}
  std::string_view name() const override { return "sgd"; }
  void step() override {
    for (std::size_t g = 0; g < group_count(); ++g) {
      kernels::SgdParams p = params_;
      const GroupHyperparams& h = hyper(g);
      p.lr = h.lr;
      p.weight_decay = h.weight_decay;
      p.momentum = h.momentum.value_or(0.0);
      // As torch.optim.SGD: a group's momentum buffer is created (from the first gradient) the
      // first time its momentum is non-zero, which a scheduler (OneCycle) may decide later.
      Buffer& buffer = momentum_[g];
      p.first_step = buffer.empty();
      if (p.momentum != 0.0 && buffer.empty()) {
        buffer = device_.allocate(state_dtype_, group(g).params.numel, MemoryTag::optimizer_states);
      }
      kernels::sgd_step(group(g).params, group(g).grads, p.momentum != 0.0 ? buffer.all() : BufferView{}, p);
    }
  }

 private:
  kernels::SgdParams params_;
  comm::Device& device_;
  DType state_dtype_;
  std::vector<Buffer> momentum_;  // per group; empty until that group's momentum is non-zero
};

// DeepSpeed's FusedLamb: the trust ratio per tensor of each group (FlatParamGroup::tensor_starts:
// parameters at stage 0, the rank's flat partition under ZeRO).
class FlatLamb final : public FlatGroupsOptimizer {
 public:
  FlatLamb(kernels::LambParams p, comm::Device& device, std::span<const FlatParamGroup> groups, DType state_dtype)
      : FlatGroupsOptimizer(groups,
                            {.lr = p.lr, .weight_decay = p.weight_decay, .momentum = std::nullopt,
                             .betas = {{p.beta1, p.beta2}}},
                            device, /*state_buffers=*/2, state_dtype),
        params_(p) {}
  std::string_view name() const override { return "lamb"; }
  // The trust ratios of the last step, tensor by tensor, group after group (FusedLamb's
  // get_lamb_coeffs).
  const std::vector<float>& trust_ratios() const { return trust_ratios_; }
  void step() override {
    ++step_;
    trust_ratios_.clear();
    for (std::size_t g = 0; g < group_count(); ++g) {
      kernels::LambParams p = params_;
      const GroupHyperparams& h = hyper(g);
      p.lr = h.lr;
      p.weight_decay = h.weight_decay;
      if (h.betas) std::tie(p.beta1, p.beta2) = std::pair((*h.betas)[0], (*h.betas)[1]);
      p.step = step_;
      const FlatParamGroup& fg = group(g);
      std::vector<std::int64_t> starts = fg.tensor_starts;
      if (starts.empty()) starts.push_back(0);
      for (std::size_t t = 0; t < starts.size(); ++t) {
        const std::int64_t begin = starts[t];
        const std::int64_t end = t + 1 < starts.size() ? starts[t + 1] : fg.params.numel;
        if (end <= begin) continue;
        trust_ratios_.push_back(kernels::lamb_step(fg.params.sub(begin, end - begin), fg.grads.sub(begin, end - begin),
                                                   state(0, g).sub(begin, end - begin),
                                                   state(1, g).sub(begin, end - begin), p));
      }
    }
  }

 private:
  kernels::LambParams params_;
  std::int64_t step_ = 0;
  std::vector<float> trust_ratios_;
};

class FlatLion final : public FlatGroupsOptimizer {
 public:
  FlatLion(kernels::LionParams p, comm::Device& device, std::span<const FlatParamGroup> groups, DType state_dtype)
      : FlatGroupsOptimizer(groups,
                            {.lr = p.lr, .weight_decay = p.weight_decay, .momentum = std::nullopt,
                             .betas = {{p.beta1, p.beta2}}},
                            device, /*state_buffers=*/1, state_dtype),
        params_(p) {}
  std::string_view name() const override { return "lion"; }
  void step() override {
    for (std::size_t g = 0; g < group_count(); ++g) {
      kernels::LionParams p = params_;
      const GroupHyperparams& h = hyper(g);
      p.lr = h.lr;
      p.weight_decay = h.weight_decay;
      if (h.betas) std::tie(p.beta1, p.beta2) = std::pair((*h.betas)[0], (*h.betas)[1]);
      kernels::lion_step(group(g).params, group(g).grads, state(0, g), p);
    }
  }

 private:
  kernels::LionParams params_;
};

// torch.optim.Adagrad (DeepSpeed's "adagrad" without offload). The sum of squares starts at
// initial_accumulator_value.
class FlatAdagrad final : public FlatGroupsOptimizer {
 public:
  FlatAdagrad(kernels::AdagradParams p, double initial_accumulator, comm::Device& device,
              std::span<const FlatParamGroup> groups, DType state_dtype)
      : FlatGroupsOptimizer(groups, {.lr = p.lr, .weight_decay = p.weight_decay, .momentum = std::nullopt, .betas = std::nullopt},
                            device, /*state_buffers=*/1, state_dtype),
        params_(p) {
    if (initial_accumulator == 0.0) return;  // the states are allocated zeroed
    for (std::size_t g = 0; g < group_count(); ++g) {
      BufferView sums = state(0, g);
      if (!sums.has_data()) continue;
      if (sums.dtype() != DType::f32) {
        throw NotImplemented("optimizer adagrad: initial_accumulator_value with 16-bit optimizer states");
      }
      std::fill_n(sums.data_as<float>(), sums.numel, static_cast<float>(initial_accumulator));
    }
  }
  std::string_view name() const override { return "adagrad"; }
  void step() override {
    ++step_;
    for (std::size_t g = 0; g < group_count(); ++g) {
      kernels::AdagradParams p = params_;
      p.lr = hyper(g).lr;
      p.weight_decay = hyper(g).weight_decay;
      p.step = step_;
      kernels::adagrad_step(group(g).params, group(g).grads, state(0, g), p);
    }
  }

 private:
  kernels::AdagradParams params_;
  std::int64_t step_ = 0;
};

// DeepSpeed 0.19.6's optimizer names (deepspeed/runtime/config.py DEEPSPEED_OPTIMIZERS), lower case.
constexpr std::array<std::string_view, 12> kDeepSpeedOptimizers = {
    "adagrad", "adam", "adamw", "lamb", "onebitadam", "onebitlamb", "zerooneadam",
    "lion", "muadam", "muadamw", "musgd", "muon"};
// DeepSpeed lower-cases its own names; any other name is looked up as a torch.optim class, by its
// exact spelling ("SGD").
std::string canonical_name(std::string_view type) {
  std::string name = lower_case(type);
  if (std::find(kDeepSpeedOptimizers.begin(), kDeepSpeedOptimizers.end(), name) != kDeepSpeedOptimizers.end()) {
    return name;
  }
  return std::string(type);
}

std::unique_ptr<Optimizer> make_adam(const std::string& type, const nlohmann::json& json, comm::Device& device,
                                     std::span<const FlatParamGroup> groups, DType state_dtype) {
  ParamsReader r(json);
  kernels::AdamParams p;
  p.lr = r.number("lr", 1e-3);
  auto betas = r.pair("betas", {0.9, 0.999});
  p.beta1 = betas[0];
  p.beta2 = betas[1];
  p.eps = r.number("eps", 1e-8);
  p.weight_decay = r.number("weight_decay", 0.0);
  p.bias_correction = r.boolean("bias_correction", true);
  // DeepSpeed: "Adam" is AdamW unless adam_w_mode is false; "AdamW" always decouples.
  p.adam_w_mode = r.boolean("adam_w_mode", true);
  if (type == "adamw" && !p.adam_w_mode) {
    throw ConfigError("optimizer.params.adam_w_mode", "false", "AdamW always uses decoupled weight decay");
  }
  bool torch_adam = r.boolean("torch_adam", false);
  (void)torch_adam;  // torch.optim.Adam(W) computes the same update; one implementation serves both.
  bool amsgrad = r.boolean("amsgrad", false);
  if (amsgrad) throw ConfigError("optimizer.params.amsgrad", "true", "FusedAdam does not support the AMSGrad variant");
  r.reject_unknown(type == "adamw" ? "AdamW" : "Adam");
  check_range("lr", p.lr, p.lr >= 0, "must be >= 0");
  check_range("eps", p.eps, p.eps >= 0, "must be >= 0");
  check_betas_below_one(p.beta1, p.beta2);
  return std::make_unique<FlatAdam>(p.adam_w_mode ? "adamw" : "adam", p, device, groups, state_dtype);
}

std::unique_ptr<Optimizer> make_sgd(const nlohmann::json& json, comm::Device& device,
                                    std::span<const FlatParamGroup> groups, DType state_dtype) {
  ParamsReader r(json);
  kernels::SgdParams p;
  p.lr = r.number("lr", 1e-3);
  p.momentum = r.number("momentum", 0.0);
  p.dampening = r.number("dampening", 0.0);
  p.weight_decay = r.number("weight_decay", 0.0);
  p.nesterov = r.boolean("nesterov", false);
  r.reject_unknown("SGD");
  check_range("lr", p.lr, p.lr >= 0, "must be >= 0");
  check_range("momentum", p.momentum, p.momentum >= 0, "must be >= 0");
  if (p.nesterov && (p.momentum <= 0 || p.dampening != 0)) {
    throw ConfigError("optimizer.params.nesterov", "true", "Nesterov momentum requires a momentum and zero dampening");
  }
  return std::make_unique<FlatSgd>(p, device, groups, state_dtype);
}

std::unique_ptr<Optimizer> make_lamb(const nlohmann::json& json, comm::Device& device,
                                     std::span<const FlatParamGroup> groups, DType state_dtype) {
  ParamsReader r(json);
  kernels::LambParams p;
  p.lr = r.number("lr", 1e-3);
  p.bias_correction = r.boolean("bias_correction", true);
  auto betas = r.pair("betas", {0.9, 0.999});
  p.beta1 = betas[0];
  p.beta2 = betas[1];
  p.eps = r.number("eps", 1e-8);
  p.eps_inside_sqrt = r.boolean("eps_inside_sqrt", false);
  p.weight_decay = r.number("weight_decay", 0.0);
  p.max_coeff = r.number("max_coeff", 10.0);
  p.min_coeff = r.number("min_coeff", 0.01);
  if (r.boolean("amsgrad", false)) {
    throw ConfigError("optimizer.params.amsgrad", "true", "FusedLamb does not support the AMSGrad variant");
  }
  r.reject_unknown("Lamb");
  check_range("lr", p.lr, p.lr >= 0, "must be >= 0");
  check_range("eps", p.eps, p.eps >= 0, "must be >= 0");
  check_betas_below_one(p.beta1, p.beta2);
  check_range("min_coeff", p.min_coeff, p.min_coeff <= p.max_coeff, "must be <= max_coeff");
  return std::make_unique<FlatLamb>(p, device, groups, state_dtype);
}

// FusedLion(lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0, set_grad_none=True); DeepSpeedCPULion
// has the same parameters and fp32_optimizer_states.
std::unique_ptr<Optimizer> make_lion(const nlohmann::json& json, comm::Device& device,
                                     std::span<const FlatParamGroup> groups, DType state_dtype) {
  ParamsReader r(json);
  kernels::LionParams p;
  p.lr = r.number("lr", 1e-3);
  auto betas = r.pair("betas", {0.9, 0.999});
  p.beta1 = betas[0];
  p.beta2 = betas[1];
  p.weight_decay = r.number("weight_decay", 0.0);
  (void)r.boolean("set_grad_none", true);  // gradient lifetime: the engine owns its gradients
  (void)r.boolean("fp32_optimizer_states", true);
  r.reject_unknown("Lion");
  check_range("lr", p.lr, p.lr >= 0, "must be >= 0");
  check_range("betas", p.beta1, p.beta1 >= 0 && p.beta1 <= 1, "betas[0] must be in [0, 1]");
  check_range("betas", p.beta2, p.beta2 >= 0 && p.beta2 <= 1, "betas[1] must be in [0, 1]");
  return std::make_unique<FlatLion>(p, device, groups, state_dtype);
}

// torch.optim.Adagrad(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
// eps=1e-10, foreach, maximize, differentiable, fused).
std::unique_ptr<Optimizer> make_adagrad(const nlohmann::json& json, comm::Device& device,
                                        std::span<const FlatParamGroup> groups, DType state_dtype) {
  ParamsReader r(json);
  kernels::AdagradParams p;
  p.lr = r.number("lr", 1e-2);
  p.lr_decay = r.number("lr_decay", 0.0);
  p.weight_decay = r.number("weight_decay", 0.0);
  const double initial = r.number("initial_accumulator_value", 0.0);
  p.eps = r.number("eps", 1e-10);
  for (const char* key : {"foreach", "differentiable", "fused"}) (void)r.boolean(key, false);  // no numeric effect
  if (r.boolean("maximize", false)) {
    throw ConfigError("optimizer.params.maximize", "true", "Adagrad with maximize is not implemented in twinspeed");
  }
  r.reject_unknown("Adagrad");
  check_range("lr", p.lr, p.lr >= 0, "must be >= 0");
  check_range("lr_decay", p.lr_decay, p.lr_decay >= 0, "must be >= 0");
  check_range("weight_decay", p.weight_decay, p.weight_decay >= 0, "must be >= 0");
  check_range("initial_accumulator_value", initial, initial >= 0, "must be >= 0");
  check_range("eps", p.eps, p.eps >= 0, "must be >= 0");
  return std::make_unique<FlatAdagrad>(p, initial, device, groups, state_dtype);
}

// Why a name DeepSpeed 0.19.6 accepts is not implemented.
std::string unimplemented_reason(const std::string& name) {
  if (name == "onebitadam" || name == "zerooneadam" || name == "onebitlamb") {
    return "is a DeepSpeed communication-compressed optimizer (1-bit / 0-1 compression of the gradient "
           "all-reduce), which twinspeed does not implement";
  }
  if (name == "muadam" || name == "muadamw" || name == "musgd") {
    return "comes from the mup package (muP width-scaled learning rates), which twinspeed does not implement";
  }
  if (name == "muon") return "(Muon with auxiliary Adam, per-parameter use_muon) is not implemented in twinspeed";
  if (std::find(kDeepSpeedOptimizers.begin(), kDeepSpeedOptimizers.end(), name) != kDeepSpeedOptimizers.end()) {
    return "is a DeepSpeed optimizer twinspeed does not implement";
  }
  return "is a torch.optim class twinspeed does not implement (or not an optimizer DeepSpeed knows)";
}

}  // namespace

std::unique_ptr<Optimizer> make_config_optimizer(std::string_view type, const nlohmann::json& params,
                                                 comm::Device& device, std::span<const FlatParamGroup> groups,
                                                 DType state_dtype) {
  std::string name = canonical_name(type);
  if (params.is_object() && params.contains("max_grad_norm")) {
    throw ConfigError("optimizer.params.max_grad_norm", params.at("max_grad_norm").dump(),
                      "'max_grad_norm' is not supported as an optimizer parameter; use the top-level "
                      "'gradient_clipping' instead (as DeepSpeed requires)");
  }
  if (name == "adam" || name == "adamw") return make_adam(name, params, device, groups, state_dtype);
  if (name == "lamb") return make_lamb(params, device, groups, state_dtype);
  if (name == "lion") return make_lion(params, device, groups, state_dtype);
  if (name == "adagrad") return make_adagrad(params, device, groups, state_dtype);
  if (name == "SGD") return make_sgd(params, device, groups, state_dtype);
  throw ConfigError("optimizer.type", fmt::format("\"{}\"", type),
                    fmt::format("{}; twinspeed implements the DeepSpeed optimizers Adam, AdamW, Lamb, Lion, Adagrad "
                                "(any case) and the torch.optim class SGD",
                                unimplemented_reason(name)));
}

void check_optimizer_setup(std::string_view type, const OptimizerSetup& setup) {
  const std::string name = canonical_name(type);
  // deepspeed/runtime/zero/utils.py ZERO_SUPPORTED_OPTIMIZERS: torch Adam/AdamW/Adagrad,
  // FusedAdam, DeepSpeedCPUAdam/Adagrad/Lion, FusedLion. twinspeed's ZeRO tests train with SGD, so
  // SGD stays allowed (a documented deviation).
  const bool zero_tested = name == "adam" || name == "adamw" || name == "adagrad" || name == "lion" || name == "SGD";
  if (setup.zero_stage > 0 && !zero_tested && !setup.zero_allow_untested_optimizer) {
    throw ConfigError("zero_allow_untested_optimizer", "false",
                      fmt::format("optimizer '{}' is not one DeepSpeed tests with ZeRO (stage {}); DeepSpeed fails "
                                  "with 'You are using an untested ZeRO Optimizer. Please add "
                                  "<\"zero_allow_untested_optimizer\": true> in the configuration file to use it.'",
                                  type, setup.zero_stage));
  }
  if (name == "lamb" && setup.fp16 && !setup.dynamic_loss_scale) {
    throw ConfigError("fp16.loss_scale", "static",
                      "LAMB in fp16 needs dynamic loss scaling (fp16.loss_scale 0): DeepSpeed's fp16 LAMB path "
                      "(FP16_UnfusedOptimizer with fused_lamb_legacy) does not support a static loss scale");
  }
}

}  // namespace twinspeed

namespace twinspeed {

void Optimizer::bind_gradients(std::span<const BufferView> /*grads*/) {
  throw NotImplemented(fmt::format("optimizer {} cannot move its gradients, which ZeRO stages 1-3 and fp16/bf16 "
                                   "training need; use an optimizer from the config's \"optimizer\" section",
                                   name()));
}

}  // namespace twinspeed
