// Embeddings through the engine (stories260K): a request of many inputs equals each input alone,
// inputs longer than a batch and inputs mixed with generation give the same vectors, pooling
// picks the rows it says, every KV block comes back, and bad requests are refused.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

#include "model/model.h"
#include "runtime/embedder.h"
#include "runtime/engine.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace origami {
namespace {

const std::string kModel = std::string(ORIGAMI_SHARED_DIR) + "/models/stories260K.gguf";

const Model& Stories() {
  static std::unique_ptr<Model> m = Model::Open(kModel);
  return *m;
}

std::vector<int32_t> Ids(int seed, int n) {
  std::vector<int32_t> v{1};
  for (int i = 1; i < n; ++i) v.push_back(3 + (seed * 131 + i * 17) % 500);
  return v;
}

std::vector<std::vector<float>> Embed(Engine& e, std::vector<std::vector<int32_t>> inputs,
                                      Pooling pooling = Pooling::kMean, bool normalize = true) {
  EmbeddingRequest r;
  r.inputs = std::move(inputs);
  r.pooling = pooling;
  r.normalize = normalize;
  return e.SubmitEmbedding(std::move(r))->Wait();
}

float MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

EngineOptions Options() {
  EngineOptions o;
  o.n_parallel = 4;
  o.kv_tokens = 2048;
  o.max_batch_tokens = 64;  // small batches: a request spans several, long inputs span batches
  o.kv_types = {DType::kF32, DType::kF32};
  return o;
}

TEST(Embeddings, BatchEqualsAloneAcrossBatchBoundaries) {
  ThreadPool pool(1);
  Engine engine(Stories(), pool, Options());
  std::vector<std::vector<int32_t>> inputs;
  for (int i = 0; i < 9; ++i) inputs.push_back(Ids(i, 1 + 23 * i));  // 1 to 185 tokens
  const auto together = Embed(engine, inputs);
  ASSERT_EQ(together.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto alone = Embed(engine, {inputs[i]});
    EXPECT_LE(MaxDiff(together[i], alone[0]), 1e-6f) << "input " << i;
    double ss = 0;
    for (float v : together[i]) ss += double(v) * v;
    EXPECT_NEAR(std::sqrt(ss), 1.0, 1e-5) << "input " << i;
  }
  EXPECT_EQ(engine.Stats().kv_blocks_in_use, 0);
}

TEST(Embeddings, PoolingPicksItsRows) {
  ThreadPool pool(1);
  Engine engine(Stories(), pool, Options());
  const std::vector<int32_t> ids = Ids(3, 150);
  // cls pooling is the first token's row: the embedding of that token alone (causal attention).
  const auto cls = Embed(engine, {ids}, Pooling::kCls);
  const auto first = Embed(engine, {{ids[0]}}, Pooling::kLast);
  EXPECT_LE(MaxDiff(cls[0], first[0]), 1e-6f);
  // last pooling is the last row; the mean of a one-token input is its row.
  const auto last = Embed(engine, {ids}, Pooling::kLast);
  const auto mean1 = Embed(engine, {{ids[0]}}, Pooling::kMean);
  EXPECT_LE(MaxDiff(mean1[0], first[0]), 1e-6f);
  EXPECT_GT(MaxDiff(last[0], cls[0]), 1e-3f);
  // Unnormalised vectors point the same way as the normalised ones.
  const auto raw = Embed(engine, {ids}, Pooling::kMean, false);
  const auto unit = Embed(engine, {ids}, Pooling::kMean);
  double ss = 0, dot = 0;
  for (size_t i = 0; i < raw[0].size(); ++i)
    ss += double(raw[0][i]) * raw[0][i], dot += double(raw[0][i]) * unit[0][i];
  EXPECT_GT(std::abs(std::sqrt(ss) - 1), 1e-3);
  EXPECT_NEAR(dot / std::sqrt(ss), 1.0, 1e-6);
}

TEST(Embeddings, AmongGenerationGivesTheSameVectors) {
  ThreadPool pool(1);
  Engine engine(Stories(), pool, Options());
  std::vector<std::vector<int32_t>> inputs = {Ids(1, 40), Ids(2, 90), Ids(4, 7)};
  const auto quiet = Embed(engine, inputs);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) {
    GenerationRequest g;
    g.prompt = Ids(10 + i, 30);
    g.sampling.temperature = 0;
    g.max_tokens = 64;
    g.ignore_eos = true;
    streams.push_back(engine.Submit(std::move(g)));
  }
  const auto busy = Embed(engine, inputs);
  for (size_t i = 0; i < inputs.size(); ++i)
    EXPECT_LE(MaxDiff(quiet[i], busy[i]), 1e-6f) << "input " << i;
  for (auto& s : streams) {
    StreamEvent ev;
    while (s->Next(ev, std::chrono::milliseconds(20000)) && ev.finish == FinishReason::kNone) {
    }
    EXPECT_EQ(ev.finish, FinishReason::kLength);
  }
  for (int i = 0; i < 100 && engine.Stats().kv_blocks_in_use != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(engine.Stats().kv_blocks_in_use, 0);
  EXPECT_EQ(engine.Stats().embedding_requests_total, 2);
}

TEST(Embeddings, BadRequestsAreRefused) {
  ThreadPool pool(1);
  EngineOptions o = Options();
  o.max_seq_len = 100;
  Engine engine(Stories(), pool, o);
  EXPECT_THROW(Embed(engine, {}), Error);
  EXPECT_THROW(Embed(engine, {{}}), Error);
  EXPECT_THROW(Embed(engine, {Ids(0, 101)}), Error);
  EXPECT_THROW(Embed(engine, {{1, engine.n_vocab()}}), Error);
  EXPECT_THROW(Embed(engine, {{1, -1}}), Error);
  EXPECT_THROW(Embed(engine, {{1}}, Pooling::kNone), Error);
  EXPECT_THROW(Embed(engine, {{1}}, Pooling::kRank), Error);
  std::vector<std::vector<int32_t>> many(Engine::kMaxEmbeddingInputs + 1, std::vector<int32_t>{1});
  EXPECT_THROW(Embed(engine, many), Error);
  EXPECT_EQ(Embed(engine, {Ids(0, 100)}).size(), 1u);  // the limit itself is fine
}

TEST(Embeddings, TruncationRenormalises) {
  const std::vector<float> v = {0.6f, 0.0f, 0.8f, 0.0f};
  const auto t = TruncatedEmbedding(v, 2, true);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_FLOAT_EQ(t[0], 1.0f);
  EXPECT_FLOAT_EQ(t[1], 0.0f);
  EXPECT_EQ(TruncatedEmbedding(v, 2, false), (std::vector<float>{0.6f, 0.0f}));
  const std::vector<double> zero(3, 0.0);
  EXPECT_EQ(L2Normalized(zero), std::vector<float>(3, 0.0f));  // no NaN from a zero vector
}

}  // namespace
}  // namespace origami
