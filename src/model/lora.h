// LoRA adapters: the GGUF adapter files llama.cpp's convert_lora_to_gguf.py writes, read and
// checked against a base model, their low-rank pairs held as F32 for the decoder's LoraAdd.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/spec.h"

namespace origami {

class LoraAdapter {
 public:
  // One matrix's low-rank pair: the delta of W ([n_out, n_in]) is B A, scaled at use.
  struct Pair {
    int layer = 0;
    LoraTarget target = LoraTarget::kQ;
    int64_t rank = 0, n_in = 0, n_out = 0;
    std::vector<float> a;  // [rank, n_in]: the file's `<name>.lora_a`, ne = [n_in, rank]
    std::vector<float> b;  // [n_out, rank]: the file's `<name>.lora_b`, ne = [rank, n_out]
  };

  // Reads the adapter at `path` and checks it against `base`: an adapter file of LoRA type, the
  // base's architecture, every tensor one half of a pair on a matrix the base has, shapes that
  // fit that matrix, one rank per pair, finite values. Any type with a dequantizer is read (F32,
  // F16, BF16, Q8_0, ...) and converted to F32 here. Throws origami::Error naming the file and,
  // where there is one, the tensor.
  static std::unique_ptr<LoraAdapter> Open(const std::string& path, const DecoderSpec& base);

  const std::string& path() const { return path_; }
  // adapter.lora.alpha; 0 when the file has none (then the terms use alpha = rank, as llama.cpp).
  float alpha() const { return alpha_; }
  const std::vector<Pair>& pairs() const { return pairs_; }
  // Bytes of the F32 values held (the memory plan counts them).
  uint64_t bytes() const;
  // The factor of B A at user scale `scale`: scale * alpha / rank, or scale when alpha is 0.
  float TermScale(const Pair& p, float scale) const;

 private:
  std::string path_;
  float alpha_ = 0.0f;
  std::vector<Pair> pairs_;
};

// The GGUF short name of a target ("attn_q", "ffn_down").
const char* LoraTargetName(LoraTarget t);

}  // namespace origami
