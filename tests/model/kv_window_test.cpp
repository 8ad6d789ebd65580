// Sliding-window KV eviction: a paged cache drops its sliding layers' window parts once no query
// can see them, so the parts a sequence holds stay bounded; logits with eviction equal those of a
// cache that keeps every position (whose masked attention the numpy family references check).
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "convert/synth.h"
#include "util/thread_pool.h"

namespace origami {
namespace {

// These tests tag rows with floats: an F32 pool, rows read as floats.
constexpr KvTypes kF32Kv{DType::kF32, DType::kF32};
float* F(uint8_t* row) { return reinterpret_cast<float*>(row); }

// Two layers: one sliding (window 32), one full; 1 KV head of 4.
DecoderSpec TwoLayerSpec(int window) {
  DecoderSpec s;
  s.layers.resize(2);
  for (auto& l : s.layers) l.n_head = l.n_head_kv = 1, l.head_dim = 4;
  s.layers[0].sliding_window = window;
  return s;
}

TEST(KvWindow, LongSequenceHoldsBoundedWindowParts) {
  const int bs = 16, window = 32;
  // Window parts for 2 sequences only: (window - 1) / bs + 2 = 3 each would be enough.
  KvPool pool(TwoLayerSpec(window), 256, bs, 8, kF32Kv);
  ASSERT_EQ(pool.window(), window);
  KvCache a(pool, 2048), b(pool, 2048);
  int max_parts = 0;
  for (int64_t pos = 0; pos < 1500; ++pos) {
    for (KvCache* c : {&a, &b}) {
      ASSERT_TRUE(c->Grow(pos + 1)) << "pos " << pos;
      // Tag both layers' rows at pos with the position (and the cache).
      const float tag = static_cast<float>(pos) + (c == &a ? 0.0f : 0.5f);
      F(c->K(0, pos))[0] = F(c->V(0, pos))[3] = tag;
      F(c->K(1, pos))[0] = tag;
      // Every position a query at pos sees still reads back its own tag.
      for (int64_t p = std::max<int64_t>(0, pos - window + 1); p <= pos; ++p) {
        const float want = static_cast<float>(p) + (c == &a ? 0.0f : 0.5f);
        ASSERT_EQ(F(c->K(0, p))[0], want) << "sliding K at " << p << " from query " << pos;
        ASSERT_EQ(F(c->V(0, p))[3], want) << "sliding V at " << p << " from query " << pos;
      }
    }
    max_parts = std::max(max_parts, pool.n_window_in_use());
    ASSERT_LE(pool.n_window_in_use(), 8);
  }
  EXPECT_LE(max_parts, 6);  // 3 per sequence
  EXPECT_GT(a.n_window_dropped(), 80);
  // The full layer keeps everything.
  EXPECT_EQ(F(a.K(1, 0))[0], 0.0f);
  EXPECT_EQ(F(a.K(1, 1000))[0], 1000.0f);
  EXPECT_EQ(a.blocks().size() + b.blocks().size(), 2u * ((1500 + bs - 1) / bs));
  // The window space alone limits a third sequence's growth, and Clear gives everything back.
  a.Clear();
  b.Clear();
  EXPECT_EQ(pool.n_window_in_use(), 0);
  EXPECT_EQ(pool.n_available(), 8);
  KvCache c(pool, 2048);
  EXPECT_FALSE(c.Grow(9 * bs));  // 9 blocks need 9 window parts at once
  EXPECT_TRUE(c.Grow(8 * bs));
}

TEST(KvWindow, ReclaimedPartsEndPrefixMatches) {
  const int bs = 4, window = 6;
  KvPool pool(TwoLayerSpec(window), 64, bs, 16, kF32Kv);
  std::vector<int32_t> toks(40);
  for (int i = 0; i < 40; ++i) toks[i] = 100 + i;
  KvCache a(pool, 256);
  int registered = 0;
  for (int64_t pos = 0; pos < 40; ++pos) {
    ASSERT_TRUE(a.Grow(pos + 1));
    // Publish each block once it is complete, as the engine does after a step.
    while ((registered + 1) * bs <= pos + 1) {
      const int parent = registered > 0 ? a.blocks()[registered - 1] : -1;
      ASSERT_TRUE(pool.Register(a.blocks()[registered], parent, std::span(toks.data() + registered * bs, bs)));
      ++registered;
    }
  }
  // Dropped parts of indexed blocks stay attached while the window space has room.
  const int first = a.blocks()[0];
  EXPECT_TRUE(pool.has_window_part(first));
  const std::vector<int> table = a.blocks();
  a.Clear();
  // A second sequence needs 10 parts: 6 are free, 4 are reclaimed from the oldest cached blocks.
  KvCache b(pool, 256);
  ASSERT_TRUE(b.Grow(10 * bs));
  EXPECT_FALSE(pool.has_window_part(first));
  EXPECT_TRUE(pool.has_window_part(table[4]));
  // A match through a block without its window rows is refused at that block.
  EXPECT_EQ(pool.Lookup(-1, std::span(toks.data(), bs)), -1);
  // The newer blocks kept their parts and still match (with their parent chain).
  EXPECT_EQ(pool.Lookup(table[8], std::span(toks.data() + 9 * bs, bs)), table[9]);
  pool.Release(table[9]);
}

std::string TinyModel(const std::string& arch) {
  const auto path = std::filesystem::temp_directory_path() / ("origami-kvwin-test-" + arch + ".gguf");
  SynthOptions o;
  o.arch = arch;
  o.seed = 11;
  o.output = path.string();
  WriteSynthModel(o);
  return o.output;
}

// Runs prompt chunks and then single tokens through ForwardBatch, growing the cache first as the
// engine does; returns every step's last logits.
std::vector<std::vector<float>> RunSteps(Decoder& dec, KvCache& cache, const std::vector<int32_t>& toks, int prompt) {
  const int n_vocab = dec.spec().n_vocab;
  std::vector<std::vector<float>> out;
  std::vector<BatchToken> batch;
  int64_t pos = 0;
  while (pos < static_cast<int64_t>(toks.size())) {
    const int n = pos < prompt ? std::min<int>(5, prompt - static_cast<int>(pos)) : 1;
    if (!cache.Grow(pos + n)) throw std::runtime_error("pool short");
    batch.clear();
    for (int i = 0; i < n; ++i) batch.push_back({toks[pos + i], pos + i, &cache, i == n - 1});
    std::vector<float> logits(n_vocab);
    dec.ForwardBatch(batch.data(), n, logits.data());
    out.push_back(std::move(logits));
    pos += n;
  }
  return out;
}

TEST(KvWindow, EvictionLeavesLogitsUnchanged) {
  for (const std::string arch : {"gpt-oss", "gemma3"}) {
    auto model = Model::Open(TinyModel(arch));
    const DecoderSpec& s = model->spec();
    int window = 0;
    for (const auto& l : s.layers) window = std::max(window, l.sliding_window);
    ASSERT_GT(window, 0) << arch;
    std::vector<int32_t> toks(60);
    for (int i = 0; i < 60; ++i) toks[i] = (7 * i + 3) % s.n_vocab;
    ASSERT_GT(static_cast<int>(toks.size()), 4 * window) << "the sequence must outrun the window";
    ThreadPool pool(2);
    Decoder dec(s, pool);
    KvCache full(s, 64);  // standalone: keeps every position, masked attention only
    const auto want = RunSteps(dec, full, toks, 13);
    KvPool kv(s, 64, 4, 4);  // 4 window parts of 4 positions: evicting is the only way to fit
    KvCache paged(kv, 64);
    const auto got = RunSteps(dec, paged, toks, 13);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      for (size_t j = 0; j < got[i].size(); ++j) ASSERT_EQ(got[i][j], want[i][j]) << arch << " step " << i << " logit " << j;
    EXPECT_GT(paged.n_window_dropped(), 10) << arch;
    EXPECT_LE(kv.n_window_in_use(), 4) << arch;
  }
}

}  // namespace
}  // namespace origami
