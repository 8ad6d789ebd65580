// AVX2 + FMA forms of the flash attention path's float kernels (kernels.h, AttnTileKernels): the
// score tile of several query rows against a transposed block of keys, the online-softmax step
// with a vectorized exp, and one query row's weighted sum of a float block of value rows.
#include <immintrin.h>

#include "kernels/cpu/x86/x86_kernels.h"

namespace origami::cpu::ref {
// The scalar twins (ref/attn_tile_ref.h), for shapes off the 8-float grid; declared here rather
// than included so no inline std code is compiled with AVX2 flags (see ops_avx2.cpp).
void AttnTileScores(const float* q, int rows, const float* kt, int64_t ld, int64_t m, int64_t hd,
                    float scale, float* s, int64_t ld_s);
void AttnRowValues(const float* p, const float* v, int64_t n, int64_t hd, float* out);
}  // namespace origami::cpu::ref

namespace origami::cpu::x86 {
namespace {

// exp(x) for x <= 0 (the softmax's s - max), Cephes' single-precision scheme: x = n ln2 + r with
// |r| <= ln2 / 2 (ln2 split in two so n ln2 is exact), a degree-7 polynomial for e^r, and 2^n put
// into the exponent bits. Relative error within 2 ulp of std::exp over the range (the test
// holds it to 4 ulp); below -87.33 the result is 0 (std::exp would give a denormal or 0), and a
// NaN stays NaN (the clamps are ordered so that max/min return x when x is NaN).
inline __m256 Exp(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3365f), hi = _mm256_set1_ps(88.3762626647949f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
  const __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(y, _mm256_castsi256_ps(n)));
}

inline float HorizontalSum(__m256 a) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// Lanes i < k set (k in 0..8), for the masked tail of a row.
inline __m256i TailMask(int64_t k) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// R query rows x C vectors of 8 keys, all accumulators in registers (R * C <= 8 of the 16 YMM).
template <int R, int C>
inline void ScoreBlock(const float* q, int64_t hd, const float* kt, int64_t ld, __m256 scale, float* s,
                       int64_t ld_s) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int64_t i = 0; i < hd; ++i) {
    __m256 k[C];
    for (int c = 0; c < C; ++c) k[c] = _mm256_loadu_ps(kt + i * ld + 8 * c);
    for (int r = 0; r < R; ++r) {
      const __m256 qv = _mm256_broadcast_ss(q + r * hd + i);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(qv, k[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(s + r * ld_s + 8 * c, _mm256_mul_ps(acc[r][c], scale));
}

template <int R>
inline void ScoreRows(const float* q, int64_t hd, const float* kt, int64_t ld, int64_t m, __m256 scale,
                      float* s, int64_t ld_s) {
  int64_t j = 0;
  for (; j + 16 <= m; j += 16) ScoreBlock<R, 2>(q, hd, kt + j, ld, scale, s + j, ld_s);
  for (; j < m; j += 8) ScoreBlock<R, 1>(q, hd, kt + j, ld, scale, s + j, ld_s);
}

}  // namespace

// Keys in lanes: each lane's sum runs over the head's elements in order with one fused
// multiply-add each, the scalar twin's order, so the two agree bit for bit. Columns from m up to
// the next multiple of 8 are computed too (from whatever kt holds there) and may be written.
void AttnTileScoresAvx2(const float* q, int rows, const float* kt, int64_t ld, int64_t m, int64_t hd,
                        float scale, float* s, int64_t ld_s) {
  if (ld % 8 != 0 || ld_s % 8 != 0 || (m + 7) / 8 * 8 > ld || (m + 7) / 8 * 8 > ld_s)
    return ref::AttnTileScores(q, rows, kt, ld, m, hd, scale, s, ld_s);
  const __m256 sc = _mm256_set1_ps(scale);
  int r = 0;
  for (; r + 4 <= rows; r += 4) ScoreRows<4>(q + r * hd, hd, kt, ld, m, sc, s + r * ld_s, ld_s);
  for (; r < rows; ++r) ScoreRows<1>(q + r * hd, hd, kt, ld, m, sc, s + r * ld_s, ld_s);
}

float AttnExpStepAvx2(float* s, int64_t n, float* m) {
  // The block's max: max_ps(x, acc) returns acc when x is NaN, so a NaN score is passed over.
  __m256 vmax = _mm256_set1_ps(*m);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) vmax = _mm256_max_ps(_mm256_loadu_ps(s + j), vmax);
  __m128 h = _mm_max_ps(_mm256_extractf128_ps(vmax, 1), _mm256_castps256_ps128(vmax));
  h = _mm_max_ps(_mm_movehl_ps(h, h), h);
  h = _mm_max_ss(_mm_movehdup_ps(h), h);
  float mx = _mm_cvtss_f32(h);
  for (; j < n; ++j) mx = _mm_cvtss_f32(_mm_max_ss(_mm_set_ss(s[j]), _mm_set_ss(mx)));
  const __m256 vm = _mm256_set1_ps(mx);
  __m256 sum = _mm256_setzero_ps();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
    _mm256_storeu_ps(s + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (j < n) {
    const __m256i mask = TailMask(n - j);
    const __m256 e = _mm256_and_ps(_mm256_castsi256_ps(mask), Exp(_mm256_sub_ps(_mm256_maskload_ps(s + j, mask), vm)));
    _mm256_maskstore_ps(s + j, mask, e);
    sum = _mm256_add_ps(sum, e);
  }
  *m = mx;
  return HorizontalSum(sum);
}

// One fused multiply-add per element, rows in order: the scalar twin's bits. The output stays in
// registers for a pass of up to 64 columns.
void AttnRowValuesAvx2(const float* p, const float* v, int64_t n, int64_t hd, float* out) {
  if (hd % 8 != 0) return ref::AttnRowValues(p, v, n, hd, out);
  for (int64_t c = 0; c < hd; c += 64) {
    const int w = hd - c >= 64 ? 8 : static_cast<int>((hd - c) / 8);
    __m256 acc[8];
    for (int i = 0; i < w; ++i) acc[i] = _mm256_loadu_ps(out + c + 8 * i);
    if (w == 8) {
      for (int64_t j = 0; j < n; ++j) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const float* vj = v + j * hd + c;
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) acc[i] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * i), acc[i]);
      }
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const float* vj = v + j * hd + c;
        for (int i = 0; i < w; ++i) acc[i] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * i), acc[i]);
      }
    }
    for (int i = 0; i < w; ++i) _mm256_storeu_ps(out + c + 8 * i, acc[i]);
  }
}

}  // namespace origami::cpu::x86
