// AVX2 kernels for weights repacked at load (kernels/cpu/repack.h) against Q8_0 activations.
//
// Q4_0x8: the same arithmetic, in the same order, as the 8-row kernels of vec_dot_avx2.cpp
// (VecDotRowsQ4_0Avx2 and the Q4_0 prefill tile), so the results are bit-identical to the
// unrepacked path; what the layout removes is the run-time transposition (4 paired loads + 8
// unpacks per block of 8 rows) and the gather of 8 scales (8 scalar loads + 8 inserts), and it
// turns 8 strided streams into one.
//
// Q8_0x8: one row per 32-bit lane as well. Signed weights need the sign trick (|w| x a with w's
// sign), and one maddubs pair sum can reach 2 x 128 x 127, so each 4-byte step is widened to int32
// at once (madd) instead of summing in int16 as Q4_0 does. Per block of 8 rows: 8 x (load, abs,
// broadcast, sign, maddubs, madd, add) and one scale FMA, about half the work of 8 row-major dots
// with their per-row scalar scale conversions and horizontal sums.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/x86/x86_kernels.h"
#include "tensor/blocks.h"

namespace origami::cpu::x86 {

namespace {

constexpr size_t kGroupBlock = 8 * sizeof(BlockQ4_0);    // 144 bytes: 8 scales + 4 x 32 quant bytes
constexpr size_t kGroupBlock8 = 8 * sizeof(BlockQ8_0);   // 272 bytes: 8 scales + 8 x 32 quant bytes
constexpr int64_t kMaxBlocks = 1024;                     // activation tables on the stack: n <= 32768
constexpr int64_t kTileTokens = 4;
constexpr size_t kPrefetchAhead = 1024;

inline __m256i Bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// One 144-byte group block against one activation block: 8 rows, one per lane.
inline __m256 Block8(const uint8_t* g, const BlockQ8_0& y, int32_t corr, float dy, __m256 acc) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256i p = _mm256_setzero_si256();
  for (int j = 0; j < 4; ++j) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 16 + 32 * j));
    const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(lo, Bcast4(y.qs + 4 * j)));
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi, Bcast4(y.qs + 16 + 4 * j)));
  }
  const __m256i s = _mm256_sub_epi32(_mm256_madd_epi16(p, _mm256_set1_epi16(1)), _mm256_set1_epi32(corr));
  const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
  return _mm256_fmadd_ps(_mm256_mul_ps(dx, _mm256_set1_ps(dy)), _mm256_cvtepi32_ps(s), acc);
}

template <int T>
void Tile8(const uint8_t* group, int64_t nb, const BlockQ8_0* const* y, const int32_t* corr, const float* dy,
           float* out, size_t out_stride) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* g = group + b * kGroupBlock;
    __m256i p[T];
    for (int t = 0; t < T; ++t) p[t] = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 16 + 32 * j));
      const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      for (int t = 0; t < T; ++t) {
        p[t] = _mm256_add_epi16(p[t], _mm256_maddubs_epi16(lo, Bcast4(y[t][b].qs + 4 * j)));
        p[t] = _mm256_add_epi16(p[t], _mm256_maddubs_epi16(hi, Bcast4(y[t][b].qs + 16 + 4 * j)));
      }
    }
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
    for (int t = 0; t < T; ++t) {
      const __m256i s = _mm256_sub_epi32(_mm256_madd_epi16(p[t], _mm256_set1_epi16(1)),
                                         _mm256_set1_epi32(corr[t * nb + b]));
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dx, _mm256_set1_ps(dy[t * nb + b])), _mm256_cvtepi32_ps(s), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
}

}  // namespace

void VecDotRowsQ4_0x8Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const auto* base = static_cast<const uint8_t*>(w);
  const int64_t nb = n / kQK4_0;
  // Tables for long rows would not fit the stack; such rows are split into pieces of kMaxBlocks.
  int32_t corr[kMaxBlocks];
  float dy[kMaxBlocks];
  for (int64_t r = 0; r + 8 <= rows; r += 8) {
    const uint8_t* group = base + r * stride;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += kMaxBlocks) {
      const int64_t len = nb - b0 < kMaxBlocks ? nb - b0 : kMaxBlocks;
      if (r == 0 || nb > kMaxBlocks) Q4_0ActTablesAvx2(y + b0, len, corr, dy);
      int64_t b = 0;
      for (; b + 2 <= len; b += 2) {
        const uint8_t* g = group + (b0 + b) * kGroupBlock;
        _mm_prefetch(reinterpret_cast<const char*>(g) + kPrefetchAhead, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(g) + kPrefetchAhead + 64, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(g) + kPrefetchAhead + 128, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(g) + kPrefetchAhead + 192, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(g) + kPrefetchAhead + 256, _MM_HINT_T0);
        acc0 = Block8(g, y[b0 + b], corr[b], dy[b], acc0);
        acc1 = Block8(g + kGroupBlock, y[b0 + b + 1], corr[b + 1], dy[b + 1], acc1);
      }
      if (b < len) acc0 = Block8(group + (b0 + b) * kGroupBlock, y[b0 + b], corr[b], dy[b], acc0);
    }
    _mm256_storeu_ps(out + r, _mm256_add_ps(acc0, acc1));
  }
}

