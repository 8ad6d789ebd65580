// MXFP4 x Q8_0: the scalar twin against the format (dequantize both sides, dot in double), and every
// ISA's kernel against the twin at the extremes of the E8M0 scale (2^-128 .. 2^127), where the
// scale is built from bits and products reach float subnormals or near-overflow.
//
// Error bounds, relative to M = sum |w_i a_i| of the dequantized values: the integer block sums
// are exact; the float work is one product d_act * 2^(e-128) (exact while normal: a power of two)
// and one multiply-add per block or lane, so any two summation orders differ by <= (nb + 8) eps M,
// and we allow 4 (nb + 8) eps M. Where the scale product is a float subnormal it is rounded to a
// multiple of 2^-149; that absolute error (times the largest block sum, 12 * 127 * 32) is added.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/ref/vec_dot_mxfp4.h"
#include "kernels/cpu/ref/vec_dot_ref.h"
#include "kernels/kernel_test_util.h"
#include "tensor/blocks.h"
#include "tensor/dtype.h"

namespace origami::cpu {
namespace {

using testing::ForEachIsaVecDot;
using testing::QuantizeQ8_0;
using testing::StackRows;

constexpr double kEps = std::numeric_limits<float>::epsilon();

std::vector<uint8_t> RandomMxfp4(int64_t n, std::mt19937& rng, const std::vector<int>& exps) {
  std::vector<BlockMxfp4> b(n / kQKMxfp4);
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t i = 0; i < b.size(); ++i) {
    b[i].e = static_cast<uint8_t>(exps[i % exps.size()]);
    for (auto& q : b[i].qs) q = static_cast<uint8_t>(byte(rng));
  }
  std::vector<uint8_t> out(b.size() * sizeof(BlockMxfp4));
  std::memcpy(out.data(), b.data(), out.size());
  return out;
}

// The dot product of the dequantized operands in double, and M. The weights are dequantized here
// in double from the format's definition (kE2M1 x 2^(e - 127)): in float, 6 x 2^127 overflows.
std::pair<double, double> Oracle(const std::vector<uint8_t>& w, const std::vector<uint8_t>& a, int64_t n) {
  static constexpr double kE2M1[16] = {0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6};
  std::vector<float> af(n);
  Traits(DType::kQ8_0).to_float(a.data(), af.data(), n);
  const auto* b = reinterpret_cast<const BlockMxfp4*>(w.data());
  double s = 0, m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const BlockMxfp4& blk = b[i / 32];
    const int j = static_cast<int>(i % 32);
    const int q = j < 16 ? blk.qs[j] & 0x0f : blk.qs[j - 16] >> 4;
    const double wv = kE2M1[q] * std::ldexp(1.0, static_cast<int>(blk.e) - 127);
    s += wv * af[i];
    m += std::fabs(wv * af[i]);
  }
  return {s, m};
}

double Bound(int64_t n, double m, bool subnormal_scale) {
  const double nb = static_cast<double>(n / kQKMxfp4);
  return 4 * (nb + 8) * kEps * m + (subnormal_scale ? nb * 12 * 127 * 32 * std::ldexp(1.0, -149) : 0.0);
}

TEST(Mxfp4Q8, TwinEqualsDequantizedDot) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t n : {32, 96, 224, 4128}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<int> exps;
      for (int i = 0; i < 7; ++i) exps.push_back(110 + static_cast<int>(rng() % 30));
      const auto w = RandomMxfp4(n, rng, exps);
      std::vector<float> x(n);
      for (auto& v : x) v = u(rng);
      const auto a = QuantizeQ8_0(x);
      float got;
      ref::VecDotMxfp4Q8_0(n, &got, w.data(), a.data());
      const auto [want, m] = Oracle(w, a, n);
      EXPECT_LE(std::fabs(got - want), Bound(n, m, false)) << "n=" << n;
      // The F32-activation oracle agrees with the dequantized dot too (it is what Q8_0 approximates).
      std::vector<float> af(n);
      Traits(DType::kQ8_0).to_float(a.data(), af.data(), n);
      float f32;
      ref::VecDotMxfp4(n, &f32, w.data(), af.data());
      EXPECT_LE(std::fabs(f32 - want), Bound(n, m, false)) << "n=" << n;
    }
  }
}

