// Model::PrepareWeights: a model whose Q4_0 matrices were repacked for the kernels gives the same
// logits, bit for bit (on AVX-512: up to summation order), as the file's own layout, in decode and in prefill, and the embeddings it
// reads from a repacked (tied) table are the original rows; Q8_0 matrices give the same logits up
// to float summation order, and so do Q4_K_M models (Q4_Kx8 and Q6_Kx8). On a CPU whose kernels
// keep these types as they are, nothing is repacked and the comparisons still hold.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/registry.h"
#include "kernels/cpu/kernels.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/synth.h"
#include "runtime/session.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace origami {
namespace {

// The CPU backend the tests prepare weights for (its layouts; the pool only sizes its work).
const Backend& CpuBackend() {
  static ThreadPool pool(1);
  static const auto backend = MakeCpuBackend(pool);
  return *backend;
}

std::string SynthQ4_0(const std::string& arch, const std::string& vocab = "", const std::string& type = "Q4_0",
                      const std::string& preset = "tiny") {
  const auto path = std::filesystem::temp_directory_path() / ("origami_repack_" + arch + type + preset + ".gguf");
  SynthOptions o;
  o.arch = arch;
  o.vocab = vocab;
  o.preset = preset;
  o.type = type;
  o.seed = 7;
  o.output = path.string();
  WriteSynthModel(o);
  return o.output;
}

// A float32 KV cache: a 16-bit one rounds K and V, which can turn a last-bit difference of the
// matmuls into a whole rounding step.
constexpr KvTypes kF32Kv{DType::kF32, DType::kF32};

std::vector<float> Logits(const Model& m, const std::vector<int32_t>& prompt, int steps) {
  ThreadPool pool(2);
  Session s(m, pool, 64, kF32Kv);
  std::vector<float> all;
  auto l = s.Eval(prompt);  // prefill (several tokens at once)
  all.insert(all.end(), l.begin(), l.end());
  for (int i = 0; i < steps; ++i) {  // decode, one token at a time
    const int32_t next = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
    l = s.Eval(std::vector<int32_t>{next});
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

// Logits of two runs that add the same exact block products in another float order: within 1e-4 of
// the largest logit, with the same greedy choice at every step (see the Q8_0 test below).
void ExpectWithinSummationError(const std::vector<float>& a, const std::vector<float>& b, size_t n_vocab,
                                const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  float amax = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    amax = std::max(amax, std::fabs(a[i]));
    diff = std::max(diff, std::fabs(a[i] - b[i]));
  }
  EXPECT_LE(diff, 1e-4f * amax) << what << ": largest logit " << amax;
  for (size_t row = 0; row < a.size() / n_vocab; ++row)
    EXPECT_EQ(std::max_element(a.begin() + row * n_vocab, a.begin() + (row + 1) * n_vocab) - a.begin(),
              std::max_element(b.begin() + row * n_vocab, b.begin() + (row + 1) * n_vocab) - b.begin())
        << what << " step " << row;
}

// Q4_0x8 kernels are bit-identical to the row-major Q4_0 kernels of the same ISA. The AVX-512 table
// has its own row-major Q4_0 kernel but keeps the AVX2 repacked ones, so there the two agree up to
// float summation order only.
void ExpectQ4_0Logits(const std::vector<float>& a, const std::vector<float>& b, size_t n_vocab,
                      const std::string& what) {
  if (cpu::Kernels().isa == cpu::Isa::kAvx512) {
    ExpectWithinSummationError(a, b, n_vocab, what);
  } else {
    EXPECT_EQ(a, b) << what;
  }
}

TEST(PrepareWeights, RepackedModelGivesIdenticalLogits) {
  for (const std::string arch : {"llama", "qwen3"}) {
    const std::string path = SynthQ4_0(arch);
    auto plain = Model::Open(path);
    auto packed = Model::Open(path);
    const Model::Prepared plan = packed->PlanWeights(CpuBackend());
    const Model::Prepared& p = packed->PrepareWeights(CpuBackend());
    EXPECT_EQ(plan.tensors, p.tensors);  // what `origami info` states is what the load does
    EXPECT_EQ(plan.bytes, p.bytes);
    EXPECT_EQ(plan.layouts, p.layouts);
    if (cpu::Kernels().q4_0x8.vec_dot_rows) {
      EXPECT_GT(p.tensors, 0) << arch;
      EXPECT_EQ(p.CountOf(Layout::kQ4_0x8), p.tensors);
      EXPECT_EQ(packed->spec().layers[0].wq.layout, Layout::kQ4_0x8);
    } else {
      EXPECT_EQ(p.tensors, 0) << arch;
    }
    const std::vector<int32_t> prompt = {1, 70, 101, 108, 108, 111, 32, 119};
    ExpectQ4_0Logits(Logits(*plain, prompt, 6), Logits(*packed, prompt, 6), plain->spec().n_vocab, arch);
    std::filesystem::remove(path);
  }
}

// qwen2 ties its output to the embeddings; with a 128256-token vocabulary (a multiple of 8) the
// shared table is repacked, and every embedding lookup must still read the original row.
TEST(PrepareWeights, TiedOutputAndEmbeddingsShareTheRepackedTable) {
  const std::string vocab = std::string(ORIGAMI_SHARED_DIR) + "/tokenizer/ggml-vocab-llama-bpe.gguf";
  if (!std::filesystem::exists(vocab)) GTEST_SKIP() << "shared data missing: " << vocab;
  const std::string path = SynthQ4_0("qwen2", vocab);
  auto plain = Model::Open(path);
  auto packed = Model::Open(path);
  packed->PrepareWeights(CpuBackend());
  ASSERT_TRUE(packed->spec().tied_output);
  if (cpu::Kernels().q4_0x8.vec_dot_rows) {
    EXPECT_EQ(packed->spec().output.layout, Layout::kQ4_0x8);
    EXPECT_EQ(packed->spec().tok_embd.layout, Layout::kQ4_0x8);
    EXPECT_EQ(packed->spec().tok_embd.data, packed->spec().output.data);
  }
  const std::vector<int32_t> prompt = {9906, 11, 1917, 0, 128000, 128255, 17, 3};
  ExpectQ4_0Logits(Logits(*plain, prompt, 4), Logits(*packed, prompt, 4), plain->spec().n_vocab, "qwen2 tied");
  std::filesystem::remove(path);
}

// Q8_0x8 sums each row in 8 lanes with one FMA per block where the row-major kernel sums per row:
// the same exact block products added in another order. Over a few layers of a tiny model that
// moves logits by float32 rounding only (~1e-7 relative per matmul); 1e-4 of the largest logit
// leaves room for the propagation, and the greedy choices must not change.
TEST(PrepareWeights, RepackedQ8_0ModelMatchesWithinSummationError) {
  const std::string path = SynthQ4_0("llama", "", "Q8_0");
  auto plain = Model::Open(path);
  auto packed = Model::Open(path);
  const Model::Prepared& p = packed->PrepareWeights(CpuBackend());
  if (cpu::Kernels().q8_0x8.vec_dot_rows) {
    EXPECT_EQ(p.CountOf(Layout::kQ8_0x8), p.tensors);
  }
  const std::vector<int32_t> prompt = {1, 70, 101, 108, 108, 111, 32, 119};
  ExpectWithinSummationError(Logits(*plain, prompt, 6), Logits(*packed, prompt, 6), plain->spec().n_vocab, "Q8_0");
  std::filesystem::remove(path);
}

// Q4_Kx8 and Q6_Kx8 in one model, as in the Q4_K_M files most people download: the "small" preset
// (K-quant super-blocks of 256 need n_embd 1024, n_ff 2816; 8 layers) written in F16 and quantized
// to Q4_K_M (Q4_K, with Q6_K for attn_v and some ffn_down; ~30 s, most of it quantizing). The
// kernels add the same exact integer sums per super-block as the row-major ones, in another float
// order. Unlike the tiny Q8_0 model, this one amplifies float32 rounding: every matmul re-quantizes
// its input to Q8_K (round to nearest of x / (max / 127)), so a 1-ulp change that crosses a rounding
// boundary moves that input by a whole step, and 8 layers of width 1024 compound it. Measured on
// this model after the prompt: the existing row-major AVX2 kernels differ from the scalar ones by
// 0.042 with a largest logit of 2.43 (1.7%), the repacked ones from the scalar ones by 0.050 and
// from the row-major AVX2 ones by 0.044. So the bound is 5% of the largest logit.
TEST(PrepareWeights, RepackedQ4_K_MModelMatchesWithinSummationError) {
  const std::string f16 = SynthQ4_0("llama", "", "F16", "small");
  const std::string path = (std::filesystem::temp_directory_path() / "origami_repack_llama_Q4_K_M.gguf").string();
  {
    ThreadPool pool(2);
    QuantizeModel(QuantizeOptions{f16, path, "Q4_K_M"}, pool, [](const TensorReport&) {});
  }
  std::filesystem::remove(f16);
  auto plain = Model::Open(path);
  auto packed = Model::Open(path);
  const Model::Prepared plan = packed->PlanWeights(CpuBackend());
  const Model::Prepared& p = packed->PrepareWeights(CpuBackend());
  EXPECT_EQ(plan.tensors, p.tensors);
  EXPECT_EQ(plan.layouts, p.layouts);
  const int n4 = p.CountOf(Layout::kQ4_Kx8), n6 = p.CountOf(Layout::kQ6_Kx8);
  if (cpu::Kernels().q4_kx8.vec_dot_rows && cpu::Kernels().q6_kx8.vec_dot_rows) {
    EXPECT_EQ(p.tensors, 7 * static_cast<int>(packed->spec().layers.size()));  // the output has 259 rows
    EXPECT_GT(n4, 0);
    EXPECT_GT(n6, 0);
    EXPECT_EQ(n4 + n6, p.tensors);
    EXPECT_EQ(packed->spec().layers[0].wv.layout, Layout::kQ6_Kx8);
    EXPECT_EQ(packed->spec().layers[0].wq.layout, Layout::kQ4_Kx8);
    EXPECT_EQ(p.Summary(), std::to_string(p.tensors) + " matrices repacked: " + std::to_string(n4) + " as Q4_Kx8, " +
                               std::to_string(n6) + " as Q6_Kx8");
  } else if (!cpu::Kernels().q4_kx8.vec_dot_rows && !cpu::Kernels().q6_kx8.vec_dot_rows) {
    EXPECT_EQ(p.tensors, 0);
    EXPECT_EQ(p.Summary(), "weights used as laid out in the file");
  }
  // Both models decode the same tokens (the plain model's greedy choices): this random-weight model
  // has near-ties (the row-major AVX2 kernels' own greedy tokens part from the scalar kernels'
  // at the 4th step), so letting each model follow its own choices would compare different texts.
  const std::vector<int32_t> prompt = {1, 70, 101, 108, 108, 111, 32, 119};
  const auto a = Logits(*plain, prompt, 6);
  const size_t n_vocab = plain->spec().n_vocab;
  std::vector<float> b;
  {
    ThreadPool pool(2);
    Session sb(*packed, pool, 64, kF32Kv);
    auto l = sb.Eval(prompt);
    b.insert(b.end(), l.begin(), l.end());
    for (size_t row = 0; row + 1 < a.size() / n_vocab; ++row) {
      const auto next = static_cast<int32_t>(std::max_element(a.begin() + row * n_vocab, a.begin() + (row + 1) * n_vocab) -
                                             (a.begin() + row * n_vocab));
      l = sb.Eval(std::vector<int32_t>{next});
      b.insert(b.end(), l.begin(), l.end());
    }
  }
  ASSERT_EQ(a.size(), b.size());
  float amax = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    amax = std::max(amax, std::fabs(a[i]));
    diff = std::max(diff, std::fabs(a[i] - b[i]));
  }
  const float tol = 5e-2f * amax;
  EXPECT_LE(diff, tol) << "largest logit " << amax;
  // Greedy choices agree up to ties within the bound: the packed model's choice is, by the plain
  // model's logits, within 2 x tol of the best.
  for (size_t row = 0; row < a.size() / n_vocab; ++row) {
    const float* ra = a.data() + row * n_vocab;
    const float* rb = b.data() + row * n_vocab;
    const size_t choice = std::max_element(rb, rb + n_vocab) - rb;
    EXPECT_GE(ra[choice], *std::max_element(ra, ra + n_vocab) - 2 * tol) << "row " << row;
  }
  std::filesystem::remove(path);
}

TEST(PrepareWeights, SummaryNamesEveryLayout) {
  Model::Prepared p;
  EXPECT_EQ(p.Summary(), "weights used as laid out in the file");
  p.tensors = 3;
  p.Count(Layout::kQ4_Kx8);
  p.Count(Layout::kQ8_0x8);
  p.Count(Layout::kQ4_Kx8);
  EXPECT_EQ(p.CountOf(Layout::kQ4_Kx8), 2);
  EXPECT_EQ(p.Summary(), "3 matrices repacked: 2 as Q4_Kx8, 1 as Q8_0x8");
}

TEST(PrepareWeights, RejectsABadLayerRange) {
  const std::string path = SynthQ4_0("llama");
  auto m = Model::Open(path);
  const int n = static_cast<int>(m->spec().layers.size());
  EXPECT_THROW(m->PrepareWeights(CpuBackend(), 0, n + 1, false), Error);
  EXPECT_THROW(m->PrepareWeights(CpuBackend(), 2, 1, false), Error);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace origami
