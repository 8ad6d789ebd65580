// A contiguous per-sequence KV cache: for each layer, K and V rows [n_ctx, n_head_kv * head_dim]
// in float32 (exact; the decoder's golden tests hold logits to 1e-4).
#pragma once

#include <cstdint>
#include <vector>

#include "model/spec.h"

namespace origami {

class KvCache {
 public:
  KvCache(const DecoderSpec& spec, int n_ctx);

  int n_ctx() const { return n_ctx_; }
  float* K(int layer, int64_t pos) { return k_[layer].data() + pos * row_[layer]; }
  float* V(int layer, int64_t pos) { return v_[layer].data() + pos * row_[layer]; }
  const float* K(int layer, int64_t pos) const { return k_[layer].data() + pos * row_[layer]; }
  const float* V(int layer, int64_t pos) const { return v_[layer].data() + pos * row_[layer]; }
  uint64_t Bytes() const;

 private:
  int n_ctx_;
  std::vector<int64_t> row_;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace origami
