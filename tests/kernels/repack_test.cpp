// The repacked layouts (kernels/cpu/repack.h): the repack is a lossless permutation, the scalar
// twins equal the scalar kernel row by row (same sums in the same order), and MatMul over a
// repacked matrix matches MatMul over the original: bit for bit for Q4_0x8 (its AVX2 kernels do
// the 8-row kernels' arithmetic in the same order), and within float summation error for Q8_0x8
// (8 lanes per row and one FMA per block instead of a per-row dot with a horizontal sum).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/repack.h"
#include "kernels/kernel_test_util.h"
#include "tensor/blocks.h"
#include "util/error.h"

namespace origami::cpu {
namespace {

using testing::RandomFloats;
using testing::RandomMatrix;

const Layout kLayouts[] = {Layout::kQ4_0x8, Layout::kQ8_0x8};

TEST(Repack, IsALosslessPermutationWithTheDocumentedPlacement) {
  std::mt19937 rng(1);
  for (Layout l : kLayouts) {
    const DType t = LayoutType(l);
    const size_t block = Traits(t).type_size, qs = block - 2;
    for (int64_t cols : {32, 96, 4096}) {
      const int64_t rows = 24;
      const auto orig = RandomMatrix(t, rows, cols, rng);
      auto packed = orig;
      Repack(l, packed.data(), packed.data(), rows, cols);
      EXPECT_NE(packed, orig) << LayoutName(l) << " " << cols;  // the layout really changed
      std::vector<uint8_t> copy(orig.size());
      Repack(l, orig.data(), copy.data(), rows, cols);  // out of place: the same bytes
      EXPECT_EQ(copy, packed);
      const size_t row_bytes = RowBytes(t, cols);
      std::vector<uint8_t> row(row_bytes);
      for (int64_t r = 0; r < rows; ++r) {
        ReadRow(l, packed.data(), cols, r, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), orig.data() + r * row_bytes, row_bytes)) << "row " << r;
        // Block 1 of row r: scale at 2k, quant dword j at 16 + 32j + 4k of the group's block 1.
        const uint8_t* g = packed.data() + (r / 8) * 8 * row_bytes + (cols > 32 ? 8 * block : 0);
        const uint8_t* src = orig.data() + r * row_bytes + (cols > 32 ? block : 0);
        const int k = static_cast<int>(r % 8);
        EXPECT_EQ(0, std::memcmp(g + 2 * k, src, 2));
        for (size_t j = 0; j < qs / 4; ++j) EXPECT_EQ(0, std::memcmp(g + 16 + 32 * j + 4 * k, src + 2 + 4 * j, 4));
      }
      auto back = packed;
      Unpack(l, back.data(), rows, cols);
      EXPECT_EQ(back, orig) << LayoutName(l) << " " << cols;
    }
  }
}

TEST(Repack, RejectsShapesItCannotHold) {
  std::vector<uint8_t> w(RowBytes(DType::kQ8_0, 64) * 12);
  for (Layout l : kLayouts) {
    EXPECT_THROW(Repack(l, w.data(), w.data(), 12, 64), Error);  // rows not a multiple of 8
    EXPECT_THROW(Repack(l, w.data(), w.data(), 8, 48), Error);   // cols not whole blocks
  }
}

TEST(Repack, ScalarTwinsEqualTheScalarKernelRowByRow) {
  std::mt19937 rng(2);
  const KernelTable& s = *KernelsFor(Isa::kScalar);
  for (Layout l : kLayouts) {
    const DType t = LayoutType(l);
    const int64_t rows = 16, cols = 256;
    const auto orig = RandomMatrix(t, rows, cols, rng);
    auto packed = orig;
    Repack(l, packed.data(), packed.data(), rows, cols);
    std::vector<uint8_t> act(RowBytes(DType::kQ8_0, cols) * 2);
    const auto x = RandomFloats(2 * cols, rng);
    for (int tok = 0; tok < 2; ++tok)
      s.quantize[static_cast<uint32_t>(DType::kQ8_0)](x.data() + tok * cols, act.data() + tok * act.size() / 2, cols);
    std::vector<float> want(2 * rows), got(2 * rows);
    const size_t stride = RowBytes(t, cols);
    for (int tok = 0; tok < 2; ++tok)
      for (int64_t r = 0; r < rows; ++r)
        s.For(t).vec_dot(cols, &want[tok * rows + r], orig.data() + r * stride, act.data() + tok * act.size() / 2);
    if (l == Layout::kQ4_0x8)
      ref::VecDotTileQ4_0x8(cols, got.data(), rows, packed.data(), stride, rows, act.data(), act.size() / 2, 2);
    else
      ref::VecDotTileQ8_0x8(cols, got.data(), rows, packed.data(), stride, rows, act.data(), act.size() / 2, 2);
    EXPECT_EQ(got, want) << LayoutName(l);
  }
}

