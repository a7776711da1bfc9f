// DeepSpeed 0.19.6's pipeline partition methods (engine/pipeline/partition_layers.hpp).

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <functional>

#include "engine/core/errors.hpp"
#include "engine/pipeline/partition_layers.hpp"

namespace twinspeed {
namespace {

using Parts = std::vector<std::int64_t>;

TEST(PipelinePartition, UniformGivesTheFirstStagesOneMoreLayer) {
  EXPECT_EQ(partition_uniform(10, 3), (Parts{0, 4, 7, 10}));
  EXPECT_EQ(partition_uniform(12, 4), (Parts{0, 3, 6, 9, 12}));
  EXPECT_EQ(partition_uniform(2, 4), (Parts{0, 1, 2, 2, 2}));  // fewer layers than stages
  EXPECT_EQ(partition_uniform(0, 2), (Parts{0, 0, 0}));
  EXPECT_THROW(partition_uniform(4, 0), ConfigError);
}

TEST(PipelinePartition, BalancedMatchesDeepSpeedOnHandDerivedCases) {
  const std::vector<double> equal = {1, 1, 1, 1};
  EXPECT_EQ(partition_balanced(equal, 2), (Parts{0, 2, 4}));
  const std::vector<double> heavy_first = {5, 1, 1, 1, 1, 1};
  EXPECT_EQ(partition_balanced(heavy_first, 2), (Parts{0, 1, 6}));
  // Ties keep the latest split: {2, 2, 2} over 2 parts costs 2 at k = 1 and at k = 2.
  const std::vector<double> three = {2, 2, 2};
  EXPECT_EQ(partition_balanced(three, 2), (Parts{0, 2, 3}));
  const std::vector<double> negative = {1, -1};
  EXPECT_THROW(partition_balanced(negative, 2), Error);
}

TEST(PipelinePartition, TypeRegexBalancesTheMatchingLayers) {
  const std::vector<LayerInfo> layers = {{"Embedding", 100}, {"TransformerBlock", 10}, {"TransformerBlock", 10},
                                         {"TransformerBlock", 10}, {"TransformerBlock", 10}, {"LMHead", 0}};
  EXPECT_EQ(partition_layers("type:block", layers, 2), (Parts{0, 3, 6}));  // two blocks per stage
  EXPECT_EQ(partition_layers("TYPE:transformer", layers, 2), (Parts{0, 3, 6}));
  EXPECT_EQ(partition_layers("uniform", layers, 4), (Parts{0, 2, 4, 5, 6}));
  EXPECT_EQ(partition_layers("parameters", layers, 2), (Parts{0, 1, 6}));  // the embedding alone
  EXPECT_THROW(partition_layers("type:Attention", layers, 2), ConfigError);
  EXPECT_THROW(partition_layers("type:[", layers, 2), ConfigError);
  EXPECT_THROW(partition_layers("profile", layers, 2), NotImplemented);
}

// The cost DeepSpeed minimises: heaviest part minus lightest part.
double spread(const std::vector<double>& w, const Parts& parts) {
  double hi = -1e300, lo = 1e300;
  for (std::size_t p = 0; p + 1 < parts.size(); ++p) {
    double sum = 0;
    for (auto i = parts[p]; i < parts[p + 1]; ++i) sum += w[static_cast<std::size_t>(i)];
    hi = std::max(hi, sum);
    lo = std::min(lo, sum);
  }
  return hi - lo;
}

RC_GTEST_PROP(PipelinePartitionProperty, BalancedPartsAreContiguousAndMinimiseTheSpreadOverEveryNonEmptySplit, ()) {
  const int stages = *rc::gen::inRange(1, 5);
  const auto weights = *rc::gen::container<std::vector<double>>(
      *rc::gen::inRange<std::size_t>(static_cast<std::size_t>(stages) + 1, 9),
      rc::gen::map(rc::gen::inRange(0, 20), [](int v) { return static_cast<double>(v); }));
  const Parts parts = partition_balanced(weights, stages);
  RC_ASSERT(parts.size() == static_cast<std::size_t>(stages) + 1);
  RC_ASSERT(parts.front() == 0);
  RC_ASSERT(parts.back() == static_cast<std::int64_t>(weights.size()));
  RC_ASSERT(std::is_sorted(parts.begin(), parts.end()));
  // Brute force over every split into non-empty contiguous parts.
  double best = 1e300;
  std::function<void(Parts&)> search = [&](Parts& cur) {
    if (cur.size() == static_cast<std::size_t>(stages)) {
      Parts full = cur;
      full.push_back(static_cast<std::int64_t>(weights.size()));
      if (full[full.size() - 2] < full.back()) best = std::min(best, spread(weights, full));
      return;
    }
    for (auto next = cur.back() + 1; next < static_cast<std::int64_t>(weights.size()); ++next) {
      cur.push_back(next);
      search(cur);
      cur.pop_back();
    }
  };
  Parts start = {0};
  search(start);
  RC_ASSERT(spread(weights, parts) == best);
}

RC_GTEST_PROP(PipelinePartitionProperty, UniformCoversEveryLayerOnceWithStageSizesDifferingByAtMostOne, ()) {
  const int stages = *rc::gen::inRange(1, 65);
  const auto layers = *rc::gen::inRange<std::int64_t>(0, 300);
  const Parts parts = partition_uniform(layers, stages);
  RC_ASSERT(parts.size() == static_cast<std::size_t>(stages) + 1);
  RC_ASSERT(parts.front() == 0 && parts.back() == layers);
  std::int64_t lo = layers, hi = 0;
  for (std::size_t s = 0; s + 1 < parts.size(); ++s) {
    lo = std::min(lo, parts[s + 1] - parts[s]);
    hi = std::max(hi, parts[s + 1] - parts[s]);
  }
  RC_ASSERT(hi - lo <= 1);
}

}  // namespace
}  // namespace twinspeed
