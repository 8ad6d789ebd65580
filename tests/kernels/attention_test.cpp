// Attention's per-head kernels (KernelTable::attn, one pair per KV storage type) of every ISA
// against a double-precision reference, over rows scattered in memory as the paged KV cache leaves
// them. Rows of a 16-bit or quantized type are written by the dtype table's reference from_float;
// the reference reads them back with its to_float, so the kernels are held to the same stored
// values (the storage error itself is measured end to end in tests/model/kv).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "tensor/dtype.h"

namespace origami::cpu {
namespace {

constexpr DType kKvTypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0};

class AttentionTest : public ::testing::TestWithParam<std::tuple<Isa, DType>> {};

// Rows of one KV type at scattered addresses: row j at j's slot in reverse order, one pad block
// apart, so nothing may assume consecutive rows.
struct Rows {
  Rows(DType t, int64_t n, int64_t hd, std::mt19937& rng)
      : stride(RowBytes(t, hd) + 64),
        bytes(n * stride + 64),
        ptr(n),
        vals(n, std::vector<float>(hd)) {
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    const TypeTraits& tr = Traits(t);
    std::vector<float> x(hd);
    for (int64_t j = 0; j < n; ++j) {
      for (auto& v : x) v = u(rng);
      uint8_t* row = bytes.data() + (n - 1 - j) * stride;
      if (t == DType::kF32)
        std::memcpy(row, x.data(), hd * sizeof(float));
      else
        tr.from_float(x.data(), row, hd);
      if (t == DType::kF32)
        vals[j] = x;
      else
        tr.to_float(row, vals[j].data(), hd);
      ptr[j] = row;
    }
  }
  size_t stride;
  std::vector<uint8_t> bytes;
  std::vector<const void*> ptr;
  std::vector<std::vector<float>> vals;  // what the rows hold, as floats
};

bool Quantized(DType t) { return t == DType::kQ8_0 || t == DType::kQ4_0; }

// Head sizes of real models (64, 128, 256), the one-pass remainder (72: 64 + 8; 96 for the blocked
// types), and sizes that are not a multiple of 8 (the fallback, float types only); row counts
// around the 4-row score groups.
TEST_P(AttentionTest, ScoresAndValuesMatchDoubleReference) {
  const auto [isa, type] = GetParam();
  const KernelTable* k = KernelsFor(isa);
  if (!k) GTEST_SKIP() << IsaName(isa) << " not available on this CPU/build";
  const AttnKernels& a = k->Attn(type);
  ASSERT_NE(a.scores, nullptr);
  ASSERT_NE(a.values, nullptr);
  std::mt19937 rng(99);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  const std::vector<int64_t> sizes = Quantized(type)
                                         ? std::vector<int64_t>{32, 64, 96, 128, 256, 512}
                                         : std::vector<int64_t>{8, 64, 72, 128, 136, 256, 3, 66};
  for (int64_t hd : sizes) {
    for (int64_t n : {0, 1, 3, 4, 5, 8, 33}) {
      Rows rows(type, n, hd, rng);
      std::vector<float> q(hd), p(n);
      for (auto& x : q) x = u(rng);
      for (auto& x : p) x = std::fabs(u(rng)) / 2;
      const float scale = 0.125f;
      std::vector<float> s(n + 1, -7.0f), out(hd + 1, -7.0f);
      std::fill_n(out.begin(), hd, 0.0f);  // the value kernels accumulate
      a.scores(q.data(), rows.ptr.data(), n, hd, scale, s.data());
      a.values(p.data(), rows.ptr.data(), n, hd, out.data());
      const std::string ctx = std::string(IsaName(k->isa)) + " " + TypeName(type) +
                              " hd=" + std::to_string(hd) + " n=" + std::to_string(n);
      // Float sums of hd (or n) products of magnitude <= 4 (or <= 2): bound 2 * terms * eps * sum
      // |term| (the stored values are exact floats, so only the summation rounds).
      for (int64_t j = 0; j < n; ++j) {
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < hd; ++i) {
          ref += static_cast<double>(q[i]) * rows.vals[j][i];
          mag += std::fabs(static_cast<double>(q[i]) * rows.vals[j][i]);
        }
        const double bound = 2.0 * hd * std::numeric_limits<float>::epsilon() * mag * scale + 1e-30;
        EXPECT_NEAR(s[j], ref * scale, bound) << ctx << " row " << j;
      }
      EXPECT_EQ(s[n], -7.0f) << ctx << ": scores written past n";
      for (int64_t i = 0; i < hd; ++i) {
        double ref = 0, mag = 0;
        for (int64_t j = 0; j < n; ++j) {
          ref += static_cast<double>(p[j]) * rows.vals[j][i];
          mag += std::fabs(static_cast<double>(p[j]) * rows.vals[j][i]);
        }
        const double bound = 2.0 * (n + 1) * std::numeric_limits<float>::epsilon() * mag + 1e-30;
        EXPECT_NEAR(out[i], ref, bound) << ctx << " column " << i;
      }
      EXPECT_EQ(out[hd], -7.0f) << ctx << ": output written past hd";
    }
  }
}

