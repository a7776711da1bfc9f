#pragma once
// Helpers of the model-config tests: the shipped HF config fixtures and the ConfigError a parse
// throws.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/errors.hpp"
#include "engine/model/spec/model_config.hpp"

namespace twinspeed::test {

// tests/data/hf-configs/<name> under TWINSPEED_SOURCE_DIR (the tests' working directory otherwise).
inline std::string hf_fixture(const std::string& name) {
  const char* root = std::getenv("TWINSPEED_SOURCE_DIR");
  return std::string(root ? root : ".") + "/tests/data/hf-configs/" + name;
}

// The ConfigError a parse throws (fails the test when none is thrown).
inline ConfigError hf_parse_error(const nlohmann::json& j) {
  try {
    parse_hf_config(j, "test.json");
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no ConfigError for " << j.dump();
  return ConfigError("", "", "");
}

}  // namespace twinspeed::test
