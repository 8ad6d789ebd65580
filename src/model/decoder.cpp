// The generic decoder's forward pass.
#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/ops.h"
#include "model/moe.h"
#include "util/error.h"

namespace origami {

namespace {
// One K or V row (n floats after rope) into the cache in its KV type: F32 as it is, the others by
// the dtype table's reference conversion (round to nearest; Q8_0/Q4_0 one scale per 32 values, as
// ggml quantizes them). O(n) per token and layer, against attention's O(context * n).
void StoreKvRow(DType type, const float* x, uint8_t* dst, int64_t n) {
  if (type == DType::kF32) {
    std::memcpy(dst, x, n * sizeof(float));
  } else {
    Traits(type).from_float(x, dst, n);
  }
}
}  // namespace

Decoder::Decoder(const DecoderSpec& spec, ThreadPool& pool)
    : spec_(spec), pool_(pool), kernels_(cpu::Kernels()) {}

void Decoder::Reserve(int n) {
  if (n <= capacity_) return;
  int64_t q_dim = 0, kv_dim = 0, ff = 0;
  for (const auto& l : spec_.layers) {
    q_dim = std::max<int64_t>(q_dim, static_cast<int64_t>(l.n_head) * l.head_dim);
    kv_dim = std::max<int64_t>(kv_dim, static_cast<int64_t>(l.n_head_kv) * l.head_dim);
    ff = std::max<int64_t>(ff, l.n_ff);
  }
  const size_t e = spec_.n_embd;
  x_.resize(n * e);
  xn_.resize(n * e);
  tmp_.resize(n * std::max<size_t>(e, q_dim));
  q_.resize(n * q_dim);
  k_.resize(n * kv_dim);
  v_.resize(n * kv_dim);
  att_.resize(n * q_dim);
  gate_.resize(n * ff);
  up_.resize(n * ff);
  capacity_ = n;
}

void Decoder::Forward(const int32_t* tokens, int n, int64_t pos0, KvCache& cache, float* logits, bool all_logits) {
  if (n <= 0) Fail("nothing to decode: empty token batch");
  std::vector<BatchToken> batch;
  for (int done = 0; done < n;) {
    const int chunk = std::min(kMaxBatch, n - done);
    batch.resize(chunk);
    for (int i = 0; i < chunk; ++i)
      batch[i] = {tokens[done + i], pos0 + done + i, &cache, all_logits || done + i == n - 1};
    float* out = all_logits ? logits + static_cast<int64_t>(done) * spec_.n_vocab : logits;
    ForwardBatch(batch.data(), chunk, out);
    done += chunk;
  }
}

void Decoder::ForwardBatch(const BatchToken* batch, int n, float* logits) {
  ForwardStage(batch, n, 0, spec_.n_layer(), nullptr, nullptr, logits);
}

void Decoder::ForwardStage(const BatchToken* batch, int n, int first_layer, int last_layer, const float* hidden_in,
                           float* hidden_out, float* logits) {
  if (first_layer < 0 || last_layer > spec_.n_layer() || first_layer >= last_layer)
    Fail("bad layer range [{}, {}) for a model of {} layers", first_layer, last_layer, spec_.n_layer());
  if (n <= 0 || n > kMaxBatch) Fail("batch of {} tokens (1 to {} allowed)", n, kMaxBatch);
  for (int i = 0; i < n; ++i) {
    const BatchToken& b = batch[i];
    if (b.token < 0 || b.token >= spec_.n_vocab)
      Fail("token id {} is out of range (vocabulary has {} tokens)", b.token, spec_.n_vocab);
    if (!b.cache || b.pos < 0 || b.pos >= b.cache->n_ctx())
      Fail("context is full: position {} exceeds the context size {}", b.pos, b.cache ? b.cache->n_ctx() : 0);
  }
  Reserve(n);
  const int64_t e = spec_.n_embd;
  auto matmul = [&](const cpu::MatrixView& w, const float* in, float* out) {
    cpu::MatMul(kernels_, w, in, n, out, pool_, ws_);
  };
  auto add_bias = [&](const Vec& b, float* y, int64_t dim) {
    if (b.empty()) return;
    for (int t = 0; t < n; ++t)
      for (int64_t i = 0; i < dim; ++i) y[t * dim + i] += b[i];
  };

  // Gemma's extra norms of a block's output before it joins the residual stream (in tmp_).
  auto post_norm = [&](const Vec& w) {
    if (w.empty()) return;
    for (int t = 0; t < n; ++t) cpu::RmsNorm(&tmp_[t * e], w.data(), &tmp_[t * e], e, spec_.norm_eps);
  };

  // Token embeddings (or the previous stage's hidden states).
  if (hidden_in) std::copy_n(hidden_in, static_cast<int64_t>(n) * e, x_.data());
  for (int t = 0; t < n && !hidden_in; ++t) {
    cpu::DequantizeRow(spec_.tok_embd, batch[t].token, &x_[t * e]);
    if (spec_.embd_scale != 1.0f)
      for (int64_t i = 0; i < e; ++i) x_[t * e + i] *= spec_.embd_scale;
  }

  for (int il = first_layer; il < last_layer; ++il) {
    const LayerSpec& l = spec_.layers[il];
    const int64_t q_dim = static_cast<int64_t>(l.n_head) * l.head_dim;
    const int64_t kv_dim = static_cast<int64_t>(l.n_head_kv) * l.head_dim;
    const cpu::RopeTable rope = spec_.ropes[l.rope_index].Table();

    // Attention block: norm, Q/K/V, rope, cache, attention, output projection, residual.
    for (int t = 0; t < n; ++t) cpu::RmsNorm(&x_[t * e], l.attn_norm.data(), &xn_[t * e], e, spec_.norm_eps);
    {
      const cpu::MatMulJob qkv[3] = {{&l.wq, xn_.data(), n, q_.data()},
                                     {&l.wk, xn_.data(), n, k_.data()},
                                     {&l.wv, xn_.data(), n, v_.data()}};
      cpu::MatMulGroup(kernels_, qkv, pool_, ws_);
    }
    add_bias(l.bq, q_.data(), q_dim);
    add_bias(l.bk, k_.data(), kv_dim);
    add_bias(l.bv, v_.data(), kv_dim);
    // Per-head RMSNorm of Q and K before rope (Qwen3, Gemma 3).
    for (int64_t r = 0; r < static_cast<int64_t>(n) * l.n_head && !l.q_norm.empty(); ++r)
      cpu::RmsNorm(&q_[r * l.head_dim], l.q_norm.data(), &q_[r * l.head_dim], l.head_dim, spec_.norm_eps);
    for (int64_t r = 0; r < static_cast<int64_t>(n) * l.n_head_kv && !l.k_norm.empty(); ++r)
      cpu::RmsNorm(&k_[r * l.head_dim], l.k_norm.data(), &k_[r * l.head_dim], l.head_dim, spec_.norm_eps);
    for (int t = 0; t < n; ++t) {
      cpu::Rope(&q_[t * q_dim], l.n_head, l.head_dim, batch[t].pos, rope);
      cpu::Rope(&k_[t * kv_dim], l.n_head_kv, l.head_dim, batch[t].pos, rope);
      StoreKvRow(batch[t].cache->pool().types().k, &k_[t * kv_dim], batch[t].cache->K(il, batch[t].pos), kv_dim);
      StoreKvRow(batch[t].cache->pool().types().v, &v_[t * kv_dim], batch[t].cache->V(il, batch[t].pos), kv_dim);
    }
    Attention(il, batch, n);
    matmul(l.wo, att_.data(), tmp_.data());
    add_bias(l.bo, tmp_.data(), e);
    post_norm(l.post_attn_norm);
    for (int64_t i = 0; i < n * e; ++i) x_[i] += tmp_[i];

    // Feed-forward block: norm, gate/up, gated activation, down projection (or the routed
    // experts), residual.
    for (int t = 0; t < n; ++t) cpu::RmsNorm(&x_[t * e], l.ffn_norm.data(), &xn_[t * e], e, spec_.norm_eps);
    if (l.n_expert > 0) {
      moe_.Forward(spec_, l, xn_.data(), n, tmp_.data(), kernels_, pool_, ws_);
    } else {
      const cpu::MatMulJob gate_up[2] = {{&l.w_gate, xn_.data(), n, gate_.data()},
                                         {&l.w_up, xn_.data(), n, up_.data()}};
      cpu::MatMulGroup(kernels_, gate_up, pool_, ws_);
      GatedActivation(spec_, gate_.data(), up_.data(), gate_.data(), static_cast<int64_t>(n) * l.n_ff);
      matmul(l.w_down, gate_.data(), tmp_.data());
    }
    post_norm(l.post_ffn_norm);
    for (int64_t i = 0; i < n * e; ++i) x_[i] += tmp_[i];
  }

  // Not the last layer, or a last stage asked for the final hidden states (logits null): another
  // process applies the output head.
  if (last_layer < spec_.n_layer() || !logits) {
    if (hidden_out) std::copy_n(x_.data(), static_cast<int64_t>(n) * e, hidden_out);
    return;
  }
  // Output: final norm and the classifier, only for the tokens that want logits.
  int rows = 0;
  for (int t = 0; t < n; ++t)
    if (batch[t].logits) cpu::RmsNorm(&x_[t * e], spec_.output_norm.data(), &xn_[rows++ * e], e, spec_.norm_eps);
  if (rows > 0) cpu::MatMul(kernels_, spec_.output, xn_.data(), rows, logits, pool_, ws_);
}

// Causal grouped-query attention of each batch token against its own sequence's cache.
//
// Work is split into tiles: up to kTileTokens consecutive tokens of one sequence (a prompt chunk)
// times the query heads of one KV head (a GQA group). A tile walks its KV head's cache rows in
// blocks of kBlockRows, and every query row of the tile uses a block while it is in L1: a 512-token
// prompt at depth 4096 reads each K and V row once per tile instead of once per query row. Scores
// are kept per tile (rows x context, in floats) and each row's softmax is taken over all of them,
// so every score, weight and output is the same float, in the same order, as a one-row-at-a-time
// pass (the kernels' blocked calls are exact, see kernels.h); an online (flash) softmax would have
// saved that buffer but changed the float32 cache's results.
void Decoder::Attention(int il, const BatchToken* batch, int n) {
  const LayerSpec& l = spec_.layers[il];
  const int hd = l.head_dim;
  const int64_t q_dim = static_cast<int64_t>(l.n_head) * hd;
  const int group = l.n_head / l.n_head_kv;
  const float scale = l.attn_scale > 0 ? l.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t window = l.sliding_window;
  auto first_pos = [window](int64_t pos) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0; };

