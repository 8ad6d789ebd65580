// Shared architecture pieces (GGUF key and tensor names as llama.cpp's converters write them).
#include "model/arch/common.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "util/error.h"

namespace origami {

void ReadPooling(const gguf::File& f, const MetaReader& meta, DecoderSpec& spec) {
  // llama.cpp's LLAMA_POOLING_TYPE_* (0 none .. 4 rank); -1 (absent) keeps the mean default.
  const uint32_t pooling = meta.U32Or("pooling_type", 0xffffffffu);
  if (pooling != 0xffffffffu) {
    if (pooling > static_cast<uint32_t>(Pooling::kRank)) Fail("{}: unknown pooling_type {}", f.path(), pooling);
    spec.pooling = static_cast<Pooling>(pooling);
    spec.has_pooling = true;
  }
}

void ReadCommonHyperParams(const gguf::File& f, const MetaReader& meta, DecoderSpec& spec, bool own_v_dim) {
  TensorLoader t(f);
  spec.n_embd = static_cast<int>(meta.U32("embedding_length"));
  const int n_layer = static_cast<int>(meta.U32("block_count"));
  const int n_head = static_cast<int>(meta.U32("attention.head_count"));
  const int n_head_kv = static_cast<int>(meta.U32Or("attention.head_count_kv", n_head));
  const int n_ff = static_cast<int>(meta.U32("feed_forward_length"));
  if (spec.n_embd <= 0 || n_layer <= 0 || n_head <= 0 || n_head_kv <= 0 || n_ff <= 0)
    Fail("{}: hyper-parameters must be positive (embedding_length {}, block_count {}, head_count {}, head_count_kv {}, feed_forward_length {})",
         f.path(), spec.n_embd, n_layer, n_head, n_head_kv, n_ff);
  if (n_layer > 4096 || n_head > 4096 || spec.n_embd > (1 << 20) || n_ff > (1 << 22))
    Fail("{}: hyper-parameters out of range", f.path());
  if (n_head % n_head_kv != 0)
    Fail("{}: head_count {} is not a multiple of head_count_kv {}", f.path(), n_head, n_head_kv);
  const int head_dim = static_cast<int>(meta.U32Or("attention.key_length", spec.n_embd / n_head));
  const int head_dim_v = static_cast<int>(meta.U32Or("attention.value_length", head_dim));
  if (head_dim <= 0 || head_dim_v <= 0 || (head_dim != head_dim_v && !own_v_dim) || head_dim > 1024 || head_dim_v > 1024)
    Fail("{}: unsupported head dimensions (key {}, value {})", f.path(), head_dim, head_dim_v);
  spec.n_ctx_train = static_cast<int>(meta.U32Or("context_length", 2048));
  spec.norm_eps = meta.F32Or("attention.layer_norm_rms_epsilon", 1e-5f);
  if (!(spec.norm_eps > 0) || spec.norm_eps > 1) Fail("{}: bad layer_norm_rms_epsilon {}", f.path(), spec.norm_eps);
  spec.name = std::string(f.GetString("general.name").value_or(""));
  ReadPooling(f, meta, spec);

  const gguf::TensorInfo* emb = f.FindTensor("token_embd.weight");
  if (!emb) Fail("{}: missing tensor 'token_embd.weight'", f.path());
  spec.n_vocab = static_cast<int>(emb->ne[1]);
  spec.tok_embd = t.Matrix("token_embd.weight", emb->ne[1], spec.n_embd);
  spec.output_norm = t.Vector("output_norm.weight", spec.n_embd);
  spec.output = t.OptionalMatrix("output.weight", spec.n_vocab, spec.n_embd);
  if (!spec.output.data) {
    spec.output = spec.tok_embd;
    spec.tied_output = true;
  }
  spec.layers.resize(n_layer);
  for (auto& l : spec.layers) {
    l.n_head = n_head;
    l.n_head_kv = n_head_kv;
    l.head_dim = head_dim;
    l.head_dim_v = head_dim_v;
    l.n_ff = n_ff;
  }
}

RopeSpec ReadRope(const gguf::File& f, const MetaReader& meta, const TensorLoader& t,
                  RopeLayout layout, int head_dim, float base_override) {
  RopeSpec r;
  r.layout = layout;
  r.freq_base = base_override > 0 ? base_override : meta.F32Or("rope.freq_base", 10000.0f);
  r.n_rot = static_cast<int>(meta.U32Or("rope.dimension_count", head_dim));
  if (r.n_rot <= 0 || r.n_rot > head_dim || r.n_rot % 2)
    Fail("{}: rope.dimension_count {} must be even and at most the head size {}", f.path(), r.n_rot, head_dim);
  if (!(r.freq_base > 0)) Fail("{}: rope.freq_base must be positive", f.path());
  // Linear scaling divides every frequency by the factor (position interpolation).
  float freq_scale = 1.0f;
  bool yarn = false;
  const std::string scaling_key = meta.arch() + ".rope.scaling.type";
  const auto scaling = base_override > 0 ? std::nullopt : f.GetString(scaling_key);
  if (scaling && *scaling != "none") {
    const float factor = meta.F32Or("rope.scaling.factor", 1.0f);
    if (!(factor > 0)) Fail("{}: rope.scaling.factor must be positive", f.path());
    if (*scaling == "linear") {
      freq_scale = 1.0f / factor;
    } else if (*scaling == "yarn") {
      freq_scale = 1.0f / factor;
      yarn = true;
    } else {
      FailKind(ErrorKind::kUnsupported, "{}: rope scaling '{}' is not supported for {}", f.path(), *scaling, meta.arch());
    }
  }
  // rope_freqs.weight (Llama 3.1+): the angle of pair i is divided by factor[i], exactly as the
  // reference applies its per-dimension frequency factors.
  const Vec factors = t.OptionalVector("rope_freqs.weight", r.n_rot / 2);
  r.inv_freq.resize(r.n_rot / 2);
  for (int i = 0; i < r.n_rot / 2; ++i) {
    // base^(-2i/n_rot), computed in double then rounded once.
    double inv = std::pow(static_cast<double>(r.freq_base), -2.0 * i / r.n_rot) * freq_scale;
    if (!factors.empty()) {
      if (!(factors[i] > 0)) Fail("{}: rope_freqs.weight[{}] must be positive", f.path(), i);
      inv /= factors[i];
    }
    r.inv_freq[i] = static_cast<float>(inv);
  }
  if (yarn) {
    // YaRN as llama.cpp/ggml computes it: pair i mixes the interpolated frequency (inv * s) and
    // the original one (inv) with ramp weight m_i = 1 - clamp((i - lo) / (hi - lo), 0, 1), where
    // lo = floor(d(beta_fast)), hi = ceil(d(beta_slow)) and d(b) = n_rot * ln(n_ctx_orig / (2 pi b))
    // / (2 ln base); cos and sin are scaled by 1 + 0.1 ln(1 / s). The angle stays linear in the
    // position, so the mix folds into inv_freq. (HF's gpt-oss config sets truncate=false, i.e. no
    // floor/ceil; we follow the GGUF engine.)
    const double n_ctx_orig = meta.U32Or("rope.scaling.original_context_length", 4096);
    const double beta_fast = meta.F32Or("rope.scaling.yarn_beta_fast", 32.0f);
    const double beta_slow = meta.F32Or("rope.scaling.yarn_beta_slow", 1.0f);
    auto corr_dim = [&](double b) {
      return r.n_rot * std::log(n_ctx_orig / (b * 2 * M_PI)) / (2 * std::log(static_cast<double>(r.freq_base)));
    };
    const double lo = std::max(0.0, std::floor(corr_dim(beta_fast)));
    const double hi = std::min(r.n_rot - 1.0, std::ceil(corr_dim(beta_slow)));
    for (int i = 0; i < r.n_rot / 2; ++i) {
      const double y = (i - lo) / std::max(0.001, hi - lo);
      const double mix = 1.0 - std::min(1.0, std::max(0.0, y));
      const double inv = r.inv_freq[i] / freq_scale;  // the original frequency
      r.inv_freq[i] = static_cast<float>(inv * freq_scale * (1 - mix) + inv * mix);
    }
    r.attn_factor = static_cast<float>(1.0 + 0.1 * std::log(1.0 / freq_scale));
  }
  return r;
}

void ReadStandardLayers(const TensorLoader& t, DecoderSpec& spec, bool biases) {
  ReadAttentionLayers(t, spec, biases);
  ReadDenseFfnLayers(t, spec);
}

void ReadAttentionLayers(const TensorLoader& t, DecoderSpec& spec, bool biases) {
  const int64_t e = spec.n_embd;
  for (int i = 0; i < spec.n_layer(); ++i) {
    LayerSpec& l = spec.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    const int64_t q_dim = static_cast<int64_t>(l.n_head) * l.head_dim;
    const int64_t kv_dim = static_cast<int64_t>(l.n_head_kv) * l.head_dim;
    l.attn_norm = t.Vector(p + "attn_norm.weight", e);
    l.wq = t.Matrix(p + "attn_q.weight", q_dim, e);
    l.wk = t.Matrix(p + "attn_k.weight", kv_dim, e);
    l.wv = t.Matrix(p + "attn_v.weight", kv_dim, e);
    l.wo = t.Matrix(p + "attn_output.weight", e, q_dim);
    if (biases) {
      l.bq = t.OptionalVector(p + "attn_q.bias", q_dim);
      l.bk = t.OptionalVector(p + "attn_k.bias", kv_dim);
      l.bv = t.OptionalVector(p + "attn_v.bias", kv_dim);
      l.bo = t.OptionalVector(p + "attn_output.bias", e);
    }
    l.q_norm = t.OptionalVector(p + "attn_q_norm.weight", l.head_dim);
    l.k_norm = t.OptionalVector(p + "attn_k_norm.weight", l.head_dim);
  }
}

void ReadDenseFfnLayers(const TensorLoader& t, DecoderSpec& spec) {
  const int64_t e = spec.n_embd;
  for (int i = 0; i < spec.n_layer(); ++i) {
    LayerSpec& l = spec.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    l.ffn_norm = t.Vector(p + "ffn_norm.weight", e);
    l.w_gate = t.Matrix(p + "ffn_gate.weight", l.n_ff, e);
    l.w_up = t.Matrix(p + "ffn_up.weight", l.n_ff, e);
    l.w_down = t.Matrix(p + "ffn_down.weight", e, l.n_ff);
  }
}

}  // namespace origami

