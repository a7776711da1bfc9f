// twinspeed's per-rank model-state bytes (engine/core/zero_memory.hpp, what the engine allocates)
// against the ZeRO paper (Rajbhandari et al. 2020, Sec. 5 and Figure 1): mixed-precision Adam,
// 2-byte parameters and gradients, K = 12 bytes of fp32 master copy and two moments per element,
// Nd data-parallel ranks, Psi parameters:
//   stage 0 (baseline)   (2 + 2 + K) Psi
//   stage 1 (P_os)       2 Psi + 2 Psi + K Psi / Nd
//   stage 2 (P_os+g)     2 Psi + (2 + K) Psi / Nd
//   stage 3 (P_os+g+p)   (2 + 2 + K) Psi / Nd
// The paper divides exactly; twinspeed lays buffers out as DeepSpeed does, so the only difference
// is the documented padding (engine/core/partition.hpp): stages 1-2 pad each parameter group's flat
// buffer at its end to a multiple of 2 Nd elements (fewer than 2 Nd per group), stage 3 pads each
// parameter to a multiple of Nd (fewer than Nd per parameter). Padded, the formula holds exactly.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "engine/core/dtype.hpp"
#include "engine/core/zero_memory.hpp"

namespace twinspeed {
namespace {

using i64 = std::int64_t;
using Groups = std::vector<std::vector<i64>>;

constexpr i64 kK = 12;  // fp32 master 4 + Adam exp_avg 4 + exp_avg_sq 4

ZeroMemorySpec mixed_precision_adam(int stage, int world, DType half) {
  return {.stage = stage, .world = world, .param_dtype = half, .grad_dtype = half, .master_dtype = DType::f32,
          .optimizer_state_bytes_per_element = 8};
}

// The paper's per-device bytes of each term, times Nd so every term is an integer.
struct PaperTermsTimesNd {
  i64 params, grads, optimizer;  // optimizer = master copy + moments, K per element
};

PaperTermsTimesNd paper_times_nd(int stage, i64 psi, i64 nd) {
  switch (stage) {
    case 0: return {2 * psi * nd, 2 * psi * nd, kK * psi * nd};
    case 1: return {2 * psi * nd, 2 * psi * nd, kK * psi};
    case 2: return {2 * psi * nd, 2 * psi, kK * psi};
    default: return {2 * psi, 2 * psi, kK * psi};
  }
}

// Independent of partition.hpp: stage 1-2 padding per group, stage 3 padding per parameter.
i64 documented_padding(int stage, const Groups& groups, i64 nd) {
  i64 pad = 0;
  for (const auto& group : groups) {
    i64 n = 0;
    for (i64 p : group) {
      n += p;
      if (stage == 3) pad += (nd - p % nd) % nd;
    }
    if (stage == 1 || stage == 2) pad += (2 * nd - n % (2 * nd)) % (2 * nd);
  }
  return pad;
}

rc::Gen<i64> gen_numel() {
  return rc::gen::weightedOneOf<i64>({{2, rc::gen::inRange<i64>(0, 4)},
                                      {4, rc::gen::inRange<i64>(4, 1000)},
                                      {1, rc::gen::inRange<i64>(1000, 3'000'000)}});
}

rc::Gen<Groups> gen_groups() {
  return rc::gen::resize(
      4, rc::gen::nonEmpty(rc::gen::container<Groups>(rc::gen::resize(12, rc::gen::container<std::vector<i64>>(gen_numel())))));
}

rc::Gen<int> gen_nd() {
  return rc::gen::weightedOneOf<int>({{6, rc::gen::inRange(1, 17)}, {2, rc::gen::inRange(17, 1025)}, {1, rc::gen::just(4096)}});
}

RC_GTEST_PROP(ZeroPaperFormula, PerRankModelStatesEqualThePapersFormulaPlusExactlyTheDocumentedPadding, ()) {
  const Groups groups = *gen_groups();
  const int nd = *gen_nd();
  const int stage = *rc::gen::inRange(0, 4);
  const int rank = *rc::gen::inRange(0, nd);
  const DType half = *rc::gen::element(DType::f16, DType::bf16);
  i64 psi = 0;
  for (const auto& g : groups) {
    for (i64 p : g) psi += p;
  }
  const i64 pad = documented_padding(stage, groups, nd);
  if (stage == 1 || stage == 2) RC_ASSERT(pad < 2 * nd * static_cast<i64>(groups.size()));
  if (stage == 0) RC_ASSERT(pad == 0);
  // The paper's formula over the padded element count, term by term.
  const PaperTermsTimesNd expect = paper_times_nd(stage, psi + pad, nd);
  const ZeroRankBytes got = zero_memory_per_rank(groups, mixed_precision_adam(stage, nd, half), rank);
  RC_ASSERT(got.params * nd == expect.params);
  RC_ASSERT(got.grads * nd == expect.grads);
  RC_ASSERT((got.master_params + got.optimizer_states) * nd == expect.optimizer);
  RC_ASSERT(got.master_params * 2 == got.optimizer_states);  // K = 4 (master copy) + 8 (moments)
  // And the total is the unpadded paper formula plus the padding's bytes under the same formula.
  const PaperTermsTimesNd unpadded = paper_times_nd(stage, psi, nd);
  const PaperTermsTimesNd padding = paper_times_nd(stage, pad, nd);
  RC_ASSERT(got.total() * nd == unpadded.params + unpadded.grads + unpadded.optimizer + padding.params +
                                    padding.grads + padding.optimizer);
}

RC_GTEST_PROP(ZeroPaperFormula, MoreDataParallelRanksNeverIncreaseZero3ModelStateBytesPerRank, ()) {
  const Groups groups = *gen_groups();
  const int fewer = *gen_nd();
  const int more = *rc::gen::inRange(fewer + 1, 2 * fewer + 64);
  const auto spec = [](int nd) { return mixed_precision_adam(3, nd, DType::bf16); };
  const ZeroRankBytes at_fewer = zero_memory_per_rank(groups, spec(fewer), 0);
  const ZeroRankBytes at_more = zero_memory_per_rank(groups, spec(more), *rc::gen::inRange(0, more));
  RC_ASSERT(at_more.total() <= at_fewer.total());
  RC_ASSERT(at_more.params <= at_fewer.params);
  RC_ASSERT(at_more.optimizer_states <= at_fewer.optimizer_states);
}

// The paper's Figure 1: Psi = 7.5B, Nd = 64, K = 12 gives 120 GB, 31.4 GB, 16.6 GB and 1.9 GB per
// device. 7.5e9 is a multiple of 2 * 64, so nothing is padded and the bytes are exact.
TEST(ZeroPaperFormula, FigureOneSevenPointFiveBillionOn64Ranks) {
  const Groups model = {{7'500'000'000}};
  const i64 expect[4] = {120'000'000'000, 31'406'250'000, 16'640'625'000, 1'875'000'000};
  for (int stage = 0; stage < 4; ++stage) {
    EXPECT_EQ(zero_memory_per_rank(model, mixed_precision_adam(stage, 64, DType::f16), 63).total(), expect[stage])
        << "stage " << stage;
  }
}

}  // namespace
}  // namespace twinspeed