void VecDotTileQ4_0x8Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                          const void* act, size_t a_stride, int64_t n_tok) {
  const auto* base = static_cast<const uint8_t*>(w);
  const auto* a = static_cast<const uint8_t*>(act);
  const int64_t nb = n / kQK4_0;
  if (nb > kMaxBlocks) {
    for (int64_t t = 0; t < n_tok; ++t) VecDotRowsQ4_0x8Avx2(n, out + t * out_stride, w, w_stride, rows, a + t * a_stride);
    return;
  }
  int32_t corr[kTileTokens * kMaxBlocks];
  float dy[kTileTokens * kMaxBlocks];
  for (int64_t t0 = 0; t0 < n_tok; t0 += kTileTokens) {
    const int64_t nt = n_tok - t0 < kTileTokens ? n_tok - t0 : kTileTokens;
    const BlockQ8_0* y[kTileTokens];
    for (int64_t t = 0; t < nt; ++t) {
      y[t] = reinterpret_cast<const BlockQ8_0*>(a + (t0 + t) * a_stride);
      Q4_0ActTablesAvx2(y[t], nb, corr + t * nb, dy + t * nb);
    }
    float* ot = out + t0 * out_stride;
    for (int64_t r = 0; r + 8 <= rows; r += 8) {
      const uint8_t* group = base + r * w_stride;
      switch (nt) {
        case 4: Tile8<4>(group, nb, y, corr, dy, ot + r, out_stride); break;
        case 3: Tile8<3>(group, nb, y, corr, dy, ot + r, out_stride); break;
        case 2: Tile8<2>(group, nb, y, corr, dy, ot + r, out_stride); break;
        default: Tile8<1>(group, nb, y, corr, dy, ot + r, out_stride); break;
      }
    }
  }
}

// ---- Q8_0x8 ------------------------------------------------------------------------------------

namespace {

inline __m256i Q8Step(__m256i absw, __m256i w, const int8_t* y4) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(absw, _mm256_sign_epi8(Bcast4(y4), w)), _mm256_set1_epi16(1));
}

inline __m256 Q8Block8(const uint8_t* g, const BlockQ8_0& y, float dy, __m256 acc) {
  __m256i s = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 16 + 32 * j));
    s = _mm256_add_epi32(s, Q8Step(_mm256_sign_epi8(v, v), v, y.qs + 4 * j));
  }
  const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
  return _mm256_fmadd_ps(_mm256_mul_ps(dx, _mm256_set1_ps(dy)), _mm256_cvtepi32_ps(s), acc);
}

template <int T>
void Q8Tile8(const uint8_t* group, int64_t nb, const BlockQ8_0* const* y, float* out, size_t out_stride) {
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* g = group + b * kGroupBlock8;
    __m256i s[T];
    for (int t = 0; t < T; ++t) s[t] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 16 + 32 * j));
      const __m256i absw = _mm256_sign_epi8(v, v);
      for (int t = 0; t < T; ++t) s[t] = _mm256_add_epi32(s[t], Q8Step(absw, v, y[t][b].qs + 4 * j));
    }
    const __m256 dx = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
    for (int t = 0; t < T; ++t)
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dx, _mm256_set1_ps(_cvtsh_ss(y[t][b].d))), _mm256_cvtepi32_ps(s[t]),
                               acc[t]);
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
}

}  // namespace

void VecDotRowsQ8_0x8Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const auto* base = static_cast<const uint8_t*>(w);
  const int64_t nb = n / kQK8_0;
  for (int64_t r = 0; r + 8 <= rows; r += 8) {
    const uint8_t* group = base + r * stride;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      const uint8_t* g = group + b * kGroupBlock8;
      for (size_t off = 0; off < 2 * kGroupBlock8; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(g) + kPrefetchAhead + off, _MM_HINT_T0);
      acc0 = Q8Block8(g, y[b], _cvtsh_ss(y[b].d), acc0);
      acc1 = Q8Block8(g + kGroupBlock8, y[b + 1], _cvtsh_ss(y[b + 1].d), acc1);
    }
    if (b < nb) acc0 = Q8Block8(group + b * kGroupBlock8, y[b], _cvtsh_ss(y[b].d), acc0);
    _mm256_storeu_ps(out + r, _mm256_add_ps(acc0, acc1));
  }
}

void VecDotTileQ8_0x8Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                          const void* act, size_t a_stride, int64_t n_tok) {
  const auto* base = static_cast<const uint8_t*>(w);
  const auto* a = static_cast<const uint8_t*>(act);
  const int64_t nb = n / kQK8_0;
  for (int64_t t0 = 0; t0 < n_tok; t0 += kTileTokens) {
    const int64_t nt = n_tok - t0 < kTileTokens ? n_tok - t0 : kTileTokens;
    const BlockQ8_0* y[kTileTokens];
    for (int64_t t = 0; t < nt; ++t) y[t] = reinterpret_cast<const BlockQ8_0*>(a + (t0 + t) * a_stride);
    float* ot = out + t0 * out_stride;
    for (int64_t r = 0; r + 8 <= rows; r += 8) {
      const uint8_t* group = base + r * w_stride;
      switch (nt) {
        case 4: Q8Tile8<4>(group, nb, y, ot + r, out_stride); break;
        case 3: Q8Tile8<3>(group, nb, y, ot + r, out_stride); break;
        case 2: Q8Tile8<2>(group, nb, y, ot + r, out_stride); break;
        default: Q8Tile8<1>(group, nb, y, ot + r, out_stride); break;
      }
    }
  }
}

}  // namespace origami::cpu::x86
