// KV cache storage types (-ctk/-ctv) end to end on the family test models: F16 and BF16 keep the
// 32 greedy ids of an F32 cache and move the logits within a stated bound; Q8_0 and Q4_0 are held
// to a mean KL divergence of the next-token distribution against the F32 cache over 512 positions,
// and to top-1 agreement. Models are `origami synth` tiny presets (random weights, so the
// distributions are flatter than a trained model's on real text; llama.cpp reports KLD 0.0016 for
// Q8_0 KV on real text with a real model).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "convert/synth.h"
#include "sampling/sampler.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace origami {
namespace {

constexpr int kPositions = 512;

std::string FamilyModel(const std::string& arch) {
  const auto path =
      std::filesystem::temp_directory_path() / ("origami-kvtypes-test-" + arch + ".gguf");
  SynthOptions o;
  o.arch = arch;
  o.seed = 7;
  o.output = path.string();
  WriteSynthModel(o);
  return o.output;
}

std::vector<int32_t> Tokens(int n_vocab) {
  std::vector<int32_t> t(kPositions);
  uint32_t x = 12345;
  for (auto& id : t) id = static_cast<int32_t>((x = x * 1664525u + 1013904223u) >> 8) % n_vocab;
  return t;
}

// Logits of every position, the prompt fed in chunks of 64 so later chunks read earlier positions
// back from the cache in its stored type.
std::vector<float> AllLogits(const Model& model, ThreadPool& pool, KvTypes kv) {
  const DecoderSpec& s = model.spec();
  Decoder dec(s, pool);
  KvCache cache(s, kPositions, kv);
  const std::vector<int32_t> toks = Tokens(s.n_vocab);
  std::vector<float> out(static_cast<size_t>(kPositions) * s.n_vocab);
  for (int i = 0; i < kPositions; i += 64)
    dec.Forward(&toks[i], 64, i, cache, &out[static_cast<size_t>(i) * s.n_vocab], true);
  return out;
}

// 32 greedy ids after a 13-token prompt, decoded one at a time.
std::vector<int32_t> Greedy(const Model& model, ThreadPool& pool, KvTypes kv) {
  const DecoderSpec& s = model.spec();
  Decoder dec(s, pool);
  KvCache cache(s, 64, kv);
  std::vector<int32_t> toks = Tokens(s.n_vocab);
  toks.resize(13);
  std::vector<float> logits(s.n_vocab);
  dec.Forward(toks.data(), 13, 0, cache, logits.data());
  std::vector<int32_t> ids;
  for (int i = 0; i < 32; ++i) {
    const int32_t id = Sampler::Argmax(logits);
    ids.push_back(id);
    dec.Forward(&id, 1, 13 + i, cache, logits.data());
  }
  return ids;
}

struct Divergence {
  double mean_kld = 0, max_abs = 0, scale = 0;
  double median_abs = 0;  // median over positions of the largest |logit difference|
  int top1 = 0;
};

Divergence Compare(const std::vector<float>& ref, const std::vector<float>& got, int n_vocab) {
  Divergence d;
  std::vector<double> per_pos(kPositions, 0.0);
  for (int p = 0; p < kPositions; ++p) {
    const float* a = &ref[static_cast<size_t>(p) * n_vocab];
    const float* b = &got[static_cast<size_t>(p) * n_vocab];
    double ma = a[0], mb = b[0];
    int ia = 0, ib = 0;
    for (int i = 0; i < n_vocab; ++i) {
      if (a[i] > ma) ma = a[i], ia = i;
      if (b[i] > mb) mb = b[i], ib = i;
      per_pos[p] = std::max(per_pos[p], std::fabs(static_cast<double>(a[i]) - b[i]));
      d.scale = std::max(d.scale, std::fabs(static_cast<double>(a[i])));
    }
    double za = 0, zb = 0;
    for (int i = 0; i < n_vocab; ++i) za += std::exp(a[i] - ma), zb += std::exp(b[i] - mb);
    double kld = 0;  // sum P log(P / Q), in float64
    for (int i = 0; i < n_vocab; ++i) {
      const double lp = a[i] - ma - std::log(za), lq = b[i] - mb - std::log(zb);
      kld += std::exp(lp) * (lp - lq);
    }
    d.mean_kld += kld / kPositions;
    d.top1 += ia == ib;
    d.max_abs = std::max(d.max_abs, per_pos[p]);
  }
  std::nth_element(per_pos.begin(), per_pos.begin() + kPositions / 2, per_pos.end());
  d.median_abs = per_pos[kPositions / 2];
  return d;
}

// The bounds, per type, with what was measured on the four models in brackets (deepseek2, added
// later, caches MLA's latent: F16 4.2e-8, BF16 2.0e-6, Q8_0 3.9e-3, Q4_0 4.1e-2 mean KLD; top-1
// 512, 512, 488, 328. Every head's key and value is made from the one rounded latent, so a rounding
// moves all heads together; its KLD bounds are twice the others'). In the MoE models
// a rounding can flip a near-tied expert choice, which moves a few positions' logits by up to ~1.7
// (the routing is discontinuous), so the logit bound is on the median over positions of the largest
// |logit difference|, relative to the largest |logit| (F16: [1.7e-4, 3.1e-4], BF16: [1.6e-3,
// 2.5e-3]). Mean KLD: F16 [2.8e-8, 2.4e-4], BF16 [2.3e-6, 2.8e-4], Q8_0 [2.5e-5, 1.0e-3], Q4_0
// [4.7e-3, 3.6e-2]. Top-1 of 512: F16 >= 511, BF16 >= 502, Q8_0 >= 484, Q4_0 >= 319 (random
// weights give flat distributions with many near ties; trained models on text agree far more).
struct Bound {
  DType type;
  double rel_median;  // 0: not checked (quantized types)
  double mean_kld;
  int min_top1;  // of 512
};
constexpr Bound kBounds[] = {
    {DType::kF16, 1e-3, 1e-3, 505},
    {DType::kBF16, 8e-3, 1e-3, 495},
    {DType::kQ8_0, 0, 3e-3, 470},
    {DType::kQ4_0, 0, 8e-2, 280},
};

class KvTypes32 : public ::testing::TestWithParam<std::string> {};

TEST_P(KvTypes32, AgainstF32Cache) {
  auto model = Model::Open(FamilyModel(GetParam()));
  ThreadPool pool(2);
  const int n_vocab = model->spec().n_vocab;
  const std::vector<float> ref = AllLogits(*model, pool, {DType::kF32, DType::kF32});
  const std::vector<int32_t> ref_ids = Greedy(*model, pool, {DType::kF32, DType::kF32});
  const double kld_factor = GetParam() == "deepseek2" ? 2.0 : 1.0;  // the latent cache, see above
  for (const Bound& b : kBounds) {
    const KvTypes kv{b.type, b.type};
    const Divergence d = Compare(ref, AllLogits(*model, pool, kv), n_vocab);
    std::printf(
        "%-9s KV %-4s: mean KLD %.3g, top-1 %d/%d, |dlogit| median %.3g max %.3g (scale %.3g)\n",
        GetParam().c_str(), TypeName(b.type), d.mean_kld, d.top1, kPositions, d.median_abs,
        d.max_abs, d.scale);
    EXPECT_LE(d.mean_kld, b.mean_kld * kld_factor) << TypeName(b.type);
    EXPECT_GE(d.top1, b.min_top1) << TypeName(b.type);
    if (b.rel_median > 0) {
      EXPECT_LE(d.median_abs, b.rel_median * d.scale) << TypeName(b.type);
      EXPECT_EQ(Greedy(*model, pool, kv), ref_ids) << TypeName(b.type) << ": greedy ids moved";
    }
  }
  // K and V in different types are independent choices.
  const Divergence mixed =
      Compare(ref, AllLogits(*model, pool, {DType::kQ8_0, DType::kF16}), n_vocab);
  EXPECT_LE(mixed.mean_kld, kBounds[2].mean_kld * kld_factor);
}

INSTANTIATE_TEST_SUITE_P(Families, KvTypes32,
                         ::testing::Values("qwen3", "gemma3", "qwen3moe", "gpt-oss", "deepseek2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

// Quantized rows are read per head in whole blocks of 32: head size 16 is refused with a message
// that names the flag, the layer and the head size; the 16-bit types work.
TEST(KvTypes, QuantizedNeedsHeadsOfWholeBlocks) {
  auto model = Model::Open(FamilyModel("llama"));  // head_dim 16
  ASSERT_EQ(model->spec().layers[0].head_dim, 16);
  for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
    try {
      KvCache c(model->spec(), 64, {t, DType::kF16});
      FAIL() << "accepted " << TypeName(t);
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("-ctk/--cache-type-k " + KvTypeName(t)), std::string::npos) << m;
      EXPECT_NE(m.find("head size of 16"), std::string::npos) << m;
    }
  }
  EXPECT_NO_THROW(KvCache(model->spec(), 64, {DType::kBF16, DType::kF16}));
}

TEST(KvTypes, NamesAndBytes) {
  EXPECT_EQ(ParseKvType("f16", "-ctk"), DType::kF16);
  EXPECT_EQ(ParseKvType("Q8_0", "-ctk"), DType::kQ8_0);
  EXPECT_EQ(ParseKvType("bf16", "-ctv"), DType::kBF16);
  EXPECT_THROW(ParseKvType("q4_k", "-ctk"), Error);
  EXPECT_THROW(ParseKvType("", "-ctk"), Error);
  auto model = Model::Open(FamilyModel("qwen3"));
  const DecoderSpec& s = model->spec();
  uint64_t elems = 0;  // K and V elements per position
  for (const auto& l : s.layers) elems += 2ull * l.n_head_kv * l.head_dim;
  EXPECT_EQ(KvBytesPerToken(s, {DType::kF32, DType::kF32}), elems * 4);
  EXPECT_EQ(KvBytesPerToken(s, {DType::kF16, DType::kF16}), elems * 2);
  EXPECT_EQ(KvBytesPerToken(s, {DType::kQ8_0, DType::kQ8_0}), elems / 32 * 34);
  EXPECT_EQ(KvBytesPerToken(s, {DType::kQ4_0, DType::kF16}), elems / 2 / 32 * 18 + elems / 2 * 2);
  KvPool pool(s, 8, 16, -1, {DType::kQ8_0, DType::kQ8_0});
  EXPECT_EQ(pool.BlockBytes(), KvBytesPerToken(s, {DType::kQ8_0, DType::kQ8_0}) * 16);
}

}  // namespace
}  // namespace origami
