#pragma once
// Deterministic synthetic token data for the model zoo: sequences of vocabulary-bounded ids that a
// causal LM can learn (each next token is, with probability 1/2, the previous one plus one modulo
// V, else uniform), a pure function of (seed, example index, position): no stored data, the same
// bytes on every machine, every rank and every run.

#include <twinspeed/torch.hpp>

#include <cstdint>
#include <memory>

#include "engine/data/token_file.hpp"

namespace twinspeed {

class SyntheticTokenDataset final : public Dataset {
 public:
  // Throws ConfigError unless size, seq_len and vocab_size are positive.
  SyntheticTokenDataset(std::int64_t size, std::int64_t seq_len, std::int64_t vocab_size, std::uint64_t seed);
  std::int64_t size() const override { return size_; }
  // input: token ids [seq_len] (int64); label: the same ids (the causal-LM loss shifts them, as HF
  // does with labels = input_ids).
  Example get(std::int64_t index) const override;
  // Micro-batch `step` of data-parallel rank `rank` out of `dp`: examples
  // (step * dp + rank) * batch ... + batch - 1 (modulo size), stacked to [batch, seq_len].
  Batch micro_batch(std::int64_t step, int rank, int dp, std::int64_t batch) const;

 private:
  std::int64_t size_, seq_len_, vocab_size_;
  std::uint64_t seed_;
};

// The sequences of a token file (engine/data/token_file.hpp) as a Dataset: example i is sequence
// i, seq_len tokens (input and label alike, as in SyntheticTokenDataset).
class TokenFileDataset final : public Dataset {
 public:
  // Throws ConfigError ("--data") when the file holds less than one sequence.
  TokenFileDataset(std::shared_ptr<const TokenFile> file, std::int64_t seq_len, std::int64_t vocab_size);
  std::int64_t size() const override { return sequences_; }
  const TokenFile& file() const { return *file_; }
  // Throws ConfigError naming the file, the token offset and vocab_size for an id >= vocab_size.
  Example get(std::int64_t index) const override;
  // Micro-batch `step` of data-parallel rank `rank` out of `dp`: rows token_sequence_of(step, j,
  // rank, dp, batch, size()) for j < batch (DistributedSampler's order), stacked to [batch, seq_len].
  Batch micro_batch(std::int64_t step, int rank, int dp, std::int64_t batch) const;

 private:
  std::shared_ptr<const TokenFile> file_;
  std::int64_t seq_len_, vocab_size_, sequences_;
};

}  // namespace twinspeed
