// AVX2 NVFP4 x Q8_0 kernels (decode rows and a prefill tile). As for MXFP4 the doubled E2M1 values
// fit int8, so one pshufb turns nibbles into int8 weights and each 16-element sub-block is an
// exact int8 x int8 dot product. One NVFP4 block (64 elements, 4 sub-blocks) covers two Q8_0
// blocks: 16 quant bytes decode into the 32 weights of one activation block, and the int32 lanes
// of its dot product split 4 + 4 between its two sub-blocks, so the per-lane scale vector holds
// ue4m3(d[s]) / 2 * d_act in its low half and the next sub-block's in its high half (formed in
// that order, as ref::VecDotNvfp4Q8_0). Own helpers only: see x86_kernels.h.
#include <immintrin.h>

#include "kernels/cpu/x86/x86_kernels.h"
#include "tensor/blocks.h"
#include "tensor/nvfp4.h"

namespace origami::cpu::x86 {

namespace {

inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256i Lut() {
  return _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,  //
                          0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
}

// The 32 weights of sub-blocks 2h and 2h + 1 as int8 in element order, from their 16 quant bytes
// qs: a sub-block's 8 bytes hold its elements 0..7 in the low nibbles and 8..15 in the high ones,
// so the element order is [lo(0..7), hi(0..7)] then [lo(8..15), hi(8..15)].
inline __m256i Decode(const uint8_t* qs, __m256i lut) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(raw, m4), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
  const __m256i idx = _mm256_set_m128i(_mm_unpackhi_epi64(lo, hi), _mm_unpacklo_epi64(lo, hi));
  return _mm256_shuffle_epi8(lut, idx);
}

// Products of int8 weights w (|w| <= 12) and int8 activations a summed into 8 int32 lanes (lanes
// 0-3: elements 0-15, lanes 4-7: elements 16-31); maddubs pairs stay <= 2 * 12 * 128.
inline __m256i Dot(__m256i w, __m256i a) {
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

inline __m256i LoadQ(const BlockQ8_0& y) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs)); }

// Per-lane scales of sub-blocks 2h (low 4 lanes) and 2h + 1 (high 4 lanes) with activation scale dy.
// The scale bytes index tensor/nvfp4.h's constant table directly: calling its inline functions from
// this AVX2-compiled file could let the linker keep an AVX2 copy for the scalar code too.
inline __m256 Scales(const BlockNvfp4& x, int h, float dy) {
  return _mm256_set_m128(_mm_set1_ps(kUe4m3Half.v[x.d[2 * h + 1]] * dy), _mm_set1_ps(kUe4m3Half.v[x.d[2 * h]] * dy));
}

// acc += one NVFP4 block against its two activation blocks y[0], y[1].
inline __m256 Block(const BlockNvfp4& x, const BlockQ8_0* y, __m256i lut, __m256 acc) {
  for (int h = 0; h < 2; ++h) {
    const __m256i s = Dot(Decode(x.qs + 16 * h, lut), LoadQ(y[h]));
    acc = _mm256_fmadd_ps(Scales(x, h, _cvtsh_ss(y[h].d)), _mm256_cvtepi32_ps(s), acc);
  }
  return acc;
}

}  // namespace

void VecDotNvfp4Avx2(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockNvfp4*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / kQKNvfp4;
  const __m256i lut = Lut();
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    acc0 = Block(x[b], y + 2 * b, lut, acc0);
    acc1 = Block(x[b + 1], y + 2 * b + 2, lut, acc1);
  }
  for (; b < nb; ++b) acc0 = Block(x[b], y + 2 * b, lut, acc0);
  *out = Hsum(_mm256_add_ps(acc0, acc1));
}

// Four rows share each activation load and its fp16 scale conversion.
void VecDotRowsNvfp4Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const char* base = static_cast<const char*>(w);
  const int64_t nb = n / kQKNvfp4;
  const __m256i lut = Lut();
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const BlockNvfp4* x[4];
    for (int k = 0; k < 4; ++k) x[k] = reinterpret_cast<const BlockNvfp4*>(base + (r + k) * stride);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; ++b) {
      for (int k = 0; k < 4; ++k) _mm_prefetch(reinterpret_cast<const char*>(x[k] + b) + 512, _MM_HINT_T0);
      for (int h = 0; h < 2; ++h) {
        const BlockQ8_0& yb = y[2 * b + h];
        const __m256i ya = LoadQ(yb);
        const float dy = _cvtsh_ss(yb.d);
        for (int k = 0; k < 4; ++k) {
          const __m256i s = Dot(Decode(x[k][b].qs + 16 * h, lut), ya);
          acc[k] = _mm256_fmadd_ps(Scales(x[k][b], h, dy), _mm256_cvtepi32_ps(s), acc[k]);
        }
      }
    }
    for (int k = 0; k < 4; ++k) out[r + k] = Hsum(acc[k]);
  }
  for (; r < rows; ++r) VecDotNvfp4Avx2(n, out + r, base + r * stride, a);
}

// Prefill: 4 rows x 2 tokens per step, so each decoded half block of weights serves two tokens and
// each activation block four rows.
void VecDotTileNvfp4Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                         const void* act, size_t a_stride, int64_t n_tok) {
  const char* base = static_cast<const char*>(w);
  const auto* abase = static_cast<const char*>(act);
  const int64_t nb = n / kQKNvfp4;
  const __m256i lut = Lut();
  int64_t t = 0;
  for (; t + 2 <= n_tok; t += 2) {
    const auto* y0 = reinterpret_cast<const BlockQ8_0*>(abase + t * a_stride);
    const auto* y1 = reinterpret_cast<const BlockQ8_0*>(abase + (t + 1) * a_stride);
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
      const BlockNvfp4* x[4];
      for (int k = 0; k < 4; ++k) x[k] = reinterpret_cast<const BlockNvfp4*>(base + (r + k) * w_stride);
      __m256 c0[4], c1[4];
      for (int k = 0; k < 4; ++k) c0[k] = c1[k] = _mm256_setzero_ps();
      for (int64_t b = 0; b < nb; ++b) {
        for (int h = 0; h < 2; ++h) {
          const __m256i ya = LoadQ(y0[2 * b + h]), yb = LoadQ(y1[2 * b + h]);
          const float da = _cvtsh_ss(y0[2 * b + h].d), db = _cvtsh_ss(y1[2 * b + h].d);
          for (int k = 0; k < 4; ++k) {
            const __m256i wk = Decode(x[k][b].qs + 16 * h, lut);
            c0[k] = _mm256_fmadd_ps(Scales(x[k][b], h, da), _mm256_cvtepi32_ps(Dot(wk, ya)), c0[k]);
            c1[k] = _mm256_fmadd_ps(Scales(x[k][b], h, db), _mm256_cvtepi32_ps(Dot(wk, yb)), c1[k]);
          }
        }
      }
      for (int k = 0; k < 4; ++k) {
        out[t * out_stride + r + k] = Hsum(c0[k]);
        out[(t + 1) * out_stride + r + k] = Hsum(c1[k]);
      }
    }
    if (r < rows) {
      VecDotRowsNvfp4Avx2(n, out + t * out_stride + r, base + r * w_stride, w_stride, rows - r, y0);
      VecDotRowsNvfp4Avx2(n, out + (t + 1) * out_stride + r, base + r * w_stride, w_stride, rows - r, y1);
    }
  }
  if (t < n_tok) VecDotRowsNvfp4Avx2(n, out + t * out_stride, w, w_stride, rows, abase + t * a_stride);
}

}  // namespace origami::cpu::x86
