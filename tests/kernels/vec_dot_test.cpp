// Every fast vec_dot (and its multi-row form and activation quantizer) against the scalar
// reference, for every ISA this machine runs and every weight type.
//
// Error bounds, relative to M, the sum of the magnitudes of the terms the reference adds up:
//  * quantized types: the integer sums are exact in both; the differences are float roundings: the
//    scale products (<= 3 roundings per block, FMA or not) and the order in which terms are summed.
//    A SIMD kernel scales each lane's partial integer sum and adds lanes in float, so the partial
//    sums are bounded by M = sum |w_i a_i| of the dequantized values, not by |block result|.
//    Summing k terms in any order is within (k - 1) eps M: we allow 4 (nb + 4) eps M, and
//    16 (nb + 4) eps M for the K-quants, whose kernels add d * sc * q and dmin * m separately
//    (each can exceed |w| = |d sc q - dmin m|).
//  * float types: the reference sums in double (error ~ 0 at this scale); a kernel with at least 16
//    independent partial sums adds at most n / 16 + 32 roundings per path: (n / 16 + 32) eps M.
//  Dropping or corrupting one block or element moves the result by ~ M / nb or M / n, far above both.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <utility>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/ref/vec_dot_ref.h"
#include "kernels/kernel_test_util.h"

