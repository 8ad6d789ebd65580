// The encoder's forward pass (bert, nomic-bert): whole sequences, bidirectional attention,
// post-norm LayerNorms, op by op through the backend as the decoder's is. Numerics follow the
// Hugging Face BertModel: exact (erf) GELU, LayerNorm with the file's epsilon, the rank head on the
// [CLS] row.
#include <algorithm>
#include <cmath>

#include "model/decoder.h"
#include "util/error.h"

namespace origami {

void Decoder::Encode(const EncoderBatch& b, float* out) {
  if (!spec_.encoder) Fail("'{}' is not an encoder", spec_.arch);
  const int64_t n = static_cast<int64_t>(b.tokens.size());
  const int64_t n_seq = static_cast<int64_t>(b.seq_start.size()) - 1;
  if (n <= 0 || n_seq <= 0 || static_cast<int64_t>(b.types.size()) != n ||
      b.seq_start.front() != 0 || b.seq_start.back() != n)
    Fail("encoder batch: {} tokens, {} types, {} sequence starts do not match", n, b.types.size(),
         n_seq + 1);
  enc_pos_.resize(n);
  for (int64_t s = 0; s < n_seq; ++s) {
    const int64_t len = b.seq_start[s + 1] - b.seq_start[s];
    if (len <= 0 || len > spec_.n_ctx_train)
      Fail("encoder batch: sequence {} has {} tokens (1 to {} allowed)", s, len, spec_.n_ctx_train);
    for (int64_t i = 0; i < len; ++i) enc_pos_[b.seq_start[s] + i] = static_cast<int32_t>(i);
  }
  for (int64_t t = 0; t < n; ++t) {
    if (b.tokens[t] < 0 || b.tokens[t] >= spec_.n_vocab)
      Fail("token id {} is out of range (vocabulary has {} tokens)", b.tokens[t], spec_.n_vocab);
    if (b.types[t] < 0 || b.types[t] >= spec_.type_embd.rows)
      Fail("token type {} is out of range (the model has {} types)", b.types[t],
           spec_.type_embd.rows);
  }
  Reserve(static_cast<int>(n));
  Backend& be = backend_;
  const int64_t e = spec_.n_embd;
  const float eps = spec_.norm_eps;
  const Tensor x{x_->data(), n, e}, tmp{tmp_->data(), n, e};

  // Embedding: token + token type + position, then LayerNorm.
  be.Embed(spec_.tok_embd, b.tokens, 1.0f, x);
  be.Embed(spec_.type_embd, b.types, 1.0f, tmp);
  be.Add(x, tmp);
  if (spec_.pos_embd.data) {  // absolute positions (bert); nomic-bert rotates Q and K instead
    be.Embed(spec_.pos_embd, enc_pos_, 1.0f, tmp);
    be.Add(x, tmp);
  }
  be.LayerNorm(x, spec_.embd_norm.data(), spec_.embd_norm_b.data(), eps, x);

  for (const LayerSpec& l : spec_.layers) {
    const int64_t qd = static_cast<int64_t>(l.n_head) * l.head_dim;
    const Tensor q{q_->data(), n, qd}, k{k_->data(), n, qd}, v{v_->data(), n, qd},
        att{att_->data(), n, qd};
    // Attention: Q, K, V (one fused product in nomic-bert, split by columns) with their biases
    // where the family has them, rope where it has rotary positions, every token over its whole
    // sequence, output projection, then LayerNorm(x + attention).
    if (l.wqkv.data) {
      const Tensor qkv{gate_->data(), n, 3 * qd};  // gate_ is free until the FFN
      const MatMulOp f[] = {{&l.wqkv, x, qkv}};
      be.MatMul(f);
      for (int part = 0; part < 3; ++part) {
        CopyOp c;
        c.src_col = part * qd;
        c.width = qd;
        be.CopyColumns(c, qkv, part == 0 ? q : part == 1 ? k : v);
      }
    } else {
      const MatMulOp qkv[] = {{&l.wq, x, q}, {&l.wk, x, k}, {&l.wv, x, v}};
      be.MatMul(qkv);
    }
    if (!l.bq.empty()) be.AddBias(q, l.bq.data());
    if (!l.bk.empty()) be.AddBias(k, l.bk.data());
    if (!l.bv.empty()) be.AddBias(v, l.bv.data());
    if (!spec_.ropes.empty()) {
      const RopeOp rope{spec_.ropes[l.rope_index].Table(), l.n_head, l.n_head_kv, l.head_dim};
      be.Rope(rope, enc_pos_, q, k);
    }
    EncoderAttentionOp op;
    op.n_head = l.n_head;
    op.head_dim = l.head_dim;
    op.scale = 1.0f / std::sqrt(static_cast<float>(l.head_dim));
    op.seq_start = b.seq_start;
    be.EncoderAttention(op, q, k, v, att);
    const MatMulOp o[] = {{&l.wo, att, tmp}};
    be.MatMul(o);
    if (!l.bo.empty()) be.AddBias(tmp, l.bo.data());
    be.Add(x, tmp);
    be.LayerNorm(x, l.attn_out_norm.data(), l.attn_out_norm_b.data(), eps, x);
    // FFN, then LayerNorm(x + FFN): up, GELU, down with biases (bert), or silu(gate) * up, down
    // (nomic-bert's SwiGLU, no biases).
    const Tensor up{up_->data(), n, l.n_ff};
    if (l.w_gate.data) {
      const Tensor gate{gate_->data(), n, l.n_ff};
      const MatMulOp gu[] = {{&l.w_gate, x, gate}, {&l.w_up, x, up}};
      be.MatMul(gu);
      be.Activation(ActivationOp{FfnKind::kSwiGlu}, gate, up);
      const MatMulOp d[] = {{&l.w_down, gate, tmp}};
      be.MatMul(d);
    } else {
      const MatMulOp u[] = {{&l.w_up, x, up}};
      be.MatMul(u);
      if (!l.b_up.empty()) be.AddBias(up, l.b_up.data());
      be.Unary(UnaryKind::kGelu, up);
      const MatMulOp d[] = {{&l.w_down, up, tmp}};
      be.MatMul(d);
    }
    if (!l.b_down.empty()) be.AddBias(tmp, l.b_down.data());
    be.Add(x, tmp);
    be.LayerNorm(x, l.layer_out_norm.data(), l.layer_out_norm_b.data(), eps, x);
  }

  if (spec_.pooling != Pooling::kRank) {
    be.Download(x, out);
    return;
  }
  // The rank head runs on every row and only the [CLS] rows are kept: one n_embd x n_embd product
  // per token is under 1% of a BERT layer stack's work, and it keeps the batch one product.
  Tensor h = x;
  if (spec_.cls.data) {
    const Tensor xn{xn_->data(), n, e};
    const MatMulOp c[] = {{&spec_.cls, x, xn}};
    be.MatMul(c);
    be.AddBias(xn, spec_.cls_b.data());
    be.Unary(UnaryKind::kTanh, xn);
    h = xn;
  }
  const Tensor score = tmp.View(n, 1);
  const MatMulOp c[] = {{&spec_.cls_out, h, score}};
  be.MatMul(c);
  be.AddBias(score, spec_.cls_out_b.data());
  enc_scores_.resize(n);
  be.Download(score, enc_scores_.data());
  for (int64_t s = 0; s < n_seq; ++s) out[s] = enc_scores_[b.seq_start[s]];
}

}  // namespace origami
