// deepseek2: DeepSeek-V3 routing (sigmoid scores, selection-only bias, grouped top-k, scale), the
// latent KV cache against the expanded one, and the paged KV cache with prefix reuse on a tiny MLA
// model (same logits bit for bit, same ids through the engine).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <span>
#include <vector>

#include "backend/ops.h"
#include "convert/synth.h"
#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "util/thread_pool.h"

namespace origami {
namespace {

std::string TinyDeepseek2(const std::string& preset) {
  const auto path = std::filesystem::temp_directory_path() / ("origami-deepseek2-test-" + preset + ".gguf");
  SynthOptions o;
  o.arch = "deepseek2";
  o.preset = preset;
  o.type = "F32";
  o.seed = 5;
  o.output = path.string();
  WriteSynthModel(o);
  return o.output;
}

TEST(Route, SigmoidBiasSelectsButDoesNotWeight) {
  MoeOp op;
  op.n_expert = 4, op.n_expert_used = 2;
  op.router_kind = RouterKind::kSigmoid;
  op.norm_topk = false;
  const float logits[4] = {2.0f, 1.0f, 0.0f, -1.0f};
  const float bias[4] = {0.0f, 0.0f, 0.0f, 2.0f};  // lifts expert 3 into the top 2
  op.select_bias = bias;
  op.weights_scale = 2.0f;
  int ids[2];
  float w[2];
  Route(op, logits, ids, w);
  EXPECT_EQ(ids[0], 3);
  EXPECT_EQ(ids[1], 0);
  auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  EXPECT_NEAR(w[0], 2.0 * sigmoid(-1.0), 1e-6);  // the unbiased score, scaled
  EXPECT_NEAR(w[1], 2.0 * sigmoid(2.0), 1e-6);
  op.norm_topk = true;
  Route(op, logits, ids, w);
  EXPECT_NEAR(w[0] + w[1], 2.0, 1e-6);
}

TEST(Route, GroupedTopKKeepsTheBestGroups) {
  MoeOp op;
  op.n_expert = 8, op.n_expert_used = 2;
  op.router_kind = RouterKind::kSigmoid;
  op.n_group = 4, op.n_group_used = 1;
  // Group scores (sum of the two best): g0 = s(3) + s(-3) ~ 1.0, g1 = s(2) + s(2) ~ 1.76: group 1
  // wins although expert 0 has the best single score.
  const float logits[8] = {3.0f, -3.0f, 2.0f, 2.0f, -4.0f, -4.0f, -5.0f, -5.0f};
  int ids[2];
  float w[2];
  Route(op, logits, ids, w);
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 3);
}

class Deepseek2Cache : public ::testing::TestWithParam<const char*> {};

TEST_P(Deepseek2Cache, PrefixReuseGivesIdenticalLogitsAndTokens) {
  auto model = Model::Open(TinyDeepseek2(GetParam()));
  const DecoderSpec& spec = model->spec();
  ASSERT_TRUE(spec.layers.back().mla());
  ThreadPool pool(1);
  Decoder dec(spec, pool);
  KvPool kv(spec, 64, 16, -1, KvTypes{DType::kF32, DType::kF32});
  std::vector<int32_t> p = {1};
  for (int i = 1; i < 50; ++i) p.push_back(3 + (i * 37) % 250);
  std::vector<float> ref(spec.n_vocab), got(spec.n_vocab);
  {
    KvCache a(kv, 512);
    ASSERT_TRUE(a.Grow(50));
    std::vector<BatchToken> b;
    for (int i = 0; i < 50; ++i) b.push_back({p[i], i, &a, i == 49});
    dec.ForwardBatch(b.data(), 50, ref.data());
    int parent = -1;
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(kv.Register(a.blocks()[i], parent, std::span<const int32_t>(p.data() + 16 * i, 16)));
      parent = a.blocks()[i];
    }
  }
  KvCache c(kv, 512);
  int parent = -1;
  for (int i = 0; i < 3; ++i) {
    const int blk = kv.Lookup(parent, std::span<const int32_t>(p.data() + 16 * i, 16));
    ASSERT_GE(blk, 0) << "block " << i << " not found";
    c.AppendShared(blk);
    parent = blk;
  }
  ASSERT_TRUE(c.Grow(50));
  std::vector<BatchToken> b;
  for (int i = 48; i < 50; ++i) b.push_back({p[i], i, &c, i == 49});
  dec.ForwardBatch(b.data(), 2, got.data());
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(ref[i], got[i]) << "logit " << i;

