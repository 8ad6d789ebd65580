// Sampler implementation.
#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace origami {

void ValidateSamplerParams(const SamplerParams& p) {
  if (!(p.temperature >= 0) || p.temperature > 100) Fail("temperature must be in [0, 100], got {}", p.temperature);
  if (!(p.top_p >= 0) || p.top_p > 1) Fail("top-p must be in [0, 1], got {}", p.top_p);
  if (!(p.min_p >= 0) || p.min_p > 1) Fail("min-p must be in [0, 1], got {}", p.min_p);
  if (!(p.repeat_penalty > 0) || p.repeat_penalty > 100) Fail("repeat-penalty must be in (0, 100], got {}", p.repeat_penalty);
  if (!std::isfinite(p.presence_penalty) || !std::isfinite(p.frequency_penalty))
    Fail("presence/frequency penalties must be finite");
  if (p.repeat_last_n < -1) Fail("repeat-last-n must be >= -1, got {}", p.repeat_last_n);
}

Sampler::Sampler(const SamplerParams& p) : p_(p) {
  ValidateSamplerParams(p);
  uint64_t seed = p.seed;
  if (seed == 0xFFFFFFFFu) seed = std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32);
  rng_.seed(seed);
}

int32_t Sampler::Argmax(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  return best;
}

void Sampler::ApplyPenalties(std::span<float> logits, std::span<const int32_t> history) {
  if (p_.repeat_penalty == 1.0f && p_.presence_penalty == 0.0f && p_.frequency_penalty == 0.0f) return;
  size_t first = 0;
  if (p_.repeat_last_n >= 0 && history.size() > static_cast<size_t>(p_.repeat_last_n))
    first = history.size() - p_.repeat_last_n;
  counts_.assign(logits.size(), 0);
  for (size_t i = first; i < history.size(); ++i)
    if (history[i] >= 0 && static_cast<size_t>(history[i]) < logits.size()) counts_[history[i]]++;
  for (size_t i = first; i < history.size(); ++i) {
    const int32_t id = history[i];
    if (id < 0 || static_cast<size_t>(id) >= logits.size() || counts_[id] == 0) continue;
    // As llama.cpp: divide positive logits by the penalty, multiply negative ones.
    float& l = logits[id];
    l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    l -= static_cast<float>(counts_[id]) * p_.frequency_penalty + p_.presence_penalty;
    counts_[id] = 0;  // once per distinct token
  }
}

size_t Sampler::Filter(std::span<const float> logits) {
  cand_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) cand_[i] = {logits[i], static_cast<int32_t>(i)};
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t n = cand_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
    n = p_.top_k;
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Softmax over the survivors (untempered, as llama.cpp's top-p and min-p see them).
  prob_.resize(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += prob_[i] = std::exp(static_cast<double>(cand_[i].logit - cand_[0].logit));
  for (size_t i = 0; i < n; ++i) prob_[i] /= sum;
  if (p_.top_p < 1.0f) {
    double cum = 0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += prob_[i];
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = keep;
  }
  if (p_.min_p > 0.0f) {
    size_t keep = 1;
    while (keep < n && prob_[keep] >= p_.min_p * prob_[0]) ++keep;
    n = keep;
  }
  // Temperature.
  w_.resize(n);
  for (size_t i = 0; i < n; ++i) w_[i] = std::exp(static_cast<double>(cand_[i].logit - cand_[0].logit) / p_.temperature);
  return n;
}

int32_t Sampler::Sample(std::span<float> logits, std::span<const int32_t> history) {
  ApplyPenalties(logits, history);
  if (p_.temperature <= 0) return Argmax(logits);
  const size_t n = Filter(logits);
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += w_[i];
  std::uniform_real_distribution<double> u(0.0, total);
  double r = u(rng_);
  for (size_t i = 0; i < n; ++i) {
    if (r < w_[i]) return cand_[i].id;
    r -= w_[i];
  }
  return cand_[n - 1].id;
}

void Sampler::Distribution(std::span<float> logits, std::span<const int32_t> history, std::vector<float>& probs) {
  ApplyPenalties(logits, history);
  probs.assign(logits.size(), 0.0f);
  if (p_.temperature <= 0) {
    probs[Argmax(logits)] = 1.0f;
    return;
  }
  const size_t n = Filter(logits);
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += w_[i];
  for (size_t i = 0; i < n; ++i) probs[cand_[i].id] = static_cast<float>(w_[i] / total);
}

double Sampler::Uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

int32_t Sampler::Draw(std::span<const float> probs) {
  double total = 0;
  for (float p : probs) total += p;
  double r = Uniform() * total;
  int32_t last = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0) continue;
    if (r < probs[i]) return static_cast<int32_t>(i);
    r -= probs[i];
    last = static_cast<int32_t>(i);
  }
  if (last < 0) FailKind(ErrorKind::kInternal, "sampler: drawing from an empty distribution");
  return last;
}

}  // namespace origami
