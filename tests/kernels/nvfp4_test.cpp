// NVFP4 x Q8_0: the scalar twin against the format (dequantize both sides, dot in double), and every
// ISA's kernel (vec_dot, rows and tile forms) against the twin with every one of the 256 UE4M3
// scale bytes in use, including 0x00 and 0x7F (both decode to 0) and the bytes with bit 7 set.
//
// Error bounds, relative to M = sum |w_i a_i| of the dequantized values: the integer sub-block
// sums are exact; the scale product ue4m3/2 * d_act is exact (at most 4 x 11 significant bits, and
// its smallest value 2^-10 * 2^-24 is a normal float); the float work is then one multiply-add per
// sub-block or lane, so any two summation orders differ by <= (n/16 + 8) eps M; we allow 4x that.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/ref/vec_dot_nvfp4.h"
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

// n elements of random NVFP4 with scale bytes first, first + 1, ... (mod 256) and random quants.
std::vector<uint8_t> RandomNvfp4(int64_t n, std::mt19937& rng, int first) {
  std::vector<BlockNvfp4> b(n / kQKNvfp4);
  std::uniform_int_distribution<int> byte(0, 255);
  int next = first;
  for (auto& blk : b) {
    for (auto& d : blk.d) d = static_cast<uint8_t>(next++ & 0xFF);
    for (auto& q : blk.qs) q = static_cast<uint8_t>(byte(rng));
  }
  std::vector<uint8_t> out(b.size() * sizeof(BlockNvfp4));
  std::memcpy(out.data(), b.data(), out.size());
  return out;
}

// The dot product of the dequantized operands in double, and M. The weights go through the dtype
// table's dequantizer, which tests/tensor checks bit for bit against an independent numpy decoder.
std::pair<double, double> Oracle(const uint8_t* w, const std::vector<uint8_t>& a, int64_t n) {
  std::vector<float> wf(n), af(n);
  Traits(DType::kNVFP4).to_float(w, wf.data(), n);
  Traits(DType::kQ8_0).to_float(a.data(), af.data(), n);
  double s = 0, m = 0;
  for (int64_t i = 0; i < n; ++i) {
    s += static_cast<double>(wf[i]) * af[i];
    m += std::fabs(static_cast<double>(wf[i]) * af[i]);
  }
  return {s, m};
}

double Bound(int64_t n, double m) { return 4 * (static_cast<double>(n) / 16 + 8) * kEps * m; }

TEST(Nvfp4Q8, TwinEqualsDequantizedDot) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t n : {64, 192, 448, 4160}) {
    for (int trial = 0; trial < 20; ++trial) {
      const auto w = RandomNvfp4(n, rng, static_cast<int>(rng() % 256));
      std::vector<float> x(n);
      for (auto& v : x) v = u(rng) * (trial % 2 ? 1000.0f : 1.0f);
      const auto a = QuantizeQ8_0(x);
      float got;
      ref::VecDotNvfp4Q8_0(n, &got, w.data(), a.data());
      const auto [want, m] = Oracle(w.data(), a, n);
      EXPECT_LE(std::fabs(got - want), Bound(n, m)) << "n=" << n << " trial " << trial;
    }
  }
  // The pairing of sub-blocks with activation blocks: a single nonzero weight (sub-block 3,
  // element 9: byte 27 high nibble, value 12 x ue4m3(0x38)/2 = 12 x 0.5) meets only activation
  // element 57 (block 1, offset 25).
  std::vector<uint8_t> w(sizeof(BlockNvfp4), 0);
  auto* b = reinterpret_cast<BlockNvfp4*>(w.data());
  b->d[3] = 0x38;  // exponent 7, mantissa 0: ue4m3 = 1
  b->qs[3 * 8 + 1] = 0x70;
  std::vector<float> x(64, 0.0f);
  x[57] = 2.0f;
  // Neighbours a wrong pairing would pick up instead: the same sub-block's other elements, the
  // other half of the activation block, the element at the same offset in block 0.
  x[56] = x[58] = -3.0f, x[41] = 5.0f, x[25] = 7.0f, x[9] = 11.0f;
  const auto a = QuantizeQ8_0(x);
  std::vector<float> af(64);
  Traits(DType::kQ8_0).to_float(a.data(), af.data(), 64);
  float got;
  ref::VecDotNvfp4Q8_0(64, &got, w.data(), a.data());
  EXPECT_NEAR(got, 6.0 * af[57], 1e-6 * std::fabs(6.0 * af[57]));
  EXPECT_NE(af[57], 0.0f);
  ForEachIsaVecDot(DType::kNVFP4, 64, w.data(), a.data(), [&](float fast, Isa isa) {
    EXPECT_NEAR(fast, 6.0 * af[57], 1e-6 * std::fabs(6.0 * af[57])) << IsaName(isa);
  });
}

