// The K-quant repacked layouts Q4_Kx8 and Q6_Kx8 (kernels/cpu/repack.h): the repack is a lossless
// permutation with the documented placement, the scalar twins equal the scalar Q4_K / Q6_K kernels
// bit for bit, and the
// ISA kernels (through MatMul, 1 and 2 threads, decode and prefill) match the twin and the unrepacked
// MatMul within float summation error, on random and adversarial blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/ref/vec_dot_ref.h"
#include "kernels/cpu/repack.h"
#include "kernels/kernel_test_util.h"
#include "tensor/blocks.h"
#include "util/error.h"
#include "util/fp16.h"

namespace origami::cpu {
namespace {

using testing::RandomFloats;
using testing::RandomMatrix;

const Layout kLayouts[] = {Layout::kQ4_Kx8, Layout::kQ6_Kx8};

// Blocks at the edges of what the kernels' integer sums must hold, between random ones. Q4_K: all
// nibbles 15 with every scale and min 63 and large d / dmin (either sign), all-zero nibbles with
// maximal mins, zero scales. Q6_K: all quants 63 or 0 (q - 32 = 31 / -32) with scales +127 / -128,
// large d of either sign.
std::vector<uint8_t> AdversarialMatrix(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  auto w = RandomMatrix(t, rows, cols, rng);
  std::uniform_int_distribution<int> mode(0, 4);
  const float big[] = {1000.0f, -1000.0f, 60000.0f, 0.0f, 1e-4f};
  const size_t bs = Traits(t).type_size;
  for (size_t off = 0; off < w.size(); off += bs) {
    const int m = mode(rng);
    if (t == DType::kQ6_K) {
      auto* b = reinterpret_cast<BlockQ6_K*>(w.data() + off);
      if (m == 0 || m == 1) {
        std::memset(b->ql, m == 0 ? 0xff : 0x00, sizeof b->ql);
        std::memset(b->qh, m == 0 ? 0xff : 0x00, sizeof b->qh);
        std::memset(b->scales, (rng() & 1) ? 0x7f : 0x80, sizeof b->scales);
        b->d = Fp32ToFp16(big[rng() % 5]);
      } else if (m == 2) {
        std::memset(b->scales, 0x00, sizeof b->scales);
      } else if (m == 3) {
        std::memset(b->scales, 0x80, sizeof b->scales);
        b->d = Fp32ToFp16(-0.02f);
      }
      continue;
    }
    auto* b = reinterpret_cast<BlockQ4_K*>(w.data() + off);
    switch (m) {
      case 0:  // everything at its maximum
        std::memset(b->scales, 0xff, sizeof b->scales);
        std::memset(b->qs, 0xff, sizeof b->qs);
        b->d = Fp32ToFp16(big[rng() % 5]);
        b->dmin = Fp32ToFp16(big[rng() % 5]);
        break;
      case 1:  // zero nibbles, maximal mins
        std::memset(b->qs, 0x00, sizeof b->qs);
        std::memset(b->scales, 0xff, sizeof b->scales);
        b->dmin = Fp32ToFp16(big[rng() % 5]);
        break;
      case 2:  // zero scales and mins
        std::memset(b->scales, 0x00, sizeof b->scales);
        break;
      case 3:  // max nibbles, random scales, negative d
        std::memset(b->qs, 0xff, sizeof b->qs);
        b->d = Fp32ToFp16(-0.02f);
        break;
      default: break;
    }
  }
  return w;
}

// Activations with every Q8_K quant at the extremes (+-127, -128 for the most negative).
std::vector<float> AdversarialFloats(int64_t n, std::mt19937& rng) {
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = (rng() & 1) ? 50.0f : -50.0f;
  return x;
}

// Sum over blocks of |dy d isum| + |dy dmin msum| for one row: the magnitude of the terms the
// kernels add in different orders. A float32 sum of nb terms differs between two orders (and an
// FMA) by at most about (nb + 4) * 2^-23 times this.
// elementwise: sum of |each product| instead (d sc q qy dy and dmin m qy dy, element by element),
// the bound for kernels that sum partial sums of a block in float lanes (the row-major AVX2
// kernels), whose partials can exceed the block's total when they cancel.
double TermMagnitudeQ6(const uint8_t* row, const uint8_t* act, int64_t n, bool elementwise) {
  const auto* x = reinterpret_cast<const BlockQ6_K*>(row);
  const auto* y = reinterpret_cast<const BlockQ8_K*>(act);
  double s = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    int64_t isum = 0;
    for (int e = 0; e < kQK_K; ++e) {  // as ref::VecDotQ6_K
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const uint8_t ql = x[b].ql[64 * h + 32 * (k & 1) + l];
      const int q = (k < 2 ? (ql & 0x0f) : (ql >> 4)) | (((x[b].qh[32 * h + l] >> (2 * k)) & 3) << 4);
      const int v = x[b].scales[e / 16] * (q - 32) * y[b].qs[e];
      isum += elementwise ? std::abs(v) : v;
    }
    s += std::fabs(static_cast<double>(y[b].d) * Fp16ToFp32(x[b].d) * static_cast<double>(isum));
  }
  return s;
}

double TermMagnitude(DType t, const uint8_t* row, const uint8_t* act, int64_t n, bool elementwise = false) {
  if (t == DType::kQ6_K) return TermMagnitudeQ6(row, act, n, elementwise);
  const auto* x = reinterpret_cast<const BlockQ4_K*>(row);
  const auto* y = reinterpret_cast<const BlockQ8_K*>(act);
  double s = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    uint8_t sc[8], m[8];
    ref::UnpackScalesK4(x[b].scales, sc, m);
    int64_t isum = 0, msum = 0;
    for (int e = 0; e < kQK_K; ++e) {
      const int c = e / 64, l = e % 32;
      const int q = (e % 64) < 32 ? (x[b].qs[32 * c + l] & 0x0f) : (x[b].qs[32 * c + l] >> 4);
      isum += elementwise ? std::abs(sc[e / 32] * q * y[b].qs[e]) : sc[e / 32] * q * y[b].qs[e];
      if (elementwise) msum += std::abs(m[e / 32] * y[b].qs[e]);
    }
    if (!elementwise)
      for (int j = 0; j < 8; ++j) msum += m[j] * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
    s += std::fabs(static_cast<double>(y[b].d) * Fp16ToFp32(x[b].d) * static_cast<double>(isum)) +
         std::fabs(static_cast<double>(y[b].d) * Fp16ToFp32(x[b].dmin) * static_cast<double>(msum));
  }
  return s;
}

