// Random-weight GGUF models. Key and tensor names follow llama.cpp's converters
// (convert_hf_to_gguf.py) for each architecture; shapes follow ggml's ne order ([in, out]).
#include "convert/synth.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <random>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace origami {

namespace {

struct Shape {
  int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff;
  int n_expert, n_expert_used, n_ff_exp;
  int window;  // sliding window (gemma3, gpt-oss), 0 elsewhere
  // deepseek2 (MLA and the DeepSeek MoE); head_dim above is the key head, nope + rope.
  struct Mla {
    int q_lora = 0, kv_lora = 0, rope = 0, head_dim_v = 0;
    int n_dense = 0, n_shared = 0, n_group = 1, n_group_used = 1;
    bool sigmoid = false, norm = false, bias = false;
    float scale = 1.0f;
    float yarn = 0.0f;  // > 0: YaRN with this factor over an original context of yarn_ctx
    int yarn_ctx = 0;
    bool split = false;  // attn_k_b/attn_v_b instead of attn_kv_b, keys as newer converters write them
  } mla;
};

// deepseek2 shapes. tiny: V3-style routing (sigmoid, selection bias, 4 groups of which 2 are
// eligible, renormalized, scaled) with a compressed query; tiny-yarn: the same with YaRN (factor 8
// over 64 original positions, mscale_all_dim 1); tiny-split: the same with attn_k_b/attn_v_b and
// the keys of newer converters; tiny-v2: V2-Lite-style (q straight from
// attn_q, softmax, two shared experts, no groups); deepseek2-2g: DeepSeek-V3's widths (7168
// embedding, 128 heads of 128 + 64 rope, q_lora 1536, kv_lora 512, 2048-wide experts, 8 active + 1
// shared, 8 groups / 4) with 1 dense + 2 MoE layers and 32 instead of 256 experts, so that the
// file stays a few GB while a token reads the same active widths.
Shape Deepseek2Shape(const std::string& preset) {
  Shape s{};
  if (preset == "tiny" || preset == "tiny-v2" || preset == "tiny-yarn" || preset == "tiny-split") {
    s = {3, 64, 4, 4, 64, 128, 8, 2, 32, 0};
    s.mla = {preset != "tiny-v2" ? 64 : 0, 32, 32, 32, 1, 1, 4, 2, true, true, true, 2.5f};
    if (preset == "tiny-v2") {
      s.mla.n_shared = 2, s.mla.n_group = 1, s.mla.n_group_used = 1;
      s.mla.sigmoid = false, s.mla.norm = false, s.mla.bias = false, s.mla.scale = 1.0f;
    }
    // A short original context so that YaRN's ramp moves the frequencies the test positions see.
    if (preset == "tiny-yarn") s.mla.yarn = 8.0f, s.mla.yarn_ctx = 64;
    if (preset == "tiny-split") s.mla.split = true;
  } else if (preset == "deepseek2-2g") {
    s = {3, 7168, 128, 128, 192, 18432, 32, 8, 2048, 0};
    s.mla = {1536, 512, 64, 128, 1, 1, 8, 4, true, true, true, 2.5f};
  } else {
    Fail("synth: unknown preset '{}' for deepseek2 (tiny, tiny-v2, tiny-yarn, tiny-split, deepseek2-2g)", preset);
  }
  return s;
}

Shape PresetShape(const std::string& arch, const std::string& preset) {
  if (arch == "deepseek2") return Deepseek2Shape(preset);
  const bool moe = arch == "mixtral" || arch == "qwen3moe" || arch == "gpt-oss";
  // Head sizes other than n_embd / n_head where the family allows it (attention.key_length).
  const bool own_head_dim = arch == "qwen3" || arch == "qwen3moe" || arch == "gemma3" || arch == "gpt-oss";
  Shape s{};
  if (preset == "tiny") {
    s = {2, 64, 4, 2, own_head_dim ? 32 : 16, 128, moe ? 8 : 0, moe ? 2 : 0, 32, 0};
    if (arch == "gemma3") s.n_layer = 7, s.window = 6;  // layers 0-4 and 6 local, 5 global
    if (arch == "gpt-oss") s.n_layer = 3, s.window = 6;
  } else if (preset == "small") {
    s = {8, 1024, 16, 4, own_head_dim ? 128 : 64, 2816, moe ? 32 : 0, moe ? 4 : 0, 512, 0};
    if (arch == "gemma3") s.n_layer = 12, s.window = 512;
    if (arch == "gpt-oss") s.window = 128;
  } else if (preset == "gpt-oss-2g" || preset == "qwen3moe-2g") {
    // Benchmark shapes: the real models' layer widths (gpt-oss-20b; Qwen3-30B-A3B) with fewer
    // layers, so the file is 2-3 GB: gpt-oss-20b has 24 layers of 32 experts (top 4),
    // Qwen3-30B-A3B 48 layers of 128 experts (top 8); both keep all their experts here.
    if (preset.compare(0, arch.size(), arch) != 0 || preset[arch.size()] != '-')
      Fail("synth: preset '{}' is for --arch {}", preset, preset.substr(0, preset.rfind('-')));
    if (arch == "gpt-oss") s = {5, 2880, 64, 8, 64, 2880, 32, 4, 2880, 128};
    else s = {6, 2048, 32, 4, 128, 6144, 128, 8, 768, 0};
  } else {
    Fail("synth: unknown preset '{}' (tiny, small, gpt-oss-2g, qwen3moe-2g)", preset);
  }
  return s;
}


class Builder {
 public:
  Builder(const SynthOptions& o, gguf::Writer& w) : w_(w), seed_(o.seed) {
    const TypeTraits* t = FindTypeTraitsByName(o.type);
    if (!t || !t->from_float) Fail("synth: weight type '{}' cannot be written", o.type);
    type_ = t;
    // With MXFP4 experts, the other matrices are F32 in the test presets (exact references) and
    // Q8_0 in the benchmark presets (an F32 attention would dwarf the active expert bytes).
    dense_ = t->type != DType::kMXFP4 ? t : o.preset.size() > 3 && o.preset.ends_with("-2g") ? &Traits(DType::kQ8_0)
                                                                                               : &Traits(DType::kF32);
    fast_ = o.preset.ends_with("-2g");
  }

