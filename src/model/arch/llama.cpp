// The Llama family (Llama 1/2/3.x, TinyStories, Mistral, Mixtral): RMSNorm, adjacent-pair RoPE with
// optional per-pair frequency factors (rope_freqs.weight, Llama 3.1+), GQA, SwiGLU; routed experts
// when llama.expert_count is set (Mixtral: softmax, top-k, renormalized); a sliding window when
// llama.attention.sliding_window is set (Mistral 7B v0.1).
#include "model/arch/common.h"
#include "model/arch/registry.h"

namespace origami {

void BuildLlama(const gguf::File& f, DecoderSpec& spec) {
  MetaReader meta(f, "llama");
  TensorLoader t(f);
  ReadCommonHyperParams(f, meta, spec);
  spec.ropes.push_back(ReadRope(f, meta, t, RopeLayout::kAdjacent, spec.layers.front().head_dim));
  ReadAttentionLayers(t, spec, /*biases=*/false);
  if (meta.U32Or("expert_count", 0) > 0) {
    ReadMoeLayers(f, meta, t, spec, "ffn_norm", /*biases=*/false);
  } else {
    ReadDenseFfnLayers(t, spec);
  }
  const int window = static_cast<int>(meta.U32Or("attention.sliding_window", 0));
  for (auto& l : spec.layers) l.sliding_window = window;
}

}  // namespace origami
