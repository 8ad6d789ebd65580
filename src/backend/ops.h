// What the decoder asks a backend to compute: activation tensors and the descriptions of the
// coarse ops (a group of products, attention over the paged cache, the gated FFN, MoE). Plain
// data that points at weights (tensor/view.h) and at parameters converted to float at load.
#pragma once

#include <cstdint>
#include <span>

#include "tensor/view.h"

namespace origami {

// A float32 activation matrix in a backend's memory, rows x cols, row-major, row stride cols.
// The decoder passes tensors between ops and never reads their data (on a GPU it is device memory).
struct Tensor {
  float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  int64_t size() const { return rows * cols; }
  // The same memory seen as `r` rows of `c` (r * c == size()): per-head views of a [n, heads * hd]
  // tensor, or the first rows of a buffer reserved for more.
  Tensor View(int64_t r, int64_t c) const { return {data, r, c}; }
};

enum class FfnKind {
  kSwiGlu,         // silu(gate) * up
  kGeGlu,          // gelu_tanh(gate) * up (Gemma)
  kSwiGluClamped,  // gpt-oss: g = min(gate, limit), u = clamp(up, -limit, limit), g*sigmoid(alpha*g)*(u+1)
};

// The gated activation of an FFN: gate = act(gate) * up.
struct ActivationOp {
  FfnKind kind = FfnKind::kSwiGlu;
  float alpha = 1.702f, limit = 7.0f;  // kSwiGluClamped only
};

// How a MoE router turns its logits into expert weights.
enum class RouterKind {
  kSoftmaxTopK,  // softmax over all experts, keep the top k (Qwen3-MoE, Mixtral), renormalized if norm_topk
  kTopKSoftmax,  // keep the top k logits, softmax over those (gpt-oss)
  kSigmoid,      // sigmoid of each logit, keep the top k, renormalized if norm_topk (DeepSeek-V3)
};

// One product of a group: y[t, r] = dot(W[r, :], x[t, :]) for the x.rows tokens.
struct MatMulOp {
  const MatrixView* w;
  Tensor x;  // [n, w->cols]
  Tensor y;  // [n, w->rows]
};

// A low-rank term on top of a product already computed (a LoRA adapter on its matrix):
// y[t] += scale * B (A x[t]). A and B are F32 matrices the adapter holds (model/lora.h).
struct LoraOp {
  const MatrixView* a = nullptr;  // [rank, n_in]
  const MatrixView* b = nullptr;  // [n_out, rank]
  float scale = 0.0f;             // the user's scale * alpha / rank
  Tensor x;                       // [n, n_in]: the product's input
  Tensor y;                       // [n, n_out]: the product's output, added to
};

// Rope of Q and K of one layer at each batch token's position. Each head of head_dim values has
// its dims [rot_offset, rot_offset + table.n_rot) rotated (MLA: the decoupled rope part after
// the non-rotated one; 0 elsewhere).
struct RopeOp {
  RopeTable table;
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  int rot_offset = 0;
};

// A strided copy of columns, for splitting and joining per-head parts (MLA): for every row t and
// group g < groups, dst[t, dst_col + g * dst_step + i] = src[t, src_col + g * src_step + i] for
// i < width. src_step 0 repeats the same source columns in every group.
struct CopyOp {
  int64_t src_col = 0, src_step = 0;
  int64_t dst_col = 0, dst_step = 0;
  int64_t width = 0;
  int groups = 1;
};

// Per-head products with one block of rows of a matrix per head (MLA's absorbed attention: the
// key and value expansions of attn_kv_b, head by head): head h uses W_h = rows
// [h * head_stride + row0, + rows) of w, its input x_h = x[t, x_col + h * x_step, ...] and its
// output y_h = y[t, y_col + h * y_step, ...].
//   transposed false: y_h[i] = sum_c W_h[i, c] x_h[c]   (x_h: w->cols values, y_h: rows values)
//   transposed true:  y_h[c] = sum_i W_h[i, c] x_h[i]   (x_h: rows values, y_h: w->cols values)
struct HeadMatMulOp {
  const MatrixView* w = nullptr;
  int n_head = 0;
  int64_t head_stride = 0, row0 = 0, rows = 0;
  bool transposed = false;
  int64_t x_col = 0, x_step = 0, y_col = 0, y_step = 0;
};

// Causal grouped-query attention of one layer.
struct AttentionOp {
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  int head_dim_v = 0;            // per head, for V and the output; 0 = head_dim (MLA: narrower)
  float scale = 0.0f;            // multiplies q.k
  int64_t window = 0;            // > 0: sliding window of that many positions
  const float* sinks = nullptr;  // [n_head]: a learned logit per head joining the softmax (gpt-oss)
};

// Non-causal attention of an encoder layer (bert): every token attends to every token of its own
// sequence. The batch holds whole sequences, one after the other: sequence s is the tokens
// [seq_start[s], seq_start[s + 1]). Q, K and V have n_head heads of head_dim values each.
struct EncoderAttentionOp {
  int n_head = 0, head_dim = 0;
  float scale = 0.0f;  // multiplies q.k
  std::span<const int64_t> seq_start;  // n_seq + 1 values, from 0 to the batch's token count
};

// An element-wise function of an encoder: x = f(x).
enum class UnaryKind {
  kGelu,  // x * Phi(x) with the exact normal CDF (erf), as BERT's "gelu" is defined
  kTanh,  // the reranker head's pooler
};

// The routed-experts FFN of one layer: router, top-k, each routed expert's gated FFN, weighted sum.
struct MoeOp {
  int n_expert = 0, n_expert_used = 0;
  int64_t n_embd = 0, n_ff = 0;
  RouterKind router_kind = RouterKind::kSoftmaxTopK;
  bool norm_topk = true;  // renormalize the kept softmax weights to sum to 1
  ActivationOp act;
  const MatrixView* router = nullptr;  // [n_expert, n_embd]
  const float* router_bias = nullptr;  // [n_expert] or null
  ExpertsView gate, up, down;          // n_expert x [n_ff, n_embd], x2, n_expert x [n_embd, n_ff]
  const float* gate_b = nullptr;       // [n_expert * n_ff] or null (gpt-oss)
  const float* up_b = nullptr;         // [n_expert * n_ff] or null
  const float* down_b = nullptr;       // [n_expert * n_embd] or null
  // DeepSeek-V3 routing: a bias added to the scores for the selection only (exp_probs_b; the
  // weights stay the unbiased scores), and grouped top-k: experts in n_group equal groups, each
  // group scored by the sum of its two best (biased) scores, only the best n_group_used groups
  // eligible. The kept weights are multiplied by weights_scale (routed_scaling_factor).
  const float* select_bias = nullptr;  // [n_expert] or null
  int n_group = 1, n_group_used = 1;
  float weights_scale = 1.0f;
};

// Counts of the expert work done, for tests and benchmarks: a decoded token of a model with k
// experts per token adds 3 * k matmuls per MoE layer and 3 * k experts' bytes.
struct MoeStats {
  uint64_t expert_matmuls = 0;  // expert matrix products run (each over all tokens routed to it)
  uint64_t expert_bytes = 0;    // weight bytes of the expert matrices those products read
  uint64_t routed_tokens = 0;   // (token, expert) pairs
};

// Router weights of one token: the k selected experts (ids[0..k), weights[0..k)) from its n_expert
// logits. Every backend routes the same way; exposed for the routing unit test.
void Route(const MoeOp& op, const float* logits, int* ids, float* weights);

}  // namespace origami