  // A 1-D tensor in F32 (norm gains around 1, biases around 0).
  void Vector(const std::string& name, int64_t n, float mean, float std) { Add(name, {n}, mean, std, &Traits(DType::kF32)); }
  // A matrix [rows, cols] (ne = [cols, rows]) with weights of std gain/sqrt(cols).
  void Matrix(const std::string& name, int64_t rows, int64_t cols, float gain = 0.8f, bool f32 = false) {
    Add(name, {cols, rows}, 0.0f, gain / std::sqrt(static_cast<float>(cols)), f32 ? &Traits(DType::kF32) : MatType());
  }
  // A bias per expert, ne = [n, n_expert].
  void ExpertBias(const std::string& name, int64_t n_expert, int64_t n) {
    Add(name, {n, n_expert}, 0.0f, 0.1f, &Traits(DType::kF32));
  }
  void Experts(const std::string& name, int64_t n_expert, int64_t rows, int64_t cols) {
    Add(name, {cols, rows, n_expert}, 0.0f, 0.8f / std::sqrt(static_cast<float>(cols)), ExpertType());
  }

 private:
  const TypeTraits* MatType() const { return dense_; }
  const TypeTraits* ExpertType() const { return type_; }

  void Add(const std::string& name, std::vector<int64_t> ne, float mean, float std, const TypeTraits* t) {
    if (ne[0] % t->block_size)
      Fail("synth: tensor '{}' has rows of {} elements, not a multiple of {}'s block of {}", name, ne[0], t->name,
           t->block_size);
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    const uint64_t bytes = static_cast<uint64_t>(n / t->block_size) * t->type_size;
    // Each tensor draws from its own generator (seed, tensor index), when it is written, so that
    // only one tensor's floats are held at a time.
    const uint64_t seed = seed_ * 1000003u + index_++;
    const bool fast = fast_;
    w_.AddTensor(name, static_cast<uint32_t>(t->type), ne, bytes, [=](uint8_t* dst) {
      std::vector<float> v(n);
      if (fast) {
        // Benchmark presets: billions of weights, so a cheap bell curve instead of
        // std::normal_distribution: the sum of four 16-bit uniforms of one splitmix64 draw
        // (Irwin-Hall, variance 4/12), scaled to the requested std.
        uint64_t state = seed * 0x9E3779B97F4A7C15ull;
        const float k = std * std::sqrt(3.0f) / 65536.0f;
        for (auto& x : v) {
          uint64_t z = (state += 0x9E3779B97F4A7C15ull);
          z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
          z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
          z ^= z >> 31;
          const float sum = static_cast<float>((z & 0xffff) + ((z >> 16) & 0xffff) + ((z >> 32) & 0xffff) + (z >> 48));
          x = mean + (sum - 2 * 65535.0f) * k;
        }
      } else {
        std::mt19937_64 g(seed);
        std::normal_distribution<float> d(mean, std);
        for (auto& x : v) x = d(g);
      }
      t->from_float(v.data(), dst, n);
    });
  }

