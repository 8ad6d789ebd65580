// The one generic decoder: runs a batch of tokens of one sequence through any DecoderSpec,
// appending their keys and values to the cache. Readable top to bottom in decoder.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "model/kv_cache.h"
#include "model/moe.h"
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

class Decoder {
 public:
  Decoder(const DecoderSpec& spec, ThreadPool& pool);

  // Runs tokens[0..n) at positions pos0..pos0+n-1. Writes the logits of the last token to
  // `logits` (n_vocab floats), or of every token (n * n_vocab) when all_logits is set.
  // Long inputs are processed in chunks of kMaxBatch. Throws origami::Error on a bad token id
  // or when the cache is full.
  void Forward(const int32_t* tokens, int n, int64_t pos0, KvCache& cache, float* logits, bool all_logits = false);

  // Runs a mixed batch (at most kMaxBatch tokens). Logits of the tokens that ask for them are
  // written to `logits` one row (n_vocab floats) each, in batch order.
  void ForwardBatch(const BatchToken* batch, int n, float* logits);

  // One pipeline stage (multi-process execution): runs layers [first_layer, last_layer) only.
  // hidden_in: [n, n_embd] from the previous stage, or null to start from the token embeddings.
  // hidden_out: where to leave [n, n_embd] for the next stage (null on the last stage).
  // logits: written as in ForwardBatch when last_layer == n_layer. With last_layer == n_layer and
  // logits null, hidden_out receives the final hidden states before the output norm instead.
  void ForwardStage(const BatchToken* batch, int n, int first_layer, int last_layer, const float* hidden_in,
                    float* hidden_out, float* logits);

  const DecoderSpec& spec() const { return spec_; }
  // Expert work done so far (MoE models); tests reset it and count per decoded token.
  MoeStats& moe_stats() { return moe_.stats; }
  static constexpr int kMaxBatch = 512;

 private:
  void Attention(int layer, const BatchToken* batch, int n);
  void Reserve(int n);

  const DecoderSpec& spec_;
  ThreadPool& pool_;
  const cpu::KernelTable& kernels_;
  cpu::Workspace ws_;
  int capacity_ = 0;
  // Activations for a chunk of n tokens, row-major [n, dim].
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_, tmp_;
  // Attention tiles: t0, nt = consecutive batch tokens of one sequence (see Attention).
  struct Tile {
    int t0 = 0, nt = 0;
  };
  static constexpr int kTileRows = 32;   // query rows (tokens x heads of one GQA group) per tile
  static constexpr int kBlockRows = 64;  // cache rows per block (a multiple of 4, see kernels.h)
  std::vector<Tile> tiles_;
  std::vector<float> scores_;      // [threads, tile rows, span]: one tile's scores, then weights
  std::vector<const void*> rows_;  // [threads, 2 (K, V), span]: the cache rows one tile reads
  MoeFfn moe_;
};

}  // namespace origami
