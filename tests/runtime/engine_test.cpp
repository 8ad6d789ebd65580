// Engine and paged KV cache: batching invariance at temperature 0, block accounting after
// completion and cancellation, prefix reuse with identical logits, overload and preemption.
#include "runtime/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "runtime/session.h"
#include "util/thread_pool.h"

namespace origami {
namespace {

const std::string kModel = std::string(ORIGAMI_SHARED_DIR) + "/models/stories260K.gguf";

std::unique_ptr<Model>& SharedModel() {
  static std::unique_ptr<Model> m = Model::Open(kModel);
  return m;
}

struct Result {
  std::vector<int32_t> tokens;
  StreamEvent final;
};

Result Drain(RequestStream& s) {
  Result r;
  for (;;) {
    StreamEvent ev;
    if (!s.Next(ev, std::chrono::milliseconds(20000))) {
      ADD_FAILURE() << "stream timed out";
      return r;
    }
    for (auto& t : ev.tokens) r.tokens.push_back(t.token);
    if (ev.finish != FinishReason::kNone) {
      r.final = ev;
      return r;
    }
  }
}

GenerationRequest Greedy(std::vector<int32_t> prompt, int max_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  return r;
}

std::vector<int32_t> Prompt(int seed, int n) {
  std::vector<int32_t> p = {1};
  for (int i = 1; i < n; ++i) p.push_back(3 + (seed * 131 + i * 17) % 500);
  return p;
}

std::vector<int32_t> SessionGreedy(const std::vector<int32_t>& prompt, int n) {
  ThreadPool pool(1);
  Session s(*SharedModel(), pool, 512);
  std::vector<int32_t> out;
  std::span<float> logits = s.Eval(prompt);
  for (int i = 0; i < n; ++i) {
    const int32_t id = Sampler::Argmax(logits);
    out.push_back(id);
    const int32_t next[1] = {id};
    logits = s.Eval(next);
  }
  return out;
}

TEST(KvPool, RefcountsAndPrefixIndex) {
  KvPool pool(SharedModel()->spec(), 4, 16);
  std::vector<int32_t> toks(16, 7);
  const int a = pool.Allocate();
  ASSERT_GE(a, 0);
  EXPECT_EQ(pool.n_available(), 3);
  EXPECT_TRUE(pool.Register(a, -1, toks));
  EXPECT_FALSE(pool.Register(a, -1, toks));
  EXPECT_EQ(pool.Lookup(-1, toks), a);
  EXPECT_EQ(pool.refcount(a), 2);
  pool.Release(a);
  pool.Release(a);
  EXPECT_EQ(pool.n_available(), 4);  // cached but evictable
  EXPECT_EQ(pool.n_cached(), 1);
  toks[3] = 8;
  EXPECT_EQ(pool.Lookup(-1, toks), -1);
  // Exhaust the pool: the cached block is evicted last and then leaves the index.
  int got[4];
  for (int& g : got) g = pool.Allocate();
  EXPECT_EQ(pool.Allocate(), -1);
  EXPECT_EQ(pool.n_cached(), 0);
  for (int g : got) pool.Release(g);
  EXPECT_EQ(pool.n_available(), 4);
}

TEST(KvCache, StandaloneMatchesSessionGolden) {
  // The standalone (Session) cache goes through the block table too; greedy from BOS is the
  // documented story opening.
  const auto out = SessionGreedy({1}, 8);
  ASSERT_EQ(out.size(), 8u);
}

TEST(Engine, AloneEqualsSessionAndEqualsAmongEight) {
  ThreadPool pool(1);
  EngineOptions opt;
  opt.n_parallel = 8;
  opt.kv_tokens = 4096;
  opt.prefill_chunk = 7;  // odd chunks: prompts split across steps and mixed with decodes
  Engine engine(*SharedModel(), pool, opt);

  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; ++i) prompts.push_back(Prompt(i, 5 + 9 * i));
  std::vector<std::vector<int32_t>> alone;
  for (auto& p : prompts) {
    auto st = engine.Submit(Greedy(p, 24));
    Result r = Drain(*st);
    EXPECT_EQ(r.final.finish, FinishReason::kLength);
    EXPECT_EQ(r.tokens, SessionGreedy(p, 24)) << "engine alone differs from Session";
    alone.push_back(r.tokens);
  }
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (auto& p : prompts) streams.push_back(engine.Submit(Greedy(p, 24)));
  for (size_t i = 0; i < streams.size(); ++i) {
    Result r = Drain(*streams[i]);
    EXPECT_EQ(r.tokens, alone[i]) << "request " << i << " differs among 8 concurrent ones";
    EXPECT_EQ(r.final.n_generated, 24);
    EXPECT_EQ(r.final.n_prompt, static_cast<int>(prompts[i].size()));
  }
  const EngineStats s = engine.Stats();
  EXPECT_EQ(s.kv_blocks_in_use, 0);
  EXPECT_EQ(s.live, 0);
}

TEST(Engine, PromptLogitsHookSeesTheRawLogitsOnce) {
  // `run` under mpirun writes --logits-out from this hook and is held bit-identical to one
  // process, so the hook must see exactly Session's logits after the prompt: unbiased, once.
  const std::vector<int32_t> prompt = Prompt(3, 40);
  ThreadPool session_pool(1);
  Session session(*SharedModel(), session_pool, 512);
  const std::span<float> s_logits = session.Eval(prompt);
  const std::vector<float> expected(s_logits.begin(), s_logits.end());

  ThreadPool pool(1);
  EngineOptions opt;
  opt.n_parallel = 1;
  opt.kv_tokens = 512;
  opt.prefill_chunk = Decoder::kMaxBatch;  // the prompt in one step, as Session::Eval runs it
  Engine engine(*SharedModel(), pool, opt);
  GenerationRequest req = Greedy(prompt, 6);
  const int32_t top = Sampler::Argmax(expected);
  req.logit_bias = {{top, -1000.0f}};  // changes the first token, not what the hook sees
  int calls = 0;
  std::vector<float> seen;
  req.on_prompt_logits = [&](std::span<const float> row) {
    ++calls;
    seen.assign(row.begin(), row.end());
  };
  Result r = Drain(*engine.Submit(std::move(req)));
  EXPECT_EQ(r.final.finish, FinishReason::kLength);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, expected) << "the engine's logits after the prompt differ from Session's";
  ASSERT_FALSE(r.tokens.empty());
  EXPECT_NE(r.tokens[0], top) << "the bias should have applied after the hook";
}