  gguf::Writer& w_;
  uint64_t seed_;
  uint64_t index_ = 0;
  const TypeTraits* type_;
  const TypeTraits* dense_;  // the non-expert matrices
  bool fast_ = false;        // cheap random numbers (benchmark presets)
};

// The built-in vocabulary: SentencePiece byte fallback only.
int WriteByteVocab(gguf::Writer& w) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};  // unknown, control, control
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(6);  // byte
  }
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetF32Array("tokenizer.ggml.scores", std::vector<float>(tokens.size(), 0.0f));
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetU32("tokenizer.ggml.bos_token_id", 1);
  w.SetU32("tokenizer.ggml.eos_token_id", 2);
  w.SetU32("tokenizer.ggml.unknown_token_id", 0);
  return static_cast<int>(tokens.size());
}

}  // namespace

std::vector<std::string> SynthArchs() {
  return {"llama", "mixtral", "qwen2", "qwen3", "qwen3moe", "gemma3", "gpt-oss", "deepseek2", "bert", "nomic-bert"};
}

namespace {

// deepseek2's keys beyond the common ones, as llama.cpp's converter writes them.
void WriteDeepseek2Keys(gguf::Writer& w, const Shape& s) {
  const std::string p = "deepseek2.";
  const Shape::Mla& m = s.mla;
  if (m.q_lora > 0) w.SetU32(p + "attention.q_lora_rank", m.q_lora);
  w.SetU32(p + "attention.kv_lora_rank", m.kv_lora);
  w.SetU32(p + "rope.dimension_count", m.rope);
  w.SetU32(p + "leading_dense_block_count", m.n_dense);
  w.SetU32(p + "expert_shared_count", m.n_shared);
  w.SetF32(p + "expert_weights_scale", m.scale);
  w.SetBool(p + "expert_weights_norm", m.norm);
  w.SetU32(p + "expert_gating_func", m.sigmoid ? 2 : 1);  // llama.cpp: 1 softmax, 2 sigmoid
  if (m.yarn > 0) {
    w.SetString(p + "rope.scaling.type", "yarn");
    w.SetF32(p + "rope.scaling.factor", m.yarn);
    w.SetU32(p + "rope.scaling.original_context_length", m.yarn_ctx);
    w.SetF32(p + "rope.scaling.yarn_log_multiplier", 0.1f);  // 0.1 * mscale_all_dim (1.0)
  }
  if (m.n_group > 1) {
    w.SetU32(p + "expert_group_count", m.n_group);
    w.SetU32(p + "expert_group_used_count", m.n_group_used);
  }
}

// One deepseek2 layer's tensors in the converter's order.
void WriteDeepseek2Layer(Builder& b, const Shape& s, int i) {
  const Shape::Mla& m = s.mla;
  const std::string l = "blk." + std::to_string(i) + ".";
  const int64_t e = s.n_embd, h = s.n_head, nope = s.head_dim - m.rope;
  b.Vector(l + "attn_norm.weight", e, 1.0f, 0.1f);
  if (m.q_lora > 0) {
    b.Matrix(l + "attn_q_a.weight", m.q_lora, e);
    b.Vector(l + "attn_q_a_norm.weight", m.q_lora, 1.0f, 0.1f);
    b.Matrix(l + "attn_q_b.weight", h * s.head_dim, m.q_lora);
  } else {
    b.Matrix(l + "attn_q.weight", h * s.head_dim, e);
  }
  b.Matrix(l + "attn_kv_a_mqa.weight", m.kv_lora + m.rope, e);
  b.Vector(l + "attn_kv_a_norm.weight", m.kv_lora, 1.0f, 0.1f);
  if (m.split) {
    b.Experts(l + "attn_k_b.weight", h, m.kv_lora, nope);  // per head W_UK^T: ne [nope, kv_lora, n_head]
    b.Experts(l + "attn_v_b.weight", h, m.head_dim_v, m.kv_lora);  // ne [kv_lora, v, n_head]
  } else {
    b.Matrix(l + "attn_kv_b.weight", h * (nope + m.head_dim_v), m.kv_lora);
  }
  b.Matrix(l + "attn_output.weight", e, h * m.head_dim_v);
  b.Vector(l + "ffn_norm.weight", e, 1.0f, 0.1f);
  if (i < m.n_dense) {
    b.Matrix(l + "ffn_gate.weight", s.n_ff, e);
    b.Matrix(l + "ffn_up.weight", s.n_ff, e);
    b.Matrix(l + "ffn_down.weight", e, s.n_ff);
    return;
  }
  b.Matrix(l + "ffn_gate_inp.weight", s.n_expert, e, 4.0f, /*f32=*/true);
  if (m.bias) b.Vector(l + "exp_probs_b.bias", s.n_expert, 0.0f, 0.1f);
  b.Experts(l + "ffn_gate_exps.weight", s.n_expert, s.n_ff_exp, e);
  b.Experts(l + "ffn_up_exps.weight", s.n_expert, s.n_ff_exp, e);
  b.Experts(l + "ffn_down_exps.weight", s.n_expert, e, s.n_ff_exp);
  if (m.n_shared > 0) {
    const int64_t ff = int64_t{s.n_ff_exp} * m.n_shared;
    b.Matrix(l + "ffn_gate_shexp.weight", ff, e);
    b.Matrix(l + "ffn_up_shexp.weight", ff, e);
    b.Matrix(l + "ffn_down_shexp.weight", e, ff);
  }
}

// The tokenizer: the vocabulary file's tokenizer.* keys, or the built-in byte vocabulary. `vocab`
// keeps the file open until the writer has copied its values. Returns the vocabulary size.
int WriteVocab(const SynthOptions& o, gguf::Writer& w, std::unique_ptr<gguf::File>& vocab) {
  if (o.vocab.empty()) return WriteByteVocab(w);
  vocab = gguf::File::Open(o.vocab);
  for (const auto& [k, v] : vocab->metadata())
    if (k.rfind("tokenizer.", 0) == 0) w.CopyValue(k, v);
  const gguf::Value* toks = vocab->Find("tokenizer.ggml.tokens");
  if (!toks || toks->type != gguf::ValueType::kArray) Fail("synth: {} has no tokenizer.ggml.tokens", o.vocab);
  return static_cast<int>(toks->count);
}

// A BERT encoder as llama.cpp's converter writes it: `bert` (BertModel: absolute positions,
// biases, GELU) or `nomic-bert` (no position table, no biases, fused attn_qkv with NeoX rope,
// SwiGLU). Presets: tiny (64 wide, 2 layers of 4 heads, FFN 128, 64 positions) for tests,
// bert-base (768 wide, 12 layers of 12 heads, FFN 3072, 512 positions) for benchmarks.
// --pooling-type 4 adds a cross-encoder's rank head (cls.*).
void WriteBert(const SynthOptions& o) {
  int n_layer, n_embd, n_head, n_ff, n_ctx;
  if (o.preset == "tiny") {
    n_layer = 2, n_embd = 64, n_head = 4, n_ff = 128, n_ctx = 64;
  } else if (o.preset == "bert-base") {
    n_layer = 12, n_embd = 768, n_head = 12, n_ff = 3072, n_ctx = 512;
  } else {
    Fail("synth: unknown preset '{}' for {} (tiny, bert-base)", o.preset, o.arch);
  }
  if (o.pooling_type > 4) Fail("--pooling-type must be 0 to 4, got {}", o.pooling_type);
  const bool nomic = o.arch == "nomic-bert";
  gguf::Writer w;
  const std::string p = o.arch + ".";
  w.SetString("general.architecture", o.arch);
  w.SetString("general.name", "origami-synth-" + o.arch + "-" + o.preset);
  w.SetU32(p + "context_length", n_ctx);
  w.SetU32(p + "embedding_length", n_embd);
  w.SetU32(p + "feed_forward_length", n_ff);
  w.SetU32(p + "block_count", n_layer);
  w.SetU32(p + "attention.head_count", n_head);
  w.SetF32(p + "attention.layer_norm_epsilon", 1e-12f);
  w.SetBool(p + "attention.causal", false);
  // nomic-embed-text's base; a short test sequence still turns the fast pairs through several cycles.
  if (nomic) w.SetF32(p + "rope.freq_base", 1000.0f);
  if (o.pooling_type >= 0) w.SetU32(p + "pooling_type", static_cast<uint32_t>(o.pooling_type));
  std::unique_ptr<gguf::File> vocab;
  const int n_vocab = WriteVocab(o, w, vocab);

  Builder b(o, w);
  const int64_t e = n_embd;
  // Embedding rows of std ~0.5 and a LayerNorm after them: the scale only sets how far the norm
  // has to pull, as in a trained model.
  b.Matrix("token_embd.weight", n_vocab, e, 0.5f * std::sqrt(static_cast<float>(e)));
  b.Matrix("token_types.weight", 2, e, 0.5f * std::sqrt(static_cast<float>(e)), /*f32=*/true);
  if (!nomic) b.Matrix("position_embd.weight", n_ctx, e, 0.5f * std::sqrt(static_cast<float>(e)), /*f32=*/true);
  b.Vector("token_embd_norm.weight", e, 1.0f, 0.1f);
  b.Vector("token_embd_norm.bias", e, 0.0f, 0.1f);
  for (int i = 0; i < n_layer; ++i) {
    const std::string l = "blk." + std::to_string(i) + ".";
    if (nomic) {
      b.Matrix(l + "attn_qkv.weight", 3 * e, e);
    } else {
      for (const char* m : {"attn_q", "attn_k", "attn_v"}) {
        b.Matrix(l + m + ".weight", e, e);
        b.Vector(l + m + ".bias", e, 0.0f, 0.1f);
      }
    }
    b.Matrix(l + "attn_output.weight", e, e);
    if (!nomic) b.Vector(l + "attn_output.bias", e, 0.0f, 0.1f);
    b.Vector(l + "attn_output_norm.weight", e, 1.0f, 0.1f);
    b.Vector(l + "attn_output_norm.bias", e, 0.0f, 0.1f);
    if (nomic) {
      b.Matrix(l + "ffn_up.weight", n_ff, e);
      b.Matrix(l + "ffn_gate.weight", n_ff, e);
      b.Matrix(l + "ffn_down.weight", e, n_ff);
    } else {
      b.Matrix(l + "ffn_up.weight", n_ff, e);
      b.Vector(l + "ffn_up.bias", n_ff, 0.0f, 0.1f);
      b.Matrix(l + "ffn_down.weight", e, n_ff);
      b.Vector(l + "ffn_down.bias", e, 0.0f, 0.1f);
    }
    b.Vector(l + "layer_output_norm.weight", e, 1.0f, 0.1f);
    b.Vector(l + "layer_output_norm.bias", e, 0.0f, 0.1f);
  }
  if (o.pooling_type == 4) {
    // The classification head: a dense + tanh pooler and one logit, kept in F32 (tiny next to
    // the layers, and the score is read straight from them).
    b.Matrix("cls.weight", e, e, 0.8f, /*f32=*/true);
    b.Vector("cls.bias", e, 0.0f, 0.1f);
    b.Matrix("cls.output.weight", 1, e, 2.0f, /*f32=*/true);
    b.Vector("cls.output.bias", 1, 0.0f, 0.1f);
  }
  w.Write(o.output);
}

}  // namespace

