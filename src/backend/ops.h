// What the decoder asks a backend to compute: activation tensors and the descriptions of the
// coarse ops (a group of products, attention over the paged cache, the gated FFN, MoE). Plain
// data that points at weights (tensor/view.h) and at parameters converted to float at load.
#pragma once

#include <cstdint>

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

// Rope of Q and K of one layer at each batch token's position.
struct RopeOp {
  RopeTable table;
  int n_head = 0, n_head_kv = 0, head_dim = 0;
};

// Causal grouped-query attention of one layer.
struct AttentionOp {
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  float scale = 0.0f;            // multiplies q.k
  int64_t window = 0;            // > 0: sliding window of that many positions
  const float* sinks = nullptr;  // [n_head]: a learned logit per head joining the softmax (gpt-oss)
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