// A NaN in one key row makes that score NaN and no other; a NaN in one value row reaches every
// output column the row touches (for quantized rows, a NaN scale: the whole block of 32).
TEST_P(AttentionTest, NaNStaysInItsRow) {
  const auto [isa, type] = GetParam();
  const KernelTable* k = KernelsFor(isa);
  if (!k) GTEST_SKIP() << IsaName(isa) << " not available on this CPU/build";
  const AttnKernels& a = k->Attn(type);
  const int64_t hd = 64, n = 6;
  std::vector<float> x(hd, 0.5f), q(hd, 1.0f), p(n, 0.25f), s(n), out(hd, 0.0f);
  const size_t rb = RowBytes(type, hd);
  std::vector<uint8_t> pool(n * rb);
  for (int64_t j = 0; j < n; ++j) {
    if (type == DType::kF32)
      std::memcpy(&pool[j * rb], x.data(), rb);
    else
      Traits(type).from_float(x.data(), &pool[j * rb], hd);
  }
  uint8_t* bad = &pool[3 * rb];
  int64_t lo = 17, hi = 18;  // output columns the NaN reaches
  if (type == DType::kF32) {
    reinterpret_cast<float*>(bad)[17] = std::numeric_limits<float>::quiet_NaN();
  } else if (type == DType::kF16) {
    reinterpret_cast<uint16_t*>(bad)[17] = 0x7e00;
  } else if (type == DType::kBF16) {
    reinterpret_cast<uint16_t*>(bad)[17] = 0x7fc0;
  } else {
    const uint16_t nan16 = 0x7e00;  // the second block's F16 scale: columns 32..63
    std::memcpy(bad + Traits(type).type_size, &nan16, 2);
    lo = 32, hi = 64;
  }
  std::vector<const void*> rows(n);
  for (int64_t j = 0; j < n; ++j) rows[j] = &pool[j * rb];
  const std::string ctx = std::string(IsaName(k->isa)) + " " + TypeName(type);
  a.scores(q.data(), rows.data(), n, hd, 1.0f, s.data());
  for (int64_t j = 0; j < n; ++j) EXPECT_EQ(std::isnan(s[j]), j == 3) << ctx << " row " << j;
  a.values(p.data(), rows.data(), n, hd, out.data());
  for (int64_t i = 0; i < hd; ++i)
    EXPECT_EQ(std::isnan(out[i]), i >= lo && i < hi) << ctx << " column " << i;
}

// Prefill attention walks the cache in blocks: scores of calls that start at multiples of 4 rows
// into a range, and value sums split into consecutive calls, give the bits of one call.
TEST_P(AttentionTest, BlockedCallsEqualOneCall) {
  const auto [isa, type] = GetParam();
  const KernelTable* k = KernelsFor(isa);
  if (!k) GTEST_SKIP() << IsaName(isa) << " not available on this CPU/build";
  const AttnKernels& a = k->Attn(type);
  std::mt19937 rng(5);
  for (int64_t hd : {64, 128, 96}) {
    const int64_t n = 203;
    Rows rows(type, n, hd, rng);
    std::vector<float> q(hd), p(n);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    for (auto& x : q) x = u(rng);
    for (auto& x : p) x = std::fabs(u(rng)) / 8;
    std::vector<float> s1(n), s2(n), o1(hd, 0.0f), o2(hd, 0.0f);
    a.scores(q.data(), rows.ptr.data(), n, hd, 0.3f, s1.data());
    a.values(p.data(), rows.ptr.data(), n, hd, o1.data());
    for (int64_t j = 0; j < n; j += 64) {
      const int64_t m = std::min<int64_t>(64, n - j);
      a.scores(q.data(), rows.ptr.data() + j, m, hd, 0.3f, s2.data() + j);
    }
    for (int64_t j = 0; j < n;) {  // uneven value blocks: 1, 2, 3, ...
      const int64_t m = std::min<int64_t>(1 + j % 7, n - j);
      a.values(p.data() + j, rows.ptr.data() + j, m, hd, o2.data());
      j += m;
    }
    EXPECT_EQ(s1, s2) << IsaName(isa) << " " << TypeName(type) << " hd=" << hd;
    EXPECT_EQ(o1, o2) << IsaName(isa) << " " << TypeName(type) << " hd=" << hd;
  }
}

