// AVX2 + FMA forms of attention's per-head loops: the scores (scale * q . k_j) and the weighted sum
// of value rows (sum_j p[j] * v_j), over rows given by pointers because the KV cache is paged, for
// every KV storage type (F32, F16, BF16, Q8_0, Q4_0). Each type is a loader of 8 floats at element
// i of a row; the loops are written once over it. Rows are read in their stored type (F16C for
// halves, a shift for bfloat16, int8/int4 times the block's scale), so a 16-bit cache moves half
// the bytes of a float one and nothing is dequantised to memory.
// Four score rows share one horizontal reduction, and the output of the weighted sum stays in
// registers (64 floats per pass) instead of being loaded and stored again for every row.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/x86/x86_kernels.h"

namespace origami::cpu {
// The portable forms (ops.h, compiled for the baseline ISA), for head sizes off the 8-float grid.
// Declared here rather than by including ops.h, whose thread_pool.h would bring inline std code
// into this AVX2-compiled file (the linker could then keep an AVX2 copy for the baseline code too);
// a declaration that drifted from ops.h would fail to link.
void AttnScores(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValues(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresF16(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                   float* s);
void AttnValuesF16(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresBF16(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                    float* s);
void AttnValuesBF16(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
}  // namespace origami::cpu

namespace origami::cpu::ref {
// The converters' scalar twins (ref/attn_tile_ref.cpp), for the shapes the AVX2 forms pass on.
#define ORIGAMI_ATTN_REF(Name)                                                                   \
  void AttnKeys##Name(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld); \
  void AttnRows##Name(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld);
ORIGAMI_ATTN_REF(F32)
ORIGAMI_ATTN_REF(F16)
ORIGAMI_ATTN_REF(BF16)
ORIGAMI_ATTN_REF(Q8_0)
ORIGAMI_ATTN_REF(Q4_0)
#undef ORIGAMI_ATTN_REF
}  // namespace origami::cpu::ref

namespace origami::cpu::x86 {
namespace {

struct LoadF32 {
  static __m256 Load(const void* row, int64_t i) {
    return _mm256_loadu_ps(static_cast<const float*>(row) + i);
  }
};
struct LoadF16 {
  static __m256 Load(const void* row, int64_t i) {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + i)));
  }
};
struct LoadBF16 {
  static __m256 Load(const void* row, int64_t i) {
    const __m128i h =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};
// Q8_0: blocks of 34 bytes (an F16 scale, 32 int8 values); i is a multiple of 8, so 8 values never
// straddle a block.
struct LoadQ8_0 {
  static __m256 Load(const void* row, int64_t i) {
    const auto* b = static_cast<const uint8_t*>(row) + (i / 32) * 34;
    uint16_t d;
    std::memcpy(&d, b, 2);
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + i % 32));
    return _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(d))),
                         _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
  }
};
// Q4_0: blocks of 18 bytes (an F16 scale, 16 bytes): element e < 16 is the low nibble of byte e,
// element e >= 16 the high nibble of byte e - 16; values are nibble - 8.
struct LoadQ4_0 {
  static __m256 Load(const void* row, int64_t i) {
    const auto* b = static_cast<const uint8_t*>(row) + (i / 32) * 18;
    const int e = static_cast<int>(i % 32);
    uint16_t d;
    std::memcpy(&d, b, 2);
    __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + (e & 15)));
    if (e >= 16) q = _mm_srli_epi16(q, 4);
    q = _mm_and_si128(q, _mm_set1_epi8(0x0f));
    const __m256i v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(q), _mm256_set1_epi32(8));
    return _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(d))),
                         _mm256_cvtepi32_ps(v));
  }
};

