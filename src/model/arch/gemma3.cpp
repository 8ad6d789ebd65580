// Gemma 3 (`gemma3`): token embedding times sqrt(n_embd), GeGLU with tanh GELU, RMSNorm before and
// after both attention and FFN, per-head RMSNorm of Q and K, and interleaved layers: five local
// (sliding-window, rope base 10000, no scaling) to one global (rope.freq_base, rope scaling).
//
// Gemma's RMSNorm multiplies by (1 + w). llama.cpp's converter adds the 1 to every *norm.weight
// when it writes the GGUF, so the stored gains are used as they are (plain RMSNorm here).
#include <cmath>

#include "model/arch/common.h"
#include "model/arch/registry.h"
#include "util/error.h"

namespace origami {

void BuildGemma3(const gguf::File& f, DecoderSpec& spec) {
  MetaReader meta(f, "gemma3");
  TensorLoader t(f);
  ReadCommonHyperParams(f, meta, spec);
  const int head_dim = spec.layers.front().head_dim;
  spec.ffn = FfnKind::kGeGlu;
  // The reference scales by sqrt(n_embd) in the activation dtype; we keep it in float32.
  spec.embd_scale = std::sqrt(static_cast<float>(spec.n_embd));
  spec.ropes.push_back(ReadRope(f, meta, t, RopeLayout::kNeox, head_dim));  // 0: global
  spec.ropes.push_back(ReadRope(f, meta, t, RopeLayout::kNeox, head_dim, 10000.0f));  // 1: local
  ReadStandardLayers(t, spec, /*biases=*/false);

  const int window = static_cast<int>(meta.U32Or("attention.sliding_window", 0));
  // Every sixth layer is global (llama.cpp's swa pattern 6); a file may say otherwise.
  const int pattern = static_cast<int>(meta.U32Or("attention.sliding_window_pattern", 6));
  if (pattern <= 0) Fail("{}: bad gemma3.attention.sliding_window_pattern {}", f.path(), pattern);
  // query_pre_attn_scalar is not in the GGUF. llama.cpp scales scores by 1/sqrt(key_length), except
  // for the 27B model, which it recognizes by its 62 layers and gives 1/sqrt(n_embd / n_head)
  // (query_pre_attn_scalar 168 = 5376 / 32, while its head_dim is 128). We follow that rule so a
  // real 27B file runs as it does there; a file may also carry attention.scale explicitly.
  float scale = meta.F32Or("attention.scale", 0.0f);
  if (scale == 0.0f && spec.n_layer() == 62)
    scale = 1.0f / std::sqrt(static_cast<float>(spec.n_embd / spec.layers.front().n_head));
  for (int i = 0; i < spec.n_layer(); ++i) {
    LayerSpec& l = spec.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    const bool local = window > 0 && (i % pattern) < pattern - 1;
    l.sliding_window = local ? window : 0;
    l.rope_index = local ? 1 : 0;
    l.attn_scale = scale;
    l.q_norm = t.Vector(p + "attn_q_norm.weight", head_dim);
    l.k_norm = t.Vector(p + "attn_k_norm.weight", head_dim);
    l.post_attn_norm = t.Vector(p + "post_attention_norm.weight", spec.n_embd);
    l.post_ffn_norm = t.Vector(p + "post_ffw_norm.weight", spec.n_embd);
  }
}

}  // namespace origami
