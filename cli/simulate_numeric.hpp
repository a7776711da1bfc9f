#pragma once
// The numeric model of `twinspeed simulate`: the LibTorch model zoo's modules for a ModelConfig and
// a synthetic token dataset, per rank. Declared LibTorch-free; simulate_numeric.cpp is the one
// simulate file that compiles LibTorch.

#include "sim/planner/simulation.hpp"

namespace twinspeed::cli {

// A rank's zoo model with real CPU tensors: initial weights from seed (the same on every rank),
// dropout from seed + rank, synthetic tokens from seed and the data-parallel rank. Throws
// NotImplemented for tp or sp > 1 (the zoo's layers are not sharded).
planner::RankModel make_numeric_rank_model(const planner::RankModelRequest& request);

}  // namespace twinspeed::cli