// The flash path's block converters: keys transposed (element i of row j at i * ld + j) and value
// rows row by row, both exactly the stored values (a conversion, no arithmetic but the scale
// multiply the dtype table's to_float does too), for block tails of 1..64 rows.
TEST_P(AttentionTest, BlockConvertersEqualToFloat) {
  const auto [isa, type] = GetParam();
  const KernelTable* k = KernelsFor(isa);
  if (!k) GTEST_SKIP() << IsaName(isa) << " not available on this CPU/build";
  const AttnKernels& a = k->Attn(type);
  ASSERT_NE(a.keys, nullptr);
  ASSERT_NE(a.rows, nullptr);
  std::mt19937 rng(17);
  const std::vector<int64_t> sizes =
      Quantized(type) ? std::vector<int64_t>{32, 64, 96, 128, 576} : std::vector<int64_t>{8, 64, 72, 128, 3, 66};
  for (int64_t hd : sizes) {
    for (int64_t n : {1, 5, 8, 13, 63, 64}) {
      Rows rows(type, n, hd, rng);
      const int64_t ld = 64;
      std::vector<float> kt(hd * ld + 1, -7.0f), vf(n * hd + 1, -7.0f);
      a.keys(rows.ptr.data(), n, hd, kt.data(), ld);
      a.rows(rows.ptr.data(), n, hd, vf.data(), ld);
      const std::string ctx = std::string(IsaName(k->isa)) + " " + TypeName(type) + " hd=" + std::to_string(hd) +
                              " n=" + std::to_string(n);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < hd; ++i) {
          ASSERT_EQ(kt[i * ld + j], rows.vals[j][i]) << ctx << " key row " << j << " element " << i;
          ASSERT_EQ(vf[j * hd + i], rows.vals[j][i]) << ctx << " value row " << j << " element " << i;
        }
      EXPECT_EQ(kt[hd * ld], -7.0f) << ctx << ": keys written past the block";
      EXPECT_EQ(vf[n * hd], -7.0f) << ctx << ": values written past the block";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, AttentionTest,
                         ::testing::Combine(::testing::Values(Isa::kScalar, Isa::kAvx2,
                                                              Isa::kAvx512, Isa::kNeon),
                                            ::testing::ValuesIn(kKvTypes)),
                         [](const auto& info) {
                           return std::string(IsaName(std::get<0>(info.param))) + "_" +
                                  TypeName(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace origami::cpu

namespace origami::cpu {
namespace {

class AttnTileTest : public ::testing::TestWithParam<Isa> {};

// The score tile against a double-precision sum: query rows in groups of 4 and a tail, key blocks
// in vectors of 16 and 8 and a tail, odd head sizes. Bound as for the per-row scores: 2 * hd * eps
// * sum |q k| * scale (float sums of hd products). The SIMD form must also equal the scalar twin
// bit for bit where both run (same fused multiply-adds, same order).
TEST_P(AttnTileTest, ScoresMatchDoubleReferenceAndTwin) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  const AttnTileKernels& t = k->attn_tile;
  const AttnTileKernels& twin = KernelsFor(Isa::kScalar)->attn_tile;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  const int64_t ld = 64;
  for (int64_t hd : {64, 128, 5, 72}) {
    for (int rows : {1, 3, 4, 7, 32}) {
      for (int64_t m : {1, 7, 8, 16, 23, 64}) {
        std::vector<float> q(rows * hd), kt(hd * ld);
        for (auto& x : q) x = u(rng);
        for (auto& x : kt) x = u(rng);
        std::vector<float> s(rows * ld, -7.0f), s_twin(rows * ld, -7.0f);
        t.scores(q.data(), rows, kt.data(), ld, m, hd, 0.125f, s.data(), ld);
        twin.scores(q.data(), rows, kt.data(), ld, m, hd, 0.125f, s_twin.data(), ld);
        for (int r = 0; r < rows; ++r)
          for (int64_t j = 0; j < m; ++j) {
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < hd; ++i) {
              ref += static_cast<double>(q[r * hd + i]) * kt[i * ld + j];
              mag += std::fabs(static_cast<double>(q[r * hd + i]) * kt[i * ld + j]);
            }
            const double bound = 2.0 * hd * std::numeric_limits<float>::epsilon() * mag * 0.125 + 1e-30;
            ASSERT_NEAR(s[r * ld + j], ref * 0.125, bound) << IsaName(k->isa) << " hd=" << hd << " rows=" << rows
                                                          << " m=" << m << " r=" << r << " j=" << j;
            ASSERT_EQ(s[r * ld + j], s_twin[r * ld + j]) << IsaName(k->isa) << " hd=" << hd << " r=" << r;
          }
      }
    }
  }
}

// The online-softmax step: the new max ignores NaN scores (as std::fmax), each score becomes
// e^(s - max) within 4 ulp of std::exp (the vectorized exp's stated accuracy), scores far below the
// max become 0 or denormal-small, a NaN stays NaN in its place only, and the returned sum is the
// sum of what was written (float summation: bound n * eps * sum).
TEST_P(AttnTileTest, ExpStepMatchesStdExp) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  const AttnTileKernels& t = k->attn_tile;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-30.0f, 10.0f);
  for (int64_t n : {1, 5, 8, 9, 64}) {
    for (float start : {-INFINITY, 0.0f, 50.0f}) {
      std::vector<float> s(n + 1, -7.0f);
      for (int64_t j = 0; j < n; ++j) s[j] = u(rng);
      if (n >= 5) s[2] = -200.0f, s[4] = std::numeric_limits<float>::quiet_NaN();
      const std::vector<float> in = s;
      float m = start;
      const float sum = t.exp_step(s.data(), n, &m);
      float want_m = start;
      for (int64_t j = 0; j < n; ++j) want_m = std::fmax(want_m, in[j]);
      EXPECT_EQ(m, want_m);
      double want_sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (std::isnan(in[j])) {
          EXPECT_TRUE(std::isnan(s[j])) << j;
          continue;
        }
        const float want = std::exp(in[j] - m);
        if (want < std::numeric_limits<float>::min()) {
          EXPECT_LE(s[j], std::numeric_limits<float>::min()) << IsaName(k->isa) << " j=" << j;
        } else {
          EXPECT_NEAR(s[j], want, 4 * std::numeric_limits<float>::epsilon() * want)
              << IsaName(k->isa) << " n=" << n << " j=" << j << " x=" << in[j] - m;
        }
        want_sum += s[j];
      }
      EXPECT_EQ(s[n], -7.0f) << "written past n";
      if (n >= 5)
        EXPECT_TRUE(std::isnan(sum));
      else
        EXPECT_NEAR(sum, want_sum, n * std::numeric_limits<float>::epsilon() * want_sum + 1e-30);
    }
  }
}

// The value rows of a block summed into one query row's output: equal to the scalar twin bit for
// bit (one fused multiply-add per element, rows in order), for head sizes on and off the 8-float
// grid and one-pass remainders.
TEST_P(AttnTileTest, RowValuesEqualTwin) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  const AttnTileKernels& t = k->attn_tile;
  const AttnTileKernels& twin = KernelsFor(Isa::kScalar)->attn_tile;
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (int64_t hd : {64, 128, 72, 512, 3, 66}) {
    for (int64_t n : {0, 1, 7, 64}) {
      std::vector<float> p(n), v(n * hd), out(hd + 1), out_twin(hd + 1);
      for (auto& x : p) x = std::fabs(u(rng));
      for (auto& x : v) x = u(rng);
      for (int64_t i = 0; i < hd; ++i) out[i] = out_twin[i] = u(rng);
      out[hd] = out_twin[hd] = -7.0f;
      const std::vector<float> start = out;
      t.values(p.data(), v.data(), n, hd, out.data());
      twin.values(p.data(), v.data(), n, hd, out_twin.data());
      EXPECT_EQ(out, out_twin) << IsaName(k->isa) << " hd=" << hd << " n=" << n;
      // And both against double sums: bound 2 * (n + 1) * eps * sum |term| (n + 1 float additions).
      for (int64_t i = 0; i < hd; ++i) {
        double ref = start[i], mag = std::fabs(start[i]);
        for (int64_t j = 0; j < n; ++j) {
          ref += static_cast<double>(p[j]) * v[j * hd + i];
          mag += std::fabs(static_cast<double>(p[j]) * v[j * hd + i]);
        }
        EXPECT_NEAR(out[i], ref, 2.0 * (n + 1) * std::numeric_limits<float>::epsilon() * mag)
            << IsaName(k->isa) << " hd=" << hd << " n=" << n << " column " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, AttnTileTest,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon),
                         [](const auto& info) { return std::string(IsaName(info.param)); });

}  // namespace
}  // namespace origami::cpu
