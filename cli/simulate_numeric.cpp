// Numeric fidelity for `twinspeed simulate`: the LibTorch model zoo (engine/model/torch_models.hpp)
// and its token data (synthetic or a token file) behind the torch-free RankModel interface of sim/planner/simulation.hpp.
#include "cli/simulate_numeric.hpp"

#include <algorithm>
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

planner::RankModelFactory numeric_rank_model_factory(const NumericData& data) {
  std::shared_ptr<const TokenFileDataset> tokens;
  if (data.source != "synthetic") {
    tokens = std::make_shared<const TokenFileDataset>(std::make_shared<const TokenFile>(data.source), data.seq_len,
                                                      data.vocab_size);
    // What the run reads (the first `samples` sequences, wrapping around) is checked now, so that a
    // bad id fails every rank at start-up instead of one rank mid-run.
    const auto read = static_cast<std::uint64_t>(std::min(tokens->size(), data.samples));
    tokens->file().check_vocab(0, read * static_cast<std::uint64_t>(data.seq_len), data.vocab_size);
  }
  return [tokens](const planner::RankModelRequest& request) -> planner::RankModel {
    // Every rank builds the same initial weights (the engine broadcasts rank 0's anyway); dropout
    // streams differ per rank (the runner adds its rank to dropout_seed).
    TorchModelRunnerOptions options{.model = {.init_seed = request.seed},
                                    .spec = request.spec.spec,
                                    .dropout_seed = request.seed + 1234,
                                    .recompute = request.spec.recompute == RecomputeMode::full};
    std::shared_ptr<LayerRunner> runner = make_torch_model_runner(*request.model, options);
    const std::int64_t batch = request.spec.spec.micro_batch;
    auto wrap = [](const Batch& b) { return std::make_pair(wrap_tensor(b.inputs), wrap_tensor(b.labels)); };
    if (tokens) {
      return {.runner = std::move(runner),
              .batch = [tokens, wrap, batch, dp_rank = request.dp_rank, dp = request.dp_size](std::int64_t micro_step) {
                return wrap(tokens->micro_batch(micro_step, dp_rank, dp, batch));
              }};
    }
    auto synthetic = std::make_shared<SyntheticTokenDataset>(kDatasetSize, request.spec.spec.seq_len,
                                                             request.model->vocab_size, request.seed);
    return {.runner = std::move(runner),
            .batch = [synthetic, wrap, batch, dp_rank = request.dp_rank, dp = request.dp_size](std::int64_t micro_step) {
              return wrap(synthetic->micro_batch(micro_step, dp_rank, dp, batch));
            }};
  };
}

}  // namespace twinspeed::cli