TEST(Mxfp4Q8, EveryIsaMatchesTwinAtExtremeScales) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(-1, 1);
  // Each case: block exponents, activation magnitude (keeps d_act * 2^(e-128) * 48768 finite).
  const std::vector<std::pair<std::vector<int>, float>> cases = {
      {{0}, 1.0f},          {{1}, 1.0f},         {{2}, 1.0f},     {{0, 1, 2, 3}, 100.0f},
      {{127}, 1.0f},        {{254}, 1e-4f},      {{255}, 1e-4f},  {{255, 0, 200, 60}, 1e-4f},
      {{130, 126, 127}, 1e6f}};
  for (Isa isa : AvailableIsas()) {
    const KernelTable* k = KernelsFor(isa);
    const TypeKernels& tk = k->For(DType::kMXFP4);
    ASSERT_EQ(tk.act_type, DType::kQ8_0) << IsaName(isa);
    for (const auto& [exps, mag] : cases) {
      bool sub = false;
      for (int e : exps) sub |= e < 24;  // fp16 d >= 2^-24 in these cases; product subnormal below 2^-126
      for (int64_t n : {32, 64, 7 * 32, 129 * 32}) {
        const int64_t rows = 11;
        const size_t stride = RowBytes(DType::kMXFP4, n);
        const auto w = StackRows(rows, [&](int64_t) { return RandomMxfp4(n, rng, exps); });
        std::vector<float> x(n);
        for (auto& v : x) v = u(rng) * mag;
        const auto a = QuantizeQ8_0(x);
        std::vector<float> multi(rows, -1.0f);
        if (tk.vec_dot_rows) tk.vec_dot_rows(n, multi.data(), w.data(), stride, rows, a.data());
        for (int64_t r = 0; r < rows; ++r) {
          const std::vector<uint8_t> wr(w.begin() + r * stride, w.begin() + (r + 1) * stride);
          float twin, fast;
          ref::VecDotMxfp4Q8_0(n, &twin, wr.data(), a.data());
          tk.vec_dot(n, &fast, wr.data(), a.data());
          const auto [want, m] = Oracle(wr, a, n);
          ASSERT_TRUE(std::isfinite(twin)) << "case e=" << exps[0];
          const double bound = Bound(n, m, sub);
          const std::string ctx = std::string(IsaName(isa)) + " e0=" + std::to_string(exps[0]) + " n=" +
                                  std::to_string(n) + " row " + std::to_string(r);
          EXPECT_LE(std::fabs(twin - want), bound) << ctx << " twin vs dequantized";
          EXPECT_LE(std::fabs(static_cast<double>(fast) - twin), bound) << ctx << " fast " << fast << " twin " << twin;
          if (tk.vec_dot_rows) {
            EXPECT_LE(std::fabs(static_cast<double>(multi[r]) - twin), bound) << ctx << " rows";
          }
        }
      }
    }
  }
}

// e = 255 with ordinary activations overflows: every form must give a non-finite result, as the twin.
TEST(Mxfp4Q8, OverflowIsNonFiniteEverywhere) {
  std::mt19937 rng(3);
  const int64_t n = 64;
  auto w = RandomMxfp4(n, rng, {255});
  w[1] = 0x77;  // element 0 and 16 = 12: a nonzero block sum is guaranteed with the activations below
  std::vector<float> x(n, 1000.0f);
  const auto a = QuantizeQ8_0(x);
  float twin;
  ref::VecDotMxfp4Q8_0(n, &twin, w.data(), a.data());
  ASSERT_FALSE(std::isfinite(twin));
  ForEachIsaVecDot(DType::kMXFP4, n, w.data(), a.data(),
                   [](float fast, Isa isa) { EXPECT_FALSE(std::isfinite(fast)) << IsaName(isa); });
}

}  // namespace
}  // namespace origami::cpu
