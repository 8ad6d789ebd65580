// The Ollama model card: GGUF metadata read once at start (family, sizes, quantization, digest)
// and the details/tags/capabilities objects the listing endpoints send.
#include "server/ollama_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cmath>
#include <filesystem>
#include <map>

#include "chat/tool_calls.h"
#include "gguf/gguf.h"
#include "server/ollama_api.h"
#include "tensor/dtype.h"

namespace origami::server {

using nlohmann::json;

namespace {

// SHA-256 as FIPS 180-4 defines it; only used for the model digest, so speed does not matter.
class Sha256 {
 public:
  void Update(std::string_view d) {
    for (unsigned char ch : d) {
      block_[fill_++] = ch;
      if (fill_ == 64) {
        Compress();
        fill_ = 0;
      }
      bits_ += 8;
    }
  }
  std::string HexDigest() {
    const uint64_t bits = bits_;
    Update(std::string_view("\x80", 1));
    while (fill_ != 56) Update(std::string_view("\0", 1));
    for (int i = 7; i >= 0; --i) {
      block_[fill_++] = static_cast<unsigned char>(bits >> (8 * i));
    }
    Compress();
    std::string out;
    for (uint32_t v : h_) out += fmt::format("{:08x}", v);
    return out;
  }

 private:
  static uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void Compress() {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t{block_[4 * i]} << 24) | (uint32_t{block_[4 * i + 1]} << 16) |
             (uint32_t{block_[4 * i + 2]} << 8) | uint32_t{block_[4 * i + 3]};
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 =
          h + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    const uint32_t add[8] = {a, b, c, d, e, f, g, h};
    for (int i = 0; i < 8; ++i) h_[i] += add[i];
  }

  std::array<uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::array<unsigned char, 64> block_{};
  size_t fill_ = 0;
  uint64_t bits_ = 0;
};

// The most common quantization name by bytes among the 2-D weights, for files without
// general.file_type.
std::string DominantTensorType(const gguf::File& f) {
  std::map<std::string, uint64_t> bytes;
  for (const auto& t : f.tensors()) {
    if (t.n_dims < 2) continue;
    const TypeTraits* tr = FindTypeTraits(t.type);
    bytes[tr ? tr->name : fmt::format("type{}", t.type)] += t.n_bytes;
  }
  std::string best;
  uint64_t most = 0;
  for (const auto& [name, n] : bytes)
    if (n > most) {
      most = n;
      best = name;
    }
  return best.empty() ? "unknown" : best;
}

// An integer metadata value whichever integer type the file used (unsigned ones sit in u64).
int64_t IntOf(const gguf::Value& v) {
  using gguf::ValueType;
  const bool is_signed = v.type == ValueType::kInt8 || v.type == ValueType::kInt16 ||
                         v.type == ValueType::kInt32 || v.type == ValueType::kInt64;
  if (is_signed) return v.i64;
  return v.u64 > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v.u64);
}

// A metadata value Ollama's model_info can hold: scalars as JSON, arrays as null.
json MetaJson(const gguf::Value& v) {
  using gguf::ValueType;
  switch (v.type) {
    case ValueType::kString:
      return std::string(v.str);
    case ValueType::kBool:
      return v.u64 != 0;
    case ValueType::kFloat32:
    case ValueType::kFloat64:
      return std::isfinite(v.f64) ? json(v.f64) : json(nullptr);
    case ValueType::kArray:
      return nullptr;
    default:
      return IntOf(v);
  }
}

// A token's text by id from tokenizer.ggml.tokens ("" when absent or out of range).
std::string TokenText(const gguf::File& f, const char* id_key) {
  const gguf::Value* id = f.Find(id_key);
  const gguf::Value* toks = f.Find("tokenizer.ggml.tokens");
  if (!id || !id->IsInteger() || !toks || toks->type != gguf::ValueType::kArray) return {};
  const int64_t i = IntOf(*id);
  if (i < 0 || static_cast<uint64_t>(i) >= toks->strings.size()) return {};
  return std::string(toks->strings[static_cast<size_t>(i)]);
}