class RepackedMatMul : public ::testing::TestWithParam<Isa> {};

TEST_P(RepackedMatMul, MatchesTheUnrepackedMatMul) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  std::mt19937 rng(3);
  ThreadPool pools[] = {ThreadPool(1), ThreadPool(2)};
  Workspace ws;
  int tested = 0;
  for (Layout l : kLayouts) {
    if (!LayoutKernels(*k, l)) continue;
    const DType t = LayoutType(l);
    for (int64_t cols : {32, 96, 2048}) {
      for (int64_t rows : {8, 40, 256}) {
        const auto orig = RandomMatrix(t, rows, cols, rng);
        auto packed = orig;
        Repack(l, packed.data(), packed.data(), rows, cols);
        const MatrixView a{t, rows, cols, orig.data()};
        const MatrixView b{t, rows, cols, packed.data(), l};
        for (int64_t n_tok : {1, 3, 4, 9}) {
          const auto x = RandomFloats(n_tok * cols, rng);
          for (ThreadPool& pool : pools) {
            std::vector<float> ya(n_tok * rows), yb(n_tok * rows);
            MatMul(*k, a, x.data(), n_tok, ya.data(), pool, ws);
            MatMul(*k, b, x.data(), n_tok, yb.data(), pool, ws);
            ++tested;
            // The AVX-512 table's row-major Q4_0 kernel is its own, the repacked one AVX2's: equal
            // up to summation order there, like Q8_0x8 below.
            if (l == Layout::kQ4_0x8 && k->isa != Isa::kAvx512) {
              ASSERT_EQ(ya, yb) << "rows " << rows << " cols " << cols << " tokens " << n_tok;
              continue;
            }
            // Q8_0x8: both sides add the same exact per-block products (int32 sums times the two
            // scales) in different orders; float32 summation of nb terms is off by at most
            // ~nb * 2^-24 * sum|terms|. Bound it by 1e-5 of the sum of |terms| per row
            // (nb <= 64 here), with the terms' magnitude from the dequantized weights.
            for (int64_t tok = 0; tok < n_tok; ++tok)
              for (int64_t r = 0; r < rows; ++r) {
                std::vector<float> wr(cols);
                DequantizeRow(a, r, wr.data());
                double mag = 0;
                for (int64_t c = 0; c < cols; ++c) mag += std::fabs(wr[c] * x[tok * cols + c]);
                ASSERT_NEAR(ya[tok * rows + r], yb[tok * rows + r], 1e-5 * mag + 1e-30)
                    << LayoutName(l) << " rows " << rows << " cols " << cols << " token " << tok << " row " << r;
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
  if (tested == 0) GTEST_SKIP() << IsaName(GetParam()) << " keeps every matrix unrepacked";
}

TEST_P(RepackedMatMul, ARepackedMatrixWithoutKernelsIsAnError) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  std::vector<uint8_t> w(RowBytes(DType::kQ8_0, 64) * 12);
  std::vector<float> x(64), y(12);
  ThreadPool pool(1);
  Workspace ws;
  for (Layout l : kLayouts) {
    const DType t = LayoutType(l);
    // 12 rows cannot be a repacked matrix whatever the ISA; nor can a matrix of another type.
    EXPECT_THROW(MatMul(*k, MatrixView{t, 12, 64, w.data(), l}, x.data(), 1, y.data(), pool, ws), Error);
    EXPECT_THROW(MatMul(*k, MatrixView{DType::kF16, 8, 64, w.data(), l}, x.data(), 1, y.data(), pool, ws), Error);
    if (!LayoutKernels(*k, l)) {
      EXPECT_THROW(MatMul(*k, MatrixView{t, 8, 64, w.data(), l}, x.data(), 1, y.data(), pool, ws), Error);
    }
    // RepackTarget only offers a layout when the table has its kernels.
    EXPECT_EQ(RepackTarget(*k, MatrixView{t, 8, 64, w.data()}), LayoutKernels(*k, l) ? l : Layout::kRows);
    EXPECT_EQ(RepackTarget(*k, MatrixView{t, 12, 64, w.data()}), Layout::kRows);
  }
  EXPECT_EQ(RepackTarget(*k, MatrixView{DType::kF16, 8, 64, w.data()}), Layout::kRows);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, RepackedMatMul, ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon),
                         [](const auto& info) { return std::string(IsaName(info.param)); });

}  // namespace
}  // namespace origami::cpu
