#pragma once
// Token files (docs/CLI.md "Token files"): the training data of `twinspeed train --data PATH`.
// Either a TSTOK1 file (a 16-byte header, then little-endian token ids) or a headerless *.bin of
// little-endian uint16 ids (nanoGPT's prepare.py, Megatron's .bin). Memory-mapped: a run reads only
// the tokens of its own sequences. Sequence i is tokens [i * seq_len, (i + 1) * seq_len); a tail
// shorter than seq_len is never read.

#include <cstdint>
#include <span>
#include <string>

namespace twinspeed {

// The TSTOK1 header, 16 bytes: "TSTOK1", version (u8, 1), bytes per token (u8, 2 or 4), token
// count (u64 little-endian).
inline constexpr std::size_t kTokenHeaderBytes = 16;

struct TokenFileLayout {
  int token_bytes = 2;          // 2 (uint16) or 4 (uint32)
  std::uint64_t count = 0;      // tokens
  std::uint64_t data_offset = 0;  // byte offset of token 0
  bool headerless = false;      // a raw uint16 .bin
};

// Where the tokens of a file of file_bytes bytes starting with `head` are. A TSTOK1 header must
// match the file's size exactly; a file without one is a raw uint16 file when its name ends in
// ".bin". Throws ConfigError ("--data", path, why) for anything else: too short, unknown version,
// token size or magic, a count the bytes do not hold, trailing bytes, an odd-sized .bin.
TokenFileLayout parse_token_layout(std::span<const std::uint8_t> head, std::uint64_t file_bytes,
                                   const std::string& path);

// A read-only memory map of a token file.
class TokenFile {
 public:
  // Opens and maps path. Throws ConfigError ("--data", path, why) when it cannot be opened, is not
  // a regular file or is not a token file (parse_token_layout).
  explicit TokenFile(std::string path);
  ~TokenFile();
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;

  const std::string& path() const { return path_; }
  const TokenFileLayout& layout() const { return layout_; }
  std::uint64_t size() const { return layout_.count; }
  // Token i (i < size()).
  std::uint64_t token(std::uint64_t i) const;
  // Tokens [first, first + out.size()) as int64 ids. Throws ConfigError naming the file, the token
  // offset and the vocabulary when an id is >= vocab_size, Error when the range is past the end.
  void read(std::uint64_t first, std::span<std::int64_t> out, std::int64_t vocab_size) const;
  // Checks that tokens [first, first + count) are below vocab_size, as read() does, without copying.
  void check_vocab(std::uint64_t first, std::uint64_t count, std::int64_t vocab_size) const;

 private:
  std::string path_;
  TokenFileLayout layout_;
  const std::uint8_t* map_ = nullptr;
  std::size_t map_bytes_ = 0;
};

// The sequence that row `row` of micro-batch `micro_step` of data-parallel rank dp_rank (of dp)
// reads, out of `sequences`: sample g = (micro_step * batch + row) * dp + dp_rank of the stream
// 0, 1, ..., sequences - 1, 0, 1, ... dealt to the data-parallel ranks in turn, as DeepSpeed's
// DistributedSampler (without shuffling) deals a dataset; so sequence g mod sequences.
std::uint64_t token_sequence_of(std::int64_t micro_step, std::int64_t row, int dp_rank, int dp, std::int64_t batch,
                                std::uint64_t sequences);

}  // namespace twinspeed
