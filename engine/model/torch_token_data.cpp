#include "engine/model/torch_token_data.hpp"

#include <fmt/format.h>

#include <string>

#include "engine/core/errors.hpp"

namespace twinspeed {
namespace {

// splitmix64 (Steele et al. 2014): a counter-based mix, so any example is generated directly.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

SyntheticTokenDataset::SyntheticTokenDataset(std::int64_t size, std::int64_t seq_len, std::int64_t vocab_size,
                                             std::uint64_t seed)
    : size_(size), seq_len_(seq_len), vocab_size_(vocab_size), seed_(seed) {
  for (auto [key, value] : {std::pair<const char*, std::int64_t>{"size", size}, {"seq_len", seq_len},
                            {"vocab_size", vocab_size}}) {
    if (value <= 0) throw ConfigError(key, std::to_string(value), "must be positive (synthetic token dataset)");
  }
}

Example SyntheticTokenDataset::get(std::int64_t index) const {
  if (index < 0 || index >= size_) {
    throw Error("synthetic token dataset: index " + std::to_string(index) + " outside [0, " + std::to_string(size_) + ")");
  }
  torch::Tensor ids = torch::empty({seq_len_}, torch::kInt64);
  auto* out = ids.data_ptr<std::int64_t>();
  const std::uint64_t base = mix(seed_ ^ mix(static_cast<std::uint64_t>(index)));
  const auto vocab = static_cast<std::uint64_t>(vocab_size_);
  for (std::int64_t t = 0; t < seq_len_; ++t) {
    const std::uint64_t r = mix(base + static_cast<std::uint64_t>(t));
    const bool follow = t > 0 && (r & 1) == 0;
    out[t] = follow ? (out[t - 1] + 1) % vocab_size_ : static_cast<std::int64_t>((r >> 1) % vocab);
  }
  return {ids, ids.clone()};
}

Batch SyntheticTokenDataset::micro_batch(std::int64_t step, int rank, int dp, std::int64_t batch) const {
  if (dp <= 0 || rank < 0 || rank >= dp || batch <= 0 || step < 0) {
    throw Error("synthetic token dataset: micro_batch(step " + std::to_string(step) + ", rank " + std::to_string(rank) +
                ", dp " + std::to_string(dp) + ", batch " + std::to_string(batch) + ") out of range");
  }
  std::vector<torch::Tensor> ids;
  const std::int64_t first = (step * dp + rank) * batch;
  for (std::int64_t j = 0; j < batch; ++j) ids.push_back(get((first + j) % size_).input);
  torch::Tensor inputs = torch::stack(ids);
  return {inputs, inputs.clone()};
}

TokenFileDataset::TokenFileDataset(std::shared_ptr<const TokenFile> file, std::int64_t seq_len, std::int64_t vocab_size)
    : file_(std::move(file)), seq_len_(seq_len), vocab_size_(vocab_size) {
  if (seq_len <= 0) throw ConfigError("seq_len", std::to_string(seq_len), "must be positive (token file dataset)");
  sequences_ = static_cast<std::int64_t>(file_->size() / static_cast<std::uint64_t>(seq_len));
  if (sequences_ == 0) {
    throw ConfigError("--data", file_->path(),
                      fmt::format("holds {} tokens, less than one sequence of {} (--seq)", file_->size(), seq_len));
  }
}

Example TokenFileDataset::get(std::int64_t index) const {
  if (index < 0 || index >= sequences_) {
    throw Error(fmt::format("{}: sequence {} outside [0, {})", file_->path(), index, sequences_));
  }
  torch::Tensor ids = torch::empty({seq_len_}, torch::kInt64);
  file_->read(static_cast<std::uint64_t>(index * seq_len_), {ids.data_ptr<std::int64_t>(), static_cast<std::size_t>(seq_len_)},
              vocab_size_);
  return {ids, ids.clone()};
}

Batch TokenFileDataset::micro_batch(std::int64_t step, int rank, int dp, std::int64_t batch) const {
  std::vector<torch::Tensor> ids;
  for (std::int64_t j = 0; j < batch; ++j) {
    ids.push_back(get(static_cast<std::int64_t>(token_sequence_of(step, j, rank, dp, batch,
                                                                  static_cast<std::uint64_t>(sequences_))))
                      .input);
  }
  torch::Tensor inputs = torch::stack(ids);
  return {inputs, inputs.clone()};
}

}  // namespace twinspeed
