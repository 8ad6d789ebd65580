// The one generic decoder: runs a batch of tokens through any DecoderSpec, appending their keys
// and values to the cache, by describing each op to a Backend (backend/backend.h). Readable top to
// bottom in decoder.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/kv_cache.h"
#include "model/spec.h"
#include "util/thread_pool.h"

namespace origami {

// One token of a batch: which sequence (its cache) and position it belongs to. A batch may mix
// tokens of many sequences (continuous batching) and several tokens of one (a prompt chunk);
// within one sequence, positions must be consecutive and in order.
struct BatchToken {
  int32_t token = 0;
  int64_t pos = 0;
  KvCache* cache = nullptr;
  bool logits = false;  // write this token's logits to the output
};

// A batch of whole sequences for an encoder (DecoderSpec::encoder): token ids, their token types
// (0 or 1: the first or second segment of a pair) and where each sequence starts. Positions count
// from 0 in each sequence.
struct EncoderBatch {
  std::span<const int32_t> tokens, types;
  std::span<const int64_t> seq_start;  // n_seq + 1 values: sequence s is tokens [seq_start[s], seq_start[s + 1])
};

class Decoder {
 public:
  // Computes through `backend` (not owned; it must outlive the decoder).
  Decoder(const DecoderSpec& spec, Backend& backend);
  // Computes through a CPU backend of its own over `pool`.
  Decoder(const DecoderSpec& spec, ThreadPool& pool);
  // Computes through `backend`, which it owns.
  Decoder(const DecoderSpec& spec, std::unique_ptr<Backend> backend);
  ~Decoder();

  // Runs tokens[0..n) at positions pos0..pos0+n-1. Writes the logits of the last token to
  // `logits` (n_vocab floats), or of every token (n * n_vocab) when all_logits is set.
  // Long inputs are processed in chunks of kMaxBatch. Throws origami::Error on a bad token id
  // or when the cache is full.
  void Forward(const int32_t* tokens, int n, int64_t pos0, KvCache& cache, float* logits, bool all_logits = false);

  // Runs a mixed batch (at most kMaxBatch tokens). Logits of the tokens that ask for them are
  // written to `logits` one row (n_vocab floats) each, in batch order.
  void ForwardBatch(const BatchToken* batch, int n, float* logits);

  // Runs a mixed batch (at most kMaxBatch tokens) for embeddings: the final hidden states after
  // the output norm (no classifier) of the tokens that ask for logits are written to `hidden`, one
  // row (n_embd floats) each, in batch order. Attention is causal, as for generation.
  void ForwardHidden(const BatchToken* batch, int n, float* hidden);

  // Runs whole sequences through an encoder (bidirectional attention, no cache; encoder.cpp).
  // With rank pooling it writes each sequence's score (n_seq floats), otherwise the final hidden
  // state of every token (tokens.size() * n_embd floats), to host memory. Throws origami::Error on
  // a bad batch or when the model is not an encoder.
  void Encode(const EncoderBatch& batch, float* out);

  // One pipeline stage (multi-process execution): runs layers [first_layer, last_layer) only.
  // hidden_in: [n, n_embd] from the previous stage, or null to start from the token embeddings.
  // hidden_out: where to leave [n, n_embd] for the next stage (null on the last stage).
  // logits: written as in ForwardBatch when last_layer == n_layer. With last_layer == n_layer and
  // logits null, hidden_out receives the final hidden states before the output norm instead.
  void ForwardStage(const BatchToken* batch, int n, int first_layer, int last_layer, const float* hidden_in,
                    float* hidden_out, float* logits);

  // The output head alone (final norm and classifier) on the final hidden states a last pipeline
  // stage left (hidden: [rows, n_embd] host floats, every row wanting logits).
  void Head(const float* hidden, int rows, float* logits);

  // A decoder reranker's head (pooling kRank, cls_out [2, n_embd]: yes, no) on final hidden
  // states after the output norm (hidden: [rows, n_embd] host floats, as ForwardHidden writes
  // them): scores[r] = sigmoid(yes - no), the softmax probability of "yes" over the two.
  void RankScores(const float* hidden, int rows, float* scores);

  const DecoderSpec& spec() const { return spec_; }
  Backend& backend() { return backend_; }
  // Expert work done so far (MoE models); tests reset it and count per decoded token.
  MoeStats& moe_stats() { return backend_.moe_stats(); }
  static constexpr int kMaxBatch = 512;

 private:
  void Reserve(int n);
  // Multi-head latent attention of one layer, from the normalized input to the output projection
  // (out: [n, n_embd]), with the latent cache or the expanded one (LayerSpec::mla_latent_cache).
  void MlaAttention(const LayerSpec& l, int il, Tensor xn, const PagedBatch& batch, Tensor out);
  // Checks the batch and lays it out flat (tokens, positions, block tables) in tables_.
  PagedBatch Flatten(const BatchToken* batch, int n);
  // Layers [first_layer, last_layer) over the batch, leaving the hidden states in x_.
  PagedBatch RunLayers(const BatchToken* batch, int n, int first_layer, int last_layer, const float* hidden_in);

  const DecoderSpec& spec_;
  std::unique_ptr<Backend> owned_;
  Backend& backend_;
  int capacity_ = 0;
  // Activations for a chunk of up to capacity_ tokens, row-major [n, dim], in the backend's memory.
  std::unique_ptr<Buffer> x_, xn_, q_, k_, v_, att_, gate_, up_, tmp_;
  // MLA (DeepSeek): the query heads [n, n_head * (nope + rope)], the compressed query [n,
  // q_lora_rank], latent and rope key [n, kv_lora_rank + rope], the normalized latent [n,
  // kv_lora_rank], its expansion [n, n_head * (nope + v)] (expanded cache only), the value heads
  // [n, n_head * v]; and the shared experts' output [n, n_embd].
  std::unique_ptr<Buffer> mq_, qa_, kva_, lat_, kvb_, mo_, shared_;
  PagedBatchTables tables_;
  std::vector<const KvCache*> caches_;
  std::vector<int32_t> enc_pos_;    // Encode: each token's position in its sequence
  std::vector<float> enc_scores_;   // Encode: the rank head's score of every token
  std::vector<LoraOp> lora_ops_;  // one product group's LoRA terms (kept to avoid allocating per layer)  // the batch's sequences, in order of first appearance
};

}  // namespace origami
