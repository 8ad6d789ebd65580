// DecoderSpec: what the one generic decoder needs to know about a model, as data. An arch/ file
// fills it from GGUF metadata and tensor names; the decoder branches on these fields, never on names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "tensor/view.h"

namespace origami {

// A 1-D parameter (norm gain, bias) converted to float at load. Empty = absent.
using Vec = std::vector<float>;

struct LayerSpec {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;      // per head, for Q and K (and V)
  int n_ff = 0;
  int sliding_window = 0;  // 0 = full causal attention
  int rope_index = 0;      // which DecoderSpec::ropes entry this layer uses
  float attn_scale = 0.0f; // multiplies q.k; 0 = 1/sqrt(head_dim)

  // Weights. Matrices are [out rows, in cols] as stored in GGUF (ne[0] = in).
  Vec attn_norm;                      // [n_embd]
  MatrixView wq, wk, wv, wo;     // [n_head*head_dim, n_embd], [n_head_kv*head_dim, n_embd] x2, [n_embd, n_head*head_dim]
  Vec bq, bk, bv, bo;                 // optional biases
  Vec q_norm, k_norm;                 // [head_dim]: per-head RMSNorm of Q and K before rope (Qwen3, Gemma 3)
  Vec post_attn_norm;                 // [n_embd]: RMSNorm of the attention output before the residual (Gemma)
  Vec attn_sinks;                     // [n_head]: a learned logit per head in the softmax (gpt-oss)
  Vec ffn_norm;                       // [n_embd]
  MatrixView w_gate, w_up, w_down;  // [n_ff, n_embd] x2, [n_embd, n_ff]; dense FFN only
  Vec post_ffn_norm;                  // [n_embd]: RMSNorm of the FFN output before the residual (Gemma)

  // Mixture of experts (n_expert > 0 replaces the dense FFN). n_ff is then the expert width.
  int n_expert = 0;
  int n_expert_used = 0;
  RouterKind router_kind = RouterKind::kSoftmaxTopK;
  bool norm_topk = true;             // renormalize the kept softmax weights to sum to 1
  MatrixView router;            // [n_expert, n_embd]
  Vec router_bias;                   // [n_expert] (gpt-oss)
  ExpertsView gate_exps, up_exps;    // n_expert x [n_ff, n_embd]
  ExpertsView down_exps;             // n_expert x [n_embd, n_ff]
  Vec gate_exps_b, up_exps_b;        // [n_expert * n_ff] (gpt-oss)
  Vec down_exps_b;                   // [n_expert * n_embd] (gpt-oss)
};

struct RopeSpec {
  RopeLayout layout = RopeLayout::kAdjacent;
  int n_rot = 0;           // rotated dimensions per head (<= head_dim)
  float freq_base = 10000.0f;
  float attn_factor = 1.0f;
  std::vector<float> inv_freq;  // [n_rot/2], scaling already applied

  RopeTable Table() const { return {n_rot, layout, attn_factor, inv_freq.data()}; }
};

struct DecoderSpec {
  std::string arch;       // general.architecture
  std::string name;       // general.name
  int n_embd = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;
  float norm_eps = 1e-5f;
  FfnKind ffn = FfnKind::kSwiGlu;
  float embd_scale = 1.0f;  // multiplies the token embedding (Gemma: sqrt(n_embd))
  float swiglu_alpha = 1.702f, swiglu_limit = 7.0f;  // kSwiGluClamped only

  MatrixView tok_embd;  // [n_vocab, n_embd]
  Vec output_norm;           // [n_embd]
  MatrixView output;    // [n_vocab, n_embd]; equals tok_embd when tied
  bool tied_output = false;

  std::vector<RopeSpec> ropes;
  std::vector<LayerSpec> layers;

  int n_layer() const { return static_cast<int>(layers.size()); }
  // Bytes of weights read to decode one token (every matrix once, one embedding row).
  uint64_t WeightBytesPerToken() const;
  uint64_t TotalParameters() const;
  // Parameters used for one token: all but the experts a token does not route to.
  uint64_t ActiveParameters() const;
  bool IsMoe() const;
};

}  // namespace origami
