// Session: one sequence being generated (a decoder, its KV cache and its token history).
// `run`, `chat` and `bench` use it directly; the server's Engine schedules many of them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace origami {

// --ctx-size 0 means: 4096, or the model's own training context if that is smaller.
int ResolveContextSize(const DecoderSpec& spec, int requested);

class Session {
 public:
  // Computes through `backend` (not owned), or through a CPU backend of its own over `pool`.
  Session(const Model& model, Backend& backend, int n_ctx, KvTypes kv_types = {});
  Session(const Model& model, ThreadPool& pool, int n_ctx, KvTypes kv_types = {});

  // Appends tokens to the sequence and returns the logits after the last one (n_vocab floats,
  // valid until the next call).
  std::span<float> Eval(std::span<const int32_t> tokens);
  // As Eval, but returns the logits after every one of the tokens (tokens.size() rows of n_vocab,
  // valid until the next call): speculative decoding verifies a draft in one such step.
  std::span<float> EvalAll(std::span<const int32_t> tokens);
  // Forgets everything after the first n tokens (n <= size), so they can be re-evaluated. The KV
  // rows past n stay in place and are overwritten by the next Eval: attention never reads a
  // position at or after the query's, and this standalone cache keeps every block (window parts
  // included), so this holds for every KV type and for sliding-window layers.
  void Truncate(int64_t n);

  const std::vector<int32_t>& tokens() const { return tokens_; }
  int64_t n_past() const { return static_cast<int64_t>(tokens_.size()); }
  int n_ctx() const { return cache_.n_ctx(); }
  const KvCache& cache() const { return cache_; }

 private:
  Decoder decoder_;
  KvCache cache_;
  std::vector<int32_t> tokens_;
  std::vector<float> logits_;
  std::vector<float> logits_all_;  // EvalAll's rows
};

}  // namespace origami