  // Runs of consecutive batch tokens of one sequence at consecutive positions, cut into tiles.
  const int tile_tokens = std::max(1, kTileRows / group);
  tiles_.clear();
  for (int t = 0; t < n;) {
    int e = t + 1;
    while (e < n && e - t < tile_tokens && batch[e].cache == batch[t].cache && batch[e].pos == batch[e - 1].pos + 1) ++e;
    tiles_.push_back({t, e - t});
    t = e;
  }
  // Each tile's GQA group is split across tasks only as far as needed to give every thread work
  // (a single decoded token of a model with few KV heads).
  const int64_t n_tiles = static_cast<int64_t>(tiles_.size());
  int split = 1;
  for (int d = 1; d <= group; ++d)
    if (group % d == 0) {
      split = d;
      if (n_tiles * l.n_head_kv * d >= 2 * pool_.size()) break;
    }
  const int per_task = group / split;
  int64_t max_span = 0;  // the most cache rows one tile reads
  for (const Tile& tl : tiles_)
    max_span = std::max(max_span, batch[tl.t0 + tl.nt - 1].pos + 1 - first_pos(batch[tl.t0].pos));
  const int64_t tile_rows = static_cast<int64_t>(tile_tokens) * per_task;
  const int64_t max_len = window > 0 ? std::min<int64_t>(window, max_span) : max_span;
  if (scores_.size() < static_cast<size_t>(pool_.size() * tile_rows * max_len))
    scores_.resize(pool_.size() * tile_rows * max_len);
  if (rows_.size() < static_cast<size_t>(2 * pool_.size() * max_span)) rows_.resize(2 * pool_.size() * max_span);

