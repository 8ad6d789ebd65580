// MatMul against a plain double-precision dot of dequantized weights and the float activations,
// for every ISA, weight type, token count (decode and prefill) and thread count.
//
// Bound: the activations are converted to the act type, which moves each element by at most half a
// quantization step (amax of its block / 254 for Q8_0/Q8_1/Q8_K) plus the fp16 rounding of the
// block scale (relative 2^-11, so 2^-10 |a| covers both factors); the weights enter exactly. So
//   |y - y_exact| <= sum_i |w_i| (amax(block of i) / 254 + 2^-10 |a_i|) + 1e-5 sum_i |w_i a_i|,
// where the last term covers float summation (see vec_dot_test.cpp) for rows of <= 512 elements.
// For F32 activations only the last term applies.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/cpu/kernels.h"
#include "kernels/kernel_test_util.h"
#include "util/error.h"

namespace origami::cpu {
namespace {

using testing::RandomFloats;
using testing::RandomRow;
using testing::WeightTypes;

class MatMulTest : public ::testing::TestWithParam<Isa> {};

TEST_P(MatMulTest, MatchesDequantizedDoubleDot) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  std::mt19937 rng(42);
  const int64_t rows = 37, cols = 512;  // rows: groups of 4 plus a tail; cols: 2 K-quant blocks
  ThreadPool pools[] = {ThreadPool(1), ThreadPool(2), ThreadPool(3)};
  Workspace ws;
  for (DType t : WeightTypes()) {
    std::vector<uint8_t> w;
    for (int64_t r = 0; r < rows; ++r) {
      auto row = RandomRow(t, cols, rng);
      w.insert(w.end(), row.begin(), row.end());
    }
    const MatrixView view{t, rows, cols, w.data()};
    std::vector<float> wf(rows * cols);
    try {
      for (int64_t r = 0; r < rows; ++r) DequantizeRow(view, r, wf.data() + r * cols);
    } catch (const Error& e) {
      ADD_FAILURE() << TypeName(t) << ": no reference dequantization: " << e.what();
      continue;
    }
    const DType at = k->For(t).act_type;
    const int64_t ablock = Traits(at).block_size;
    for (int64_t n_tokens : {1, 2, 7, 64}) {
      const auto x = RandomFloats(n_tokens * cols, rng);
      for (auto& pool : pools) {
        std::vector<float> y(n_tokens * rows, std::nanf(""));
        MatMul(*k, view, x.data(), n_tokens, y.data(), pool, ws);
        for (int64_t tok = 0; tok < n_tokens; ++tok) {
          const float* xt = x.data() + tok * cols;
          std::vector<double> step(cols, 0.0);  // half a quantization step of each element's block
          if (at != DType::kF32) {
            for (int64_t b0 = 0; b0 < cols; b0 += ablock) {
              double amax = 0;
              for (int64_t j = b0; j < b0 + ablock; ++j) amax = std::max(amax, std::fabs(static_cast<double>(xt[j])));
              for (int64_t j = b0; j < b0 + ablock; ++j) step[j] = amax / 254 + std::ldexp(std::fabs(xt[j]), -10);
            }
          }
          for (int64_t r = 0; r < rows; ++r) {
            const float* wr = wf.data() + r * cols;
            double exact = 0, bound = 0, mag = 0;
            for (int64_t i = 0; i < cols; ++i) {
              exact += static_cast<double>(wr[i]) * xt[i];
              mag += std::fabs(static_cast<double>(wr[i]) * xt[i]);
              bound += std::fabs(wr[i]) * step[i];
            }
            bound += 1e-5 * mag;
            const float got = y[tok * rows + r];
            ASSERT_LE(std::fabs(got - exact), bound)
                << IsaName(k->isa) << " " << TypeName(t) << " tokens " << n_tokens << " threads " << pool.size()
                << " token " << tok << " row " << r << ": got " << got << ", exact " << exact;
          }
        }
      }
    }
  }
}

TEST_P(MatMulTest, RejectsPartialBlocks) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  ThreadPool pool(1);
  Workspace ws;
  std::vector<uint8_t> w(4096);
  std::vector<float> x(100), y(4);
  EXPECT_THROW(MatMul(*k, MatrixView{DType::kQ4_0, 2, 48, w.data()}, x.data(), 1, y.data(), pool, ws), Error);
  EXPECT_THROW(MatMul(*k, MatrixView{DType::kI32, 2, 16, w.data()}, x.data(), 1, y.data(), pool, ws), Error);
}

