// Token files (engine/data/token_file.hpp): the TSTOK1 header and raw uint16 .bin files are read
// as written; every malformed file is a ConfigError naming it; ids at or above the vocabulary are
// a ConfigError naming the file, offset and vocabulary; the sample order is DistributedSampler's.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/core/errors.hpp"
#include "engine/data/token_file.hpp"
#include "engine/runtime/distributed_sampler.hpp"

namespace twinspeed {
namespace {

std::vector<std::uint8_t> little_endian(std::uint64_t v, int bytes) {
  std::vector<std::uint8_t> out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  return out;
}

// What docs/CLI.md's three lines of Python write.
std::vector<std::uint8_t> tstok(const std::vector<std::uint32_t>& ids, int token_bytes, std::uint8_t version = 1,
                                std::uint64_t count = UINT64_MAX) {
  std::vector<std::uint8_t> out = {'T', 'S', 'T', 'O', 'K', '1', version, static_cast<std::uint8_t>(token_bytes)};
  for (std::uint8_t b : little_endian(count == UINT64_MAX ? ids.size() : count, 8)) out.push_back(b);
  for (std::uint32_t id : ids) {
    for (std::uint8_t b : little_endian(id, token_bytes)) out.push_back(b);
  }
  return out;
}

std::string write(const std::string& name, const std::vector<std::uint8_t>& bytes) {
  const std::string path = ::testing::TempDir() + "token_file_test_" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
  return path;
}

// The ConfigError opening path throws (fails the test when it opens).
ConfigError open_error(const std::string& path) {
  try {
    TokenFile file(path);
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "--data");
    EXPECT_EQ(e.value(), path);
    return e;
  }
  ADD_FAILURE() << path << " opened";
  return ConfigError("", "", "");
}

TEST(TokenFile, ReadsUint16AndUint32FilesAsWritten) {
  const std::vector<std::uint32_t> ids = {0, 1, 258, 65535, 7, 42};
  for (int bytes : {2, 4}) {
    const TokenFile file(write("ids" + std::to_string(bytes) + ".tstok", tstok(ids, bytes)));
    EXPECT_EQ(file.layout().token_bytes, bytes);
    EXPECT_FALSE(file.layout().headerless);
    ASSERT_EQ(file.size(), ids.size());
    std::vector<std::int64_t> out(4);
    file.read(2, out, 65536);
    EXPECT_EQ(out, (std::vector<std::int64_t>{258, 65535, 7, 42}));
  }
  const TokenFile wide(write("wide.tstok", tstok({70000, 3}, 4)));
  EXPECT_EQ(wide.token(0), 70000u);
}

TEST(TokenFile, ARawBinIsLittleEndianUint16) {
  const TokenFile file(write("raw.bin", {1, 0, 2, 1, 0xff, 0xff}));
  EXPECT_TRUE(file.layout().headerless);
  ASSERT_EQ(file.size(), 3u);
  EXPECT_EQ(file.token(0), 1u);
  EXPECT_EQ(file.token(1), 258u);
  EXPECT_EQ(file.token(2), 65535u);
}

TEST(TokenFile, MalformedFilesAreConfigErrorsSayingWhy) {
  const std::vector<std::uint8_t> good = tstok({1, 2, 3}, 2);
  const struct {
    std::string name;
    std::vector<std::uint8_t> bytes;
    std::string says;
  } cases[] = {
      {"short_header.tstok", {good.begin(), good.begin() + 10}, "truncated header"},
      {"short_data.tstok", {good.begin(), good.end() - 1}, "truncated: the header says 3 tokens of 2 bytes, but only 5"},
      {"trailing.tstok", tstok({1, 2, 3, 4}, 2, 1, 3), "2 too many"},
      {"huge_count.tstok", tstok({1}, 4, 1, UINT64_MAX - 1), "truncated"},
      {"version.tstok", tstok({1}, 2, 2), "unknown TSTOK1 version 2"},
      {"width.tstok", tstok({1}, 3), "bytes per token 3"},
      {"not_tokens.txt", {'h', 'e', 'l', 'l', 'o'}, "not a token file"},
      {"odd.bin", {1, 0, 2}, "3 bytes (odd"},
      {"empty.bin", {}, "empty"},
  };
  for (const auto& c : cases) {
    const std::string path = write(c.name, c.bytes);
    const ConfigError e = open_error(path);
    EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.name << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_NE(std::string(open_error(::testing::TempDir() + "no_such_tokens.bin").what()).find("cannot open"),
            std::string::npos);
  EXPECT_NE(std::string(open_error(::testing::TempDir()).what()).find("not a regular file"), std::string::npos);
}

TEST(TokenFile, AnIdAtOrAboveTheVocabularyNamesTheFileOffsetAndVocabulary) {
  const std::string path = write("vocab.tstok", tstok({1, 2, 99, 100, 3}, 2));
  const TokenFile file(path);
  std::vector<std::int64_t> out(3);
  file.read(0, out, 100);  // 99 < 100
  try {
    file.read(1, out, 100);
    FAIL() << "id 100 read with vocab_size 100";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("token id 100 at token offset 3 (byte 22)"), std::string::npos) << what;
    EXPECT_NE(what.find("vocab_size 100"), std::string::npos) << what;
  }
  EXPECT_THROW(file.check_vocab(0, 5, 100), ConfigError);
  EXPECT_NO_THROW(file.check_vocab(0, 3, 100));
  EXPECT_THROW(file.check_vocab(4, 2, 1000), Error);  // past the end
}

// Any bytes: a layout that fits the file, or a ConfigError; never anything else (fuzz/ goes further).
TEST(TokenFile, ArbitraryHeadersParseOrFailTyped) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::uint8_t> head = tstok({}, 2);
    for (std::size_t b = 6 + static_cast<std::size_t>(random() % 10); b < head.size(); ++b) {
      head[b] = static_cast<std::uint8_t>(random());
    }
    const std::uint64_t file_bytes = random() % 4 == 0 ? random() : random() % 64;
    try {
      const TokenFileLayout l = parse_token_layout(head, file_bytes, "fuzz.tstok");
      EXPECT_EQ(l.data_offset + l.count * static_cast<std::uint64_t>(l.token_bytes), file_bytes);
    } catch (const ConfigError&) {
    }
  }
}

