// The generic decoder's forward pass.
#include "model/decoder.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops.h"
#include "model/moe.h"
#include "util/error.h"

namespace origami {

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
      std::copy_n(&k_[t * kv_dim], kv_dim, batch[t].cache->K(il, batch[t].pos));
      std::copy_n(&v_[t * kv_dim], kv_dim, batch[t].cache->V(il, batch[t].pos));
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
void Decoder::Attention(int il, const BatchToken* batch, int n) {
  const LayerSpec& l = spec_.layers[il];
  const int hd = l.head_dim;
  const int64_t q_dim = static_cast<int64_t>(l.n_head) * hd;
  const int group = l.n_head / l.n_head_kv;
  const float scale = l.attn_scale > 0 ? l.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
  int64_t max_len = 0;
  for (int t = 0; t < n; ++t) max_len = std::max<int64_t>(max_len, batch[t].pos + 1);
  if (scores_.size() < static_cast<size_t>(pool_.size() * max_len)) {
    scores_.resize(pool_.size() * max_len);
    rows_.resize(2 * pool_.size() * max_len);
  }

  // One task per (token, KV head, share of its query heads): the heads of a GQA group read the same
  // cache rows, so one task walks them back to back while the rows are still in cache, and builds
  // the row pointers once. The group is split only as far as needed to give every thread work (a
  // single decoded token of a model with few KV heads).
  int split = 1;
  for (int d = 1; d <= group; ++d)
    if (group % d == 0) {
      split = d;
      if (static_cast<int64_t>(n) * l.n_head_kv * d >= 2 * pool_.size()) break;
    }
  const int per_task = group / split;
  const int64_t tasks_per_token = static_cast<int64_t>(l.n_head_kv) * split;
  pool_.Run(n * tasks_per_token, [&](int64_t task, int thread) {
    const int t = static_cast<int>(task / tasks_per_token);
    const int kvh = static_cast<int>(task % tasks_per_token) / split;
    const int h0 = kvh * group + static_cast<int>(task % split) * per_task;
    const KvCache& cache = *batch[t].cache;
    const int64_t pos = batch[t].pos;
    const int64_t start = l.sliding_window > 0 ? std::max<int64_t>(0, pos - l.sliding_window + 1) : 0;
    float* s = &scores_[thread * max_len];
    const int64_t len = pos - start + 1;
    const float** k_rows = &rows_[2 * thread * max_len];
    const float** v_rows = k_rows + max_len;
    for (int64_t j = 0; j < len; ++j) {
      k_rows[j] = cache.K(il, start + j) + kvh * hd;
      v_rows[j] = cache.V(il, start + j) + kvh * hd;
    }
    for (int h = h0; h < h0 + per_task; ++h) {
      const float* q = &q_[t * q_dim + static_cast<int64_t>(h) * hd];
      kernels_.attn_scores(q, k_rows, len, hd, scale, s);
      if (l.attn_sinks.empty()) {
        cpu::Softmax(s, len);
      } else {
        // gpt-oss: the head's sink logit joins the softmax's normalization but has no value row.
        const float sink = l.attn_sinks[h];
        float mx = sink;
        for (int64_t j = 0; j < len; ++j) mx = std::max(mx, s[j]);
        float sum = std::exp(sink - mx);
        for (int64_t j = 0; j < len; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int64_t j = 0; j < len; ++j) s[j] /= sum;
      }
      float* out = &att_[t * q_dim + static_cast<int64_t>(h) * hd];
      kernels_.attn_values(s, v_rows, len, hd, out);
    }
  });
}

}  // namespace origami