// A group runs each product exactly as MatMul alone does: same kernels, same grain, and a shared
// activation conversion that is the conversion each would have made. Products of different types,
// shared and distinct inputs, decode and prefill token counts, and an empty product, in one group.
TEST_P(MatMulTest, GroupEqualsSeparateProductsBitForBit) {
  const KernelTable* k = KernelsFor(GetParam());
  if (!k) GTEST_SKIP() << IsaName(GetParam()) << " not available on this CPU/build";
  std::mt19937 rng(7);
  const int64_t cols = 256;
  const std::vector<DType> types = WeightTypes();
  std::vector<std::vector<uint8_t>> store;
  std::vector<MatrixView> views;
  for (size_t i = 0; i < types.size(); ++i) {
    const int64_t rows = 24 + 8 * static_cast<int64_t>(i % 5);
    std::vector<uint8_t> w;
    for (int64_t r = 0; r < rows; ++r) {
      auto row = RandomRow(types[i], cols, rng);
      w.insert(w.end(), row.begin(), row.end());
    }
    store.push_back(std::move(w));
    views.push_back({types[i], rows, cols, store.back().data()});
  }
  const auto xa = RandomFloats(9 * cols, rng), xb = RandomFloats(9 * cols, rng);
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    Workspace ws;
    for (int64_t n_tok : {1, 3, 9}) {
      std::vector<MatMulJob> jobs;
      std::vector<std::vector<float>> got(views.size()), want(views.size());
      for (size_t i = 0; i < views.size(); ++i) {
        // Every other product reads xa (shared conversions); the rest read xb; one product of
        // each group has a different token count, one has none.
        const float* x = i % 2 ? xb.data() : xa.data();
        const int64_t n = i == 3 ? 1 : i == 4 ? 0 : n_tok;
        got[i].assign(static_cast<size_t>(std::max<int64_t>(n, 1) * views[i].rows), -1.0f);
        want[i] = got[i];
        MatMul(*k, views[i], x, n, want[i].data(), pool, ws);
        jobs.push_back({&views[i], x, n, got[i].data()});
      }
      MatMulGroup(*k, jobs, pool, ws);
      for (size_t i = 0; i < views.size(); ++i)
        for (size_t j = 0; j < got[i].size(); ++j)
          ASSERT_EQ(std::memcmp(&got[i][j], &want[i][j], 4), 0)
              << IsaName(k->isa) << " " << TypeName(views[i].type) << " threads " << threads << " tokens "
              << n_tok << " element " << j << ": " << got[i][j] << " vs " << want[i][j];
    }
  }
  std::vector<MatMulJob> too_many(65, MatMulJob{&views[0], xa.data(), 1, nullptr});
  ThreadPool pool(1);
  Workspace ws;
  EXPECT_THROW(MatMulGroup(*k, too_many, pool, ws), Error);
}

std::string IsaParamName(const ::testing::TestParamInfo<Isa>& info) { return IsaName(info.param); }
INSTANTIATE_TEST_SUITE_P(AllIsas, MatMulTest, ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon),
                         IsaParamName);

TEST(DequantizeRow, ReadsTheRequestedRow) {
  std::mt19937 rng(3);
  const auto x = RandomFloats(2 * 64, rng);
  std::vector<uint8_t> w(RowBytes(DType::kQ8_0, 128));
  Traits(DType::kQ8_0).from_float(x.data(), w.data(), 128);
  std::vector<float> got(64), want(128);
  Traits(DType::kQ8_0).to_float(w.data(), want.data(), 128);
  DequantizeRow(MatrixView{DType::kQ8_0, 2, 64, w.data()}, 1, got.data());
  for (int i = 0; i < 64; ++i) EXPECT_EQ(got[i], want[64 + i]);
  EXPECT_THROW(DequantizeRow(MatrixView{DType::kQ8_0, 2, 64, w.data()}, 2, got.data()), Error);
}

}  // namespace
}  // namespace origami::cpu