// token_sequence_of deals sequences as torch's DistributedSampler (no shuffle) and the dataloader's
// micro-batches do, for a dataset of a multiple of dp x batch sequences; past it, it wraps around.
TEST(TokenFile, SampleOrderIsDistributedSamplers) {
  const int dp = 3;
  const std::int64_t batch = 2, n = 12;
  std::vector<std::int64_t> order(n);
  for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  for (int rank = 0; rank < dp; ++rank) {
    const auto batches = micro_batches(distributed_sampler_indices(order, dp, rank), batch, false);
    for (std::size_t k = 0; k < batches.size(); ++k) {
      for (std::int64_t j = 0; j < batch; ++j) {
        EXPECT_EQ(token_sequence_of(static_cast<std::int64_t>(k), j, rank, dp, batch, n),
                  static_cast<std::uint64_t>(batches[k][static_cast<std::size_t>(j)]))
            << "rank " << rank << " micro-batch " << k << " row " << j;
        // the next epoch repeats the first
        EXPECT_EQ(token_sequence_of(static_cast<std::int64_t>(k + batches.size()), j, rank, dp, batch, n),
                  token_sequence_of(static_cast<std::int64_t>(k), j, rank, dp, batch, n));
      }
    }
  }
  EXPECT_EQ(token_sequence_of(0, 1, 1, 2, 2, 5), 3u);
  EXPECT_EQ(token_sequence_of(1, 0, 1, 2, 2, 5), 0u);  // sample 5 of 5 sequences wraps to 0
  EXPECT_THROW(token_sequence_of(0, 2, 0, 1, 2, 5), Error);
  EXPECT_THROW(token_sequence_of(0, 0, 0, 1, 1, 0), Error);
}

}  // namespace
}  // namespace twinspeed
