// Scalar twins of the flash attention kernels: block converters through the dtype table's
// to_float, and the float tile kernels written as the plain loops they stand for.
#include "kernels/cpu/ref/attn_tile_ref.h"

#include <algorithm>
#include <cmath>

#include "tensor/dtype.h"

namespace origami::cpu::ref {
namespace {

// Rows are converted in chunks of kChunk elements (a multiple of every KV type's block size), so a
// head of any size needs only a small buffer on the stack.
constexpr int64_t kChunk = 256;

template <DType T, bool kTransposed>
void Convert(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld) {
  const TypeTraits& tr = Traits(T);
  float buf[kChunk];
  for (int64_t j = 0; j < n; ++j) {
    const auto* row = static_cast<const uint8_t*>(rows[j]);
    for (int64_t c = 0; c < hd; c += kChunk) {
      const int64_t len = std::min(kChunk, hd - c);
      tr.to_float(row + RowBytes(T, c), buf, len);
      for (int64_t i = 0; i < len; ++i) {
        if (kTransposed)
          dst[(c + i) * ld + j] = buf[i];
        else
          dst[j * hd + c + i] = buf[i];
      }
    }
  }
}

template <bool kTransposed>
AttnConvertFn ConvertFor(DType type) {
  switch (type) {
    case DType::kF32: return Convert<DType::kF32, kTransposed>;
    case DType::kF16: return Convert<DType::kF16, kTransposed>;
    case DType::kBF16: return Convert<DType::kBF16, kTransposed>;
    case DType::kQ8_0: return Convert<DType::kQ8_0, kTransposed>;
    case DType::kQ4_0: return Convert<DType::kQ4_0, kTransposed>;
    default: return nullptr;
  }
}

}  // namespace

#define ORIGAMI_ATTN_REF(Name)                                                                        \
  void AttnKeys##Name(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld) {     \
    Convert<DType::k##Name, true>(rows, n, hd, dst, ld);                                            \
  }                                                                                                 \
  void AttnRows##Name(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld) {     \
    Convert<DType::k##Name, false>(rows, n, hd, dst, ld);                                           \
  }
ORIGAMI_ATTN_REF(F32)
ORIGAMI_ATTN_REF(F16)
ORIGAMI_ATTN_REF(BF16)
ORIGAMI_ATTN_REF(Q8_0)
ORIGAMI_ATTN_REF(Q4_0)
#undef ORIGAMI_ATTN_REF

AttnConvertFn AttnKeysRef(DType type) { return ConvertFor<true>(type); }
AttnConvertFn AttnRowsRef(DType type) { return ConvertFor<false>(type); }

void AttnTileScores(const float* q, int rows, const float* kt, int64_t ld, int64_t m, int64_t hd,
                    float scale, float* s, int64_t ld_s) {
  for (int r = 0; r < rows; ++r)
    for (int64_t j = 0; j < m; ++j) {
      // One fused multiply-add per element in element order: the lane order of the SIMD forms.
      float acc = 0;
      for (int64_t i = 0; i < hd; ++i) acc = std::fma(q[r * hd + i], kt[i * ld + j], acc);
      s[r * ld_s + j] = acc * scale;
    }
}

float AttnExpStep(float* s, int64_t n, float* m) {
  float mx = *m;
  for (int64_t j = 0; j < n; ++j) mx = std::fmax(mx, s[j]);
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - mx));
  *m = mx;
  return sum;
}

void AttnRowValues(const float* p, const float* v, int64_t n, int64_t hd, float* out) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c = 0; c < hd; ++c) out[c] = std::fma(p[j], v[j * hd + c], out[c]);
}

}  // namespace origami::cpu::ref
