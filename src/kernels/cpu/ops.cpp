// Portable element-wise ops.
#include "kernels/cpu/ops.h"

#include <algorithm>
#include <cmath>

#include "tensor/dtype.h"

namespace origami::cpu {

void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  // Sum of squares in double, as the reference forward passes accumulate it; the result is then
  // rounded once, which keeps the norm independent of the summation order.
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
  }
}

void LayerNorm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  double var = 0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= static_cast<double>(n);
  const float scale = static_cast<float>(1.0 / std::sqrt(var + eps));
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>(x[i] - mean) * scale;
    if (w) v *= w[i];
    if (b) v += b[i];
    y[i] = v;
  }
}

void Rope(float* x, int n_heads, int head_dim, int64_t pos, const RopeTable& rope) {
  const int half = rope.n_rot / 2;
  // cos/sin per pair for this position, computed once for all heads (at most 256 pairs).
  float cs[512], sn[512];
  for (int i = 0; i < half; ++i) {
    const float theta = static_cast<float>(pos) * rope.inv_freq[i];
    cs[i] = std::cos(theta) * rope.attn_factor;
    sn[i] = std::sin(theta) * rope.attn_factor;
  }
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    if (rope.layout == RopeLayout::kAdjacent) {
      for (int i = 0; i < half; ++i) {
        const float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * cs[i] - b * sn[i];
        v[2 * i + 1] = a * sn[i] + b * cs[i];
      }
    } else {
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = a * sn[i] + b * cs[i];
      }
    }
  }
}

void Softmax(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float Dot(const float* a, const float* b, int64_t n) {
  // Eight independent partial sums let the compiler vectorize without -ffast-math.
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void Axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void AttnScores(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s) {
  for (int64_t j = 0; j < n; ++j) s[j] = Dot(q, static_cast<const float*>(k[j]), hd) * scale;
}

void AttnValues(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  for (int64_t j = 0; j < n; ++j) Axpy(p[j], static_cast<const float*>(v[j]), out, hd);
}

namespace {
// Rows of a KV type converted by the dtype table in chunks of kChunk elements (a multiple of every
// KV type's block size), so a head of any size needs only a small buffer on the stack.
constexpr int64_t kChunk = 256;

template <DType T>
void AttnScoresRef(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s) {
  const TypeTraits& tr = Traits(T);
  float buf[kChunk];
  for (int64_t j = 0; j < n; ++j) {
    const auto* row = static_cast<const uint8_t*>(k[j]);
    float acc = 0;
    for (int64_t c = 0; c < hd; c += kChunk) {
      const int64_t len = std::min(kChunk, hd - c);
      tr.to_float(row + RowBytes(T, c), buf, len);
      acc += Dot(q + c, buf, len);
    }
    s[j] = acc * scale;
  }
}

template <DType T>
void AttnValuesRef(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  const TypeTraits& tr = Traits(T);
  float buf[kChunk];
  for (int64_t j = 0; j < n; ++j) {
    const auto* row = static_cast<const uint8_t*>(v[j]);
    for (int64_t c = 0; c < hd; c += kChunk) {
      const int64_t len = std::min(kChunk, hd - c);
      tr.to_float(row + RowBytes(T, c), buf, len);
      Axpy(p[j], buf, out + c, len);
    }
  }
}
}  // namespace

void AttnScoresF16(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s) {
  AttnScoresRef<DType::kF16>(q, k, n, hd, scale, s);
}
void AttnValuesF16(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  AttnValuesRef<DType::kF16>(p, v, n, hd, out);
}
void AttnScoresBF16(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s) {
  AttnScoresRef<DType::kBF16>(q, k, n, hd, scale, s);
}
void AttnValuesBF16(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  AttnValuesRef<DType::kBF16>(p, v, n, hd, out);
}

AttnKernels AttnRef(DType type) {
  switch (type) {
    case DType::kF32: return {AttnScores, AttnValues};
    case DType::kF16: return {AttnScoresF16, AttnValuesF16};
    case DType::kBF16: return {AttnScoresBF16, AttnValuesBF16};
    case DType::kQ8_0: return {AttnScoresRef<DType::kQ8_0>, AttnValuesRef<DType::kQ8_0>};
    case DType::kQ4_0: return {AttnScoresRef<DType::kQ4_0>, AttnValuesRef<DType::kQ4_0>};
    default: return {};
  }
}

void SwiGlu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void GeGlu(const float* gate, const float* up, float* out, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float gelu = 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
    out[i] = gelu * up[i];
  }
}

}  // namespace origami::cpu
