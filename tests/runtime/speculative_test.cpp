// Speculative decoding on stories260K: prompt lookup, greedy exactness of both drafters, and a
// chi-square test that sampled speculation draws from the target's own distribution.
#include "runtime/speculative.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <algorithm>
#include <random>

#include "backend/registry.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace origami {
namespace {

const std::string kModel = std::string(ORIGAMI_SHARED_DIR) + "/models/stories260K.gguf";

const Model& Stories() {
  static std::unique_ptr<Model> m = Model::Open(kModel);
  return *m;
}

std::vector<int32_t> Ngram(std::vector<int32_t> context, int n, int n_max) {
  NgramDrafter d(n);
  std::vector<int32_t> out;
  std::vector<std::vector<float>> q;
  d.Draft(context, n_max, out, q);
  EXPECT_EQ(q.size(), out.size());
  return out;
}

TEST(NgramDrafter, ProposesWhatFollowedTheMostRecentMatch) {
  // "5 6" occurred twice; the later occurrence was followed by 9.
  EXPECT_EQ(Ngram({5, 6, 7, 1, 5, 6, 9, 2, 5, 6}, 3, 2), (std::vector<int32_t>{9, 2}));
  // No 3-gram or 2-gram match: falls back to the last token alone.
  EXPECT_EQ(Ngram({4, 8, 1, 2, 3, 8}, 3, 2), (std::vector<int32_t>{1, 2}));
  // A loop shorter than n_max is continued past the end of the context.
  EXPECT_EQ(Ngram({1, 2, 3, 1, 2, 3}, 3, 7), (std::vector<int32_t>{1, 2, 3, 1, 2, 3, 1}));
  // Nothing to match: no draft.
  EXPECT_TRUE(Ngram({1, 2, 3, 4}, 3, 4).empty());
  EXPECT_TRUE(Ngram({7}, 3, 4).empty());
}

TEST(SpecParams, DefaultsAndBadValues) {
  SpecParams p;
  p.type = SpecType::kNgram;
  ResolveSpecParams(p);
  EXPECT_EQ(p.n_max, 16);
  SpecParams d;
  d.type = SpecType::kDraft;
  ResolveSpecParams(d);
  EXPECT_EQ(d.n_max, 8);
  SpecParams bad;
  bad.n_min = 20;
  EXPECT_THROW(ResolveSpecParams(bad), Error);
  bad = {};
  bad.p_min = 1.5f;
  EXPECT_THROW(ResolveSpecParams(bad), Error);
  EXPECT_THROW(ParseSpecType("mtp"), Error);
  EXPECT_THROW(ParseSpecType("eagle"), Error);
}

// Greedy generation of n tokens after `prompt`, plainly or through the speculative path.
std::vector<int32_t> Greedy(const std::vector<int32_t>& prompt, int n, Drafter* drafter, SpecStats* stats = nullptr) {
  ThreadPool pool(1);
  Session s(Stories(), pool, 256, {DType::kF32, DType::kF32});
  SamplerParams sp;
  sp.temperature = 0;
  Sampler sampler(sp);
  std::span<float> logits = s.Eval(prompt);
  std::vector<int32_t> out = {sampler.Sample(logits, s.tokens())};
  SpecParams params;
  params.type = SpecType::kNgram;
  params.n_max = 8;
  params.adaptive = false;  // timing must not decide how much is drafted: the counts below are exact
  ResolveSpecParams(params);
  SpeculativeDecoder dec(s, drafter, params);
  while (static_cast<int>(out.size()) < n) dec.Step(out.back(), sampler, out);
  out.resize(n);
  if (stats) *stats = dec.stats();
  return out;
}

TEST(Speculative, GreedyOutputEqualsPlainDecoding) {
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};  // "Once upon a time"
  const auto plain = Greedy(prompt, 120, nullptr);
  NgramDrafter ngram(3);
  SpecStats st;
  EXPECT_EQ(Greedy(prompt, 120, &ngram, &st), plain);
  EXPECT_GT(st.drafted, 0);
  ThreadPool pool(1);
  SamplerParams sp;
  sp.temperature = 0;
  const auto backend = MakeCpuBackend(pool);
  DraftModelDrafter same(Stories(), *backend, 256, {}, sp, 0.0f);
  EXPECT_EQ(Greedy(prompt, 120, &same, &st), plain);
  // The same weights (F16 KV instead of F32) agree with the target nearly everywhere.
  EXPECT_GT(st.acceptance(), 0.8);
  EXPECT_GT(st.tokens_per_step(), 2.0);
}

// A drafter that draws from a fixed distribution q (that differs from the target's) and says so.
class FixedQDrafter : public Drafter {
 public:
  FixedQDrafter(std::vector<float> q, int n) : q_(std::move(q)), n_(n), rng_(7) {}
  void Draft(std::span<const int32_t>, int n_max, std::vector<int32_t>& out,
             std::vector<std::vector<float>>& q) override {
    std::discrete_distribution<int32_t> d(q_.begin(), q_.end());
    for (int i = 0; i < std::min(n_, n_max); ++i) {
      out.push_back(d(rng_));
      q.push_back(q_);
    }
  }

 private:
  std::vector<float> q_;
  int n_;
  std::mt19937 rng_;
};