  const int64_t tasks_per_tile = static_cast<int64_t>(l.n_head_kv) * split;
  pool_.Run(n_tiles * tasks_per_tile, [&](int64_t task, int thread) {
    const Tile& tl = tiles_[task / tasks_per_tile];
    const int kvh = static_cast<int>(task % tasks_per_tile) / split;
    const int h0 = kvh * group + static_cast<int>(task % split) * per_task;
    const KvCache& cache = *batch[tl.t0].cache;
    const cpu::AttnKernels& ak = kernels_.Attn(cache.pool().types().k);
    const cpu::AttnKernels& av = kernels_.Attn(cache.pool().types().v);
    const size_t k_head = cache.pool().KHeadBytes(il), v_head = cache.pool().VHeadBytes(il);
    // The cache rows the tile reads: [base, end).
    const int64_t base = first_pos(batch[tl.t0].pos), end = batch[tl.t0 + tl.nt - 1].pos + 1;
    const void** k_rows = &rows_[2 * thread * max_span];
    const void** v_rows = k_rows + max_span;
    for (int64_t j = base; j < end; ++j) {
      k_rows[j - base] = cache.K(il, j) + kvh * k_head;
      v_rows[j - base] = cache.V(il, j) + kvh * v_head;
    }
    // Row r of the tile: token tl.t0 + r / per_task, head h0 + r % per_task; it attends to
    // [first_pos(pos), pos], len of them, from k_rows[off] on.
    const int rows = tl.nt * per_task;
    float* s_tile = &scores_[thread * tile_rows * max_len];
    auto row_range = [&](int r, int64_t* off, int64_t* len) {
      const int64_t pos = batch[tl.t0 + r / per_task].pos;
      *off = first_pos(pos) - base;
      *len = pos - first_pos(pos) + 1;
    };
    int64_t longest = 0;
    for (int r = 0; r < rows; ++r) {
      int64_t off, len;
      row_range(r, &off, &len);
      longest = std::max(longest, len);
    }
    // Scores, block by block; every row of the tile while the block's K rows are in L1.
    for (int64_t b = 0; b < longest; b += kBlockRows) {
      for (int r = 0; r < rows; ++r) {
        int64_t off, len;
        row_range(r, &off, &len);
        if (b >= len) continue;
        const int t = tl.t0 + r / per_task, h = h0 + r % per_task;
        const float* q = &q_[t * q_dim + static_cast<int64_t>(h) * hd];
        ak.scores(q, k_rows + off + b, std::min<int64_t>(kBlockRows, len - b), hd, scale, s_tile + r * max_len + b);
      }
    }
    for (int r = 0; r < rows; ++r) {
      int64_t off, len;
      row_range(r, &off, &len);
      float* s = s_tile + r * max_len;
      if (l.attn_sinks.empty()) {
        cpu::Softmax(s, len);
      } else {
        // gpt-oss: the head's sink logit joins the softmax's normalization but has no value row.
        const float sink = l.attn_sinks[h0 + r % per_task];
        float mx = sink;
        for (int64_t j = 0; j < len; ++j) mx = std::max(mx, s[j]);
        float sum = std::exp(sink - mx);
        for (int64_t j = 0; j < len; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int64_t j = 0; j < len; ++j) s[j] /= sum;
      }
      const int t = tl.t0 + r / per_task, h = h0 + r % per_task;
      std::fill_n(&att_[t * q_dim + static_cast<int64_t>(h) * hd], hd, 0.0f);
    }
    // Weighted sums of the value rows, block by block (the kernels accumulate in row order).
    for (int64_t b = 0; b < longest; b += kBlockRows) {
      for (int r = 0; r < rows; ++r) {
        int64_t off, len;
        row_range(r, &off, &len);
        if (b >= len) continue;
        const int t = tl.t0 + r / per_task, h = h0 + r % per_task;
        av.values(s_tile + r * max_len + b, v_rows + off + b, std::min<int64_t>(kBlockRows, len - b), hd,
                  &att_[t * q_dim + static_cast<int64_t>(h) * hd]);
      }
    }
  });
}

}  // namespace origami
