// make_kquant_model: turns a synthetic F32 llama GGUF into one whose matrices are random K-quant
// blocks (Q2_K..Q6_K; also Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, which the Python tool cannot write), for
// the forward-pass tests; optionally adds a Llama-3.1 rope_freqs tensor and writes origami's own
// dequantization of the result as an all-F32 GGUF (a cross-check of the C++ and numpy
// dequantizers; only the blk.* matrices, to keep it small).
//
// Random bytes are valid K-quant blocks once the fp16 super-block scales are sane, so every quant
// and sub-block scale here is a random byte; only d (and dmin) are set: d is chosen per tensor so
// that the dequantized weights have a standard deviation of about --std (default 0.02, like the
// synthetic tool's) and dmin = r * d with r the mean quant value, which roughly centres the
// weights on zero. Each block's d is further jittered by a factor in [0.75, 1.25].
//
// Usage: make_kquant_model IN.gguf OUT.gguf TYPE|F32 [--seed N] [--std S] [--rope-freqs]
//                          [--dump-f32 PATH]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "tensor/dtype.h"
#include "util/error.h"
#include "util/fp16.h"

namespace {

using origami::DType;
using origami::Fail;

// Where a K-quant block keeps its fp16 d and dmin (-1: none), and the dmin/d ratio that centres
// the weights: the mean of (sub-block scale * quant) over the mean of the sub-block min.
struct KLayout {
  DType type;
  int d_offset;
  int dmin_offset;
  double dmin_ratio;
};

KLayout Layout(DType t) {
  switch (t) {
    case DType::kQ2_K: return {t, 80, 82, 1.5};    // q in 0..3 (mean 1.5), scale and min in 0..15
    case DType::kQ3_K: return {t, 108, -1, 0};     // signed scales and quants: already centred
    case DType::kQ4_K: return {t, 0, 2, 7.5};      // q in 0..15
    case DType::kQ5_K: return {t, 0, 2, 15.5};     // q in 0..31
    case DType::kQ6_K: return {t, 208, -1, 0};     // signed
    // The 32-element types work the same way (Q4_1/Q5_1 add their minimum m, hence the sign).
    case DType::kQ4_0: return {t, 0, -1, 0};
    case DType::kQ4_1: return {t, 0, 2, -7.5};
    case DType::kQ5_0: return {t, 0, -1, 0};
    case DType::kQ5_1: return {t, 0, 2, -15.5};
    case DType::kQ8_0: return {t, 0, -1, 0};
    default: Fail("make_kquant_model: no random blocks for {}", origami::TypeName(t));
  }
}

void PutF16(uint8_t* p, float v) {
  const uint16_t h = origami::Fp32ToFp16(v);
  std::memcpy(p, &h, 2);
}

// Random blocks for n elements, with d = scale * jitter and dmin = ratio * d.
std::vector<uint8_t> RandomBlocks(const KLayout& k, int64_t n, double scale, bool jitter_d,
                                  std::mt19937_64& rng) {
  const auto& tr = origami::Traits(k.type);
  const int64_t nb = n / tr.block_size;
  std::vector<uint8_t> bytes(static_cast<size_t>(nb) * tr.type_size);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  for (auto& b : bytes) b = static_cast<uint8_t>(byte(rng));
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* blk = bytes.data() + i * tr.type_size;
    const double d = scale * (jitter_d ? jitter(rng) : 1.0);
    PutF16(blk + k.d_offset, static_cast<float>(d));
    if (k.dmin_offset >= 0) PutF16(blk + k.dmin_offset, static_cast<float>(d * k.dmin_ratio));
  }
  return bytes;
}

double StdDev(const std::vector<float>& x) {
  double s = 0, s2 = 0;
  for (float v : x) s += v, s2 += double(v) * v;
  const double m = s / x.size();
  return std::sqrt(s2 / x.size() - m * m);
}

// Llama-3.1-style factors for n_pairs rotated pairs at base `theta`: 1 where the wavelength is
// short, `factor` where it is long, a smooth blend between (Meta's llama3 rope scaling, with an
// original context of only 32 positions so that pairs which turn visibly within a short test
// prompt are scaled too).
std::vector<float> Llama3RopeFactors(int n_pairs, double theta) {
  const double factor = 8, low_freq_factor = 1, high_freq_factor = 4, old_ctx = 32;
  const double low_wavelen = old_ctx / low_freq_factor, high_wavelen = old_ctx / high_freq_factor;
  std::vector<float> f(n_pairs);
  for (int i = 0; i < n_pairs; ++i) {
    const double freq = std::pow(theta, -2.0 * i / (2 * n_pairs));
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) {
      f[i] = 1;
    } else if (wavelen > low_wavelen) {
      f[i] = static_cast<float>(factor);
    } else {
      const double smooth = (old_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      f[i] = static_cast<float>(1 / ((1 - smooth) / factor + smooth));
    }
  }
  return f;
}

