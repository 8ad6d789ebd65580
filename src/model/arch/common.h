// Pieces shared by the architecture files: hyper-parameters, rope, the standard tensor names.
#pragma once

#include "model/model.h"

namespace origami {

// Fills n_embd, n_vocab, n_ctx_train, norm eps, the layer count and per-layer head counts and
// dims from "<arch>.*" keys, the embedding/output tensors and the output norm.
void ReadCommonHyperParams(const gguf::File& f, const MetaReader& meta, DecoderSpec& spec);
// Rope from "<arch>.rope.*" keys: base, dimension count, linear scaling, and rope_freqs.weight.
RopeSpec ReadRope(const gguf::File& f, const MetaReader& meta, const TensorLoader& t,
                  cpu::RopeLayout layout, int head_dim);
// blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.
void ReadStandardLayers(const TensorLoader& t, DecoderSpec& spec, bool biases);

}  // namespace origami
