// KvCache.
#include "model/kv_cache.h"

#include "util/error.h"

namespace origami {

KvCache::KvCache(const DecoderSpec& spec, int n_ctx) : n_ctx_(n_ctx) {
  if (n_ctx <= 0) Fail("context size must be positive, got {}", n_ctx);
  for (const auto& l : spec.layers) {
    const int64_t row = static_cast<int64_t>(l.n_head_kv) * l.head_dim;
    row_.push_back(row);
    k_.emplace_back(static_cast<size_t>(row * n_ctx));
    v_.emplace_back(static_cast<size_t>(row * n_ctx));
  }
}

uint64_t KvCache::Bytes() const {
  uint64_t b = 0;
  for (size_t i = 0; i < k_.size(); ++i) b += 2 * k_[i].size() * sizeof(float);
  return b;
}

}  // namespace origami
