// Pieces shared by the architecture files: hyper-parameters, rope, the standard tensor names.
#pragma once

#include "model/model.h"

namespace origami {

// Fills n_embd, n_vocab, n_ctx_train, norm eps, the layer count and per-layer head counts and
// dims from "<arch>.*" keys, the embedding/output tensors and the output norm. own_v_dim: the value
// head size (attention.value_length) may differ from the key's (MLA).
void ReadCommonHyperParams(const gguf::File& f, const MetaReader& meta, DecoderSpec& spec, bool own_v_dim = false);
// "<arch>.pooling_type" into spec.pooling / has_pooling (absent: mean, has_pooling false).
void ReadPooling(const gguf::File& f, const MetaReader& meta, DecoderSpec& spec);
// Rope from "<arch>.rope.*" keys: base, dimension count, linear scaling, and rope_freqs.weight.
// Linear and YaRN scaling. base_override > 0 gives a rope of that base without scaling (Gemma 3's
// local layers).
RopeSpec ReadRope(const gguf::File& f, const MetaReader& meta, const TensorLoader& t,
                  RopeLayout layout, int head_dim, float base_override = 0.0f);
// blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.
void ReadStandardLayers(const TensorLoader& t, DecoderSpec& spec, bool biases);
// The attention half: attn_norm, attn_{q,k,v,output} (+ .bias), optional attn_{q,k}_norm.
void ReadAttentionLayers(const TensorLoader& t, DecoderSpec& spec, bool biases);
// The dense FFN half: ffn_norm, ffn_{gate,up,down}.
void ReadDenseFfnLayers(const TensorLoader& t, DecoderSpec& spec);
// A routed-expert FFN: <arch>.expert_count, expert_used_count, expert_feed_forward_length (default
// feed_forward_length); blk.N.{ffn_norm_name, ffn_gate_inp, ffn_{gate,up,down}_exps} (+ biases).
void ReadMoeLayers(const gguf::File& f, const MetaReader& meta, const TensorLoader& t, DecoderSpec& spec,
                   const char* ffn_norm_name, bool biases);

}  // namespace origami
