// Speculative decoding: the drafters, the verification step and its acceptance rule.
#include "runtime/speculative.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"
#include "util/timer.h"

namespace origami {

SpecType ParseSpecType(std::string_view name) {
  if (name == "none") return SpecType::kNone;
  if (name == "ngram") return SpecType::kNgram;
  if (name == "draft") return SpecType::kDraft;
  if (name == "mtp") Fail("--spec-type mtp: this model has no MTP heads");
  Fail("--spec-type must be none, ngram, draft or mtp, got '{}'", name);
}

std::string SpecTypeName(SpecType t) {
  switch (t) {
    case SpecType::kNgram: return "ngram";
    case SpecType::kDraft: return "draft";
    default: return "none";
  }
}

void ResolveSpecParams(SpecParams& p) {
  if (p.n_max == -1) p.n_max = p.type == SpecType::kDraft ? 8 : 16;
  if (p.n_max < 0 || p.n_max > 256) Fail("--spec-draft-n-max must be in [0, 256], got {}", p.n_max);
  if (p.n_min < 0 || p.n_min > p.n_max)
    Fail("--spec-draft-n-min must be in [0, --spec-draft-n-max = {}], got {}", p.n_max, p.n_min);
  if (!(p.p_min >= 0.0f && p.p_min <= 1.0f)) Fail("--spec-draft-p-min must be in [0, 1], got {}", p.p_min);
  if (p.ngram_n < 1 || p.ngram_n > 64) Fail("--spec-ngram-n must be in [1, 64], got {}", p.ngram_n);
}

void CheckSameVocabulary(const Model& target, const Model& draft) {
  const gguf::Value* a = target.file().Find("tokenizer.ggml.tokens");
  const gguf::Value* b = draft.file().Find("tokenizer.ggml.tokens");
  const int64_t na = target.spec().n_vocab, nb = draft.spec().n_vocab;
  const std::string& pa = target.file().path();
  const std::string& pb = draft.file().path();
  if (na != nb)
    Fail("draft model '{}' has another vocabulary than the target '{}': {} tokens vs {}", pb, pa, nb, na);
  if (!a || !b || a->type != gguf::ValueType::kArray || b->type != gguf::ValueType::kArray) {
    if (!a != !b) Fail("draft model '{}' has another vocabulary than the target '{}': only one of them lists its tokens",
                       pb, pa);
    return;  // neither names its tokens: the sizes agree, which is all there is to compare
  }
  const size_t n = std::min(a->strings.size(), b->strings.size());
  for (size_t i = 0; i < n; ++i)
    if (a->strings[i] != b->strings[i])
      Fail("draft model '{}' has another vocabulary than the target '{}' ({} tokens each): token {} is '{}' in the "
           "draft, '{}' in the target",
           pb, pa, na, i, b->strings[i], a->strings[i]);
  if (a->strings.size() != b->strings.size())
    Fail("draft model '{}' has another vocabulary than the target '{}': {} token strings vs {}", pb, pa,
         b->strings.size(), a->strings.size());
}

void NgramDrafter::Draft(std::span<const int32_t> context, int n_max, std::vector<int32_t>& out,
                         std::vector<std::vector<float>>& q) {
  const int64_t len = static_cast<int64_t>(context.size());
  const int64_t lo = std::max<int64_t>(0, len - kSearchWindow);
  for (int m = std::min<int64_t>(n_, len - 1); m >= 1; --m) {
    const int32_t* key = context.data() + len - m;
    // The most recent earlier occurrence: recent text predicts best (a loop's last period).
    for (int64_t j = len - m - 1; j >= lo; --j) {
      if (!std::equal(key, key + m, context.data() + j)) continue;
      // Propose what followed; past the end of the context, continue with the proposal itself, so a
      // loop whose period is shorter than n_max is proposed in full.
      const size_t first = out.size();
      for (int64_t i = 0; i < n_max; ++i) {
        const int64_t src = j + m + i;
        out.push_back(src < len ? context[src] : out[first + (src - len)]);
        q.emplace_back();  // point mass
      }
      return;
    }
  }
}

DraftModelDrafter::DraftModelDrafter(const Model& draft, Backend& backend, int n_ctx, KvTypes kv_types,
                                     const SamplerParams& sampling, float p_min)
    : session_(draft, backend, n_ctx, kv_types), sampler_([&] {
        SamplerParams s = sampling;
        s.seed = sampling.seed ^ 0x5bd1e995u;  // its own stream of draws, still reproducible
        return s;
      }()),
      p_min_(p_min) {}

void DraftModelDrafter::Draft(std::span<const int32_t> context, int n_max, std::vector<int32_t>& out,
                              std::vector<std::vector<float>>& q) {
  // Keep what the draft session already evaluated of this context (its earlier drafts past the
  // accepted ones are dropped); at least the last token is evaluated, for its logits.
  const auto& have = session_.tokens();
  size_t common = 0;
  while (common < have.size() && common + 1 < context.size() && have[common] == context[common]) ++common;
  session_.Truncate(static_cast<int64_t>(common));
  const int room = session_.n_ctx() - static_cast<int>(context.size());
  if (room <= 0) return;
  n_max = std::min(n_max, room);
  std::span<float> logits = session_.Eval(context.subspan(common));
  history_.assign(context.begin(), context.end());
  const bool greedy = sampler_.params().temperature <= 0;
  for (int i = 0; i < n_max; ++i) {
    std::vector<float> dist;
    int32_t id;
    float top;
    if (greedy) {
      row_.assign(logits.begin(), logits.end());
      sampler_.Distribution(row_, history_, dist);  // penalties, then a point mass on the argmax
      id = static_cast<int32_t>(std::max_element(dist.begin(), dist.end()) - dist.begin());
      // How sure the draft is: its softmax at temperature 1 (the penalized logits), as p_min reads it.
      double sum = 0;
      for (float l : row_) sum += std::exp(static_cast<double>(l - row_[id]));
      top = static_cast<float>(1.0 / sum);
      dist.clear();
    } else {
      sampler_.Distribution(logits, history_, dist);
      id = sampler_.Draw(dist);
      top = *std::max_element(dist.begin(), dist.end());
    }
    if (top < p_min_) break;
    out.push_back(id);
    q.push_back(std::move(dist));
    history_.push_back(id);
    if (i + 1 < n_max) {
      const int32_t one[1] = {id};
      logits = session_.Eval(one);
    }
  }
}

SpeculativeDecoder::SpeculativeDecoder(Session& target, Drafter* drafter, const SpecParams& params)
    : target_(target), drafter_(drafter), params_(params), k_(params.n_max) {}

void SpeculativeDecoder::Step(int32_t last, Sampler& sampler, std::vector<int32_t>& out) {
  const double t0 = NowSeconds();
  const int64_t n0 = target_.n_past();
  if (n0 >= target_.n_ctx()) Fail("context is full: {} tokens", n0);
  // The draft may fill the context but not pass it: `last` takes one position.
  const int k_max = static_cast<int>(std::min<int64_t>(draft_length(), target_.n_ctx() - n0 - 1));
  draft_.clear();
  q_.clear();
  if (drafter_ && k_max > 0) {
    context_.assign(target_.tokens().begin(), target_.tokens().end());
    context_.push_back(last);
    drafter_->Draft(context_, k_max, draft_, q_);
    if (static_cast<int>(draft_.size()) > k_max) draft_.resize(k_max);
    if (static_cast<int>(draft_.size()) < std::max(params_.n_min, 1)) draft_.clear();
  }
  const int k = static_cast<int>(draft_.size());

  // One target step over [last, d_1 .. d_k]: row i holds the target's logits for position n0 + 1 + i.
  std::vector<int32_t> batch;
  batch.reserve(k + 1);
  batch.push_back(last);
  batch.insert(batch.end(), draft_.begin(), draft_.end());
  std::span<float> rows = target_.EvalAll(batch);
  const size_t n_vocab = rows.size() / batch.size();
  const std::vector<int32_t>& seq = target_.tokens();  // context, last, then the draft
  const bool greedy = sampler.params().temperature <= 0;
  const size_t first_out = out.size();
  int accepted = 0;
  for (int i = 0; i <= k; ++i) {
    std::span<float> row = rows.subspan(i * n_vocab, n_vocab);
    const std::span<const int32_t> history(seq.data(), static_cast<size_t>(n0 + 1 + i));
    if (greedy) {
      // The target's own choice (penalties, then argmax) decides: keep the draft while it agrees.
      const int32_t t = sampler.Sample(row, history);
      if (i < k && t == draft_[i]) {
        out.push_back(t);
        ++accepted;
        continue;
      }
      out.push_back(t);
      break;
    }
    sampler.Distribution(row, history, p_);
    if (i == k) {  // every draft kept: one more token from the target, for free
      out.push_back(sampler.Draw(p_));
      break;
    }
    // Accept x with probability min(1, p(x) / q(x)); otherwise draw from norm(max(0, p - q)). This
    // makes each emitted token distributed exactly as p (Leviathan et al. 2023, Chen et al. 2023).
    const int32_t x = draft_[i];
    const float qx = q_[i].empty() ? 1.0f : q_[i][x];
    if (qx > 0 && sampler.Uniform() * qx < p_[x]) {
      out.push_back(x);
      ++accepted;
      continue;
    }
    double rest = 0;
    if (q_[i].empty()) {
      p_[x] = 0;  // a point mass: the residual is p without x
      for (float v : p_) rest += v;
    } else {
      for (size_t j = 0; j < n_vocab; ++j) rest += p_[j] = std::max(0.0f, p_[j] - q_[i][j]);
    }
    // rest is zero only when p <= q everywhere, i.e. p == q, where rejecting has probability 0; a
    // rounding leftover falls back to p itself.
    if (rest <= 0) sampler.Distribution(row, history, p_);
    out.push_back(sampler.Draw(p_));
    break;
  }
  // Keep the KV of last and of the accepted drafts; the rest is overwritten later.
  target_.Truncate(n0 + 1 + accepted);
  const int produced = static_cast<int>(out.size() - first_out);
  stats_.target_steps++;
  stats_.drafted += k;
  stats_.accepted += accepted;
  stats_.generated += produced;
  Adapt(k, accepted, NowSeconds() - t0, produced);
}

void SpeculativeDecoder::Adapt(int drafted, int accepted, double seconds, int produced) {
  if (!params_.adaptive) return;
  if (drafted > 0) {
    // The draft length follows acceptance: longer while everything is kept, shorter after misses.
    k_ = accepted == drafted ? std::min(params_.n_max, k_ + 2) : std::max(1, std::min(k_ - 1, accepted + 1));
    spec_.Add(seconds, produced);
  } else {
    plain_.Add(seconds, produced);
  }
  if (off_steps_ > 0) {
    --off_steps_;
    return;
  }
  if (drafter_ == nullptr || !spec_.known()) return;
  if (!plain_.known()) {
    off_steps_ = 4;  // measure plain decoding once, to compare against
    return;
  }
  if (spec_.per_token() > plain_.per_token() * 1.02) {
    // Speculation loses here: decode plainly for a while, then measure it afresh.
    off_steps_ = backoff_;
    backoff_ = std::min(backoff_ * 2, 1024);
    spec_ = {};
    k_ = std::max(1, k_ / 2);
  } else {
    backoff_ = 16;
  }
}

}  // namespace origami
