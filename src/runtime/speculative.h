// Speculative decoding for one sequence (Session): drafters (prompt-lookup n-grams, a draft model)
// propose tokens, the target verifies them in one batched step and keeps the longest prefix its own
// sampler chain agrees with, so the output (greedy) or its distribution (sampled) is the target's.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "runtime/session.h"
#include "sampling/sampler.h"

namespace origami {

enum class SpecType { kNone, kNgram, kDraft };

// Parses --spec-type (none, ngram, draft). "mtp" is refused with the reason (no model origami
// loads carries MTP heads yet); anything else names the allowed values.
SpecType ParseSpecType(std::string_view name);
std::string SpecTypeName(SpecType t);

struct SpecParams {
  SpecType type = SpecType::kNone;
  int n_max = -1;      // most tokens drafted per step; -1: 16 for ngram, 8 for a draft model
  int n_min = 0;       // a draft shorter than this is not verified (a plain step instead)
  float p_min = 0.75f; // draft model: stop drafting when its top probability falls below (llama.cpp's)
  int ngram_n = 3;     // longest n-gram the prompt-lookup drafter matches (it tries n, n-1, ..., 1)
  // Whether the draft length follows the acceptance rate and speculation switches itself off while
  // it is slower than plain decoding (timed, so it makes sampled runs depend on timing: tests of
  // the sampled distribution turn it off).
  bool adaptive = true;
};

// Fills the per-type defaults and checks ranges; throws origami::Error naming the flag at fault.
void ResolveSpecParams(SpecParams& p);

// Refuses a draft model whose vocabulary differs from the target's, naming both (size, and the
// first token that differs).
void CheckSameVocabulary(const Model& target, const Model& draft);

// Something that proposes the next tokens of a sequence.
class Drafter {
 public:
  virtual ~Drafter() = default;
  // Proposes up to n_max tokens to follow `context` (the whole sequence, its last token not yet
  // evaluated by the target), appending them to `out`. `q` gets one entry per proposed token: the
  // draft distribution it was drawn from (n_vocab probabilities), or empty for a point mass.
  virtual void Draft(std::span<const int32_t> context, int n_max, std::vector<int32_t>& out,
                     std::vector<std::vector<float>>& q) = 0;
};

// Prompt lookup: the most recent earlier occurrence of the last n tokens (n = ngram_n down to 1)
// and the tokens that followed it. Needs no memory beyond the sequence itself; looks back at most
// kSearchWindow tokens so a step's cost is bounded.
class NgramDrafter : public Drafter {
 public:
  static constexpr int kSearchWindow = 8192;
  explicit NgramDrafter(int ngram_n) : n_(ngram_n) {}
  void Draft(std::span<const int32_t> context, int n_max, std::vector<int32_t>& out,
             std::vector<std::vector<float>>& q) override;

 private:
  int n_;
};

// A smaller model with the same vocabulary, run ahead of the target on its own Session (its own
// backend, threads and KV types). Drafts with the target's sampler settings (greedy at temperature
// 0; otherwise sampled, with its distribution kept for the acceptance rule).
class DraftModelDrafter : public Drafter {
 public:
  DraftModelDrafter(const Model& draft, Backend& backend, int n_ctx, KvTypes kv_types,
                    const SamplerParams& sampling, float p_min);
  void Draft(std::span<const int32_t> context, int n_max, std::vector<int32_t>& out,
             std::vector<std::vector<float>>& q) override;

 private:
  Session session_;
  Sampler sampler_;
  float p_min_;
  std::vector<int32_t> history_;
  std::vector<float> row_;
};

struct SpecStats {
  int64_t target_steps = 0;  // target forwards made by Step
  int64_t drafted = 0;       // tokens verified
  int64_t accepted = 0;      // of those, kept
  int64_t generated = 0;     // tokens Step returned
  double acceptance() const { return drafted ? static_cast<double>(accepted) / drafted : 0.0; }
  double tokens_per_step() const { return target_steps ? static_cast<double>(generated) / target_steps : 0.0; }
};

class SpeculativeDecoder {
 public:
  // `drafter` may be null (plain decoding through the same path). Neither is owned.
  SpeculativeDecoder(Session& target, Drafter* drafter, const SpecParams& params);

  // `last` is the newest token of the sequence, not yet evaluated by the target. Evaluates it
  // together with a draft in one target step, then appends to `out` the accepted drafted tokens
  // and one token sampled by the target (at least one token in all). Afterwards the target has
  // evaluated everything but the last token appended. Needs target.n_past() < target.n_ctx().
  void Step(int32_t last, Sampler& sampler, std::vector<int32_t>& out);

  const SpecStats& stats() const { return stats_; }
  // The number of tokens the next step will ask the drafter for (0: plain decoding).
  int draft_length() const { return off_steps_ > 0 ? 0 : k_; }

 private:
  // Seconds per generated token, as a decaying average, for the adaptive switch.
  struct Rate {
    double seconds = 0, tokens = 0;
    void Add(double s, double t) {
      seconds = seconds * 0.9 + s;
      tokens = tokens * 0.9 + t;
    }
    bool known() const { return tokens >= 3; }
    double per_token() const { return seconds / tokens; }
  };
  void Adapt(int drafted, int accepted, double seconds, int produced);

  Session& target_;
  Drafter* drafter_;
  SpecParams params_;
  SpecStats stats_;
  int k_;              // current draft length
  int off_steps_ = 0;  // plain steps left before speculation is tried again
  int backoff_ = 16;   // the next switch-off's length
  Rate spec_, plain_;
  std::vector<int32_t> context_, draft_;
  std::vector<std::vector<float>> q_;
  std::vector<float> p_;
};

}  // namespace origami
