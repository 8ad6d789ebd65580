// llama2.c -> GGUF. The checkpoint layout (all little-endian): 7 int32 header fields (dim,
// hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means an
// unshared classifier at the end), then float32 arrays stacked over layers: token embedding,
// attention norms, wq, wk, wv, wo, FFN norms, w1, w2, w3, final norm, two legacy RoPE tables,
// [classifier]. Matrices act as out = W . in, which is GGUF's row order, so they copy unchanged.
#include "convert/llama2c.h"

#include <cstring>
#include <filesystem>
#include <vector>

#include "gguf/writer.h"
#include "tensor/dtype.h"
#include "util/checked.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace origami {

namespace {

struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

std::vector<std::string> ReadTokenizer(const std::string& path, int vocab, std::vector<float>& scores) {
  MappedFile f(path);
  const uint8_t* p = f.data();
  const size_t size = f.size();
  size_t pos = 0;
  auto take = [&](void* dst, size_t n, const char* what) {
    if (n > size - pos) Fail("{}: truncated tokenizer: {} needs {} bytes at byte offset {}", path, what, n, pos);
    std::memcpy(dst, p + pos, n);
    pos += n;
  };
  int32_t max_len = 0;
  take(&max_len, 4, "max_token_length");
  if (max_len <= 0 || max_len > (1 << 16)) Fail("{}: bad max_token_length {} at byte offset 0", path, max_len);
  std::vector<std::string> tokens(vocab);
  scores.resize(vocab);
  for (int i = 0; i < vocab; ++i) {
    take(&scores[i], 4, "token score");
    int32_t len = 0;
    const size_t len_at = pos;
    take(&len, 4, "token length");
    if (len < 0 || len > max_len) Fail("{}: token {} has length {} (max {}) at byte offset {}", path, i, len, max_len, len_at);
    tokens[i].resize(len);
    take(tokens[i].data(), len, "token bytes");
  }
  return tokens;
}

}  // namespace

