// DecoderSpec: what the one generic decoder needs to know about a model, as data. An arch/ file
// fills it from GGUF metadata and tensor names; the decoder branches on these fields, never on names.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/ops.h"
#include "tensor/view.h"
#include "util/function_ref.h"

namespace origami {

// A 1-D parameter (norm gain, bias) converted to float at load. Empty = absent.
using Vec = std::vector<float>;

// The matrix of a layer a LoRA term adds to.
enum class LoraTarget : uint8_t { kQ, kK, kV, kO, kGate, kUp, kDown };

// One adapter's low-rank term on one matrix: the product with W becomes one with
// W + scale * B A. The adapter (model/lora.h) owns the F32 values the views point into.
struct LoraTerm {
  LoraTarget target = LoraTarget::kQ;
  MatrixView a;        // [rank, n_in], F32
  MatrixView b;        // [n_out, rank], F32
  float scale = 0.0f;  // the user's scale * alpha / rank
};

struct LayerSpec {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;      // per head, for Q and K (and V)
  int head_dim_v = 0;    // per head, for V and the attention output; 0 = head_dim (MLA: narrower)
  int n_ff = 0;
  int sliding_window = 0;  // 0 = full causal attention
  int rope_index = 0;      // which DecoderSpec::ropes entry this layer uses
  float attn_scale = 0.0f; // multiplies q.k; 0 = 1/sqrt(head_dim)

  // Weights. Matrices are [out rows, in cols] as stored in GGUF (ne[0] = in).
  Vec attn_norm;                      // [n_embd]
  MatrixView wqkv;                    // [3 * n_head * head_dim, n_embd]: Q, K, V fused (nomic-bert)
  MatrixView wq, wk, wv, wo;     // [n_head*head_dim, n_embd], [n_head_kv*head_dim, n_embd] x2, [n_embd, n_head*head_dim]
  Vec bq, bk, bv, bo;                 // optional biases
  Vec q_norm, k_norm;                 // [head_dim]: per-head RMSNorm of Q and K before rope (Qwen3, Gemma 3)
  Vec post_attn_norm;                 // [n_embd]: RMSNorm of the attention output before the residual (Gemma)
  Vec attn_sinks;                     // [n_head]: a learned logit per head in the softmax (gpt-oss)

  // Multi-head latent attention (DeepSeek-V2/V3), when kv_lora_rank > 0; wk and wv are then
  // absent. Each query and key head is [nope | rope] (mla_nope + rope_dim values), the rope part
  // rotated; every head's rope key is the one shared k_pe. c = RMSNorm(latent) * kv_a_norm;
  // [k_nope_h | v_h] = (wkv_b c)_h. The cache holds either the expanded keys and values (n_head_kv
  // = n_head, head_dim = mla_nope + rope_dim, head_dim_v = mla_v) or, with mla_latent_cache, what
  // MLA caches: one row [c | k_pe] per token (n_head_kv = 1, head_dim = kv_lora_rank + rope_dim,
  // values c: head_dim_v = kv_lora_rank), the key expansion absorbed into each query head and the
  // value expansion applied to each head's attention output (SetMlaCache switches).
  int kv_lora_rank = 0;   // width of the compressed KV latent c
  int q_lora_rank = 0;    // width of the compressed query (0: q = wq x, V2-Lite)
  int rope_dim = 0;       // the decoupled rope part of each head (rope.dimension_count)
  int mla_nope = 0;       // the non-rotated part of each query and key head
  int mla_v = 0;          // each value head (attention.value_length)
  bool mla_latent_cache = false;
  MatrixView wq_a;        // [q_lora_rank, n_embd]
  Vec q_a_norm;           // [q_lora_rank]
  MatrixView wq_b;        // [n_head * head_dim, q_lora_rank]
  MatrixView wkv_a;       // [kv_lora_rank + rope_dim, n_embd]: the latent, then k_pe
  Vec kv_a_norm;          // [kv_lora_rank]
  MatrixView wkv_b;       // [n_head * (nope + mla_v), kv_lora_rank]: per head k_nope, then v
  // Newer converters' split form of wkv_b (then absent; latent cache only): per head the key
  // expansion transposed and the value expansion.
  MatrixView wk_b;        // [n_head * kv_lora_rank, nope]
  MatrixView wv_b;        // [n_head * mla_v, kv_lora_rank]
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
  // DeepSeek routing (MoeOp): selection-only bias, expert groups, weight scale.
  Vec expert_select_bias;            // [n_expert] (exp_probs_b)
  int n_expert_group = 1, n_expert_group_used = 1;
  float expert_weights_scale = 1.0f;
  // Shared experts (DeepSeek): a dense gated FFN every token runs beside the routed experts, its
  // output added to theirs.
  int n_expert_shared = 0;           // expert_shared_count (the shared FFN is that many experts wide)
  int n_ff_shexp = 0;
  MatrixView gate_shexp, up_shexp;   // [n_ff_shexp, n_embd]
  MatrixView down_shexp;             // [n_embd, n_ff_shexp]

  // Encoders (bert): LayerNorms with bias after each residual add (post-norm) and the biases of a
  // plain (ungated) FFN, up then GELU then down.
  Vec attn_out_norm, attn_out_norm_b;    // [n_embd]: LayerNorm(x + attention)
  Vec layer_out_norm, layer_out_norm_b;  // [n_embd]: LayerNorm(x + FFN)
  Vec b_up, b_down;                      // [n_ff], [n_embd]