// Where byte `o` of row k's block lands in its group block (repack.h): fields in block order, each
// interleaved across the 8 rows in units of 2 (fp16 scales) or 4 bytes.
size_t Placement(Layout l, size_t o, int k) {
  struct F {
    size_t off, size, unit;
  };
  const std::vector<F> f = l == Layout::kQ4_Kx8 ? std::vector<F>{{0, 2, 2}, {2, 2, 2}, {4, 140, 4}}
                                                : std::vector<F>{{0, 128, 4}, {128, 64, 4}, {192, 16, 4}, {208, 2, 2}};
  for (const F& x : f)
    if (o >= x.off && o < x.off + x.size) {
      const size_t r = o - x.off;
      return 8 * x.off + x.unit * (8 * (r / x.unit) + k) + r % x.unit;
    }
  return ~size_t{0};
}

TEST(RepackKQuant, IsALosslessPermutationWithTheDocumentedPlacement) {
  std::mt19937 rng(11);
  for (Layout l : kLayouts) {
    const DType t = LayoutType(l);
    const size_t block = Traits(t).type_size;
    for (int64_t cols : {256, 768, 4096}) {
      const int64_t rows = 24;
      const auto orig = RandomMatrix(t, rows, cols, rng);
      auto packed = orig;
      Repack(l, packed.data(), packed.data(), rows, cols);
      EXPECT_NE(packed, orig) << cols;
      std::vector<uint8_t> copy(orig.size());
      Repack(l, orig.data(), copy.data(), rows, cols);  // out of place: the same bytes
      EXPECT_EQ(copy, packed);
      const size_t row_bytes = RowBytes(t, cols);
      std::vector<uint8_t> row(row_bytes);
      const int64_t nb = cols / kQK_K;
      for (int64_t r = 0; r < rows; ++r) {
        ReadRow(l, packed.data(), cols, r, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), orig.data() + r * row_bytes, row_bytes)) << "row " << r;
        const int k = static_cast<int>(r % 8);
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* g = packed.data() + (r / 8) * 8 * row_bytes + b * 8 * block;
          const uint8_t* src = orig.data() + r * row_bytes + b * block;
          for (size_t o = 0; o < block; ++o) ASSERT_EQ(g[Placement(l, o, k)], src[o]) << LayoutName(l) << " byte " << o;
        }
      }
      // Spot checks of the layout comments in repack.h.
      if (l == Layout::kQ4_Kx8) {
        EXPECT_EQ(Placement(l, 2, 3), 16u + 2 * 3);              // dmin of row 3
        EXPECT_EQ(Placement(l, 16 + 5, 2), 32u + 32 * 4 + 4 * 2 + 1);  // qs[5] of row 2: vector 3 + 1
      } else {
        EXPECT_EQ(Placement(l, 208, 5), 1664u + 2 * 5);          // d of row 5
        EXPECT_EQ(Placement(l, 128 + 6, 1), 1024u + 32 * 1 + 4 * 1 + 2);  // qh[6] of row 1
      }
      auto back = packed;
      Unpack(l, back.data(), rows, cols);
      EXPECT_EQ(back, orig) << cols;
    }
  }
}

