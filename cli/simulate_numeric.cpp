// Numeric fidelity for `twinspeed simulate`: the LibTorch model zoo (engine/model/torch_models.hpp)
// and its synthetic token data behind the torch-free RankModel interface of sim/planner/simulation.hpp.
#include "cli/simulate_numeric.hpp"

#include <memory>

#include "engine/model/torch_layer_runner.hpp"
#include "engine/model/torch_models.hpp"
#include "engine/model/torch_token_data.hpp"

namespace twinspeed::cli {

namespace {
// Examples of the synthetic dataset: a pure function of (seed, index), so its size costs nothing;
// large enough that no run of simulate wraps around.
constexpr std::int64_t kDatasetSize = std::int64_t{1} << 40;
}  // namespace

planner::RankModel make_numeric_rank_model(const planner::RankModelRequest& request) {
  // Every rank builds the same initial weights (the engine broadcasts rank 0's anyway); dropout
  // streams differ per rank (the runner adds its rank to dropout_seed).
  TorchModelRunnerOptions options{.model = {.init_seed = request.seed},
                                  .spec = request.spec.spec,
                                  .dropout_seed = request.seed + 1234,
                                  .recompute = request.spec.recompute == RecomputeMode::full};
  std::shared_ptr<LayerRunner> runner = make_torch_model_runner(*request.model, options);
  auto data = std::make_shared<SyntheticTokenDataset>(kDatasetSize, request.spec.spec.seq_len,
                                                      request.model->vocab_size, request.seed);
  const std::int64_t batch = request.spec.spec.micro_batch;
  return {.runner = std::move(runner),
          .batch = [data, batch, dp_rank = request.dp_rank, dp = request.dp_size](std::int64_t micro_step) {
            Batch b = data->micro_batch(micro_step, dp_rank, dp, batch);
            return std::make_pair(wrap_tensor(b.inputs), wrap_tensor(b.labels));
          }};
}

}  // namespace twinspeed::cli