namespace origami {

void ReadMoeLayers(const gguf::File& f, const MetaReader& meta, const TensorLoader& t, DecoderSpec& spec,
                   const char* ffn_norm_name, bool biases) {
  const int n_expert = static_cast<int>(meta.U32("expert_count"));
  const int n_used = static_cast<int>(meta.U32("expert_used_count"));
  if (n_expert <= 0 || n_expert > 4096 || n_used <= 0 || n_used > n_expert)
    Fail("{}: bad expert_count {} / expert_used_count {}", f.path(), n_expert, n_used);
  const int64_t e = spec.n_embd;
  for (int i = 0; i < spec.n_layer(); ++i) {
    LayerSpec& l = spec.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    // Mixtral's files have no expert_feed_forward_length: the experts are feed_forward_length wide.
    l.n_ff = static_cast<int>(meta.U32Or("expert_feed_forward_length", static_cast<uint32_t>(l.n_ff)));
    if (l.n_ff <= 0 || l.n_ff > (1 << 22)) Fail("{}: bad expert_feed_forward_length {}", f.path(), l.n_ff);
    l.n_expert = n_expert;
    l.n_expert_used = n_used;
    l.ffn_norm = t.Vector(p + ffn_norm_name + ".weight", e);
    l.router = t.Matrix(p + "ffn_gate_inp.weight", n_expert, e);
    l.gate_exps = t.Experts(p + "ffn_gate_exps.weight", n_expert, l.n_ff, e);
    l.up_exps = t.Experts(p + "ffn_up_exps.weight", n_expert, l.n_ff, e);
    l.down_exps = t.Experts(p + "ffn_down_exps.weight", n_expert, e, l.n_ff);
    if (biases) {
      l.router_bias = t.OptionalVector(p + "ffn_gate_inp.bias", n_expert);
      l.gate_exps_b = t.OptionalVector(p + "ffn_gate_exps.bias", n_expert * static_cast<int64_t>(l.n_ff));
      l.up_exps_b = t.OptionalVector(p + "ffn_up_exps.bias", n_expert * static_cast<int64_t>(l.n_ff));
      l.down_exps_b = t.OptionalVector(p + "ffn_down_exps.bias", n_expert * e);
    }
  }
}

}  // namespace origami
