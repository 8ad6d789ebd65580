// Session.
#include "runtime/session.h"

#include <algorithm>

#include "util/error.h"

namespace origami {

int ResolveContextSize(const DecoderSpec& spec, int requested) {
  if (requested < 0) Fail("--ctx-size must be >= 0, got {}", requested);
  if (requested > 0) return requested;
  return spec.n_ctx_train > 0 ? std::min(4096, spec.n_ctx_train) : 4096;
}

Session::Session(const Model& model, Backend& backend, int n_ctx, KvTypes kv_types)
    : decoder_(model.spec(), backend),
      cache_(model.spec(), n_ctx, kv_types, &decoder_.backend()),
      logits_(model.spec().n_vocab) {}

Session::Session(const Model& model, ThreadPool& pool, int n_ctx, KvTypes kv_types)
    : decoder_(model.spec(), pool), cache_(model.spec(), n_ctx, kv_types), logits_(model.spec().n_vocab) {}

std::span<float> Session::Eval(std::span<const int32_t> tokens) {
  decoder_.Forward(tokens.data(), static_cast<int>(tokens.size()), n_past(), cache_, logits_.data());
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  return logits_;
}

std::span<float> Session::EvalAll(std::span<const int32_t> tokens) {
  const size_t n_vocab = logits_.size();
  logits_all_.resize(tokens.size() * n_vocab);
  decoder_.Forward(tokens.data(), static_cast<int>(tokens.size()), n_past(), cache_, logits_all_.data(), true);
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  return logits_all_;
}

void Session::Truncate(int64_t n) {
  if (n < 0 || n > n_past()) Fail("cannot truncate a sequence of {} tokens to {}", n_past(), n);
  tokens_.resize(n);
}

}  // namespace origami
