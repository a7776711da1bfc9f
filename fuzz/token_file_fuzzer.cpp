// libFuzzer target for the token-file header (engine/data/token_file.hpp): any bytes, as the head of
// a file of any size, either give a layout whose tokens exactly fill the file or fail with a
// ConfigError (any other exception aborts, which libFuzzer reports).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "engine/core/errors.hpp"
#include "engine/data/token_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The first 8 bytes (when there are) choose the file's size; the rest is its head.
  std::uint64_t file_bytes = size;
  if (size >= 8) {
    std::memcpy(&file_bytes, data, 8);
    data += 8;
    size -= 8;
  }
  for (const char* name : {"fuzz.tstok", "fuzz.bin"}) {
    try {
      const twinspeed::TokenFileLayout l = twinspeed::parse_token_layout({data, size}, file_bytes, name);
      if (l.token_bytes != 2 && l.token_bytes != 4) __builtin_trap();
      if (l.data_offset + l.count * static_cast<std::uint64_t>(l.token_bytes) != file_bytes) __builtin_trap();
    } catch (const twinspeed::ConfigError&) {
    }
  }
  return 0;
}
