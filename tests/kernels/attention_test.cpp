// Attention's per-head kernels (KernelTable::attn_scores / attn_values) of every ISA against a
// double-precision reference, over rows scattered in memory as the paged KV cache leaves them.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"

namespace origami::cpu {
namespace {

class AttentionTest : public ::testing::TestWithParam<Isa> {};

// Head sizes of real models (64, 128, 256), the one-pass remainder (72: 64 + 8), and sizes that are
// not a multiple of 8 (the fallback); row counts around the 4-row score groups.
TEST_P(AttentionTest, ScoresAndValuesMatchDoubleReference) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  ASSERT_NE(k->attn_scores, nullptr);
  ASSERT_NE(k->attn_values, nullptr);
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (int64_t hd : {8, 64, 72, 128, 136, 256, 3, 66}) {
    for (int64_t n : {0, 1, 3, 4, 5, 8, 33}) {
      // Rows in reverse order, one pad float apart: nothing may assume consecutive rows.
      std::vector<float> pool(static_cast<size_t>((n + 1) * (hd + 1)));
      for (auto& x : pool) x = u(rng);
      std::vector<const float*> rows(n);
      for (int64_t j = 0; j < n; ++j) rows[j] = pool.data() + (n - 1 - j) * (hd + 1);
      std::vector<float> q(hd), p(n);
      for (auto& x : q) x = u(rng);
      for (auto& x : p) x = std::fabs(u(rng)) / 2;
      const float scale = 0.125f;
      std::vector<float> s(n + 1, -7.0f), out(hd + 1, -7.0f);
      k->attn_scores(q.data(), rows.data(), n, hd, scale, s.data());
      k->attn_values(p.data(), rows.data(), n, hd, out.data());
      const std::string ctx = std::string(IsaName(k->isa)) + " hd=" + std::to_string(hd) + " n=" + std::to_string(n);
      // Float sums of hd (or n) products of magnitude <= 4 (or <= 2): bound 2 * terms * eps * sum |term|.
      for (int64_t j = 0; j < n; ++j) {
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < hd; ++i) {
          ref += static_cast<double>(q[i]) * rows[j][i];
          mag += std::fabs(static_cast<double>(q[i]) * rows[j][i]);
        }
        const double bound = 2.0 * hd * std::numeric_limits<float>::epsilon() * mag * scale + 1e-30;
        EXPECT_NEAR(s[j], ref * scale, bound) << ctx << " row " << j;
      }
      EXPECT_EQ(s[n], -7.0f) << ctx << ": scores written past n";
      for (int64_t i = 0; i < hd; ++i) {
        double ref = 0, mag = 0;
        for (int64_t j = 0; j < n; ++j) {
          ref += static_cast<double>(p[j]) * rows[j][i];
          mag += std::fabs(static_cast<double>(p[j]) * rows[j][i]);
        }
        const double bound = 2.0 * (n + 1) * std::numeric_limits<float>::epsilon() * mag + 1e-30;
        EXPECT_NEAR(out[i], ref, bound) << ctx << " column " << i;
      }
      EXPECT_EQ(out[hd], -7.0f) << ctx << ": output written past hd";
    }
  }
}

// A NaN in one key row makes that score NaN and no other; a NaN in one value row reaches every
// output column the row touches.
TEST_P(AttentionTest, NaNStaysInItsRow) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  const int64_t hd = 64, n = 6;
  std::vector<float> pool(n * hd, 0.5f), q(hd, 1.0f), p(n, 0.25f), s(n), out(hd);
  pool[3 * hd + 17] = std::numeric_limits<float>::quiet_NaN();
  std::vector<const float*> rows(n);
  for (int64_t j = 0; j < n; ++j) rows[j] = pool.data() + j * hd;
  k->attn_scores(q.data(), rows.data(), n, hd, 1.0f, s.data());
  for (int64_t j = 0; j < n; ++j) EXPECT_EQ(std::isnan(s[j]), j == 3) << IsaName(k->isa) << " row " << j;
  k->attn_values(p.data(), rows.data(), n, hd, out.data());
  for (int64_t i = 0; i < hd; ++i) EXPECT_EQ(std::isnan(out[i]), i == 17) << IsaName(k->isa) << " column " << i;
}

INSTANTIATE_TEST_SUITE_P(AllIsas, AttentionTest, ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon),
                         [](const auto& info) { return std::string(IsaName(info.param)); });

}  // namespace
}  // namespace origami::cpu
