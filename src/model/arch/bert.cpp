// BERT-style encoders. `bert`: token + token-type + absolute-position embeddings and a LayerNorm,
// then per layer bidirectional attention with biases, LayerNorm(x + attention), a GELU FFN with
// biases, LayerNorm(x + FFN). `nomic-bert`: the same post-norm layers with no position table and
// no biases, Q/K/V fused into attn_qkv and rotated by NeoX rope, and a SwiGLU FFN. Pooling (mean,
// [CLS], or a cross-encoder's rank head) is the file's <arch>.pooling_type. Keys and tensor names
// as llama.cpp's converter writes them.
#include "model/arch/common.h"
#include "model/arch/registry.h"
#include "util/error.h"

namespace origami {

namespace {

// Hyper-parameters, pooling and the embedding tensors both families share; sizes the layers.
void ReadEncoderCommon(const gguf::File& f, const MetaReader& meta, const TensorLoader& t,
                       DecoderSpec& spec) {
  spec.encoder = true;
  spec.name = std::string(f.GetString("general.name").value_or(""));
  spec.n_embd = static_cast<int>(meta.U32("embedding_length"));
  const int n_layer = static_cast<int>(meta.U32("block_count"));
  const int n_head = static_cast<int>(meta.U32("attention.head_count"));
  const int n_ff = static_cast<int>(meta.U32("feed_forward_length"));
  if (spec.n_embd <= 0 || n_layer <= 0 || n_head <= 0 || n_ff <= 0 || n_layer > 4096 ||
      n_head > 4096 || spec.n_embd > (1 << 20) || n_ff > (1 << 22) || spec.n_embd % n_head != 0)
    Fail(
        "{}: bad hyper-parameters (embedding_length {}, block_count {}, head_count {}, "
        "feed_forward_length {})",
        f.path(), spec.n_embd, n_layer, n_head, n_ff);
  spec.n_ctx_train = static_cast<int>(meta.U32Or("context_length", 512));
  if (spec.n_ctx_train <= 0 || spec.n_ctx_train > (1 << 20))
    Fail("{}: bad context_length {}", f.path(), spec.n_ctx_train);
  spec.norm_eps = meta.F32Or("attention.layer_norm_epsilon", 1e-12f);
  if (!(spec.norm_eps > 0) || spec.norm_eps > 1)
    Fail("{}: bad layer_norm_epsilon {}", f.path(), spec.norm_eps);
  // An encoder that says it is causal is not one this forward pass computes.
  if (f.GetBool(meta.arch() + ".attention.causal").value_or(false))
    FailKind(ErrorKind::kUnsupported,
             "{}: {}.attention.causal is true; only bidirectional encoders are supported", f.path(),
             meta.arch());
  ReadPooling(f, meta, spec);

  const int64_t e = spec.n_embd;
  const gguf::TensorInfo* emb = f.FindTensor("token_embd.weight");
  if (!emb) Fail("{}: missing tensor 'token_embd.weight'", f.path());
  spec.n_vocab = static_cast<int>(emb->ne[1]);
  spec.tok_embd = t.Matrix("token_embd.weight", emb->ne[1], e);
  const gguf::TensorInfo* types = f.FindTensor("token_types.weight");
  if (!types) Fail("{}: missing tensor 'token_types.weight'", f.path());
  spec.type_embd = t.Matrix("token_types.weight", types->ne[1], e);
  spec.embd_norm = t.Vector("token_embd_norm.weight", e);
  spec.embd_norm_b = t.Vector("token_embd_norm.bias", e);
  spec.layers.resize(n_layer);
  for (LayerSpec& l : spec.layers) {
    l.n_head = l.n_head_kv = n_head;
    l.head_dim = static_cast<int>(e / n_head);
    l.n_ff = n_ff;
  }
}

// Per layer: the post-attention and output LayerNorms (both families).
void ReadLayerNorms(const TensorLoader& t, LayerSpec& l, const std::string& p, int64_t e) {
  l.attn_out_norm = t.Vector(p + "attn_output_norm.weight", e);
  l.attn_out_norm_b = t.Vector(p + "attn_output_norm.bias", e);
  l.layer_out_norm = t.Vector(p + "layer_output_norm.weight", e);
  l.layer_out_norm_b = t.Vector(p + "layer_output_norm.bias", e);
}

// The rank head: the dense + tanh pooler is optional (some converted rerankers have only the
// output projection); the one-logit output is required.
void ReadRankHead(const TensorLoader& t, DecoderSpec& spec) {
  if (spec.pooling != Pooling::kRank) return;
  const int64_t e = spec.n_embd;
  spec.cls = t.OptionalMatrix("cls.weight", e, e);
  if (spec.cls.data) spec.cls_b = t.Vector("cls.bias", e);
  spec.cls_out = t.Matrix("cls.output.weight", 1, e);
  spec.cls_out_b = t.OptionalVector("cls.output.bias", 1);
  if (spec.cls_out_b.empty()) spec.cls_out_b.assign(1, 0.0f);
}

}  // namespace

void BuildBert(const gguf::File& f, DecoderSpec& spec) {
  MetaReader meta(f, "bert");
  TensorLoader t(f);
  ReadEncoderCommon(f, meta, t, spec);
  const int64_t e = spec.n_embd;
  spec.pos_embd = t.Matrix("position_embd.weight", spec.n_ctx_train, e);
  for (int i = 0; i < spec.n_layer(); ++i) {
    LayerSpec& l = spec.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    l.wq = t.Matrix(p + "attn_q.weight", e, e);
    l.wk = t.Matrix(p + "attn_k.weight", e, e);
    l.wv = t.Matrix(p + "attn_v.weight", e, e);
    l.wo = t.Matrix(p + "attn_output.weight", e, e);
    l.bq = t.Vector(p + "attn_q.bias", e);
    l.bk = t.Vector(p + "attn_k.bias", e);
    l.bv = t.Vector(p + "attn_v.bias", e);
    l.bo = t.Vector(p + "attn_output.bias", e);
    l.w_up = t.Matrix(p + "ffn_up.weight", l.n_ff, e);
    l.b_up = t.Vector(p + "ffn_up.bias", l.n_ff);
    l.w_down = t.Matrix(p + "ffn_down.weight", e, l.n_ff);
    l.b_down = t.Vector(p + "ffn_down.bias", e);
    ReadLayerNorms(t, l, p, e);
  }
  ReadRankHead(t, spec);
}

void BuildNomicBert(const gguf::File& f, DecoderSpec& spec) {
  MetaReader meta(f, "nomic-bert");
  TensorLoader t(f);
  ReadEncoderCommon(f, meta, t, spec);
  const int64_t e = spec.n_embd;
  spec.ropes.push_back(ReadRope(f, meta, t, RopeLayout::kNeox, spec.layers.front().head_dim));
  for (int i = 0; i < spec.n_layer(); ++i) {
    LayerSpec& l = spec.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    l.wqkv = t.Matrix(p + "attn_qkv.weight", 3 * e, e);
    l.wo = t.Matrix(p + "attn_output.weight", e, e);
    l.w_gate = t.Matrix(p + "ffn_gate.weight", l.n_ff, e);
    l.w_up = t.Matrix(p + "ffn_up.weight", l.n_ff, e);
    l.w_down = t.Matrix(p + "ffn_down.weight", e, l.n_ff);
    ReadLayerNorms(t, l, p, e);
  }
  ReadRankHead(t, spec);
}

}  // namespace origami
