// MatMul per weight type: decode (one token) at 2048x2048 and 8192x2048, 1 and 2 threads,
// reported as GB/s of weight bytes; plus prefill (64 tokens) as GFLOP/s. "cold" runs cycle several
// copies of each matrix so the working set exceeds the last-level cache and decode numbers are
// memory bandwidth; "hot" runs (cold:0) keep one 256-row matrix in L2, which measures the kernel's
// own cost per weight byte. ORIGAMI_ISA picks the kernel table as in the engine.
//
// One-thread runs report rates from the thread's CPU time, not wall time, so a loaded machine (a
// descheduled benchmark) does not distort them; two-thread runs use wall time.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/repack.h"
#include "tensor/blocks.h"
#include "util/fp16.h"

namespace origami::cpu {
namespace {

constexpr size_t kWorkingSet = size_t{256} << 20;  // bytes of weights cycled through

struct Weights {
  std::vector<std::vector<uint8_t>> copies;
};

// Random quants with small positive fp16 scales (the values do not change the speed, but NaN/Inf
// scales would make the float units take slow paths).
std::vector<uint8_t> MakeMatrix(DType t, int64_t rows, int64_t cols, uint64_t seed) {
  std::vector<uint8_t> m(RowBytes(t, cols) * rows);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= m.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(&m[i], &v, 8);
  }
  const TypeTraits& tr = Traits(t);
  if (!tr.is_quantized) {  // finite float values
    std::vector<float> f(cols);
    for (int64_t r = 0; r < rows; ++r) {
      for (auto& v : f) v = static_cast<float>(rng() % 2000) * 1e-3f - 1.0f;
      tr.from_float(f.data(), m.data() + r * RowBytes(t, cols), cols);
    }
    return m;
  }
  // Every fp16 in the block headers set to 0.01: scale fields sit at these offsets.
  size_t offs[2] = {0, 0};
  int n_offs = 1;
  switch (t) {
    case DType::kQ4_K: n_offs = 2; offs[1] = 2; break;
    case DType::kQ6_K: offs[0] = offsetof(BlockQ6_K, d); break;
    default: break;
  }
  const uint16_t h = Fp32ToFp16(0.01f);
  for (size_t b = 0; b < m.size(); b += tr.type_size)
    for (int k = 0; k < n_offs; ++k) std::memcpy(&m[b + offs[k]], &h, 2);
  return m;
}

void BM_MatMul(benchmark::State& state, DType t, Layout layout = Layout::kRows) {
  const int64_t rows = state.range(0), cols = state.range(1), threads = state.range(2), tokens = state.range(3);
  const bool cold = state.range(4) != 0;
  const KernelTable& k = Kernels();
  if (!k.For(t).vec_dot) {
    state.SkipWithError("no kernel");
    return;
  }
  if (layout != Layout::kRows && !LayoutKernels(k, layout)) {
    state.SkipWithError("no kernels for this layout on this ISA");
    return;
  }
  const size_t bytes = RowBytes(t, cols) * rows;
  const size_t n_copies = cold && tokens == 1 ? std::max<size_t>(1, kWorkingSet / bytes) : 1;
  std::vector<std::vector<uint8_t>> copies;
  for (size_t c = 0; c < n_copies; ++c) {
    copies.push_back(MakeMatrix(t, rows, cols, c + 1));
    if (layout != Layout::kRows) Repack(layout, copies.back().data(), copies.back().data(), rows, cols);
  }
  std::vector<float> x(tokens * cols), y(tokens * rows);
  std::mt19937 rng(5);
  for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
  ThreadPool pool(static_cast<int>(threads));
  Workspace ws;
  size_t c = 0;
  for (auto _ : state) {
    MatMul(k, MatrixView{t, rows, cols, copies[c].data(), layout}, x.data(), tokens, y.data(), pool, ws);
    benchmark::DoNotOptimize(y.data());
    c = c + 1 == n_copies ? 0 : c + 1;
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
  if (tokens > 1)
    state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * static_cast<double>(rows * cols * tokens),
                                                   benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(IsaName(k.isa)) + " " + TypeName(t) + (layout == Layout::kRows ? "" : "x8"));
}

void Shapes(benchmark::internal::Benchmark* b, int64_t threads) {
  b->ArgNames({"rows", "cols", "threads", "tokens", "cold"});
  if (threads == 1) b->Args({256, 2048, 1, 1, 0});
  for (int64_t rows : {2048, 8192}) b->Args({rows, 2048, threads, 1, 1});
  b->Args({2048, 2048, threads, 64, 0});
  if (threads > 1) b->UseRealTime();
}
void Shapes1(benchmark::internal::Benchmark* b) { Shapes(b, 1); }
void Shapes2(benchmark::internal::Benchmark* b) { Shapes(b, 2); }

#define ORIGAMI_BENCH_TYPE(T)                                          \
  BENCHMARK_CAPTURE(BM_MatMul, T, DType::k##T)->Apply(Shapes1);        \
  BENCHMARK_CAPTURE(BM_MatMul, T, DType::k##T)->Apply(Shapes2)
ORIGAMI_BENCH_TYPE(F32);
ORIGAMI_BENCH_TYPE(F16);
ORIGAMI_BENCH_TYPE(BF16);
ORIGAMI_BENCH_TYPE(Q8_0);
ORIGAMI_BENCH_TYPE(Q4_0);
// Q4_0, Q8_0, Q4_K and Q6_K as the engine runs them after Model::PrepareWeights (repacked, kernels/cpu/repack.h).
BENCHMARK_CAPTURE(BM_MatMul, Q4_0x8, DType::kQ4_0, Layout::kQ4_0x8)->Apply(Shapes1);
BENCHMARK_CAPTURE(BM_MatMul, Q4_0x8, DType::kQ4_0, Layout::kQ4_0x8)->Apply(Shapes2);
BENCHMARK_CAPTURE(BM_MatMul, Q8_0x8, DType::kQ8_0, Layout::kQ8_0x8)->Apply(Shapes1);
BENCHMARK_CAPTURE(BM_MatMul, Q8_0x8, DType::kQ8_0, Layout::kQ8_0x8)->Apply(Shapes2);
ORIGAMI_BENCH_TYPE(Q4_K);
ORIGAMI_BENCH_TYPE(Q6_K);
BENCHMARK_CAPTURE(BM_MatMul, Q4_Kx8, DType::kQ4_K, Layout::kQ4_Kx8)->Apply(Shapes1);
BENCHMARK_CAPTURE(BM_MatMul, Q4_Kx8, DType::kQ4_K, Layout::kQ4_Kx8)->Apply(Shapes2);
BENCHMARK_CAPTURE(BM_MatMul, Q6_Kx8, DType::kQ6_K, Layout::kQ6_Kx8)->Apply(Shapes1);
BENCHMARK_CAPTURE(BM_MatMul, Q6_Kx8, DType::kQ6_K, Layout::kQ6_Kx8)->Apply(Shapes2);

}  // namespace
}  // namespace origami::cpu

BENCHMARK_MAIN();
