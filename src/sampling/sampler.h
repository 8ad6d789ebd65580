// The sampler chain: repetition/presence/frequency penalties, top-k, top-p, min-p, temperature,
// then a seeded draw. Greedy (argmax, lowest id on ties) at temperature <= 0.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace origami {

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 40;              // <= 0: off
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off
  float repeat_penalty = 1.0f; // 1: off (llama.cpp's --repeat-penalty)
  int repeat_last_n = 64;      // window of recent tokens the penalties look at (-1: all)
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0xFFFFFFFFu; // llama.cpp's "random" seed value; anything else is reproducible
};

// Checks ranges; throws origami::Error naming the flag/field at fault.
void ValidateSamplerParams(const SamplerParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);

  // Picks the next token from logits (n_vocab floats, modified in place by the penalties).
  // `history` is every token of the sequence so far (prompt included).
  int32_t Sample(std::span<float> logits, std::span<const int32_t> history);

  // The distribution Sample draws from, for speculative decoding's acceptance rule: `probs` gets
  // n_vocab probabilities, zero outside the candidates the chain keeps (a point mass on the argmax
  // at temperature <= 0). Applies the penalties to `logits` as Sample does; draws nothing.
  void Distribution(std::span<float> logits, std::span<const int32_t> history, std::vector<float>& probs);
  // A draw from `probs` (non-negative, any positive sum) with this sampler's generator.
  int32_t Draw(std::span<const float> probs);
  // A uniform draw in [0, 1) from this sampler's generator.
  double Uniform();

  static int32_t Argmax(std::span<const float> logits);
  const SamplerParams& params() const { return p_; }

 private:
  void ApplyPenalties(std::span<float> logits, std::span<const int32_t> history);
  // Runs top-k, top-p and min-p on the penalized logits: cand_[0..n) are the survivors, best first,
  // and w_[0..n) their tempered weights (unnormalized). Returns n. Needs temperature > 0.
  size_t Filter(std::span<const float> logits);

  SamplerParams p_;
  std::mt19937_64 rng_;
  struct Candidate {
    float logit;
    int32_t id;
  };
  std::vector<Candidate> cand_;  // reused across calls
  std::vector<int32_t> counts_;
  std::vector<double> prob_, w_;  // reused across calls
};

}  // namespace origami