TEST(RepackKQuant, RejectsShapesItCannotHold) {
  std::vector<uint8_t> w(RowBytes(DType::kQ6_K, 512) * 12);
  for (Layout l : kLayouts) {
    EXPECT_THROW(Repack(l, w.data(), w.data(), 12, 256), Error);  // rows not a multiple of 8
    EXPECT_THROW(Repack(l, w.data(), w.data(), 8, 384), Error);   // cols not whole super-blocks
    EXPECT_THROW(Unpack(l, w.data(), 12, 256), Error);
  }
}

void TwinTile(Layout l, int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
              const void* a, size_t a_stride, int64_t n_tok) {
  if (l == Layout::kQ4_Kx8)
    ref::VecDotTileQ4_Kx8(n, out, out_stride, w, w_stride, rows, a, a_stride, n_tok);
  else
    ref::VecDotTileQ6_Kx8(n, out, out_stride, w, w_stride, rows, a, a_stride, n_tok);
}

TEST(RepackKQuant, ScalarTwinsEqualTheScalarKernelRowByRow) {
  std::mt19937 rng(12);
  const KernelTable& s = *KernelsFor(Isa::kScalar);
  for (Layout l : kLayouts) {
    const DType t = LayoutType(l);
    for (bool adversarial : {false, true}) {
      const int64_t rows = 16, cols = 768, n_tok = 3;
      const auto orig = adversarial ? AdversarialMatrix(t, rows, cols, rng) : RandomMatrix(t, rows, cols, rng);
      auto packed = orig;
      Repack(l, packed.data(), packed.data(), rows, cols);
      const size_t a_stride = RowBytes(DType::kQ8_K, cols);
      std::vector<uint8_t> act(a_stride * n_tok);
      const auto x = adversarial ? AdversarialFloats(n_tok * cols, rng) : RandomFloats(n_tok * cols, rng);
      for (int tok = 0; tok < n_tok; ++tok)
        s.quantize[static_cast<uint32_t>(DType::kQ8_K)](x.data() + tok * cols, act.data() + tok * a_stride, cols);
      std::vector<float> want(n_tok * rows), got(n_tok * rows);
      const size_t stride = RowBytes(t, cols);
      for (int tok = 0; tok < n_tok; ++tok)
        for (int64_t r = 0; r < rows; ++r)
          s.For(t).vec_dot(cols, &want[tok * rows + r], orig.data() + r * stride, act.data() + tok * a_stride);
      TwinTile(l, cols, got.data(), rows, packed.data(), stride, rows, act.data(), a_stride, n_tok);
      EXPECT_EQ(got, want) << LayoutName(l) << " adversarial " << adversarial;
    }
  }
}

class RepackedKQuantMatMul : public ::testing::TestWithParam<Isa> {};

