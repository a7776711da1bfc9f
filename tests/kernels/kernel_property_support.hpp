#pragma once
// Shared by the kernels' RapidCheck properties: the operand dtypes they draw, a thread count held
// for one case, and the bit-for-bit comparison of results.

#include <rapidcheck.h>

#include <string>
#include <vector>

#include "kernel_test_support.hpp"
#include "kernels/kernels.hpp"

namespace twinspeed::kernels_test {

// fp32 four times in five, else bf16 or fp16.
inline rc::Gen<DType> gen_float_dtype() {
  return rc::gen::weightedOneOf<DType>({{4, rc::gen::just(DType::f32)}, {1, rc::gen::element(DType::bf16, DType::f16)}});
}

// The kernels' thread count for one case (1-4: the machine may have fewer cores, threads still
// interleave), back to the default afterwards.
struct Threads {
  explicit Threads(int n) { kernels::set_num_threads(n); }
  ~Threads() { kernels::set_num_threads(0); }
};

// Equal element for element as same_float compares them (NaN equals NaN, +0 differs from -0).
inline void assert_same(const std::vector<float>& got, const std::vector<float>& want) {
  RC_ASSERT(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!same_float(got[i], want[i])) {
      RC_FAIL("element " + std::to_string(i) + ": " + std::to_string(got[i]) + " != " + std::to_string(want[i]));
    }
  }
}

}  // namespace twinspeed::kernels_test