TEST(Engine, CancelFreesBlocks) {
  ThreadPool pool(1);
  EngineOptions opt;
  opt.n_parallel = 4;
  opt.kv_tokens = 1024;
  Engine engine(*SharedModel(), pool, opt);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(engine.Submit(Greedy(Prompt(i, 40), 400)));
  for (auto& s : streams) {
    StreamEvent ev;
    ASSERT_TRUE(s->Next(ev, std::chrono::milliseconds(20000)));  // generating
  }
  EXPECT_GT(engine.Stats().kv_blocks_in_use, 0);
  for (auto& s : streams) s->Cancel();
  for (auto& s : streams) EXPECT_EQ(Drain(*s).final.finish, FinishReason::kCancelled);
  for (int i = 0; i < 100 && engine.Stats().kv_blocks_in_use != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(engine.Stats().kv_blocks_in_use, 0);
  EXPECT_EQ(engine.Stats().requests_cancelled, 4);
}

TEST(Engine, PrefixReuseGivesIdenticalLogitsAndTokens) {
  const DecoderSpec& spec = SharedModel()->spec();
  ThreadPool pool(1);
  Decoder dec(spec, pool);
  KvPool kv(spec, 64, 16);
  const std::vector<int32_t> p = Prompt(3, 50);  // 3 full blocks + 2 tokens
  std::vector<float> ref(spec.n_vocab), got(spec.n_vocab);
  {
    KvCache a(kv, 512);
    ASSERT_TRUE(a.Grow(50));
    std::vector<BatchToken> b;
    for (int i = 0; i < 50; ++i) b.push_back({p[i], i, &a, i == 49});
    dec.ForwardBatch(b.data(), 50, ref.data());
    int parent = -1;
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(
          kv.Register(a.blocks()[i], parent, std::span<const int32_t>(p.data() + 16 * i, 16)));
      parent = a.blocks()[i];
    }
  }
  EXPECT_EQ(kv.n_in_use(), 0);
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

  // Through the engine: the second request finds the first one's blocks and answers the same.
  EngineOptions opt;
  opt.kv_tokens = 2048;
  Engine engine(*SharedModel(), pool, opt);
  Result r1 = Drain(*engine.Submit(Greedy(p, 16)));
  Result r2 = Drain(*engine.Submit(Greedy(p, 16)));
  EXPECT_EQ(r1.final.n_cached, 0);
  EXPECT_EQ(r2.final.n_cached, 48);
  EXPECT_EQ(r1.tokens, r2.tokens);
  EXPECT_EQ(engine.Stats().kv_blocks_in_use, 0);
}