TEST(Nvfp4Q8, EveryIsaMatchesTwinOverAllScaleBytes) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(-1, 1);
  for (Isa isa : AvailableIsas()) {
    const KernelTable* k = KernelsFor(isa);
    const TypeKernels& tk = k->For(DType::kNVFP4);
    ASSERT_EQ(tk.act_type, DType::kQ8_0) << IsaName(isa);
    ASSERT_NE(tk.vec_dot, nullptr) << IsaName(isa);
    for (int64_t n : {64, 128, 7 * 64, 129 * 64}) {
      for (float mag : {1.0f, 1e5f}) {
        const int64_t rows = 11, n_tok = 3;
        const size_t stride = RowBytes(DType::kNVFP4, n), a_stride = RowBytes(DType::kQ8_0, n);
        // At n = 129 x 64 each row uses all 256 scale bytes.
        const auto w = StackRows(rows, [&](int64_t r) { return RandomNvfp4(n, rng, static_cast<int>(r * 37)); });
        const auto act = StackRows(n_tok, [&](int64_t) {
          std::vector<float> x(n);
          for (auto& v : x) v = u(rng) * mag;
          return QuantizeQ8_0(x);
        });
        std::vector<float> multi(rows, -1.0f), tile(n_tok * rows, -1.0f);
        if (tk.vec_dot_rows) tk.vec_dot_rows(n, multi.data(), w.data(), stride, rows, act.data());
        if (tk.vec_dot_tile) tk.vec_dot_tile(n, tile.data(), rows, w.data(), stride, rows, act.data(), a_stride, n_tok);
        for (int64_t t = 0; t < n_tok; ++t) {
          const std::vector<uint8_t> at(act.begin() + t * a_stride, act.begin() + (t + 1) * a_stride);
          for (int64_t r = 0; r < rows; ++r) {
            const uint8_t* wr = w.data() + r * stride;
            float twin, fast;
            ref::VecDotNvfp4Q8_0(n, &twin, wr, at.data());
            tk.vec_dot(n, &fast, wr, at.data());
            const auto [want, m] = Oracle(wr, at, n);
            ASSERT_TRUE(std::isfinite(twin));
            const double bound = Bound(n, m);
            const std::string ctx = std::string(IsaName(isa)) + " n=" + std::to_string(n) + " mag " +
                                    std::to_string(mag) + " token " + std::to_string(t) + " row " + std::to_string(r);
            EXPECT_LE(std::fabs(twin - want), bound) << ctx << " twin vs dequantized";
            EXPECT_LE(std::fabs(static_cast<double>(fast) - twin), bound)
                << ctx << " fast " << fast << " twin " << twin;
            if (tk.vec_dot_rows && t == 0) {
              EXPECT_LE(std::fabs(static_cast<double>(multi[r]) - twin), bound) << ctx << " rows";
            }
            if (tk.vec_dot_tile) {
              EXPECT_LE(std::fabs(static_cast<double>(tile[t * rows + r]) - twin), bound) << ctx << " tile";
            }
          }
        }
      }
    }
  }
}

// A NaN activation makes every form's result NaN, as the twin's (its Q8_0 block scale is NaN).
TEST(Nvfp4Q8, NanActivationPropagates) {
  std::mt19937 rng(3);
  const int64_t n = 128;
  const auto w = RandomNvfp4(n, rng, 0x30);
  std::vector<float> x(n, 1.0f);
  x[100] = std::numeric_limits<float>::quiet_NaN();
  const auto a = QuantizeQ8_0(x);
  float twin;
  ref::VecDotNvfp4Q8_0(n, &twin, w.data(), a.data());
  ASSERT_TRUE(std::isnan(twin));
  ForEachIsaVecDot(DType::kNVFP4, n, w.data(), a.data(),
                   [](float fast, Isa isa) { EXPECT_TRUE(std::isnan(fast)) << IsaName(isa); });
}

}  // namespace
}  // namespace origami::cpu
