// Numeric fidelity for `twinspeed simulate`: the LibTorch model zoo (engine/model/torch_models.hpp)
// behind the torch-free RankModel interface of simulate_run.hpp.
#include "cli/simulate_numeric.hpp"

#include "engine/core/errors.hpp"

namespace twinspeed::cli {

bool numeric_models_available() { return false; }

RankModel make_numeric_rank_model(const RankModelRequest& /*request*/) {
  throw NotImplemented(
      "numeric fidelity needs the LibTorch model zoo (GPT-2/Llama modules from a config.json), which arrives with "
      "this issue; run with --fidelity shape");
}

}  // namespace twinspeed::cli