TEST(Engine, PreemptionWhenPoolIsShortKeepsTokens) {
  ThreadPool pool(1);
  EngineOptions opt;
  opt.n_parallel = 4;
  opt.kv_tokens = 160;  // 10 blocks: four sequences of 20 + 60 tokens cannot all fit
  opt.prefix_cache = false;
  Engine engine(*SharedModel(), pool, opt);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(engine.Submit(Greedy(Prompt(i, 20), 60)));
  for (int i = 0; i < 4; ++i) {
    Result r = Drain(*streams[i]);
    EXPECT_EQ(r.tokens, SessionGreedy(Prompt(i, 20), 60)) << "request " << i;
  }
  EXPECT_GT(engine.Stats().preemptions, 0);
  EXPECT_EQ(engine.Stats().kv_blocks_in_use, 0);
}

TEST(Engine, LongPromptsThatOverfillThePoolStillFinish) {
  ThreadPool pool(1);
  EngineOptions opt;
  opt.n_parallel = 4;
  opt.kv_tokens = 160;  // 10 blocks; four 100-token prompts need 7 each
  opt.prefill_chunk = 16;
  opt.prefix_cache = false;
  Engine engine(*SharedModel(), pool, opt);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(engine.Submit(Greedy(Prompt(i, 100), 8)));
  for (int i = 0; i < 4; ++i) {
    Result r = Drain(*streams[i]);
    EXPECT_EQ(r.tokens, SessionGreedy(Prompt(i, 100), 8)) << "request " << i;
  }
  EXPECT_EQ(engine.Stats().kv_blocks_in_use, 0);
}

TEST(Engine, RejectsBadRequestsAndOverload) {
  ThreadPool pool(1);
  EngineOptions opt;
  opt.n_parallel = 1;
  opt.max_queue = 2;
  opt.kv_tokens = 256;
  Engine engine(*SharedModel(), pool, opt);
  EXPECT_THROW(engine.Submit(Greedy({}, 4)), Error);
  EXPECT_THROW(engine.Submit(Greedy(Prompt(0, 300), 4)), Error);
  EXPECT_THROW(engine.Submit(Greedy({1, 100000}, 4)), Error);
  std::vector<std::shared_ptr<RequestStream>> s;
  bool overloaded = false;
  for (int i = 0; i < 10 && !overloaded; ++i) {
    try {
      s.push_back(engine.Submit(Greedy(Prompt(i, 10), 200)));
    } catch (const OverloadedError&) {
      overloaded = true;
    }
  }
  EXPECT_TRUE(overloaded);
  for (auto& x : s) x->Cancel();
  for (auto& x : s) Drain(*x);
}

// Retry-After follows the rate at which requests end: the mean interval of the recent ends,
// rounded up, within 1..60 s; no rate yet gives 1.
TEST(Engine, RetryAfterFollowsTheRecentFinishRate) {
  EXPECT_EQ(RetryAfterSeconds({}), 1);
  EXPECT_EQ(RetryAfterSeconds({5.0}), 1);
  EXPECT_EQ(RetryAfterSeconds({10.0, 10.2, 10.4}), 1);        // 0.2 s apart: at least 1
  EXPECT_EQ(RetryAfterSeconds({100.0, 103.0, 106.0, 109.0}), 3);
  EXPECT_EQ(RetryAfterSeconds({0.0, 2.5}), 3);                // rounded up
  EXPECT_EQ(RetryAfterSeconds({0.0, 1000.0}), 60);            // at most a minute
}