// Tolerance: the twin and the repacked kernel add the same exact integer sums times the same
// scales; only the float32 order differs (per-block d and dmin terms in two lane accumulators with
// FMAs, against one running sum per row), so |difference| <= (nb + 4) * 2^-23 * TermMagnitude. The
// unrepacked AVX2 kernels sum float partials of each block (8 lanes, then a horizontal sum), so
// against them the bound adds (nb + 8) * 2^-23 times the elementwise magnitude.
TEST_P(RepackedKQuantMatMul, MatchesTheScalarTwinAndTheUnrepackedMatMul) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  const KernelTable& s = *KernelsFor(Isa::kScalar);
  std::mt19937 rng(13);
  ThreadPool pools[] = {ThreadPool(1), ThreadPool(2)};
  Workspace ws;
  int tested = 0;
  for (Layout l : kLayouts) {
  if (!LayoutKernels(*k, l)) continue;
  const DType wt = LayoutType(l);
  for (bool adversarial : {false, true}) {
    for (int64_t cols : {256, 768, 2816}) {
      for (int64_t rows : {8, 40, 256}) {
        const auto orig = adversarial ? AdversarialMatrix(wt, rows, cols, rng) : RandomMatrix(wt, rows, cols, rng);
        auto packed = orig;
        Repack(l, packed.data(), packed.data(), rows, cols);
        const MatrixView a{wt, rows, cols, orig.data()};
        const MatrixView b{wt, rows, cols, packed.data(), l};
        const size_t stride = RowBytes(wt, cols), a_stride = RowBytes(DType::kQ8_K, cols);
        const double eps = static_cast<double>(cols / kQK_K + 4) * std::ldexp(1.0, -23);
        for (int64_t n_tok : {1, 3, 4, 9}) {
          const auto x = adversarial ? AdversarialFloats(n_tok * cols, rng) : RandomFloats(n_tok * cols, rng);
          std::vector<uint8_t> act(a_stride * n_tok);
          for (int64_t t = 0; t < n_tok; ++t)
            s.quantize[static_cast<uint32_t>(DType::kQ8_K)](x.data() + t * cols, act.data() + t * a_stride, cols);
          std::vector<float> twin(n_tok * rows);
          TwinTile(l, cols, twin.data(), rows, packed.data(), stride, rows, act.data(), a_stride, n_tok);
          for (ThreadPool& pool : pools) {
            std::vector<float> ya(n_tok * rows), yb(n_tok * rows);
            MatMul(*k, a, x.data(), n_tok, ya.data(), pool, ws);
            MatMul(*k, b, x.data(), n_tok, yb.data(), pool, ws);
            ++tested;
            for (int64_t t = 0; t < n_tok; ++t)
              for (int64_t r = 0; r < rows; ++r) {
                const double tol = eps * TermMagnitude(wt, orig.data() + r * stride, act.data() + t * a_stride, cols) + 1e-30;
                const size_t i = t * rows + r;
                ASSERT_NEAR(yb[i], twin[i], tol) << LayoutName(l) << " vs twin: adversarial " << adversarial << " rows " << rows
                                                 << " cols " << cols << " tokens " << n_tok << " token " << t << " row "
                                                 << r << " threads " << pool.size();
                const double tol_rows =
                    tol + (eps + 4 * std::ldexp(1.0, -23)) *
                              TermMagnitude(wt, orig.data() + r * stride, act.data() + t * a_stride, cols, true);
                ASSERT_NEAR(yb[i], ya[i], tol_rows) << LayoutName(l) << " vs unrepacked: adversarial " << adversarial << " rows " << rows
                                                   << " cols " << cols << " token " << t << " row " << r;
              }
          }
        }
        // The row reader used for embeddings sees the original rows.
        std::vector<float> ra(cols), rb(cols);
        DequantizeRow(a, rows - 1, ra.data());
        DequantizeRow(b, rows - 1, rb.data());
        EXPECT_EQ(ra, rb);
      }
    }
  }
  }
  if (tested == 0) GTEST_SKIP() << IsaName(GetParam()) << " keeps every K-quant matrix unrepacked";
}

TEST_P(RepackedKQuantMatMul, RepackTargetOffersTheLayoutOnlyWithItsKernels) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  std::vector<uint8_t> w(RowBytes(DType::kQ6_K, 512) * 16);
  std::vector<float> x(512), y(16);
  ThreadPool pool(1);
  Workspace ws;
  for (Layout l : kLayouts) {
    const DType t = LayoutType(l);
    const bool has = LayoutKernels(*k, l) != nullptr;
    EXPECT_EQ(RepackTarget(*k, MatrixView{t, 16, 512, w.data()}), has ? l : Layout::kRows);
    EXPECT_EQ(RepackTarget(*k, MatrixView{t, 12, 512, w.data()}), Layout::kRows);
    EXPECT_THROW(MatMul(*k, MatrixView{t, 12, 512, w.data(), l}, x.data(), 1, y.data(), pool, ws), Error);
    EXPECT_THROW(MatMul(*k, MatrixView{DType::kQ5_K, 16, 512, w.data(), l}, x.data(), 1, y.data(), pool, ws), Error);
    if (!has) {
      EXPECT_THROW(MatMul(*k, MatrixView{t, 16, 512, w.data(), l}, x.data(), 1, y.data(), pool, ws), Error);
    }
  }
  EXPECT_EQ(RepackTarget(*k, MatrixView{DType::kQ5_K, 16, 512, w.data()}), Layout::kRows);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, RepackedKQuantMatMul,
                         ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon),
                         [](const auto& info) { return std::string(IsaName(info.param)); });

}  // namespace
}  // namespace origami::cpu