template <class L>
void Scores(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    for (int64_t i = 0; i < hd; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      a0 = _mm256_fmadd_ps(qv, L::Load(k[j], i), a0);
      a1 = _mm256_fmadd_ps(qv, L::Load(k[j + 1], i), a1);
      a2 = _mm256_fmadd_ps(qv, L::Load(k[j + 2], i), a2);
      a3 = _mm256_fmadd_ps(qv, L::Load(k[j + 3], i), a3);
    }
    // Lane pairs of (a0, a1) and (a2, a3), then each 128-bit half: the four sums in one vector.
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    const __m128 sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    _mm_storeu_ps(s + j, _mm_mul_ps(sums, _mm_set1_ps(scale)));
  }
  for (; j < n; ++j) {
    __m256 a = _mm256_setzero_ps();
    for (int64_t i = 0; i < hd; i += 8)
      a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), L::Load(k[j], i), a);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s[j] = _mm_cvtss_f32(h) * scale;
  }
}

template <class L>
void Values(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  // Columns in passes of up to 64 (8 accumulators); a pass over a narrower remainder uses fewer.
  for (int64_t c = 0; c < hd; c += 64) {
    const int w = hd - c >= 64 ? 8 : static_cast<int>((hd - c) / 8);
    __m256 acc[8];
    for (int i = 0; i < w; ++i) acc[i] = _mm256_loadu_ps(out + c + 8 * i);
    if (w == 8) {
      for (int64_t j = 0; j < n; ++j) {
        const __m256 pj = _mm256_set1_ps(p[j]);
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) acc[i] = _mm256_fmadd_ps(pj, L::Load(v[j], c + 8 * i), acc[i]);
      }
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        for (int i = 0; i < w; ++i) acc[i] = _mm256_fmadd_ps(pj, L::Load(v[j], c + 8 * i), acc[i]);
      }
    }
    for (int i = 0; i < w; ++i) _mm256_storeu_ps(out + c + 8 * i, acc[i]);
  }
}

// The flash path's block converters (kernels.h, AttnConvertFn): 8 rows x 8 elements are loaded
// in their stored type and transposed in registers, so each key block is written with whole-vector
// stores. The last group of 8 repeats the last row (its columns up to the next multiple of 8 of n
// are written; the score tile ignores them).
template <class L>
void KeysT(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld) {
  for (int64_t j0 = 0; j0 < n; j0 += 8) {
    const void* r[8];
    for (int k = 0; k < 8; ++k) r[k] = rows[j0 + k < n ? j0 + k : n - 1];
    for (int64_t i = 0; i < hd; i += 8) {
      const __m256 t0 = _mm256_unpacklo_ps(L::Load(r[0], i), L::Load(r[1], i));
      const __m256 t1 = _mm256_unpackhi_ps(L::Load(r[0], i), L::Load(r[1], i));
      const __m256 t2 = _mm256_unpacklo_ps(L::Load(r[2], i), L::Load(r[3], i));
      const __m256 t3 = _mm256_unpackhi_ps(L::Load(r[2], i), L::Load(r[3], i));
      const __m256 t4 = _mm256_unpacklo_ps(L::Load(r[4], i), L::Load(r[5], i));
      const __m256 t5 = _mm256_unpackhi_ps(L::Load(r[4], i), L::Load(r[5], i));
      const __m256 t6 = _mm256_unpacklo_ps(L::Load(r[6], i), L::Load(r[7], i));
      const __m256 t7 = _mm256_unpackhi_ps(L::Load(r[6], i), L::Load(r[7], i));
      // Columns c and c + 4 of rows 0..3 (u0..u3) and of rows 4..7 (u4..u7).
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
      const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
      const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
      float* d = dst + i * ld + j0;
      _mm256_storeu_ps(d + 0 * ld, _mm256_permute2f128_ps(u0, u4, 0x20));
      _mm256_storeu_ps(d + 1 * ld, _mm256_permute2f128_ps(u1, u5, 0x20));
      _mm256_storeu_ps(d + 2 * ld, _mm256_permute2f128_ps(u2, u6, 0x20));
      _mm256_storeu_ps(d + 3 * ld, _mm256_permute2f128_ps(u3, u7, 0x20));
      _mm256_storeu_ps(d + 4 * ld, _mm256_permute2f128_ps(u0, u4, 0x31));
      _mm256_storeu_ps(d + 5 * ld, _mm256_permute2f128_ps(u1, u5, 0x31));
      _mm256_storeu_ps(d + 6 * ld, _mm256_permute2f128_ps(u2, u6, 0x31));
      _mm256_storeu_ps(d + 7 * ld, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
  }
}

template <class L>
void RowsF(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < hd; i += 8) _mm256_storeu_ps(dst + j * hd + i, L::Load(rows[j], i));
}

}  // namespace