// The pool in bytes (what /metrics and /health report): rows held while a request runs, a peak
// that stays after it, the full blocks left to the prefix cache, and the limits behind "saturated".
TEST(Engine, KvBytesInUsePeakAndPrefixCache) {
  ThreadPool pool(1);
  EngineOptions opt;
  opt.n_parallel = 2;
  opt.max_queue = 3;
  opt.kv_tokens = 256;
  Engine engine(*SharedModel(), pool, opt);
  EngineStats st = engine.Stats();
  EXPECT_EQ(st.kv_bytes_total, engine.kv_pool_bytes());
  EXPECT_EQ(st.kv_bytes_in_use, 0u);
  EXPECT_EQ(st.n_parallel, 2);
  EXPECT_EQ(st.max_queue, 3);
  EXPECT_FALSE(st.saturated());
  EXPECT_FALSE(st.queue_full());
  const uint64_t block = engine.kv_bytes_per_token() * engine.kv_block_size();
  // 40 prompt tokens + 8 generated: 48 positions, 3 blocks of 16 at the peak.
  Result r = Drain(*engine.Submit(Greedy(Prompt(0, 40), 8)));
  EXPECT_EQ(r.tokens.size(), 8u);
  st = engine.Stats();
  EXPECT_EQ(st.kv_bytes_in_use, 0u);
  EXPECT_GE(st.kv_bytes_in_use_peak, 3 * block);
  EXPECT_LE(st.kv_bytes_in_use_peak, st.kv_bytes_total);
  // The full blocks computed stay in the prefix index, reclaimable: the first two (47 positions
  // were computed; the last token sampled never is).
  EXPECT_EQ(st.kv_bytes_cached, static_cast<uint64_t>(st.kv_blocks_cached) * block);
  EXPECT_GE(st.kv_blocks_cached, 2);
  EngineStats busy = st;
  busy.live = 2;
  EXPECT_TRUE(busy.saturated());
  busy.live = 1, busy.waiting = 3;
  EXPECT_TRUE(busy.saturated());
  EXPECT_TRUE(busy.queue_full());
}

