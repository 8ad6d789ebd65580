// gpt-oss (`gpt-oss`): biases on Q/K/V/O, a learned sink logit per head (attn_sinks), sliding-window
// attention on even layers and full attention on odd ones, YaRN rope (NeoX pairs), routed experts
// (top-k logits, softmax over the kept ones) with biases and the clamped SwiGLU
// (alpha 1.702, limit 7.0). The pre-FFN norm is stored as post_attention_norm.
#include "model/arch/common.h"
#include "model/arch/registry.h"

namespace origami {

void BuildGptOss(const gguf::File& f, DecoderSpec& spec) {
  MetaReader meta(f, "gpt-oss");
  TensorLoader t(f);
  ReadCommonHyperParams(f, meta, spec);
  spec.ffn = FfnKind::kSwiGluClamped;
  spec.swiglu_alpha = 1.702f;
  spec.swiglu_limit = meta.F32Or("swiglu_limit", 7.0f);
  spec.ropes.push_back(ReadRope(f, meta, t, RopeLayout::kNeox, spec.layers.front().head_dim));
  ReadAttentionLayers(t, spec, /*biases=*/true);
  ReadMoeLayers(f, meta, t, spec, "post_attention_norm", /*biases=*/true);
  const int window = static_cast<int>(meta.U32Or("attention.sliding_window", 0));
  for (int i = 0; i < spec.n_layer(); ++i) {
    LayerSpec& l = spec.layers[i];
    l.sliding_window = i % 2 == 0 ? window : 0;
    l.attn_sinks = t.Vector("blk." + std::to_string(i) + ".attn_sinks.weight", l.n_head);
    l.router_kind = RouterKind::kTopKSoftmax;
    l.norm_topk = false;
  }
}

}  // namespace origami
