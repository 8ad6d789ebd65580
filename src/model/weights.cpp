// The one walk over a model's weights (ForEachMatrix, ForEachVector) and what is counted with it:
// parameters, bytes read per decoded token, multiply-adds per token.
#include <algorithm>
#include <cstdint>
#include <string>

#include "model/spec.h"

namespace origami {

namespace {

template <typename Spec, typename Fn>
void WalkMatrices(Spec& spec, Fn&& fn) {
  auto dense = [&](int layer, WeightRole role, const char* name, auto& m) {
    if (m.data) fn(MatrixRef{layer, role, name, const_cast<MatrixView*>(&m), nullptr});
  };
  auto stack = [&](int layer, const char* name, auto& x) {
    if (x.data) fn(MatrixRef{layer, WeightRole::kExperts, name, nullptr, const_cast<ExpertsView*>(&x)});
  };
  dense(-1, WeightRole::kEmbedding, "token_embd", spec.tok_embd);
  dense(-1, WeightRole::kEmbedding, "token_types", spec.type_embd);
  dense(-1, WeightRole::kEmbedding, "position_embd", spec.pos_embd);
  for (int il = 0; il < static_cast<int>(spec.layers.size()); ++il) {
    auto& l = spec.layers[il];
    dense(il, WeightRole::kAttention, "attn_qkv", l.wqkv);
    dense(il, WeightRole::kAttention, "attn_q", l.wq);
    dense(il, WeightRole::kAttention, "attn_k", l.wk);
    dense(il, WeightRole::kAttention, "attn_v", l.wv);
    dense(il, WeightRole::kAttention, "attn_q_a", l.wq_a);
    dense(il, WeightRole::kAttention, "attn_q_b", l.wq_b);
    dense(il, WeightRole::kAttention, "attn_kv_a_mqa", l.wkv_a);
    dense(il, WeightRole::kAttention, "attn_kv_b", l.wkv_b);
    dense(il, WeightRole::kAttention, "attn_k_b", l.wk_b);
    dense(il, WeightRole::kAttention, "attn_v_b", l.wv_b);
    dense(il, WeightRole::kAttention, "attn_output", l.wo);
    dense(il, WeightRole::kFfn, "ffn_gate", l.w_gate);
    dense(il, WeightRole::kFfn, "ffn_up", l.w_up);
    dense(il, WeightRole::kFfn, "ffn_down", l.w_down);
    dense(il, WeightRole::kRouter, "ffn_gate_inp", l.router);
    stack(il, "ffn_gate_exps", l.gate_exps);
    stack(il, "ffn_up_exps", l.up_exps);
    stack(il, "ffn_down_exps", l.down_exps);
    dense(il, WeightRole::kFfn, "ffn_gate_shexp", l.gate_shexp);
    dense(il, WeightRole::kFfn, "ffn_up_shexp", l.up_shexp);
    dense(il, WeightRole::kFfn, "ffn_down_shexp", l.down_shexp);
  }
  if (!spec.tied_output) dense(-1, WeightRole::kOutput, "output", spec.output);
  dense(-1, WeightRole::kOutput, "cls", spec.cls);
  dense(-1, WeightRole::kOutput, "cls.output", spec.cls_out);
}

uint64_t Bytes(const MatrixView& m) { return RowBytes(m.type, m.cols) * static_cast<uint64_t>(m.rows); }
uint64_t Elements(const MatrixRef& r) {
  return r.matrix ? static_cast<uint64_t>(r.matrix->rows * r.matrix->cols)
                  : static_cast<uint64_t>(r.experts->rows * r.experts->cols);
}

// Parameters with each layer's experts counted `experts(layer)` times.
template <typename Fn>
uint64_t Parameters(const DecoderSpec& spec, Fn&& experts) {
  uint64_t p = 0;
  ForEachMatrix(spec, [&](const MatrixRef& r) {
    p += r.experts ? Elements(r) * static_cast<uint64_t>(experts(r.layer)) : Elements(r);
  });
  ForEachVector(spec, [&](const VectorRef& v) {
    const uint64_t n = v.vec->size();
    p += v.per_expert > 0 ? n / v.per_expert * static_cast<uint64_t>(experts(v.layer)) : n;
  });
  return p;
}

}  // namespace

void ForEachMatrix(DecoderSpec& spec, FunctionRef<void(const MatrixRef&)> fn) { WalkMatrices(spec, fn); }
void ForEachMatrix(const DecoderSpec& spec, FunctionRef<void(const MatrixRef&)> fn) { WalkMatrices(spec, fn); }

void ForEachVector(const DecoderSpec& spec, FunctionRef<void(const VectorRef&)> fn) {
  auto vec = [&](int layer, WeightRole role, const char* name, const Vec& v, int per_expert = 0) {
    if (!v.empty()) fn(VectorRef{layer, role, name, const_cast<Vec*>(&v), per_expert});
  };
  for (int il = 0; il < static_cast<int>(spec.layers.size()); ++il) {
    const LayerSpec& l = spec.layers[il];
    vec(il, WeightRole::kNorm, "attn_norm", l.attn_norm);
    vec(il, WeightRole::kBias, "attn_q.bias", l.bq);
    vec(il, WeightRole::kBias, "attn_k.bias", l.bk);
    vec(il, WeightRole::kBias, "attn_v.bias", l.bv);
    vec(il, WeightRole::kBias, "attn_output.bias", l.bo);
    vec(il, WeightRole::kNorm, "attn_q_norm", l.q_norm);
    vec(il, WeightRole::kNorm, "attn_k_norm", l.k_norm);
    vec(il, WeightRole::kNorm, "attn_q_a_norm", l.q_a_norm);
    vec(il, WeightRole::kNorm, "attn_kv_a_norm", l.kv_a_norm);
    vec(il, WeightRole::kNorm, "post_attention_norm", l.post_attn_norm);
    vec(il, WeightRole::kBias, "attn_sinks", l.attn_sinks);
    vec(il, WeightRole::kNorm, "ffn_norm", l.ffn_norm);
    vec(il, WeightRole::kNorm, "post_ffw_norm", l.post_ffn_norm);
    vec(il, WeightRole::kBias, "ffn_gate_inp.bias", l.router_bias);
    vec(il, WeightRole::kBias, "ffn_gate_exps.bias", l.gate_exps_b, l.n_expert);
    vec(il, WeightRole::kBias, "ffn_up_exps.bias", l.up_exps_b, l.n_expert);
    vec(il, WeightRole::kBias, "ffn_down_exps.bias", l.down_exps_b, l.n_expert);
    vec(il, WeightRole::kBias, "exp_probs_b", l.expert_select_bias);
    vec(il, WeightRole::kNorm, "attn_output_norm", l.attn_out_norm);
    vec(il, WeightRole::kBias, "attn_output_norm.bias", l.attn_out_norm_b);
    vec(il, WeightRole::kBias, "ffn_up.bias", l.b_up);
    vec(il, WeightRole::kBias, "ffn_down.bias", l.b_down);
    vec(il, WeightRole::kNorm, "layer_output_norm", l.layer_out_norm);
    vec(il, WeightRole::kBias, "layer_output_norm.bias", l.layer_out_norm_b);
  }
  vec(-1, WeightRole::kNorm, "output_norm", spec.output_norm);
  vec(-1, WeightRole::kNorm, "token_embd_norm", spec.embd_norm);
  vec(-1, WeightRole::kBias, "token_embd_norm.bias", spec.embd_norm_b);
  vec(-1, WeightRole::kBias, "cls.bias", spec.cls_b);
  vec(-1, WeightRole::kBias, "cls.output.bias", spec.cls_out_b);
}

const char* PoolingName(Pooling p) {
  switch (p) {
    case Pooling::kNone:
      return "none";
    case Pooling::kMean:
      return "mean";
    case Pooling::kCls:
      return "cls";
    case Pooling::kLast:
      return "last";
    case Pooling::kRank:
      return "rank";
  }
  return "none";
}

bool DecoderSpec::IsMoe() const {
  for (const auto& l : layers)
    if (l.n_expert > 0) return true;
  return false;
}

std::string DecoderSpec::LayerKinds() const {
  int dense = 0, moe = 0;
  const LayerSpec* m = nullptr;    // a MoE layer
  const LayerSpec* mla = nullptr;  // an MLA layer
  for (const auto& l : layers) {
    (l.n_expert > 0 ? moe : dense) += 1;
    if (l.n_expert > 0 && !m) m = &l;
    if (l.mla() && !mla) mla = &l;
  }
  std::string s;
  if (moe == 0) s = std::to_string(dense) + " dense layers";
  else if (dense == 0) s = std::to_string(moe) + " MoE layers";
  else s = std::to_string(dense) + " dense + " + std::to_string(moe) + " MoE layers";
  if (mla)
    s += "; MLA kv_lora_rank " + std::to_string(mla->kv_lora_rank) + ", rope " + std::to_string(mla->rope_dim) +
         (mla->q_lora_rank > 0 ? ", q_lora_rank " + std::to_string(mla->q_lora_rank) : std::string(", q direct")) +
         (mla->mla_latent_cache ? ", latent KV cache" : ", expanded KV cache");
  if (m) {
    s += "; MoE " + std::to_string(m->n_expert) + " experts, " + std::to_string(m->n_expert_used) + " active";
    if (m->n_ff_shexp > 0) s += " + " + std::to_string(std::max(1, m->n_expert_shared)) + " shared";
    if (m->n_expert_group > 1)
      s += ", " + std::to_string(m->n_expert_group_used) + " of " + std::to_string(m->n_expert_group) + " groups";
  }
  return s;
}

uint64_t DecoderSpec::TotalParameters() const {
  return Parameters(*this, [&](int layer) { return layers[layer].n_expert; });
}

uint64_t DecoderSpec::ActiveParameters() const {
  return Parameters(*this, [&](int layer) { return layers[layer].n_expert_used; });
}

uint64_t DecoderSpec::WeightBytesPerToken() const {
  uint64_t b = 0;
  ForEachMatrix(*this, [&](const MatrixRef& r) {
    if (r.role == WeightRole::kEmbedding) {
      b += RowBytes(r.matrix->type, r.matrix->cols);  // one row per token...
      if (tied_output) b += Bytes(*r.matrix);         // ...and all of it when it is also the head
    } else if (r.experts) {
      b += r.experts->stride * static_cast<uint64_t>(layers[r.layer].n_expert_used);  // routed only
    } else {
      b += Bytes(*r.matrix);
    }
  });
  ForEachVector(*this, [&](const VectorRef& v) {
    if (v.role == WeightRole::kNorm) b += 4 * v.vec->size();
  });
  return b;
}

double DecoderSpec::MatMulMacsPerToken() const {
  double macs = 0;
  ForEachMatrix(*this, [&](const MatrixRef& r) {
    if (r.role == WeightRole::kEmbedding || r.role == WeightRole::kOutput) return;
    macs += r.experts ? static_cast<double>(Elements(r)) * layers[r.layer].n_expert_used
                      : static_cast<double>(Elements(r));
  });
  return macs;
}

}  // namespace origami