// A two-stage pipeline inside one process, as src/dist runs it across ranks: layers [0, split)
// against the engine's pool (which holds only those layers), layers [split, n) against a mirror
// pool of the same geometry addressed by the engine's block ids, through views made per step.
class TwoStageForward : public BatchForward {
 public:
  TwoStageForward(const Model& m, ThreadPool& pool, int split)
      : spec_(m.spec()), first_(m.spec(), pool), second_(m.spec(), pool), split_(split) {}
  void Start(int n_blocks, int block_size) {
    mirror_ = std::make_unique<KvPool>(KvShapeSpec(spec_, split_, spec_.n_layer()), n_blocks,
                                       block_size);
    holder_ = std::make_unique<KvCache>(*mirror_, n_blocks * block_size);
    ASSERT_TRUE(holder_->Grow(n_blocks * block_size));
  }
  int depth() const override { return depth_; }
  // Computes at once and queues the logits: what the engine may not do is schedule a sequence
  // again before its batch has been collected, and that is what this seam checks.
  void Submit(const BatchToken* batch, int n) override {
    for (int i = 0; i < n; ++i)
      if (std::find(in_flight_.begin(), in_flight_.end(), batch[i].cache) != in_flight_.end())
        ADD_FAILURE() << "a sequence is in two batches in flight";
    int rows = 0;
    for (int i = 0; i < n; ++i) rows += batch[i].logits ? 1 : 0;
    std::vector<float> logits(static_cast<size_t>(std::max(rows, 1)) * spec_.n_vocab);
    Compute(batch, n, logits.data());
    std::vector<const KvCache*> caches;
    for (int i = 0; i < n; ++i) caches.push_back(batch[i].cache);
    queued_.push_back({std::move(logits), std::move(caches)});
    in_flight_.clear();
    for (const auto& q : queued_) in_flight_.insert(in_flight_.end(), q.caches.begin(), q.caches.end());
    max_in_flight = std::max(max_in_flight, static_cast<int>(queued_.size()));
  }
  void Collect(float* logits) override {
    ASSERT_FALSE(queued_.empty());
    std::copy(queued_.front().logits.begin(), queued_.front().logits.end(), logits);
    queued_.pop_front();
    in_flight_.clear();
    for (const auto& q : queued_) in_flight_.insert(in_flight_.end(), q.caches.begin(), q.caches.end());
  }
  void Compute(const BatchToken* batch, int n, float* logits) {
    if (++calls == fail_at) {
      // Fails only once the test has queued every request (else Submit would race the failure).
      while (!armed.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      Fail("stage 1 is lost");
    }
    tokens += n;
    std::vector<float> hidden(static_cast<size_t>(n) * spec_.n_embd);
    first_.ForwardStage(batch, n, 0, split_, nullptr, hidden.data(), nullptr);
    std::vector<std::unique_ptr<KvCache>> views;
    std::vector<BatchToken> second(batch, batch + n);
    for (auto& t : second) {
      auto v = std::make_unique<KvCache>(*mirror_, mirror_->n_blocks() * mirror_->block_size());
      for (int b : t.cache->blocks()) {
        mirror_->Retain(b);
        v->AppendShared(b);
      }
      t.cache = v.get();
      views.push_back(std::move(v));
    }
    second_.ForwardStage(second.data(), n, split_, spec_.n_layer(), hidden.data(), nullptr, logits);
  }
  int calls = 0, fail_at = -1, max_in_flight = 0;
  std::atomic<bool> armed{false};
  int64_t tokens = 0;
  int depth_ = 1;

 private:
  struct Queued {
    std::vector<float> logits;
    std::vector<const KvCache*> caches;
  };
  std::deque<Queued> queued_;
  std::vector<const KvCache*> in_flight_;
  const DecoderSpec& spec_;
  Decoder first_, second_;
  int split_;
  std::unique_ptr<KvPool> mirror_;
  std::unique_ptr<KvCache> holder_;
};

TEST(Engine, ForwardSeamWithMirrorPoolsGivesTheSameTokens) {
  // Depth 1 waits for every step; 2 and 3 keep that many batches of disjoint sequences in flight
  // (as a pipeline of 2 or 3 ranks does), sampling one group while the others are computed.
  for (int depth : {1, 2, 3}) {
    ThreadPool pool(1);
    TwoStageForward fwd(*SharedModel(), pool, 2);
    fwd.depth_ = depth;
    EngineOptions opt;
    opt.n_parallel = 4;
    opt.kv_tokens = 1024;
    opt.prefill_chunk = 7;
    opt.forward = &fwd;
    opt.kv_first_layer = 0;
    opt.kv_last_layer = 2;
    Engine engine(*SharedModel(), pool, opt);
    fwd.Start(engine.kv_blocks(), engine.kv_block_size());
    // Two rounds of the same four prompts: the second takes shared prefix blocks from the cache,
    // which must be valid in the mirror pool too.
    for (int round = 0; round < 2; ++round) {
      std::vector<std::shared_ptr<RequestStream>> streams;
      for (int i = 0; i < 4; ++i)
        streams.push_back(engine.Submit(Greedy(Prompt(i, 20 + 11 * i), 16)));
      for (int i = 0; i < 4; ++i)
        EXPECT_EQ(Drain(*streams[i]).tokens, SessionGreedy(Prompt(i, 20 + 11 * i), 16))
            << "depth " << depth << " round " << round << " request " << i;
    }
    EXPECT_GT(engine.Stats().prompt_tokens_cached, 0);
    EXPECT_GT(fwd.calls, 0);
    EXPECT_EQ(fwd.max_in_flight, depth) << "the engine did not fill the pipeline";
    EXPECT_EQ(engine.Stats().kv_blocks_in_use, 0);
  }
}

TEST(Engine, PipelinedStepsKeepTokensThroughPreemptionAndCancellation) {
  ThreadPool pool(1);
  {
    // A pool too small for four sequences: preemption takes only sequences not in flight.
    TwoStageForward fwd(*SharedModel(), pool, 2);
    fwd.depth_ = 2;
    EngineOptions opt;
    opt.n_parallel = 4;
    opt.kv_tokens = 160;
    opt.prefix_cache = false;
    opt.forward = &fwd;
    opt.kv_last_layer = 2;
    Engine engine(*SharedModel(), pool, opt);
    fwd.Start(engine.kv_blocks(), engine.kv_block_size());
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < 4; ++i) streams.push_back(engine.Submit(Greedy(Prompt(i, 20), 60)));
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(Drain(*streams[i]).tokens, SessionGreedy(Prompt(i, 20), 60)) << "request " << i;
    EXPECT_GT(engine.Stats().preemptions, 0);
    EXPECT_EQ(fwd.max_in_flight, 2);
    EXPECT_EQ(engine.Stats().kv_blocks_in_use, 0);
  }
  {
    // Cancelling half the sequences while batches are in flight: the others go on unchanged.
    TwoStageForward fwd(*SharedModel(), pool, 2);
    fwd.depth_ = 2;
    EngineOptions opt;
    opt.n_parallel = 4;
    opt.kv_tokens = 1024;
    opt.forward = &fwd;
    opt.kv_last_layer = 2;
    Engine engine(*SharedModel(), pool, opt);
    fwd.Start(engine.kv_blocks(), engine.kv_block_size());
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < 4; ++i)
      streams.push_back(engine.Submit(Greedy(Prompt(i, 30), i == 1 || i == 2 ? 900 : 40)));
    for (auto& s : streams) {
      StreamEvent ev;
      ASSERT_TRUE(s->Next(ev, std::chrono::milliseconds(20000)));
    }
    streams[1]->Cancel();
    streams[2]->Cancel();
    for (int i = 0; i < 4; ++i) {
      const Result r = Drain(*streams[i]);
      if (i == 1 || i == 2) {
        EXPECT_EQ(r.final.finish, FinishReason::kCancelled) << "request " << i;
      } else {
        // Drain saw the tokens after the first event; compare the tail of the greedy answer.
        const std::vector<int32_t> all = SessionGreedy(Prompt(i, 30), 40);
        ASSERT_LE(r.tokens.size(), all.size());
        EXPECT_TRUE(std::equal(r.tokens.begin(), r.tokens.end(), all.end() - r.tokens.size()))
            << "request " << i;
        EXPECT_EQ(r.final.n_generated, 40);
      }
    }
    for (int i = 0; i < 100 && engine.Stats().kv_blocks_in_use != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(engine.Stats().kv_blocks_in_use, 0);
  }
}

