#include "engine/data/token_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "engine/core/errors.hpp"

namespace twinspeed {

namespace {

constexpr std::string_view kMagic = "TSTOK1";
constexpr std::uint8_t kVersion = 1;

// A file that is not a token file; format says what one is.
ConfigError bad_file(const std::string& path, const std::string& why, bool format = true) {
  return ConfigError("--data", path, why,
                     format ? "a token file is a TSTOK1 file or a raw uint16 .bin (docs/CLI.md \"Token files\")" : "");
}

// Little-endian, whatever the host's byte order.
std::uint64_t little_endian(const std::uint8_t* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

bool ends_with_bin(const std::string& path) {
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".bin") == 0;
}

}  // namespace

TokenFileLayout parse_token_layout(std::span<const std::uint8_t> head, std::uint64_t file_bytes,
                                   const std::string& path) {
  const bool has_magic =
      head.size() >= kMagic.size() && std::memcmp(head.data(), kMagic.data(), kMagic.size()) == 0;
  if (!has_magic) {
    if (!ends_with_bin(path)) {
      throw bad_file(path, fmt::format("not a token file: it does not start with \"{}\" and its name does not end in "
                                       ".bin (a raw uint16 file)",
                                       kMagic));
    }
    if (file_bytes % 2 != 0) {
      throw bad_file(path, fmt::format("a raw uint16 .bin holds 2 bytes per token, but the file has {} bytes (odd: "
                                       "truncated?)",
                                       file_bytes));
    }
    return {.token_bytes = 2, .count = file_bytes / 2, .data_offset = 0, .headerless = true};
  }
  if (head.size() < kTokenHeaderBytes || file_bytes < kTokenHeaderBytes) {
    throw bad_file(path, fmt::format("truncated header: {} of its {} bytes", std::min<std::uint64_t>(file_bytes, head.size()),
                                     kTokenHeaderBytes));
  }
  const std::uint8_t version = head[6];
  const std::uint8_t token_bytes = head[7];
  const std::uint64_t count = little_endian(head.data() + 8, 8);
  if (version != kVersion) throw bad_file(path, fmt::format("unknown {} version {} (this build reads {})", kMagic, version, kVersion));
  if (token_bytes != 2 && token_bytes != 4) {
    throw bad_file(path, fmt::format("bytes per token {} in the header (must be 2 for uint16 or 4 for uint32)", token_bytes));
  }
  const std::uint64_t data_bytes = file_bytes - kTokenHeaderBytes;
  if (count > data_bytes / token_bytes) {
    throw bad_file(path, fmt::format("truncated: the header says {} tokens of {} bytes, but only {} bytes follow it", count,
                                     token_bytes, data_bytes));
  }
  if (count * token_bytes != data_bytes) {
    throw bad_file(path, fmt::format("the header says {} tokens of {} bytes, but {} bytes follow it ({} too many)", count,
                                     token_bytes, data_bytes, data_bytes - count * token_bytes));
  }
  return {.token_bytes = token_bytes, .count = count, .data_offset = kTokenHeaderBytes, .headerless = false};
}

TokenFile::TokenFile(std::string path) : path_(std::move(path)) {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw bad_file(path_, fmt::format("cannot open it: {}", std::strerror(errno)), false);
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw bad_file(path_, "not a regular file", false);
  }
  const auto bytes = static_cast<std::uint64_t>(st.st_size);
  if (bytes == 0) {
    ::close(fd);
    throw bad_file(path_, "the file is empty");
  }
  void* map = mmap(nullptr, static_cast<std::size_t>(bytes), PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (map == MAP_FAILED) throw bad_file(path_, fmt::format("cannot map it: {}", std::strerror(map_errno)), false);
  map_ = static_cast<const std::uint8_t*>(map);
  map_bytes_ = static_cast<std::size_t>(bytes);
  try {
    layout_ = parse_token_layout({map_, std::min<std::size_t>(map_bytes_, kTokenHeaderBytes)}, bytes, path_);
  } catch (...) {
    munmap(const_cast<std::uint8_t*>(map_), map_bytes_);
    throw;
  }
}

TokenFile::~TokenFile() { munmap(const_cast<std::uint8_t*>(map_), map_bytes_); }

std::uint64_t TokenFile::token(std::uint64_t i) const {
  return little_endian(map_ + layout_.data_offset + i * static_cast<std::uint64_t>(layout_.token_bytes),
                       layout_.token_bytes);
}

void TokenFile::check_vocab(std::uint64_t first, std::uint64_t count, std::int64_t vocab_size) const {
  if (first > layout_.count || count > layout_.count - first) {
    throw Error(fmt::format("{}: tokens [{}, {}) are past its end ({} tokens)", path_, first, first + count, layout_.count));
  }
  const auto vocab = static_cast<std::uint64_t>(vocab_size);
  for (std::uint64_t i = first; i < first + count; ++i) {
    const std::uint64_t id = token(i);
    if (id >= vocab) {
      throw ConfigError("--data", path_,
                        fmt::format("token id {} at token offset {} (byte {}) is not below the model's vocab_size {}", id,
                                    i, layout_.data_offset + i * static_cast<std::uint64_t>(layout_.token_bytes), vocab_size),
                        "the token file was made for a larger vocabulary than the model's (--model)");
    }
  }
}

void TokenFile::read(std::uint64_t first, std::span<std::int64_t> out, std::int64_t vocab_size) const {
  check_vocab(first, out.size(), vocab_size);
  for (std::size_t j = 0; j < out.size(); ++j) out[j] = static_cast<std::int64_t>(token(first + j));
}

std::uint64_t token_sequence_of(std::int64_t micro_step, std::int64_t row, int dp_rank, int dp, std::int64_t batch,
                                std::uint64_t sequences) {
  if (micro_step < 0 || row < 0 || row >= batch || dp_rank < 0 || dp_rank >= dp || sequences == 0) {
    throw Error(fmt::format("token_sequence_of(micro step {}, row {}, dp rank {} of {}, batch {}, {} sequences): out of "
                            "range",
                            micro_step, row, dp_rank, dp, batch, sequences));
  }
  const auto g = (static_cast<std::uint64_t>(micro_step) * static_cast<std::uint64_t>(batch) +
                  static_cast<std::uint64_t>(row)) * static_cast<std::uint64_t>(dp) + static_cast<std::uint64_t>(dp_rank);
  return g % sequences;
}

}  // namespace twinspeed