void ConvertLlama2c(const Llama2cConvertOptions& opt) {
  MappedFile f(opt.checkpoint);
  Header h{};
  if (f.size() < sizeof(h)) Fail("{}: too small for a llama2.c header (28 bytes)", opt.checkpoint);
  std::memcpy(&h, f.data(), sizeof(h));
  const bool shared = h.vocab_size > 0;
  const int64_t vocab = shared ? h.vocab_size : -static_cast<int64_t>(h.vocab_size);
  if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 || h.n_kv_heads <= 0 || vocab <= 0 ||
      h.seq_len <= 0 || h.dim % h.n_heads != 0 || h.n_heads % h.n_kv_heads != 0 || h.dim > (1 << 16) ||
      h.hidden_dim > (1 << 18) || h.n_layers > 1024 || vocab > (1 << 22) || h.seq_len > (1 << 22))
    Fail("{}: implausible llama2.c header (dim {}, hidden {}, layers {}, heads {}, kv heads {}, vocab {}, seq_len {})",
         opt.checkpoint, h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len);
  const int64_t dim = h.dim, hid = h.hidden_dim, L = h.n_layers, head = dim / h.n_heads;
  const int64_t kv_dim = head * h.n_kv_heads;

  // Offsets of each array, in floats after the header. The sizes are bounded above, so int64
  // arithmetic cannot overflow; the total is then checked against the file size.
  struct Array {
    const char* what;
    int64_t count;
    int64_t offset = 0;
  };
  std::vector<Array> arrays = {
      {"token_embedding", vocab * dim}, {"rms_att", L * dim}, {"wq", L * dim * dim},  {"wk", L * kv_dim * dim},
      {"wv", L * kv_dim * dim},         {"wo", L * dim * dim}, {"rms_ffn", L * dim}, {"w1", L * hid * dim},
      {"w2", L * dim * hid},            {"w3", L * hid * dim}, {"rms_final", dim},
      {"freq_cis", h.seq_len * head},  // real and imaginary tables, seq_len x head/2 each
  };
  if (!shared) arrays.push_back({"wcls", vocab * dim});
  int64_t off = 0;
  for (auto& a : arrays) {
    a.offset = off;
    off += a.count;
  }
  const uint64_t need = sizeof(h) + static_cast<uint64_t>(off) * 4;
  if (need != f.size())
    Fail("{}: file is {} bytes, but the header (dim {}, layers {}, vocab {}) implies {} bytes", opt.checkpoint,
         f.size(), h.dim, h.n_layers, h.vocab_size, need);
  const float* base = reinterpret_cast<const float*>(f.data() + sizeof(h));
  auto at = [&](int i) { return base + arrays[i].offset; };

  std::vector<float> scores;
  std::vector<std::string> tokens = ReadTokenizer(opt.tokenizer, static_cast<int>(vocab), scores);
  // Back to SentencePiece conventions: spaces as U+2581, BOS/EOS as <s> and </s>.
  std::vector<int32_t> types(vocab, 1);
  for (int64_t i = 0; i < vocab; ++i) {
    std::string& t = tokens[i];
    if (i == 0) types[i] = 2;                                   // <unk>
    else if (i == 1) { t = "<s>"; types[i] = 3; }
    else if (i == 2) { t = "</s>"; types[i] = 3; }
    else if (t.size() == 6 && t.rfind("<0x", 0) == 0 && t[5] == '>') types[i] = 6;  // byte fallback
    std::string out;
    for (char c : t) out += c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, c);
    t = std::move(out);
  }

  gguf::Writer w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", opt.name.empty() ? std::filesystem::path(opt.checkpoint).stem().string() : opt.name);
  w.SetU32("general.file_type", 0);
  w.SetU32("llama.context_length", static_cast<uint32_t>(h.seq_len));
  w.SetU32("llama.embedding_length", static_cast<uint32_t>(dim));
  w.SetU32("llama.feed_forward_length", static_cast<uint32_t>(hid));
  w.SetU32("llama.block_count", static_cast<uint32_t>(L));
  w.SetU32("llama.attention.head_count", static_cast<uint32_t>(h.n_heads));
  w.SetU32("llama.attention.head_count_kv", static_cast<uint32_t>(h.n_kv_heads));
  w.SetU32("llama.rope.dimension_count", static_cast<uint32_t>(head));
  w.SetF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetF32("llama.rope.freq_base", 10000.0f);
  w.SetU32("llama.vocab_size", static_cast<uint32_t>(vocab));
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetF32Array("tokenizer.ggml.scores", scores);
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetU32("tokenizer.ggml.unknown_token_id", 0);
  w.SetU32("tokenizer.ggml.bos_token_id", 1);
  w.SetU32("tokenizer.ggml.eos_token_id", 2);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetBool("tokenizer.ggml.add_eos_token", false);
  w.SetBool("tokenizer.ggml.add_space_prefix", true);

  const uint32_t f32 = static_cast<uint32_t>(DType::kF32);
  auto add = [&](const std::string& name, std::vector<int64_t> ne, const float* data) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    w.AddTensor(name, f32, std::move(ne), data, static_cast<uint64_t>(n) * 4);
  };
  add("token_embd.weight", {dim, vocab}, at(0));
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {dim}, at(1) + l * dim);
    add(p + "attn_q.weight", {dim, dim}, at(2) + l * dim * dim);
    add(p + "attn_k.weight", {dim, kv_dim}, at(3) + l * kv_dim * dim);
    add(p + "attn_v.weight", {dim, kv_dim}, at(4) + l * kv_dim * dim);
    add(p + "attn_output.weight", {dim, dim}, at(5) + l * dim * dim);
    add(p + "ffn_norm.weight", {dim}, at(6) + l * dim);
    add(p + "ffn_gate.weight", {dim, hid}, at(7) + l * hid * dim);
    add(p + "ffn_down.weight", {hid, dim}, at(8) + l * dim * hid);
    add(p + "ffn_up.weight", {dim, hid}, at(9) + l * hid * dim);
  }
  add("output_norm.weight", {dim}, at(10));
  if (!shared) add("output.weight", {dim, vocab}, at(12));
  w.Write(opt.output);
}

}  // namespace origami