// Pearson's chi-square of observed counts against probabilities, bins with expected count < 5
// merged into one; returns {statistic, degrees of freedom}.
std::pair<double, int> ChiSquare(const std::vector<int>& counts, const std::vector<float>& p, int n) {
  double stat = 0, other_obs = 0, other_exp = 0;
  int bins = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = static_cast<double>(p[i]) * n;
    if (e < 5) {
      other_obs += counts[i];
      other_exp += e;
      continue;
    }
    stat += (counts[i] - e) * (counts[i] - e) / e;
    ++bins;
  }
  if (other_exp > 0) {
    stat += (other_obs - other_exp) * (other_obs - other_exp) / other_exp;
    ++bins;
  } else if (other_obs > 0) {
    stat = INFINITY;  // tokens the target never picks
  }
  return {stat, bins - 1};
}

// The chi-square critical value for p = 0.001 (Wilson-Hilferty; z = 3.0902).
double Critical001(int df) {
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + 3.0902 * std::sqrt(a), 3);
}

TEST(Speculative, SampledTokensFollowTheTargetDistribution) {
  // 20,000 draws of the first token a speculative step emits, at temperature 1 through top-k 40
  // (top-p and min-p off, so that the story's next word has many candidates), against the
  // target's own distribution. The seeds are
  // fixed, so the test is deterministic; a correct rule fails it with probability 0.001 per check.
  constexpr int kSamples = 20000;
  ThreadPool pool(1);
  Session s(Stories(), pool, 64, {DType::kF32, DType::kF32});
  SamplerParams sp;
  sp.temperature = 1.0f;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  sp.seed = 1234;
  Sampler sampler(sp);
  const std::vector<int32_t> prompt = {1};
  const int32_t last = 403;
  s.Eval(prompt);
  const int64_t n0 = s.n_past();
  // The target's distribution after [prompt, last].
  std::vector<float> p;
  {
    std::vector<int32_t> all = prompt;
    all.push_back(last);
    std::span<float> l = s.Eval(std::span<const int32_t>(&last, 1));
    sampler.Distribution(l, all, p);
    s.Truncate(n0);
  }
  const int n_vocab = static_cast<int>(p.size());
  // Drafts: (a) a point mass on the target's second choice (n-gram style), (b) a q spread over the
  // target's support and some tokens outside it.
  std::vector<std::pair<float, int32_t>> ranked;
  for (int i = 0; i < n_vocab; ++i) ranked.push_back({p[i], i});
  std::sort(ranked.rbegin(), ranked.rend());
  ASSERT_GT(ranked[1].first, 0.0f);
  std::vector<float> q(n_vocab, 0.0f);
  for (int i = 0; i < 12; ++i) q[ranked[i].second] = 1.0f / (i + 1);
  q[ranked.back().second] = 0.5f;
  double qs = 0;
  for (float v : q) qs += v;
  for (float& v : q) v = static_cast<float>(v / qs);

  struct Case {
    const char* name;
    std::unique_ptr<Drafter> drafter;
  };
  class Fixed : public Drafter {
   public:
    explicit Fixed(int32_t t) : t_(t) {}
    void Draft(std::span<const int32_t>, int n_max, std::vector<int32_t>& out,
               std::vector<std::vector<float>>& qq) override {
      for (int i = 0; i < std::min(3, n_max); ++i) {
        out.push_back(t_);
        qq.emplace_back();
      }
    }
    int32_t t_;
  };
  std::vector<Case> cases;
  cases.push_back({"point mass", std::make_unique<Fixed>(ranked[1].second)});
  cases.push_back({"random q", std::make_unique<FixedQDrafter>(q, 3)});
  SpecParams params;
  params.type = SpecType::kNgram;
  params.adaptive = false;  // a fixed draft length: the draws depend on the seeds only
  ResolveSpecParams(params);
  for (auto& c : cases) {
    SpeculativeDecoder dec(s, c.drafter.get(), params);
    std::vector<int> counts(n_vocab, 0);
    std::vector<int32_t> out;
    for (int i = 0; i < kSamples; ++i) {
      out.clear();
      dec.Step(last, sampler, out);
      counts[out[0]]++;
      s.Truncate(n0);
    }
    const auto [stat, df] = ChiSquare(counts, p, kSamples);
    std::printf("%s: chi-square %.1f with %d df (p = 0.001 bound %.1f), %lld of %lld drafts accepted\n", c.name, stat,
                df, Critical001(df), static_cast<long long>(dec.stats().accepted),
                static_cast<long long>(dec.stats().drafted));
    EXPECT_LT(stat, Critical001(df)) << c.name << ": chi-square " << stat << " with " << df << " df";
    EXPECT_GT(dec.stats().accepted, 0) << c.name;
    EXPECT_LT(dec.stats().accepted, dec.stats().drafted) << c.name;
    // The check has power: the same counts against the draft's distribution fail it.
    std::vector<float> wrong = q;
    if (c.drafter.get() == cases[0].drafter.get()) {
      wrong.assign(n_vocab, 0.0f);
      wrong[ranked[0].second] = 0.5f;
      wrong[ranked[1].second] = 0.5f;
    }
    const auto [bad, bad_df] = ChiSquare(counts, wrong, kSamples);
    EXPECT_GT(bad, Critical001(bad_df)) << c.name;
  }
}

}  // namespace
}  // namespace origami
