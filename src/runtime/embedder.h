// Embeddings inside the engine: each input (token ids) runs through the decoder with a KV cache
// that lives only while it is computed, and its final hidden states after the output norm are
// pooled (mean, first token, last token) into one vector, L2-normalised by default. Inputs of
// many requests share a batch of at most the engine's batch size; a long input spans batches.
// An encoder (bert) sees whole inputs instead, several per batch, with no cache (Decoder::Encode);
// a cross-encoder's score is its rank-pooled "vector". A decoder reranker (Qwen3-Reranker) runs
// as a last-token embedding whose row goes through Decoder::RankScores.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/spec.h"

namespace origami {

struct EmbeddingRequest {
  std::vector<std::vector<int32_t>> inputs;  // each non-empty, at most the sequence limit
  // kMean, kCls or kLast; kRank (a cross-encoder) gives each input's score as a vector of one
  // value, never normalised.
  Pooling pooling = Pooling::kMean;
  bool normalize = true;                     // scale each vector to unit L2 length
  // Encoders: per input (or empty: none) where its second segment (token type 1) begins, e.g. the
  // document of a rerank pair [CLS] query [SEP] document [SEP].
  std::vector<int> segment_b;
};

// The caller's handle: Wait blocks until every input is embedded.
class EmbeddingResult {
 public:
  // One vector (n_embd floats) per input, in input order. Throws origami::Error when the forward
  // pass failed or the engine shut down first.
  std::vector<std::vector<float>> Wait();
  int n_tokens() const { return n_tokens_; }

 private:
  friend class Embedder;
  void Complete();
  void Fail(const std::string& error);

  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::string error_;
  // Engine thread until done_.
  EmbeddingRequest req_;
  std::vector<std::vector<float>> vectors_;
  size_t next_input_ = 0;  // inputs not yet started begin here
  size_t remaining_ = 0;   // inputs not yet pooled
  int n_tokens_ = 0;
};

// x / |x| (a zero vector stays zero). In double, as the pooled sums are.
std::vector<float> L2Normalized(std::span<const double> x);
// The first `dims` values of `v` (Matryoshka truncation), L2-normalised again when `normalize`.
std::vector<float> TruncatedEmbedding(std::span<const float> v, int dims, bool normalize);

class Embedder {
 public:
  Embedder(Decoder& decoder, KvPool& kv) : decoder_(decoder), kv_(kv) {}
  // Queues a request the engine has validated (thread-safe).
  std::shared_ptr<EmbeddingResult> Push(EmbeddingRequest req);
  bool HasWork() const;
  // Engine thread: computes one batch of at most `max_tokens` tokens from the inputs in progress
  // and then new ones, oldest request first. False when nothing could run (no work, or no free KV
  // block for any of it).
  bool Step(int max_tokens);
  // Engine thread: hands the requests Step finished to their waiters (after the engine has
  // published its KV counts, so a waiter sees its blocks freed).
  void Deliver();
  // Engine thread: fails everything queued or in progress (shutdown).
  void FailAll(const std::string& error);

 private:
  // One input being computed: its own cache, the tokens done and the running pool.
  struct Item {
    std::shared_ptr<EmbeddingResult> job;
    size_t input = 0;
    std::unique_ptr<KvCache> cache;
    int64_t done = 0;
    int64_t sched = 0;        // tokens in the batch being computed
    std::vector<double> acc;  // [n_embd]: the sum (mean) or the chosen row (cls, last)
    const std::vector<int32_t>& tokens() const { return job->req_.inputs[input]; }
  };
  // Adds up to `budget` of the item's next tokens to the batch; returns how many.
  int Schedule(Item& item, int budget);
  // Step for an encoder: whole inputs, oldest first, up to `max_tokens` (one input at least).
  bool StepEncoder(int max_tokens);
  // Fails the requests in `failed` and drops what is left of them.
  void FailJobs(const std::vector<EmbeddingResult*>& failed, const std::string& error);
  void Finish(Item& item);

  Decoder& decoder_;
  KvPool& kv_;
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<EmbeddingResult>> queued_;  // guarded by mu_
  // Engine thread only.
  std::deque<std::shared_ptr<EmbeddingResult>> jobs_;  // with inputs not yet started
  std::vector<std::unique_ptr<Item>> items_;
  std::vector<std::shared_ptr<EmbeddingResult>> finished_;  // pooled, not yet delivered
  std::vector<BatchToken> batch_;
  std::vector<Item*> rows_;  // per row of hidden_: its item
  std::vector<float> hidden_;
  // Encoder batches: tokens, token types, sequence starts, and per sequence its (request, input).
  std::vector<int32_t> enc_tokens_, enc_types_;
  std::vector<int64_t> enc_starts_;
  std::vector<std::pair<std::shared_ptr<EmbeddingResult>, size_t>> enc_inputs_;
};

}  // namespace origami
