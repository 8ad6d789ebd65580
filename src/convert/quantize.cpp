// Model quantization.
#include "convert/quantize.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace origami {

namespace {

struct Scheme {
  const char* name;
  const char* base;    // type of ordinary matrices
  const char* more;    // type of the layers that get more bits (attn_v, ffn_down), or null
  const char* output;  // type of the output matrix (or the tied embedding), or null = base
  uint32_t file_type;  // general.file_type (llama_ftype)
};

// llama_ftype numbers as GGUF files carry them in general.file_type.
constexpr Scheme kSchemes[] = {
    {"F32", "F32", nullptr, nullptr, 0},      {"F16", "F16", nullptr, nullptr, 1},
    {"BF16", "BF16", nullptr, nullptr, 32},   {"Q8_0", "Q8_0", nullptr, nullptr, 7},
    {"Q4_0", "Q4_0", nullptr, "Q6_K", 2},     {"Q4_1", "Q4_1", nullptr, "Q6_K", 3},
    {"Q5_0", "Q5_0", nullptr, "Q6_K", 8},     {"Q5_1", "Q5_1", nullptr, "Q6_K", 9},
    {"Q2_K", "Q2_K", "Q4_K", "Q6_K", 10},     {"Q3_K", "Q3_K", nullptr, "Q6_K", 12},
    {"Q3_K_M", "Q3_K", "Q5_K", "Q6_K", 12},   {"Q4_K", "Q4_K", nullptr, "Q6_K", 14},
    {"Q4_K_S", "Q4_K", nullptr, "Q6_K", 14},  {"Q4_K_M", "Q4_K", "Q6_K", "Q6_K", 15},
    {"Q5_K", "Q5_K", nullptr, "Q6_K", 16},    {"Q5_K_S", "Q5_K", nullptr, "Q6_K", 16},
    {"Q5_K_M", "Q5_K", "Q6_K", "Q6_K", 17},   {"Q6_K", "Q6_K", nullptr, "Q6_K", 18},
    {"NVFP4", "NVFP4", nullptr, nullptr, 39},  // LLAMA_FTYPE_MOSTLY_NVFP4
};

const Scheme* FindScheme(const std::string& name) {
  std::string up = name;
  for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& s : kSchemes)
    if (up == s.name) return &s;
  return nullptr;
}

// The first and last eighth of the layers, and every third one between, get more bits: the
// layers whose errors hurt most (the rule llama.cpp's mixes use).
bool UseMoreBits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int LayerOf(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::atoi(name.c_str() + 4);
}

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

}  // namespace

std::string TensorTargetType(const std::string& scheme_name, const std::string& name, int64_t ne0, int n_dims,
                             int layer, int n_layer, bool has_output) {
  const Scheme* s = FindScheme(scheme_name);
  if (!s) Fail("unknown quantization type '{}'", scheme_name);
  // Only weight matrices are quantized: norms, biases and rope factors stay as they are (F32).
  if (n_dims < 2 || !EndsWith(name, ".weight")) return "";
  std::string t = s->base;
  const bool is_output = name == "output.weight" || (!has_output && name == "token_embd.weight");
  if (is_output && s->output) t = s->output;
  if (s->more && layer >= 0 && (EndsWith(name, "attn_v.weight") || EndsWith(name, "ffn_down.weight")) &&
      UseMoreBits(layer, n_layer))
    t = s->more;
  // Rows that are not whole blocks fall back to a type whose blocks fit.
  const TypeTraits* tr = FindTypeTraitsByName(t);
  if (ne0 % tr->block_size != 0) t = ne0 % 32 == 0 ? "Q8_0" : "F16";
  return t;
}

void QuantizeModel(const QuantizeOptions& opt, ThreadPool& pool,
                   const std::function<void(const TensorReport&)>& progress) {
  const Scheme* scheme = FindScheme(opt.type);
  if (!scheme) {
    std::string names;
    for (const auto& s : kSchemes) names += std::string(names.empty() ? "" : ", ") + s.name;
    Fail("unknown quantization type '{}' (choose one of: {})", opt.type, names);
  }
  if (opt.input == opt.output) Fail("quantize: output must differ from the input");
  auto in = gguf::File::Open(opt.input);
  const int n_layer = static_cast<int>(in->GetUint(std::string(in->GetString("general.architecture").value_or("llama")) +
                                                   ".block_count").value_or(0));
  const bool has_output = in->FindTensor("output.weight") != nullptr;

  gguf::Writer w(in->alignment());
  for (const auto& [key, value] : in->metadata()) {
    if (key == "general.file_type" || key == "general.quantization_version") continue;
    w.CopyValue(key, value);
  }
  w.SetU32("general.file_type", scheme->file_type);
  w.SetU32("general.quantization_version", 2);

  const size_t count = in->tensors().size();
  for (size_t i = 0; i < count; ++i) {
    const gguf::TensorInfo& t = in->tensors()[i];
    const TypeTraits& from = *FindTypeTraits(t.type);
    std::string target = TensorTargetType(scheme->name, t.name, t.ne[0], static_cast<int>(t.n_dims), LayerOf(t.name),
                                          n_layer, has_output);
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    if (target.empty() || target == from.name) {
      w.AddTensor(t.name, t.type, ne, t.n_bytes, [&t, &progress, i, count, &from](uint8_t* dst) {
        std::memcpy(dst, t.data, t.n_bytes);
        progress({t.name, from.name, from.name, 0.0, i, count});
      });
      continue;
    }
    const TypeTraits& to = *FindTypeTraitsByName(target);
    if (!from.to_float) FailKind(ErrorKind::kUnsupported, "quantize: cannot read tensor '{}' of type {}", t.name, from.name);
    if (!to.from_float) FailKind(ErrorKind::kUnsupported, "quantize: no quantizer for {}", to.name);
    if (from.is_quantized)
      Fail("quantize: tensor '{}' is already {}; quantize from an F32, F16 or BF16 file", t.name, from.name);
    const int64_t cols = t.ne[0];
    const int64_t rows = t.NumElements() / cols;
    const size_t in_row = RowBytes(static_cast<DType>(t.type), cols);
    const size_t out_row = RowBytes(to.type, cols);
    w.AddTensor(t.name, static_cast<uint32_t>(to.type), ne, out_row * rows,
                [&, rows, cols, in_row, out_row, i](uint8_t* dst) {
                  // Rows in parallel; each thread keeps its own float buffers and error sums.
                  std::vector<std::vector<float>> bufs(pool.size(), std::vector<float>(2 * cols));
                  std::vector<double> err(pool.size(), 0.0), ref(pool.size(), 0.0);
                  pool.ParallelFor(rows, 1, [&](int64_t r0, int64_t r1, int th) {
                    float* x = bufs[th].data();
                    float* y = x + cols;
                    for (int64_t r = r0; r < r1; ++r) {
                      from.to_float(t.data + r * in_row, x, cols);
                      uint8_t* q = dst + r * out_row;
                      to.from_float(x, q, cols);
                      to.to_float(q, y, cols);
                      for (int64_t c = 0; c < cols; ++c) {
                        err[th] += static_cast<double>(y[c] - x[c]) * (y[c] - x[c]);
                        ref[th] += static_cast<double>(x[c]) * x[c];
                      }
                    }
                  });
                  double e = 0, s = 0;
                  for (int th = 0; th < pool.size(); ++th) e += err[th], s += ref[th];
                  progress({t.name, from.name, to.name, s > 0 ? std::sqrt(e / s) : 0.0, i, count});
                });
  }
  w.Write(opt.output);
}

}  // namespace origami
