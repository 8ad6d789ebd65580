// Sampler: greedy rules, seeded reproducibility, and the distribution each filter leaves.
#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "util/error.h"

namespace origami {
namespace {

SamplerParams Plain(float temp) {
  SamplerParams p;
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  return p;
}

TEST(Sampler, GreedyTakesFirstMaximum) {
  Sampler s(Plain(0));
  std::vector<float> l = {1, 5, 3, 5, -2};
  EXPECT_EQ(s.Sample(l, {}), 1);
  EXPECT_EQ(Sampler::Argmax(std::vector<float>{-INFINITY, -1, -1}), 1);
}

TEST(Sampler, SameSeedSameSequence) {
  std::vector<float> base(1000);
  for (size_t i = 0; i < base.size(); ++i) base[i] = std::sin(static_cast<float>(i)) * 3;
  auto run = [&](uint64_t seed) {
    SamplerParams p = Plain(1.0f);
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) {
      std::vector<float> l = base;
      out.push_back(s.Sample(l, out));
    }
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

// Frequencies at temperature T match softmax(logits / T) within 5 standard errors.
TEST(Sampler, TemperatureDistribution) {
  const std::vector<float> logits = {2.0f, 1.0f, 0.5f, -1.0f};
  for (float temp : {0.5f, 1.0f, 2.0f}) {
    Sampler s(Plain(temp));
    const int n = 40000;
    std::vector<int> counts(logits.size());
    for (int i = 0; i < n; ++i) {
      std::vector<float> l = logits;
      counts[s.Sample(l, {})]++;
    }
    double z = 0;
    for (float x : logits) z += std::exp(x / temp);
    for (size_t i = 0; i < logits.size(); ++i) {
      const double p = std::exp(logits[i] / temp) / z;
      const double se = std::sqrt(p * (1 - p) / n);
      EXPECT_NEAR(counts[i] / static_cast<double>(n), p, 5 * se + 1e-9) << "temp " << temp << " id " << i;
    }
  }
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplerParams p = Plain(1.5f);
  p.top_k = 1;
  Sampler s(p);
  for (int i = 0; i < 100; ++i) {
    std::vector<float> l = {0.1f, 0.3f, 0.2f};
    ASSERT_EQ(s.Sample(l, {}), 1);
  }
}

TEST(Sampler, TopPAndMinPCutTheTail) {
  // probabilities ~ 0.64, 0.24, 0.09, 0.03
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f, -0.1f};
  SamplerParams p = Plain(1.0f);
  p.top_p = 0.8f;  // needs the first two (0.64 + 0.24 >= 0.8)
  Sampler s(p);
  std::map<int, int> seen;
  for (int i = 0; i < 5000; ++i) {
    std::vector<float> l = logits;
    seen[s.Sample(l, {})]++;
  }
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_EQ(seen.count(3), 0u);
  EXPECT_GT(seen[1], 0);

  SamplerParams q = Plain(1.0f);
  q.min_p = 0.2f;  // keeps p >= 0.2 * 0.64 = 0.128: ids 0 and 1
  Sampler m(q);
  seen.clear();
  for (int i = 0; i < 5000; ++i) {
    std::vector<float> l = logits;
    seen[m.Sample(l, {})]++;
  }
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_GT(seen[1], 0);
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegative) {
  SamplerParams p = Plain(0);
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {4.0f, 3.0f, -1.0f};
  const std::vector<int32_t> hist = {0, 2, 0};
  EXPECT_EQ(s.Sample(l, hist), 1);  // 4 / 2 = 2 < 3
  EXPECT_FLOAT_EQ(l[0], 2.0f);
  EXPECT_FLOAT_EQ(l[2], -2.0f);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  SamplerParams p = Plain(0);
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  Sampler s(p);
  std::vector<float> l = {1.0f, 1.0f};
  const std::vector<int32_t> hist = {0, 0, 0};
  s.Sample(l, hist);
  EXPECT_FLOAT_EQ(l[0], 1.0f - 3 * 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(l[1], 1.0f);
}

TEST(Sampler, RejectsOutOfRangeParameters) {
  SamplerParams p;
  p.temperature = -1;
  EXPECT_THROW(ValidateSamplerParams(p), Error);
  p = SamplerParams{};
  p.top_p = 1.5f;
  EXPECT_THROW(ValidateSamplerParams(p), Error);
  p = SamplerParams{};
  p.min_p = NAN;
  EXPECT_THROW(ValidateSamplerParams(p), Error);
  p = SamplerParams{};
  p.repeat_penalty = 0;
  EXPECT_THROW(ValidateSamplerParams(p), Error);
}

}  // namespace
}  // namespace origami
