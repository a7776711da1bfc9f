// Config-built optimizers on flat buffers of a one-rank simulated device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/comm/registry.hpp"
#include "engine/core/errors.hpp"
#include "engine/optim/optimizer.hpp"

namespace twinspeed {
namespace {

TEST(ConfigSgd, MomentumTurnedOnLaterByASchedulerStartsItsBufferThenAsTorchDoes) {
  auto backend = comm::create_backend("sim", {});
  comm::Device& device = backend->device();
  Buffer params = device.allocate(DType::f32, 2, MemoryTag::params);
  Buffer grads = device.allocate(DType::f32, 2, MemoryTag::grads);
  params.data_as<float>()[0] = 1.0f;
  grads.data_as<float>()[0] = 1.0f;  // a constant gradient of 1 on element 0
  std::vector<FlatParamGroup> groups = {{.params = params.all(), .grads = grads.all()}};
  auto sgd = make_config_optimizer("SGD", {{"lr", 0.1}}, device, groups);
  sgd->step();  // momentum 0: p = 1 - 0.1
  EXPECT_FLOAT_EQ(params.data_as<float>()[0], 0.9f);
  EXPECT_EQ(device.memory().current(MemoryTag::optimizer_states), 0);
  sgd->param_groups()[0].momentum = 0.5;  // what OneCycle's momentum cycling does
  sgd->step();  // buffer starts as the gradient: p = 0.9 - 0.1 * 1
  sgd->step();  // buffer = 0.5 * 1 + 1 = 1.5: p = 0.8 - 0.15
  EXPECT_FLOAT_EQ(params.data_as<float>()[0], 0.65f);
  EXPECT_EQ(device.memory().current(MemoryTag::optimizer_states), 2 * 4);
}

TEST(ConfigOptimizer, UnknownParametersAndTypesAreConfigErrorsWithTheClosestName) {
  auto backend = comm::create_backend("sim", {});
  Buffer params = backend->device().allocate(DType::f32, 2, MemoryTag::params);
  Buffer grads = backend->device().allocate(DType::f32, 2, MemoryTag::grads);
  std::vector<FlatParamGroup> groups = {{.params = params.all(), .grads = grads.all()}};
  try {
    (void)make_config_optimizer("AdamW", {{"betas1", 0.9}}, backend->device(), groups);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "optimizer.params.betas1");
    EXPECT_NE(std::string(e.what()).find("did you mean 'betas'"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)make_config_optimizer("OneBitLamb", {}, backend->device(), groups), ConfigError);
}

// A one-rank simulated device with one group of n fp32 parameters and gradients.
struct OneGroup {
  std::unique_ptr<comm::Backend> backend = comm::create_backend("sim", {});
  Buffer params, grads;
  std::vector<FlatParamGroup> groups;
  explicit OneGroup(std::vector<float> p, std::vector<float> g, std::vector<std::int64_t> starts = {}) {
    params = backend->device().allocate(DType::f32, static_cast<std::int64_t>(p.size()), MemoryTag::params);
    grads = backend->device().allocate(DType::f32, static_cast<std::int64_t>(g.size()), MemoryTag::grads);
    std::copy(p.begin(), p.end(), params.data_as<float>());
    std::copy(g.begin(), g.end(), grads.data_as<float>());
    groups = {{.params = params.all(), .grads = grads.all(), .tensor_starts = std::move(starts)}};
  }
  float param(std::int64_t i) const { return params.data_as<float>()[i]; }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigOptimizer, EveryDeepSpeedNameIsImplementedOrRejectedListingWhatIsSupported) {
  OneGroup one({1.0f}, {1.0f});
  for (const char* name : {"adam", "AdamW", "LAMB", "lion", "Adagrad", "SGD"}) {
    EXPECT_NO_THROW((void)make_config_optimizer(name, {}, one.backend->device(), one.groups)) << name;
  }
  for (const char* name : {"onebitadam", "ZeroOneAdam", "onebitlamb", "muadam", "muadamw", "musgd", "muon", "RMSprop",
                           "sgd"}) {
    const std::string what = error_of([&] { (void)make_config_optimizer(name, {}, one.backend->device(), one.groups); });
    EXPECT_NE(what.find("Adam, AdamW, Lamb, Lion, Adagrad"), std::string::npos) << name << ": " << what;
  }
  EXPECT_NE(error_of([&] { (void)make_config_optimizer("onebitadam", {}, one.backend->device(), one.groups); })
                .find("compress"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)make_config_optimizer("Lamb", {{"max_grad_norm", 1.0}}, one.backend->device(), one.groups); })
                .find("gradient_clipping"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)make_config_optimizer("Lion", {{"eps", 1e-8}}, one.backend->device(), one.groups); })
                .find("Lion has no parameter 'eps'"),
            std::string::npos);
  EXPECT_FALSE(error_of([&] { (void)make_config_optimizer("Lamb", {{"min_coeff", 20.0}}, one.backend->device(), one.groups); })
                   .empty());
}