void WriteSynthModel(const SynthOptions& o) {
  bool known = false;
  for (const auto& a : SynthArchs()) known |= a == o.arch;
  if (!known)
    Fail("synth: unknown architecture '{}' (llama, mixtral, qwen2, qwen3, qwen3moe, gemma3, gpt-oss, deepseek2, bert, nomic-bert)", o.arch);
  if (o.output.empty()) Fail("synth: give an output file (-o FILE.gguf)");
  if (o.arch == "bert" || o.arch == "nomic-bert") return WriteBert(o);
  const Shape s = PresetShape(o.arch, o.preset);
  const std::string arch = o.arch == "mixtral" ? "llama" : o.arch;  // Mixtral files say "llama"
  const bool moe = s.n_expert > 0;
  const TypeTraits* wt = FindTypeTraitsByName(o.type);
  if (wt && wt->type == DType::kMXFP4 && !moe) Fail("synth: MXFP4 applies to expert tensors; '{}' has none", o.arch);

  gguf::Writer w;
  const std::string p = arch + ".";
  w.SetString("general.architecture", arch);
  w.SetString("general.name", "origami-synth-" + o.arch + "-" + o.preset);
  w.SetU32("general.quantization_version", 2);
  w.SetU32(p + "context_length", o.arch == "gpt-oss" ? 131072 : 4096);
  w.SetU32(p + "embedding_length", s.n_embd);
  if (o.pooling_type >= 0) {
    if (o.pooling_type > 4) Fail("--pooling-type must be 0 to 4, got {}", o.pooling_type);
    if (o.pooling_type == 4 && o.arch != "qwen3")
      Fail("synth: --pooling-type 4 (a reranker) is for bert, nomic-bert or qwen3, not {}", o.arch);
    w.SetU32(p + "pooling_type", static_cast<uint32_t>(o.pooling_type));
  }
  if (o.pooling_type == 4) {
    // A Qwen3-Reranker as the converter writes it: the classifier's labels, yes first, and the
    // prompt each (query, document) pair is read through (the same text as the server's
    // built-in kQwen3RerankTemplate).
    w.SetStringArray(p + "classifier.output_labels", {"yes", "no"});
    w.SetString("tokenizer.chat_template.rerank",
                "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
                "the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
                "<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that "
                "answer the query\n<Query>: {query}\n<Document>: {document}<|im_end|>\n"
                "<|im_start|>assistant\n<think>\n\n</think>\n\n");
  }
  w.SetU32(p + "block_count", s.n_layer);
  w.SetU32(p + "feed_forward_length", s.n_ff);
  w.SetU32(p + "attention.head_count", s.n_head);
  // deepseek2's split form describes the latent cache under the plain keys (one KV head of the
  // latent and rope key; the latent as value) and the per-head sizes under *_mla.
  const bool split = arch == "deepseek2" && s.mla.split;
  w.SetU32(p + "attention.head_count_kv", split ? 1 : s.n_head_kv);
  if (s.head_dim != s.n_embd / s.n_head || arch != "llama") {
    w.SetU32(p + "attention.key_length", split ? s.mla.kv_lora + s.mla.rope : s.head_dim);
    w.SetU32(p + "attention.value_length", split ? s.mla.kv_lora : arch == "deepseek2" ? s.mla.head_dim_v : s.head_dim);
  }
  if (split) {
    w.SetU32(p + "attention.key_length_mla", s.head_dim);
    w.SetU32(p + "attention.value_length_mla", s.mla.head_dim_v);
  }
  w.SetF32(p + "attention.layer_norm_rms_epsilon", o.arch == "gemma3" || o.arch == "deepseek2" ? 1e-6f : 1e-5f);
  const float base = o.arch == "gemma3" ? 1e6f : o.arch == "gpt-oss" ? 150000.0f : o.arch.rfind("qwen", 0) == 0 ? 1e6f : 10000.0f;
  w.SetF32(p + "rope.freq_base", base);
  if (arch == "llama") w.SetU32(p + "rope.dimension_count", s.head_dim);
  if (moe) {
    w.SetU32(p + "expert_count", s.n_expert);
    w.SetU32(p + "expert_used_count", s.n_expert_used);
    if (o.arch != "mixtral") w.SetU32(p + "expert_feed_forward_length", s.n_ff_exp);
  }
  if (s.window > 0) w.SetU32(p + "attention.sliding_window", s.window);
  if (arch == "deepseek2") WriteDeepseek2Keys(w, s);
  if (o.arch == "gpt-oss") {
    w.SetString(p + "rope.scaling.type", "yarn");
    w.SetF32(p + "rope.scaling.factor", 32.0f);
    w.SetU32(p + "rope.scaling.original_context_length", 4096);
  }

  std::unique_ptr<gguf::File> vocab;
  const int n_vocab = WriteVocab(o, w, vocab);
  if (arch == "llama") w.SetU32(p + "vocab_size", n_vocab);

  // Tensors, in the converters' order.
  Builder b(o, w);
  const bool tied = o.arch == "gemma3" || o.arch == "qwen2";
  b.Matrix("token_embd.weight", n_vocab, s.n_embd, 0.8f * std::sqrt(static_cast<float>(s.n_embd)) / 8.0f,
           /*f32=*/false);
  const int64_t e = s.n_embd, q_dim = int64_t{s.n_head} * s.head_dim, kv_dim = int64_t{s.n_head_kv} * s.head_dim;
  for (int i = 0; i < s.n_layer; ++i) {
    if (arch == "deepseek2") {
      WriteDeepseek2Layer(b, s, i);
      continue;
    }
    const std::string l = "blk." + std::to_string(i) + ".";
    b.Vector(l + "attn_norm.weight", e, 1.0f, 0.1f);
    b.Matrix(l + "attn_q.weight", q_dim, e);
    b.Matrix(l + "attn_k.weight", kv_dim, e);
    b.Matrix(l + "attn_v.weight", kv_dim, e);
    b.Matrix(l + "attn_output.weight", e, q_dim);
    if (o.arch == "qwen2" || o.arch == "gpt-oss") {
      b.Vector(l + "attn_q.bias", q_dim, 0.0f, 0.1f);
      b.Vector(l + "attn_k.bias", kv_dim, 0.0f, 0.1f);
      b.Vector(l + "attn_v.bias", kv_dim, 0.0f, 0.1f);
    }
    if (o.arch == "gpt-oss") {
      b.Vector(l + "attn_output.bias", e, 0.0f, 0.1f);
      b.Vector(l + "attn_sinks.weight", s.n_head, 0.0f, 1.0f);
    }
    if (o.arch == "qwen3" || o.arch == "qwen3moe" || o.arch == "gemma3") {
      b.Vector(l + "attn_q_norm.weight", s.head_dim, 1.0f, 0.1f);
      b.Vector(l + "attn_k_norm.weight", s.head_dim, 1.0f, 0.1f);
    }
    if (o.arch == "gemma3") b.Vector(l + "post_attention_norm.weight", e, 1.0f, 0.1f);
    // gpt-oss names its pre-FFN norm post_attention_norm.
    b.Vector(l + (o.arch == "gpt-oss" ? "post_attention_norm.weight" : "ffn_norm.weight"), e, 1.0f, 0.1f);
    if (moe) {
      const int64_t ff = o.arch == "mixtral" ? s.n_ff : s.n_ff_exp;
      b.Matrix(l + "ffn_gate_inp.weight", s.n_expert, e, 4.0f, /*f32=*/true);
      if (o.arch == "gpt-oss") b.Vector(l + "ffn_gate_inp.bias", s.n_expert, 0.0f, 0.5f);
      b.Experts(l + "ffn_gate_exps.weight", s.n_expert, ff, e);
      b.Experts(l + "ffn_up_exps.weight", s.n_expert, ff, e);
      b.Experts(l + "ffn_down_exps.weight", s.n_expert, e, ff);
      if (o.arch == "gpt-oss") {
        b.ExpertBias(l + "ffn_gate_exps.bias", s.n_expert, ff);
        b.ExpertBias(l + "ffn_up_exps.bias", s.n_expert, ff);
        b.ExpertBias(l + "ffn_down_exps.bias", s.n_expert, e);
      }
    } else {
      b.Matrix(l + "ffn_gate.weight", s.n_ff, e);
      b.Matrix(l + "ffn_up.weight", s.n_ff, e);
      b.Matrix(l + "ffn_down.weight", e, s.n_ff);
    }
    if (o.arch == "gemma3") b.Vector(l + "post_ffw_norm.weight", e, 1.0f, 0.1f);
  }
  b.Vector("output_norm.weight", e, 1.0f, 0.1f);
  if (!tied) b.Matrix("output.weight", n_vocab, e);
  // The reranker's head: where the converter copies the LM head's "yes" and "no" rows, random
  // rows of the same shape (F32, read straight into the score); unit gain puts the tiny model's
  // yes - no logit gaps around 1, so scores spread over (0, 1) rather than saturating.
  if (o.pooling_type == 4) b.Matrix("cls.output.weight", 2, e, 1.0f, /*f32=*/true);
  w.Write(o.output);
}

}  // namespace origami