// Head sizes off the 8-float grid (float types only), or a key block whose padded width does not
// fit ld, take the scalar twins.
#define ORIGAMI_ATTN_CONVERT(Name, L)                                                           \
  void AttnKeys##Name##Avx2(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld) { \
    if (hd % 8 != 0 || ld % 8 != 0 || (n + 7) / 8 * 8 > ld)                                     \
      return ref::AttnKeys##Name(rows, n, hd, dst, ld);                                     \
    KeysT<L>(rows, n, hd, dst, ld);                                                              \
  }                                                                                              \
  void AttnRows##Name##Avx2(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld) { \
    if (hd % 8 != 0) return ref::AttnRows##Name(rows, n, hd, dst, ld);                      \
    RowsF<L>(rows, n, hd, dst, ld);                                                              \
  }
ORIGAMI_ATTN_CONVERT(F32, LoadF32)
ORIGAMI_ATTN_CONVERT(F16, LoadF16)
ORIGAMI_ATTN_CONVERT(BF16, LoadBF16)
ORIGAMI_ATTN_CONVERT(Q8_0, LoadQ8_0)
ORIGAMI_ATTN_CONVERT(Q4_0, LoadQ4_0)
#undef ORIGAMI_ATTN_CONVERT

void AttnScoresAvx2(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                    float* s) {
  if (hd % 8 != 0) return AttnScores(q, k, n, hd, scale, s);
  Scores<LoadF32>(q, k, n, hd, scale, s);
}
void AttnValuesAvx2(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  if (hd % 8 != 0) return AttnValues(p, v, n, hd, out);
  Values<LoadF32>(p, v, n, hd, out);
}
void AttnScoresF16Avx2(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                       float* s) {
  if (hd % 8 != 0) return AttnScoresF16(q, k, n, hd, scale, s);
  Scores<LoadF16>(q, k, n, hd, scale, s);
}
void AttnValuesF16Avx2(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  if (hd % 8 != 0) return AttnValuesF16(p, v, n, hd, out);
  Values<LoadF16>(p, v, n, hd, out);
}
void AttnScoresBF16Avx2(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                        float* s) {
  if (hd % 8 != 0) return AttnScoresBF16(q, k, n, hd, scale, s);
  Scores<LoadBF16>(q, k, n, hd, scale, s);
}
void AttnValuesBF16Avx2(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  if (hd % 8 != 0) return AttnValuesBF16(p, v, n, hd, out);
  Values<LoadBF16>(p, v, n, hd, out);
}
// Quantized rows: hd is a multiple of 32 (the KV pool refuses other head sizes for these types).
void AttnScoresQ8_0Avx2(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                        float* s) {
  Scores<LoadQ8_0>(q, k, n, hd, scale, s);
}
void AttnValuesQ8_0Avx2(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  Values<LoadQ8_0>(p, v, n, hd, out);
}
void AttnScoresQ4_0Avx2(const float* q, const void* const* k, int64_t n, int64_t hd, float scale,
                        float* s) {
  Scores<LoadQ4_0>(q, k, n, hd, scale, s);
}
void AttnValuesQ4_0Avx2(const float* p, const void* const* v, int64_t n, int64_t hd, float* out) {
  Values<LoadQ4_0>(p, v, n, hd, out);
}

}  // namespace origami::cpu::x86