namespace origami::cpu {
namespace {

using testing::RandomFloats;
using testing::RandomRow;
using testing::WeightTypes;

constexpr double kEps = std::numeric_limits<float>::epsilon();

bool IsFloatType(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

struct Case {
  const KernelTable* fast;
  const KernelTable* scalar;
  DType type;
  int64_t n;
};

// M: sum over elements of |w_i a_i| of the dequantized weights and (converted) activations. Every
// partial sum a kernel forms (a lane, a block, an accumulator) is bounded by it.
double Magnitude(const Case& c, const uint8_t* w, const uint8_t* act) {
  const DType at = c.scalar->For(c.type).act_type;
  std::vector<float> wf(c.n), af(c.n);
  Traits(c.type).to_float(w, wf.data(), c.n);
  Traits(at).to_float(act, af.data(), c.n);
  double m = 0;
  for (int64_t i = 0; i < c.n; ++i) m += std::fabs(static_cast<double>(wf[i]) * af[i]);
  return m;
}

double Bound(const Case& c, double magnitude) {
  const int64_t nb = c.n / Traits(c.type).block_size;
  if (IsFloatType(c.type)) return (static_cast<double>(c.n) / 16 + 32) * kEps * magnitude;
  const double k = Traits(c.type).block_size == kQK_K ? 16 : 4;
  return k * static_cast<double>(nb + 4) * kEps * magnitude;
}

// Quantizes x with both tables' converters; they must agree byte for byte.
std::vector<uint8_t> Quantize(const Case& c, const std::vector<float>& x) {
  const DType at = c.scalar->For(c.type).act_type;
  std::vector<uint8_t> ref(RowBytes(at, c.n)), fast(ref.size());
  c.scalar->quantize[static_cast<uint32_t>(at)](x.data(), ref.data(), c.n);
  c.fast->quantize[static_cast<uint32_t>(at)](x.data(), fast.data(), c.n);
  EXPECT_EQ(std::memcmp(ref.data(), fast.data(), ref.size()), 0)
      << IsaName(c.fast->isa) << " " << TypeName(at) << " quantizer differs from the reference, n=" << c.n;
  return ref;
}

// Runs vec_dot and vec_dot_rows of the fast table on `rows` rows; checks each against the
// reference within the bound, or non-finiteness agreement when the reference is not finite.
void Check(const Case& c, const std::vector<uint8_t>& w, int64_t rows, const std::vector<uint8_t>& act,
           const char* what) {
  const size_t stride = RowBytes(c.type, c.n);
  const TypeKernels& fk = c.fast->For(c.type);
  const TypeKernels& rk = c.scalar->For(c.type);
  std::vector<float> multi(rows, -1.0f);
  if (fk.vec_dot_rows) fk.vec_dot_rows(c.n, multi.data(), w.data(), stride, rows, act.data());
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* wr = w.data() + r * stride;
    float ref, fast;
    rk.vec_dot(c.n, &ref, wr, act.data());
    fk.vec_dot(c.n, &fast, wr, act.data());
    const std::string ctx = std::string(IsaName(c.fast->isa)) + " " + TypeName(c.type) + " n=" +
                            std::to_string(c.n) + " row " + std::to_string(r) + " (" + what + ")";
    if (!std::isfinite(ref)) {
      EXPECT_FALSE(std::isfinite(fast)) << ctx << ": reference " << ref << ", fast " << fast;
      if (fk.vec_dot_rows) {
        EXPECT_FALSE(std::isfinite(multi[r])) << ctx << " rows form";
      }
      continue;
    }
    const double bound = Bound(c, Magnitude(c, wr, act.data()));
    EXPECT_LE(std::fabs(static_cast<double>(fast) - ref), bound) << ctx << ": reference " << ref << ", fast " << fast;
    if (fk.vec_dot_rows) {
      EXPECT_LE(std::fabs(static_cast<double>(multi[r]) - ref), bound)
          << ctx << " rows form: reference " << ref << ", fast " << multi[r];
    }
  }
}

// Element counts: 1, 3, 7 and 129 blocks; float types also get counts that are not a multiple of
// any vector width.
std::vector<int64_t> Sizes(DType t) {
  const int64_t bs = Traits(t).block_size;
  std::vector<int64_t> s = {bs, 3 * bs, 7 * bs, 129 * bs};
  if (IsFloatType(t)) s.insert(s.end(), {32, 96, 224, 4128, 1, 3, 7, 129, 1000, 4133});
  return s;
}

class VecDotTest : public ::testing::TestWithParam<Isa> {};

TEST_P(VecDotTest, MatchesReference) {
  if (!KernelsFor(GetParam())) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  const KernelTable* fast = KernelsFor(GetParam());
  const KernelTable* scalar = KernelsFor(Isa::kScalar);
  std::mt19937 rng(1234);
  for (DType t : WeightTypes()) {
    ASSERT_NE(fast->For(t).vec_dot, nullptr) << TypeName(t);
    for (int64_t n : Sizes(t)) {
      const Case c{fast, scalar, t, n};
      const int64_t rows = 23;  // two groups of 8, one of 4, then a tail of 3
      std::vector<uint8_t> w;
      for (int64_t r = 0; r < rows; ++r) {
        auto row = RandomRow(t, n, rng);
        w.insert(w.end(), row.begin(), row.end());
      }
      Check(c, w, rows, Quantize(c, RandomFloats(n, rng)), "random");
      // Huge scales and activations: large but finite results.
      std::vector<uint8_t> big;
      for (int64_t r = 0; r < rows; ++r) {
        auto row = RandomRow(t, n, rng, IsFloatType(t) ? 100.0f : 30000.0f);
        big.insert(big.end(), row.begin(), row.end());
      }
      Check(c, big, rows, Quantize(c, RandomFloats(n, rng, 1e6f)), "huge");
      // Zero weights and zero activations give exactly zero.
      std::vector<uint8_t> zero_w(RowBytes(t, n) * rows, 0);
      const auto act = Quantize(c, RandomFloats(n, rng));
      std::vector<float> out(rows, -1.0f);
      for (int64_t r = 0; r < rows; ++r) {
        fast->For(t).vec_dot(n, &out[r], zero_w.data(), act.data());
        EXPECT_EQ(out[r], 0.0f) << IsaName(fast->isa) << " " << TypeName(t) << " zero row n=" << n;
      }
      Check(c, w, rows, Quantize(c, std::vector<float>(n, 0.0f)), "zero activations");
    }
  }
}

TEST_P(VecDotTest, NonFiniteActivationsPropagate) {
  if (!KernelsFor(GetParam())) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  const KernelTable* fast = KernelsFor(GetParam());
  const KernelTable* scalar = KernelsFor(Isa::kScalar);
  std::mt19937 rng(99);
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  for (DType t : WeightTypes()) {
    for (int64_t n : {Traits(t).block_size, 7 * Traits(t).block_size}) {
      const Case c{fast, scalar, t, n};
      std::vector<uint8_t> w;
      for (int r = 0; r < 5; ++r) {
        auto row = RandomRow(t, n, rng);
        w.insert(w.end(), row.begin(), row.end());
      }
      for (float s : specials) {
        for (int64_t pos : {int64_t{0}, n / 2, n - 1}) {
          auto x = RandomFloats(n, rng);
          x[pos] = s;
          Check(c, w, 5, Quantize(c, x), "non-finite activation");
          // The reference itself must not be finite when fed NaN.
          if (std::isnan(s)) {
            float ref;
            scalar->For(t).vec_dot(n, &ref, w.data(), Quantize(c, x).data());
            EXPECT_TRUE(std::isnan(ref)) << TypeName(t) << " NaN activation gave " << ref;
          }
        }
      }
    }
  }
}

// The prefill tile form (rows x tokens) against the reference, row by row and token by token, for
// row counts that fill the kernels' row groups and leave tails, and token counts that fill the
// token tiles and leave tails; one token carries a NaN, which must reach every row of that token.
// 19 rows x 11 tokens: a 16-row float panel strip (6 + 5 tokens) and 3 rows of the dot-product
// tile; 13 x 27: an 8-row strip (12 + 12 + 3 tokens) and 5 rows.
TEST_P(VecDotTest, TileMatchesReference) {
  if (!KernelsFor(GetParam())) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  const KernelTable* fast = KernelsFor(GetParam());
  const KernelTable* scalar = KernelsFor(Isa::kScalar);
  std::mt19937 rng(4321);
  for (DType t : WeightTypes()) {
    const TypeKernels& fk = fast->For(t);
    if (!fk.vec_dot_tile) continue;
    const DType at = fk.act_type;
    for (int64_t n : Sizes(t)) {
      if (n % Traits(at).block_size != 0) continue;
      for (const auto& [rows, n_tok] : {std::pair<int64_t, int64_t>{19, 11}, {13, 27}}) {
        const Case c{fast, scalar, t, n};
        const int64_t nan_tok = 6;
        const size_t stride = RowBytes(t, n), a_stride = RowBytes(at, n);
        std::vector<uint8_t> w, act;
        for (int64_t r = 0; r < rows; ++r) {
          auto row = RandomRow(t, n, rng);
          w.insert(w.end(), row.begin(), row.end());
        }
        for (int64_t k = 0; k < n_tok; ++k) {
          auto x = RandomFloats(n, rng, k % 3 == 2 ? 1e4f : 1.0f);
          if (k == nan_tok) x[n / 2] = std::numeric_limits<float>::quiet_NaN();
          auto q = Quantize(c, x);
          act.insert(act.end(), q.begin(), q.end());
        }
        const size_t out_stride = rows + 3;
        std::vector<float> out(n_tok * out_stride, -7.0f);
        fk.vec_dot_tile(n, out.data(), out_stride, w.data(), stride, rows, act.data(), a_stride, n_tok);
        for (int64_t k = 0; k < n_tok; ++k) {
          const uint8_t* ak = act.data() + k * a_stride;
          for (int64_t r = 0; r < rows; ++r) {
            const uint8_t* wr = w.data() + r * stride;
            float ref;
            scalar->For(t).vec_dot(n, &ref, wr, ak);
            const float got = out[k * out_stride + r];
            const std::string ctx = std::string(IsaName(fast->isa)) + " " + TypeName(t) + " n=" + std::to_string(n) +
                                    " token " + std::to_string(k) + " row " + std::to_string(r);
            if (!std::isfinite(ref)) {
              EXPECT_FALSE(std::isfinite(got)) << ctx << ": reference " << ref << ", tile " << got;
              continue;
            }
            EXPECT_LE(std::fabs(static_cast<double>(got) - ref), Bound(c, Magnitude(c, wr, ak)))
                << ctx << ": reference " << ref << ", tile " << got;
          }
          for (int64_t r = rows; r < static_cast<int64_t>(out_stride); ++r)
            EXPECT_EQ(out[k * out_stride + r], -7.0f) << "tile wrote past its rows, token " << k;
        }
      }
    }
  }
}

// The activation quantizers agree with the reference on every block shape, including values at
// rounding ties (x * id exactly k + 0.5) and blocks where +max and -max tie.
TEST_P(VecDotTest, QuantizersMatchReference) {
  if (!KernelsFor(GetParam())) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  const KernelTable* fast = KernelsFor(GetParam());
  const KernelTable* scalar = KernelsFor(Isa::kScalar);
  std::mt19937 rng(7);
  for (DType at : {DType::kQ8_0, DType::kQ8_1, DType::kQ8_K}) {
    const uint32_t id = static_cast<uint32_t>(at);
    ASSERT_NE(fast->quantize[id], nullptr);
    const int64_t n = 4 * kQK_K;
    for (int rep = 0; rep < 50; ++rep) {
      auto x = RandomFloats(n, rng, rep % 2 ? 1e-3f : 10.0f);
      if (rep % 5 == 1) {
        // Rounding ties: each block's extreme is 127, so the scale is exactly 1 (or -1 for Q8_K)
        // and the halves below must round away from zero (Q8_0/Q8_1) or to even (Q8_K).
        for (int64_t i = 0; i < n; ++i) x[i] = i % 32 == 0 ? 127.0f : static_cast<float>(static_cast<int>(x[i] * 10)) + 0.5f;
      }
      if (rep % 5 == 2) {
        x[3] = 12.5f;
        x[100] = -12.5f;
      }
      if (rep % 5 == 3) std::fill(x.begin(), x.begin() + kQK_K, 0.0f);
      std::vector<uint8_t> ref(RowBytes(at, n)), got(ref.size());
      scalar->quantize[id](x.data(), ref.data(), n);
      fast->quantize[id](x.data(), got.data(), n);
      ASSERT_EQ(std::memcmp(ref.data(), got.data(), ref.size()), 0)
          << IsaName(fast->isa) << " " << TypeName(at) << " rep " << rep;
    }
  }
}

std::string IsaParamName(const ::testing::TestParamInfo<Isa>& info) { return IsaName(info.param); }

// Every ISA is instantiated; those this machine cannot run skip with a message, so a run on a CPU
// without AVX-512 says so in its log.
INSTANTIATE_TEST_SUITE_P(AllIsas, VecDotTest,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon), IsaParamName);

}  // namespace
}  // namespace origami::cpu
