#pragma once
// The numeric model of `twinspeed simulate`: the LibTorch model zoo's modules for a ModelConfig and
// a synthetic token dataset, per rank. Declared LibTorch-free; simulate_numeric.cpp is the one
// simulate file that compiles LibTorch.

#include "cli/simulate_run.hpp"

namespace twinspeed::cli {

// True when this build has the model zoo numeric fidelity needs.
bool numeric_models_available();

// Builds rank models with real CPU tensors (each rank's generator seeded from seed and its rank,
// its data from seed and its data-parallel rank). Throws NotImplemented when
// numeric_models_available() is false.
RankModel make_numeric_rank_model(const RankModelRequest& request);

}  // namespace twinspeed::cli
