// The Qwen family: Qwen2/2.5 (`qwen2`: biases on Q, K, V), Qwen3 (`qwen3`: per-head RMSNorm of Q and
// K before rope, head size from attention.key_length) and Qwen3-MoE (`qwen3moe`: Qwen3 attention
// with routed experts, softmax then top-k, renormalized). All use NeoX rope (pairs i, i + n_rot/2).
// A rerank pooling type makes a Qwen3-Reranker: a yes/no head on the last token.
#include "model/arch/common.h"
#include "model/arch/registry.h"

namespace origami {

namespace {
void BuildQwen(const gguf::File& f, DecoderSpec& spec, const char* arch, bool moe) {
  MetaReader meta(f, arch);
  TensorLoader t(f);
  ReadCommonHyperParams(f, meta, spec);
  spec.ropes.push_back(ReadRope(f, meta, t, RopeLayout::kNeox, spec.layers.front().head_dim));
  // Qwen2 has Q/K/V biases; Qwen3 has none but reading them optionally costs nothing.
  ReadAttentionLayers(t, spec, /*biases=*/true);
  if (moe) {
    // Qwen3-MoE sets norm_topk_prob; llama.cpp renormalizes the kept weights for this architecture.
    ReadMoeLayers(f, meta, t, spec, "ffn_norm", /*biases=*/false);
  } else {
    ReadDenseFfnLayers(t, spec);
  }
  // A Qwen3-Reranker (pooling_type 4): the converter keeps the LM head's rows of the tokens "yes"
  // and "no" (yes first, as <arch>.classifier.output_labels lists them) as cls.output.
  if (spec.pooling == Pooling::kRank) spec.cls_out = t.Matrix("cls.output.weight", 2, spec.n_embd);
}
}  // namespace

void BuildQwen2(const gguf::File& f, DecoderSpec& spec) { BuildQwen(f, spec, "qwen2", false); }
void BuildQwen3(const gguf::File& f, DecoderSpec& spec) { BuildQwen(f, spec, "qwen3", false); }
void BuildQwen3Moe(const gguf::File& f, DecoderSpec& spec) { BuildQwen(f, spec, "qwen3moe", true); }

}  // namespace origami