TEST(ConfigOptimizer, LambUnderZeroNeedsZeroAllowUntestedOptimizerAndStaticFp16LossScalingFails) {
  EXPECT_NO_THROW(check_optimizer_setup("Lamb", {.zero_stage = 0}));
  const std::string untested = error_of([] { check_optimizer_setup("Lamb", {.zero_stage = 2}); });
  EXPECT_NE(untested.find("zero_allow_untested_optimizer"), std::string::npos) << untested;
  EXPECT_NO_THROW(check_optimizer_setup("lamb", {.zero_stage = 3, .zero_allow_untested_optimizer = true}));
  for (const char* tested : {"Adam", "adamw", "adagrad", "Lion", "SGD"}) {
    EXPECT_NO_THROW(check_optimizer_setup(tested, {.zero_stage = 1})) << tested;
  }
  EXPECT_FALSE(error_of([] { check_optimizer_setup("Lamb", {.fp16 = true, .dynamic_loss_scale = false}); }).empty());
  EXPECT_NO_THROW(check_optimizer_setup("Lamb", {.fp16 = true, .dynamic_loss_scale = true}));
  EXPECT_NO_THROW(check_optimizer_setup("Adam", {.fp16 = true, .dynamic_loss_scale = false}));
}

TEST(ConfigLamb, TrustRatioIsPerTensorOfTheGroupOrOfTheWholeZeroPartition) {
  // Two tensors [3, 4] and [0]: the first's ratio is ||p|| / ||update|| = 5 / sqrt(2), the second's 1.
  OneGroup one({3.0f, 4.0f, 0.0f}, {1.0f, 1.0f, -1.0f}, {0, 2});
  auto lamb = make_config_optimizer("lamb", {{"lr", 0.1}, {"eps", 0.0}}, one.backend->device(), one.groups);
  lamb->step();
  // Step 1 with bias correction: m_hat = g, v_hat = g^2, update = sign(g).
  const float ratio = 5.0f / std::sqrt(2.0f);
  EXPECT_NEAR(one.param(0), 3.0f - 0.1f * ratio, 1e-6);
  EXPECT_NEAR(one.param(1), 4.0f - 0.1f * ratio, 1e-6);
  EXPECT_NEAR(one.param(2), 0.1f, 1e-7);
  // As one tensor (a ZeRO partition) the ratio is the whole view's: 5 / sqrt(3).
  OneGroup flat({3.0f, 4.0f, 0.0f}, {1.0f, 1.0f, -1.0f});
  auto whole = make_config_optimizer("lamb", {{"lr", 0.1}, {"eps", 0.0}}, flat.backend->device(), flat.groups);
  whole->step();
  EXPECT_NEAR(flat.param(2), 0.1f * 5.0f / std::sqrt(3.0f), 1e-6);
  EXPECT_EQ(one.backend->device().memory().current(MemoryTag::optimizer_states), 2 * 3 * 4);
}

TEST(ConfigLion, StepsBySignOfTheInterpolationWithDecoupledDecay) {
  OneGroup one({1.0f, 1.0f}, {2.0f, -2.0f});
  auto lion = make_config_optimizer("lion", {{"lr", 0.1}, {"weight_decay", 0.5}}, one.backend->device(), one.groups);
  EXPECT_EQ(lion->name(), "lion");
  lion->step();
  EXPECT_FLOAT_EQ(one.param(0), 1.0f * (1.0f - 0.05f) - 0.1f);
  EXPECT_FLOAT_EQ(one.param(1), 1.0f * (1.0f - 0.05f) + 0.1f);
  EXPECT_EQ(one.backend->device().memory().current(MemoryTag::optimizer_states), 2 * 4);
}

TEST(ConfigAdagrad, InitialAccumulatorAndLrDecayFollowTorch) {
  OneGroup one({1.0f}, {2.0f});
  auto adagrad = make_config_optimizer(
      "adagrad", {{"lr", 0.5}, {"lr_decay", 1.0}, {"initial_accumulator_value", 5.0}, {"eps", 0.0}},
      one.backend->device(), one.groups);
  adagrad->step();  // sum = 5 + 4 = 9: p = 1 - 0.5 * 2 / 3
  EXPECT_FLOAT_EQ(one.param(0), 1.0f - 0.5f * 2.0f / 3.0f);
  adagrad->step();  // clr = 0.5 / 2, sum = 13
  EXPECT_FLOAT_EQ(one.param(0), 1.0f - 0.5f * 2.0f / 3.0f - 0.25f * (2.0f / std::sqrt(13.0f)));
}

}  // namespace
}  // namespace twinspeed