TEST(Engine, FailingForwardSeamFailsEveryRequestAndRefusesNewOnes) {
  ThreadPool pool(1);
  TwoStageForward fwd(*SharedModel(), pool, 3);
  fwd.fail_at = 3;
  std::atomic<int> fatal{0};
  EngineOptions opt;
  opt.n_parallel = 2;
  opt.kv_tokens = 512;
  opt.forward = &fwd;
  opt.kv_last_layer = 3;
  opt.on_fatal = [&](const std::string& e) {
    EXPECT_NE(e.find("stage 1 is lost"), std::string::npos);
    ++fatal;
  };
  Engine engine(*SharedModel(), pool, opt);
  fwd.Start(engine.kv_blocks(), engine.kv_block_size());
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(engine.Submit(Greedy(Prompt(i, 10), 50)));
  fwd.armed = true;
  for (auto& s : streams) {
    const Result r = Drain(*s);
    EXPECT_EQ(r.final.finish, FinishReason::kError);
    EXPECT_NE(r.final.error.find("stage 1 is lost"), std::string::npos);
  }
  EXPECT_THROW(engine.Submit(Greedy(Prompt(9, 10), 4)), Error);
  engine.Shutdown();  // joins the engine thread: on_fatal has run
  EXPECT_EQ(fatal.load(), 1);
}

}  // namespace
}  // namespace origami
