// DeepSeek-V2/V3 (`deepseek2`): multi-head latent attention (MLA) and a MoE with shared experts.
//
// Attention (DeepSeek-V2 paper, section 2.1): q = wq_b RMSNorm(wq_a x) (or wq x when q_lora_rank
// is 0, V2-Lite); each query head is [q_nope | q_rope]. attn_kv_a_mqa gives the compressed latent
// c (kv_lora_rank) and one decoupled rope key k_pe (rope dims) shared by every head; the latent is
// RMS-normalised and wkv_b expands it to each head's [k_nope | v]. Keys are [k_nope | k_pe], rope
// rotates the q_rope and k_pe parts only, in llama.cpp's "normal" layout for this architecture
// (adjacent pairs: DeepSeek's HF code de-interleaves before rotate_half, which is the same thing
// on the stored weights), and scores are scaled by 1/sqrt(key_length).
//
// FFN: the first leading_dense_block_count layers are dense; the others route to
// expert_used_count of expert_count experts (softmax scoring in V2, sigmoid in V3 with the
// exp_probs_b bias used for the selection only, grouped top-k when expert_group_count > 1,
// weights renormalised when expert_weights_norm, times expert_weights_scale) plus the shared
// expert(s) every token runs.
//
// YaRN as DeepSeek defines it (see below). The cache holds the latent and the rope key per token
// (SetMlaCache; the expanded per-head form stays as its oracle), from attn_kv_b or from the split
// attn_k_b/attn_v_b that newer converters write.
#include <cmath>
#include <string>

#include "model/arch/common.h"
#include "model/arch/registry.h"
#include "util/error.h"