  int v_dim() const { return head_dim_v > 0 ? head_dim_v : head_dim; }
  bool mla() const { return kv_lora_rank > 0; }

  // LoRA adapters on this layer's matrices, in the order they were given (Model::AddAdapter);
  // empty without adapters, and then the forward pass is exactly the base model's.
  std::vector<LoraTerm> lora;
};

struct RopeSpec {
  RopeLayout layout = RopeLayout::kAdjacent;
  int n_rot = 0;           // rotated dimensions per head (<= head_dim)
  float freq_base = 10000.0f;
  float attn_factor = 1.0f;
  std::vector<float> inv_freq;  // [n_rot/2], scaling already applied

  RopeTable Table() const { return {n_rot, layout, attn_factor, inv_freq.data()}; }
};

// How an embedding pools a sequence's final hidden states into one vector: GGUF's
// "<arch>.pooling_type", numbered as llama.cpp numbers it.
enum class Pooling { kNone = 0, kMean = 1, kCls = 2, kLast = 3, kRank = 4 };
const char* PoolingName(Pooling p);

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
  // Embeddings: the file's pooling type, or mean when it names none (a generative model), as
  // Ollama pools any model's /api/embed; has_pooling says the file named one (an embedding model).
  Pooling pooling = Pooling::kMean;
  bool has_pooling = false;

  // Encoders (bert): every token attends to its whole sequence; the embedding is the sum of the
  // token's, its token type's and its absolute position's rows, then a LayerNorm. The decoder
  // runs such a model only through Decoder::Encode.
  bool encoder = false;
  MatrixView type_embd;             // [n_types, n_embd]: token_types (segment A = 0, B = 1)
  MatrixView pos_embd;              // [n_ctx_train, n_embd]: position_embd
  Vec embd_norm, embd_norm_b;       // [n_embd]: token_embd_norm
  // A cross-encoder's head (pooling kRank): score = cls_out tanh(cls h + cls_b) + cls_out_b of
  // the first ([CLS]) token's final hidden state h. A decoder reranker (Qwen3-Reranker) has only
  // cls_out, two rows (the "yes" and "no" rows of its LM head, yes first), read at the last token
  // after the output norm: score = sigmoid(yes - no) (Decoder::RankScores).
  MatrixView cls;                   // [n_embd, n_embd]
  Vec cls_b;                        // [n_embd]
  MatrixView cls_out;               // [1, n_embd] (encoder) or [2, n_embd] (decoder: yes, no)
  Vec cls_out_b;                    // [1]

  MatrixView tok_embd;  // [n_vocab, n_embd]
  Vec output_norm;           // [n_embd]
  MatrixView output;    // [n_vocab, n_embd]; equals tok_embd when tied
  bool tied_output = false;

  std::vector<RopeSpec> ropes;
  std::vector<LayerSpec> layers;

  int n_layer() const { return static_cast<int>(layers.size()); }
  // Bytes of weights read to decode one token (every matrix once, the routed experts of a MoE
  // layer, one embedding row).
  uint64_t WeightBytesPerToken() const;
  // Multiply-adds of one token through every layer's matrices (the routed experts only), without
  // attention and the classifier.
  double MatMulMacsPerToken() const;
  uint64_t TotalParameters() const;
  // Parameters used for one token: all but the experts a token does not route to.
  uint64_t ActiveParameters() const;
  bool IsMoe() const;
  bool HasSharedExperts() const {
    for (const auto& l : layers)
      if (l.n_ff_shexp > 0) return true;
    return false;
  }
  // The layer kinds in words, for `origami info` (e.g. "3 dense + 58 MoE layers; MLA
  // kv_lora_rank 512, rope 64; MoE 256 experts, 8 active + 1 shared").
  std::string LayerKinds() const;
};

// MLA layers: cache the latent (compressed, the default) or the expanded per-head keys and values
// (the simple form, kept as the oracle of the compressed one). Changes the layers' cache shapes.
void SetMlaCache(DecoderSpec& spec, bool latent);

// One weight of a model as ForEachMatrix / ForEachVector name it.
enum class WeightRole { kEmbedding, kOutput, kAttention, kFfn, kRouter, kExperts, kNorm, kBias };
struct MatrixRef {
  int layer = -1;  // -1: the embedding table or the output head
  WeightRole role = WeightRole::kAttention;
  const char* name = "";            // GGUF's short name: "attn_q", "ffn_gate_exps", ...
  MatrixView* matrix = nullptr;     // a plain matrix, or
  ExpertsView* experts = nullptr;   // a stack of expert matrices (role kExperts)
};
struct VectorRef {
  int layer = -1;
  WeightRole role = WeightRole::kNorm;
  const char* name = "";
  Vec* vec = nullptr;
  int per_expert = 0;  // > 0: the vector holds one slice per expert (n_expert slices)
};
// Every weight matrix of the model once, in layer order (the tied output, which shares the
// embedding table's bytes, is listed once, as the embedding), absent optional matrices skipped.
// The one list of a model's matrices: parameter counts, bytes per token, FLOPs and the repack
// walk all read it.
void ForEachMatrix(DecoderSpec& spec, FunctionRef<void(const MatrixRef&)> fn);
void ForEachMatrix(const DecoderSpec& spec, FunctionRef<void(const MatrixRef&)> fn);
// Every 1-D weight (norm gains, biases, sinks) once; absent ones skipped.
void ForEachVector(const DecoderSpec& spec, FunctionRef<void(const VectorRef&)> fn);

}  // namespace origami