std::string FileMtime(const std::string& path) {
  std::error_code ec;
  const auto ft = std::filesystem::last_write_time(path, ec);
  if (ec) return Rfc3339Nano(std::chrono::system_clock::now());
  return Rfc3339Nano(std::chrono::file_clock::to_sys(ft));
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

std::string OllamaName(std::string_view alias) {
  if (alias.find(':') != std::string_view::npos) return std::string(alias);
  return std::string(alias) + ":latest";
}

bool OllamaNameMatches(std::string_view requested, std::string_view alias) {
  auto same = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  return same(requested, alias) || same(requested, OllamaName(alias));
}

std::string HumanParameterCount(uint64_t n) {
  // Ollama's format.HumanNumber spelling: whole numbers without decimals, otherwise one decimal
  // for billions, two for millions, none for thousands.
  const double v = static_cast<double>(n);
  auto spell = [](double x, int decimals, char unit) {
    if (x == std::floor(x)) return fmt::format("{:.0f}{}", x, unit);
    return fmt::format("{:.{}f}{}", x, decimals, unit);
  };
  if (n >= 1000000000ull) return spell(v / 1e9, 1, 'B');
  if (n >= 1000000ull) return spell(v / 1e6, 2, 'M');
  if (n >= 1000ull) return fmt::format("{:.0f}K", v / 1e3);
  return std::to_string(n);
}

std::string FileTypeName(int64_t t) {
  // llama.cpp's llama_ftype numbering (the value general.file_type holds).
  static const std::map<int64_t, const char*> kNames = {
      {0, "F32"},      {1, "F16"},      {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
      {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
      {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
      {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"}, {21, "Q2_K_S"}, {22, "IQ3_XS"},
      {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"}, {26, "IQ3_S"},  {27, "IQ3_M"},
      {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"}, {31, "IQ1_M"},  {32, "BF16"},
      {36, "TQ1_0"},   {37, "TQ2_0"},   {38, "MXFP4"}};
  auto it = kNames.find(t);
  return it == kNames.end() ? std::string() : std::string(it->second);
}

OllamaModelCard DescribeGguf(const gguf::File& f, const std::string& alias, int64_t server_ctx) {
  OllamaModelCard c;
  c.name = OllamaName(alias);
  c.path = f.path();
  c.size = f.file_size();
  // The header (metadata and tensor table, up to the data section) names every tensor with its
  // type, shape and offset; with the size it identifies the file without reading the weights.
  const uint64_t header = std::min<uint64_t>(f.data_offset(), f.file_size());
  Sha256 h;
  h.Update(std::string_view(reinterpret_cast<const char*>(f.base()), static_cast<size_t>(header)));
  h.Update(fmt::format("size:{}", c.size));
  c.digest = h.HexDigest();
  c.modified_at = FileMtime(c.path);

  const auto arch = f.GetString("general.architecture");
  c.architecture = arch ? std::string(*arch) : "unknown";
  for (const auto& [key, value] : f.metadata()) {
    if (key == "tokenizer.chat_template") continue;  // /api/show sends it as "template"
    c.model_info[key] = MetaJson(value);
  }
  if (const gguf::Value* pc = f.Find("general.parameter_count"); pc && pc->IsInteger()) {
    c.parameter_count = static_cast<uint64_t>(std::max<int64_t>(IntOf(*pc), 0));
  } else {
    for (const auto& t : f.tensors()) c.parameter_count += static_cast<uint64_t>(t.NumElements());
  }
  c.model_info["general.parameter_count"] = c.parameter_count;
  c.model_info["general.architecture"] = c.architecture;
  c.parameter_size = HumanParameterCount(c.parameter_count);
  if (const gguf::Value* ft = f.Find("general.file_type"); ft && ft->IsInteger())
    c.quantization_level = FileTypeName(IntOf(*ft));
  if (c.quantization_level.empty()) c.quantization_level = DominantTensorType(f);

  auto meta_int = [&](const std::string& key) -> int64_t {
    const gguf::Value* v = f.Find(key);
    return v && v->IsInteger() ? IntOf(*v) : 0;
  };
  c.context_length = meta_int(c.architecture + ".context_length");
  if (c.context_length <= 0) {
    c.context_length = server_ctx;
    c.model_info[c.architecture + ".context_length"] = server_ctx;
  }
  c.embedding_length = meta_int(c.architecture + ".embedding_length");
  if (auto lic = f.GetString("general.license")) c.license = std::string(*lic);
  c.embedding = f.Has(c.architecture + ".pooling_type");

  std::string pre = TokenText(f, "tokenizer.ggml.fim_pre_token_id");
  std::string suf = TokenText(f, "tokenizer.ggml.fim_suf_token_id");
  std::string mid = TokenText(f, "tokenizer.ggml.fim_mid_token_id");
  if (pre.empty()) {  // older converters' names for the same tokens
    pre = TokenText(f, "tokenizer.ggml.prefix_token_id");
    suf = TokenText(f, "tokenizer.ggml.suffix_token_id");
    mid = TokenText(f, "tokenizer.ggml.middle_token_id");
  }
  if (!pre.empty() && !suf.empty() && !mid.empty()) {
    c.fim_prefix = pre;
    c.fim_suffix = suf;
    c.fim_middle = mid;
  }
  return c;
}

json OllamaDetails(const OllamaModelCard& c) {
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", c.architecture},
          {"families", json::array({c.architecture})},
          {"parameter_size", c.parameter_size},
          {"quantization_level", c.quantization_level}};
}

json OllamaTagEntry(const OllamaModelCard& c) {
  return {{"name", c.name}, {"model", c.name},    {"modified_at", c.modified_at},
          {"size", c.size}, {"digest", c.digest}, {"details", OllamaDetails(c)}};
}

std::vector<std::string> OllamaCapabilities(const OllamaModelCard& c,
                                            std::string_view chat_template) {
  if (c.embedding) return {"embedding"};
  std::vector<std::string> caps = {"completion"};
  if (DetectToolCallFormat(chat_template) != ToolCallFormat::kNone) caps.push_back("tools");
  if (c.has_fim()) caps.push_back("insert");
  // A switch the template reads (Qwen3's enable_thinking, gpt-oss's reasoning_effort) or think
  // tags it writes.
  if (chat_template.find("enable_thinking") != std::string_view::npos ||
      chat_template.find("reasoning_effort") != std::string_view::npos ||
      chat_template.find("<think>") != std::string_view::npos)
    caps.push_back("thinking");
  return caps;
}

}  // namespace origami::server
