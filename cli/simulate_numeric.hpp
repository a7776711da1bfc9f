#pragma once
// The numeric model of `twinspeed simulate`: the LibTorch model zoo's modules for a ModelConfig and
// a synthetic token dataset, per rank. Declared LibTorch-free; simulate_numeric.cpp is the one
// simulate file that compiles LibTorch.

#include <cstdint>
#include <string>

#include "sim/planner/simulation.hpp"

namespace twinspeed::cli {

// What the numeric model trains on: "synthetic" (seeded random tokens), or the path of a token file
// (engine/data/token_file.hpp) that a run reads `samples` sequences of seq_len tokens from (steps x
// train_batch_size).
struct NumericData {
  std::string source = "synthetic";
  std::int64_t vocab_size = 0;
  std::int64_t seq_len = 0;
  std::int64_t samples = 0;
};

// Makes each rank's zoo model with real CPU tensors: initial weights from seed (the same on every
// rank), dropout from seed + rank; synthetic tokens from seed and the data-parallel rank, or the
// token file's sequences in DistributedSampler order (TokenFileDataset). A token file is opened and
// the sequences the run reads are checked against the vocabulary here, once, before any rank
// starts: ConfigError ("--data") naming the file and offset. A rank's model throws NotImplemented
// for tp or sp > 1 (the zoo's layers are not sharded).
planner::RankModelFactory numeric_rank_model_factory(const NumericData& data);

}  // namespace twinspeed::cli