int Run(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: make_kquant_model IN.gguf OUT.gguf Q2_K|Q3_K|Q4_K|Q5_K|Q6_K|Q4_0|Q4_1|Q5_0|Q5_1|Q8_0|F32 "
                 "[--seed N] [--std S] [--rope-freqs] [--dump-f32 PATH]\n");
    return 2;
  }
  const std::string in = argv[1], out = argv[2];
  const auto* tr = origami::FindTypeTraitsByName(argv[3]);
  if (!tr) Fail("unknown type '{}'", argv[3]);
  // F32 keeps the matrices as they are (a way to add only rope_freqs.weight to a float model).
  const bool keep_f32 = tr->type == DType::kF32;
  const KLayout k = keep_f32 ? KLayout{DType::kF32, 0, -1, 0} : Layout(tr->type);
  uint64_t seed = 1;
  double target_std = 0.02;
  bool rope_freqs = false;
  std::string dump;
  for (int i = 4; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc) {
      seed = std::stoull(argv[++i]);
    } else if (a == "--std" && i + 1 < argc) {
      target_std = std::stod(argv[++i]);
    } else if (a == "--rope-freqs") {
      rope_freqs = true;
    } else if (a == "--dump-f32" && i + 1 < argc) {
      dump = argv[++i];
    } else {
      Fail("unknown argument '{}'", a);
    }
  }

  auto src = origami::gguf::File::Open(in);
  origami::gguf::Writer w, w32;
  for (const auto& [key, value] : src->metadata()) {
    if (key == "general.alignment" || key == "general.file_type" || key == "general.name") continue;
    w.CopyValue(key, value);
    w32.CopyValue(key, value);
  }
  w.SetString("general.name", std::string("synthetic-") + tr->name);
  w32.SetString("general.name", std::string("synthetic-") + tr->name + "-dequantized");

  std::mt19937_64 rng(seed);
  std::vector<std::vector<uint8_t>> keep;  // tensor bytes live until Write()
  auto add_f32 = [&](const std::string& name, std::vector<int64_t> ne, const void* data, uint64_t n) {
    w.AddTensor(name, static_cast<uint32_t>(DType::kF32), ne, data, n);
    w32.AddTensor(name, static_cast<uint32_t>(DType::kF32), ne, data, n);
  };
  for (const auto& t : src->tensors()) {
    if (t.type != static_cast<uint32_t>(DType::kF32)) Fail("{}: tensor {} is not F32", in, t.name);
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    if (t.n_dims == 1 || keep_f32) {  // norms stay F32
      add_f32(t.name, ne, t.data, t.n_bytes);
      continue;
    }
    const int64_t n = t.NumElements();
    if (t.ne[0] % tr->block_size) Fail("{}: {} rows of {} are not whole {} blocks", in, t.name, t.ne[0], tr->name);
    // Measure the spread at d = 1 on one sample, then scale to the target standard deviation.
    const int64_t n_probe = std::min<int64_t>(n, 64 * tr->block_size);
    auto probe = RandomBlocks(k, n_probe, 1.0, false, rng);
    std::vector<float> x(n_probe);
    tr->to_float(probe.data(), x.data(), n_probe);
    const double scale = target_std / StdDev(x);
    keep.push_back(RandomBlocks(k, n, scale, true, rng));
    w.AddTensor(t.name, static_cast<uint32_t>(tr->type), ne, keep.back().data(), keep.back().size());
    if (!dump.empty() && t.name.rfind("blk.", 0) == 0) {  // the layers suffice, and stay small
      std::vector<float> f(n);
      tr->to_float(keep.back().data(), f.data(), n);
      keep.emplace_back(reinterpret_cast<uint8_t*>(f.data()), reinterpret_cast<uint8_t*>(f.data() + n));
      w32.AddTensor(t.name, static_cast<uint32_t>(DType::kF32), ne, keep.back().data(), keep.back().size());
    }
  }
  if (rope_freqs) {
    const auto n_rot = src->GetUint("llama.rope.dimension_count");
    const auto n_embd = src->GetUint("llama.embedding_length");
    const auto n_head = src->GetUint("llama.attention.head_count");
    if (!n_embd || !n_head) Fail("{}: no llama.embedding_length / attention.head_count", in);
    const int pairs = static_cast<int>((n_rot ? *n_rot : *n_embd / *n_head) / 2);
    const double theta = src->GetFloat("llama.rope.freq_base").value_or(10000.0);
    auto f = Llama3RopeFactors(pairs, theta);
    keep.emplace_back(reinterpret_cast<uint8_t*>(f.data()), reinterpret_cast<uint8_t*>(f.data() + f.size()));
    add_f32("rope_freqs.weight", {pairs}, keep.back().data(), keep.back().size());
  }
  w.Write(out);
  if (!dump.empty()) w32.Write(dump);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_kquant_model: %s\n", e.what());
    return 1;
  }
}
