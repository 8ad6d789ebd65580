// The Llama family (Llama 1/2/3.x, TinyStories, Mistral dense): RMSNorm, adjacent-pair RoPE with
// optional per-pair frequency factors (rope_freqs.weight, Llama 3.1+), GQA, SwiGLU.
#include <cmath>

#include "model/arch/common.h"
#include "model/arch/registry.h"
#include "util/error.h"

namespace origami {

void BuildLlama(const gguf::File& f, DecoderSpec& spec) {
  MetaReader meta(f, "llama");
  TensorLoader t(f);
  ReadCommonHyperParams(f, meta, spec);
  spec.ropes.push_back(ReadRope(f, meta, t, cpu::RopeLayout::kAdjacent, spec.layers.front().head_dim));
  ReadStandardLayers(t, spec, /*biases=*/false);
}

}  // namespace origami