  // Through the engine (the path `run` and `serve` take): the second request reuses 48 cached
  // positions and produces the same greedy ids.
  EngineOptions opt;
  opt.kv_tokens = 1024;
  Engine engine(*model, pool, opt);
  auto drain = [](RequestStream& s, int& n_cached) {
    std::vector<int32_t> ids;
    for (;;) {
      StreamEvent ev;
      if (!s.Next(ev, std::chrono::milliseconds(60000))) {
        ADD_FAILURE() << "stream timed out";
        return ids;
      }
      for (auto& t : ev.tokens) ids.push_back(t.token);
      if (ev.finish != FinishReason::kNone) {
        n_cached = ev.n_cached;
        return ids;
      }
    }
  };
  auto greedy = [&p] {
    GenerationRequest r;
    r.prompt = p;
    r.sampling.temperature = 0;
    r.max_tokens = 16;
    r.ignore_eos = true;
    return r;
  };
  int cached1 = -1, cached2 = -1;
  const std::vector<int32_t> ids1 = drain(*engine.Submit(greedy()), cached1);
  const std::vector<int32_t> ids2 = drain(*engine.Submit(greedy()), cached2);
  EXPECT_EQ(cached1, 0);
  EXPECT_EQ(cached2, 48);
  EXPECT_EQ(ids1.size(), 16u);
  EXPECT_EQ(ids1, ids2);
}

// The latent cache (what MLA caches, the key expansion absorbed into the queries) against the
// expanded per-head keys and values: the same products in another order, so float32 rounding only
// (2e-5 of the logit scale, as the family references allow), and the same greedy ids.
TEST_P(Deepseek2Cache, LatentCacheMatchesExpandedCache) {
  auto model = Model::Open(TinyDeepseek2(GetParam()));
  const DecoderSpec& latent = model->spec();
  ASSERT_TRUE(latent.layers.back().mla_latent_cache);
  DecoderSpec expanded = latent;
  SetMlaCache(expanded, /*latent=*/false);
  EXPECT_LT(KvBytesPerToken(latent, {DType::kF32, DType::kF32}), KvBytesPerToken(expanded, {DType::kF32, DType::kF32}));
  ThreadPool pool(1);
  Decoder a(latent, pool), b(expanded, pool);
  const KvTypes f32{DType::kF32, DType::kF32};
  KvCache ca(latent, 256, f32), cb(expanded, 256, f32);
  std::vector<int32_t> p = {1};
  for (int i = 1; i < 20; ++i) p.push_back(3 + (i * 53) % 250);
  const int v = latent.n_vocab;
  std::vector<float> la(20 * v), lb(20 * v);
  a.Forward(p.data(), 20, 0, ca, la.data(), /*all_logits=*/true);
  b.Forward(p.data(), 20, 0, cb, lb.data(), /*all_logits=*/true);
  float scale = 0, err = 0;
  for (size_t i = 0; i < la.size(); ++i) scale = std::max(scale, std::abs(lb[i])), err = std::max(err, std::abs(la[i] - lb[i]));
  EXPECT_LE(err, 2e-5f * scale) << "prefill";
  std::vector<float> ra(la.end() - v, la.end()), rb(lb.end() - v, lb.end());
  for (int step = 0; step < 32; ++step) {
    const int32_t ia = static_cast<int32_t>(std::max_element(ra.begin(), ra.end()) - ra.begin());
    const int32_t ib = static_cast<int32_t>(std::max_element(rb.begin(), rb.end()) - rb.begin());
    ASSERT_EQ(ia, ib) << "step " << step;
    a.Forward(&ia, 1, 20 + step, ca, ra.data());
    b.Forward(&ib, 1, 20 + step, cb, rb.data());
    for (int i = 0; i < v; ++i) ASSERT_NEAR(ra[i], rb[i], 2e-5f * scale) << "step " << step << " logit " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, Deepseek2Cache, ::testing::Values("tiny", "tiny-v2", "tiny-yarn"),
                         [](const auto& info) {
                           const std::string p = info.param;
                           return p == "tiny" ? std::string("V3") : p == "tiny-v2" ? std::string("V2Lite") : std::string("V3Yarn");
                         });

}  // namespace
}  // namespace origami