namespace origami {

void BuildDeepseek2(const gguf::File& f, DecoderSpec& spec) {
  MetaReader meta(f, "deepseek2");
  TensorLoader t(f);
  // Newer converters split attn_kv_b into attn_k_b (transposed) and attn_v_b and describe the
  // latent cache under the plain keys (head_count_kv 1, key_length kv_lora_rank + rope), the
  // per-head sizes under key_length_mla / value_length_mla.
  const bool split = !t.Has("blk.0.attn_kv_b.weight");
  const auto scaling = f.GetString("deepseek2.rope.scaling.type");
  const bool yarn = scaling && *scaling == "yarn";
  if (scaling && *scaling != "none" && !yarn)
    FailKind(ErrorKind::kUnsupported, "{}: deepseek2 rope scaling '{}' is not supported (none or yarn)", f.path(),
             *scaling);
  ReadCommonHyperParams(f, meta, spec, /*own_v_dim=*/true);
  const int head_dim = static_cast<int>(meta.U32Or("attention.key_length_mla", spec.layers.front().head_dim));
  const int head_dim_v = static_cast<int>(meta.U32Or("attention.value_length_mla", spec.layers.front().head_dim_v));
  if (head_dim <= 0 || head_dim > 1024 || head_dim_v <= 0 || head_dim_v > 1024)
    Fail("{}: bad MLA head sizes (key {}, value {})", f.path(), head_dim, head_dim_v);
  spec.ropes.push_back(ReadRope(f, meta, t, RopeLayout::kAdjacent, head_dim));
  const int rope_dim = spec.ropes.front().n_rot;
  // Scores are scaled by 1/sqrt(key_length) (set explicitly: the latent cache's heads are wider).
  float attn_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  if (yarn) {
    // DeepSeek's YaRN: the frequencies as ReadRope mixes them, but the rotation keeps magnitude 1
    // (the released configs' mscale and mscale_all_dim are equal and cancel) and the scores are
    // scaled by m^2 / sqrt(key_length) with m = 1 + yarn_log_multiplier * ln(factor), where the
    // converter stores yarn_log_multiplier = 0.1 * mscale_all_dim.
    spec.ropes.front().attn_factor = 1.0f;
    const double factor = meta.F32Or("rope.scaling.factor", 1.0f);
    const double m = factor > 1 ? 1.0 + meta.F32Or("rope.scaling.yarn_log_multiplier", 0.0f) * std::log(factor) : 1.0;
    attn_scale = static_cast<float>(m * m / std::sqrt(static_cast<double>(head_dim)));
  }
  const int nope = head_dim - rope_dim;
  const int kv_lora = static_cast<int>(meta.U32("attention.kv_lora_rank"));
  const int q_lora = static_cast<int>(meta.U32Or("attention.q_lora_rank", 0));
  const int n_dense = static_cast<int>(meta.U32Or("leading_dense_block_count", 0));
  if (kv_lora <= 0 || kv_lora > (1 << 16) || q_lora < 0 || q_lora > (1 << 16))
    Fail("{}: bad attention.kv_lora_rank {} / q_lora_rank {}", f.path(), kv_lora, q_lora);
  if (nope < 0) Fail("{}: rope.dimension_count {} exceeds key_length {}", f.path(), rope_dim, head_dim);

  // Routing.
  int n_expert = 0, n_used = 0, n_ff_exp = 0, n_shared = 0, n_group = 1, n_group_used = 1;
  RouterKind router = RouterKind::kSoftmaxTopK;
  bool norm = false;
  float scale = 1.0f;
  if (n_dense < spec.n_layer()) {
    n_expert = static_cast<int>(meta.U32("expert_count"));
    n_used = static_cast<int>(meta.U32("expert_used_count"));
    if (n_expert <= 0 || n_expert > 4096 || n_used <= 0 || n_used > n_expert)
      Fail("{}: bad expert_count {} / expert_used_count {}", f.path(), n_expert, n_used);
    n_ff_exp = static_cast<int>(meta.U32("expert_feed_forward_length"));
    if (n_ff_exp <= 0 || n_ff_exp > (1 << 22)) Fail("{}: bad expert_feed_forward_length {}", f.path(), n_ff_exp);
    n_shared = static_cast<int>(meta.U32Or("expert_shared_count", 0));
    // llama.cpp's expert_gating_func: 1 softmax, 2 sigmoid; files from before the key are V2 (softmax).
    const uint32_t gating = meta.U32Or("expert_gating_func", 1);
    if (gating == 2) router = RouterKind::kSigmoid;
    else if (gating != 1 && gating != 0) FailKind(ErrorKind::kUnsupported, "{}: expert_gating_func {}", f.path(), gating);
    norm = f.GetBool("deepseek2.expert_weights_norm").value_or(false);
    scale = meta.F32Or("expert_weights_scale", 1.0f);
    n_group = static_cast<int>(meta.U32Or("expert_group_count", 1));
    n_group_used = static_cast<int>(meta.U32Or("expert_group_used_count", n_group));
    if (n_group <= 0) n_group = 1;
    if (n_group > 256 || n_expert % n_group != 0 || n_group_used <= 0 || n_group_used > n_group ||
        n_used > n_group_used * (n_expert / n_group) || !(scale > 0))
      Fail("{}: bad expert groups ({} of {}) for {} experts, {} used, or weights scale {}", f.path(), n_group_used,
           n_group, n_expert, n_used, scale);
  }
  if (n_dense < 0 || n_dense > spec.n_layer()) Fail("{}: bad leading_dense_block_count {}", f.path(), n_dense);

  const int64_t e = spec.n_embd;
  for (int i = 0; i < spec.n_layer(); ++i) {
    LayerSpec& l = spec.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    l.n_head_kv = l.n_head;  // keys and values are expanded per head
    l.kv_lora_rank = kv_lora, l.q_lora_rank = q_lora, l.rope_dim = rope_dim;
    l.mla_nope = nope, l.mla_v = head_dim_v;
    l.attn_scale = attn_scale;
    const int64_t q_dim = static_cast<int64_t>(l.n_head) * head_dim;
    l.attn_norm = t.Vector(p + "attn_norm.weight", e);
    if (q_lora > 0) {
      l.wq_a = t.Matrix(p + "attn_q_a.weight", q_lora, e);
      l.q_a_norm = t.Vector(p + "attn_q_a_norm.weight", q_lora);
      l.wq_b = t.Matrix(p + "attn_q_b.weight", q_dim, q_lora);
    } else {
      l.wq = t.Matrix(p + "attn_q.weight", q_dim, e);
    }
    l.wkv_a = t.Matrix(p + "attn_kv_a_mqa.weight", kv_lora + rope_dim, e);
    l.kv_a_norm = t.Vector(p + "attn_kv_a_norm.weight", kv_lora);
    if (!split) {
      l.wkv_b = t.Matrix(p + "attn_kv_b.weight", static_cast<int64_t>(l.n_head) * (nope + head_dim_v), kv_lora);
    } else {
      // 3-D stacks, one matrix per head, contiguous: seen as one matrix of every head's rows.
      const ExpertsView kb = t.Experts(p + "attn_k_b.weight", l.n_head, kv_lora, nope);
      const ExpertsView vb = t.Experts(p + "attn_v_b.weight", l.n_head, head_dim_v, kv_lora);
      l.wk_b = {kb.type, kb.n_expert * kb.rows, kb.cols, kb.data};
      l.wv_b = {vb.type, vb.n_expert * vb.rows, vb.cols, vb.data};
    }
    l.wo = t.Matrix(p + "attn_output.weight", e, static_cast<int64_t>(l.n_head) * head_dim_v);
    l.ffn_norm = t.Vector(p + "ffn_norm.weight", e);
    if (i < n_dense) {
      l.w_gate = t.Matrix(p + "ffn_gate.weight", l.n_ff, e);
      l.w_up = t.Matrix(p + "ffn_up.weight", l.n_ff, e);
      l.w_down = t.Matrix(p + "ffn_down.weight", e, l.n_ff);
      continue;
    }
    l.n_ff = n_ff_exp;
    l.n_expert = n_expert, l.n_expert_used = n_used;
    l.router_kind = router, l.norm_topk = norm;
    l.expert_weights_scale = scale;
    l.n_expert_group = n_group, l.n_expert_group_used = n_group_used;
    l.router = t.Matrix(p + "ffn_gate_inp.weight", n_expert, e);
    l.expert_select_bias = t.OptionalVector(p + "exp_probs_b.bias", n_expert);
    l.gate_exps = t.Experts(p + "ffn_gate_exps.weight", n_expert, n_ff_exp, e);
    l.up_exps = t.Experts(p + "ffn_up_exps.weight", n_expert, n_ff_exp, e);
    l.down_exps = t.Experts(p + "ffn_down_exps.weight", n_expert, e, n_ff_exp);
    if (n_shared > 0) {
      // The shared experts are one gated FFN n_shared experts wide.
      l.n_expert_shared = n_shared;
      l.n_ff_shexp = n_ff_exp * n_shared;
      l.gate_shexp = t.Matrix(p + "ffn_gate_shexp.weight", l.n_ff_shexp, e);
      l.up_shexp = t.Matrix(p + "ffn_up_shexp.weight", l.n_ff_shexp, e);
      l.down_shexp = t.Matrix(p + "ffn_down_shexp.weight", e, l.n_ff_shexp);
    }
  }
  SetMlaCache(spec, /*latent=*/true);
}

void SetMlaCache(DecoderSpec& spec, bool latent) {
  for (LayerSpec& l : spec.layers) {
    if (!l.mla()) continue;
    if (!latent && !l.wkv_b.data)
      FailKind(ErrorKind::kUnsupported, "the expanded MLA cache needs attn_kv_b; this file has attn_k_b/attn_v_b");
    l.mla_latent_cache = latent;
    l.n_head_kv = latent ? 1 : l.n_head;
    l.head_dim = latent ? l.kv_lora_rank + l.rope_dim : l.mla_nope + l.rope_dim;
    l.head_dim_v = latent ? l.kv_lora_rank : l.mla_v;
  }
}

}  // namespace origami
