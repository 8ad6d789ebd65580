// AVX2 + FMA forms of attention's per-head loops: the scores (scale * q . k_j) and the weighted sum
// of value rows (sum_j p[j] * v_j), over rows given by pointers because the KV cache is paged. The
// portable forms (ops.cpp) run one Dot or Axpy per row, compiled for the baseline ISA (SSE2 on
// x86-64: 4 lanes, no FMA); attention over a 512-token prompt spent a fifth of its time in them.
// Here four score rows share one horizontal reduction, and the output of the weighted sum stays in
// registers (64 floats per pass) instead of being loaded and stored again for every row.
#include <immintrin.h>

#include "kernels/cpu/x86/x86_kernels.h"

namespace origami::cpu {
// The portable forms (ops.h, compiled for the baseline ISA), for head sizes off the 8-float grid.
// Declared here rather than by including ops.h, whose thread_pool.h would bring inline std code into
// this AVX2-compiled file (the linker could then keep an AVX2 copy for the baseline code too); a
// declaration that drifted from ops.h would fail to link.
void AttnScores(const float* q, const float* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValues(const float* p, const float* const* v, int64_t n, int64_t hd, float* out);
}  // namespace origami::cpu

namespace origami::cpu::x86 {

void AttnScoresAvx2(const float* q, const float* const* k, int64_t n, int64_t hd, float scale, float* s) {
  if (hd % 8 != 0) {
    AttnScores(q, k, n, hd, scale, s);
    return;
  }
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t i = 0; i < hd; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[j] + i), a0);
      a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[j + 1] + i), a1);
      a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[j + 2] + i), a2);
      a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[j + 3] + i), a3);
    }
    // Lane pairs of (a0, a1) and (a2, a3), then each 128-bit half: the four sums in one vector.
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    const __m128 sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    _mm_storeu_ps(s + j, _mm_mul_ps(sums, _mm_set1_ps(scale)));
  }
  for (; j < n; ++j) {
    __m256 a = _mm256_setzero_ps();
    for (int64_t i = 0; i < hd; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k[j] + i), a);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s[j] = _mm_cvtss_f32(h) * scale;
  }
}

void AttnValuesAvx2(const float* p, const float* const* v, int64_t n, int64_t hd, float* out) {
  if (hd % 8 != 0) {
    AttnValues(p, v, n, hd, out);
    return;
  }
  // Columns in passes of up to 64 (8 accumulators); a pass over a narrower remainder uses fewer.
  for (int64_t c = 0; c < hd; c += 64) {
    const int w = hd - c >= 64 ? 8 : static_cast<int>((hd - c) / 8);
    __m256 acc[8];
    for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
    if (w == 8) {
      for (int64_t j = 0; j < n; ++j) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const float* row = v[j] + c;
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) acc[i] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(row + 8 * i), acc[i]);
      }
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const float* row = v[j] + c;
        for (int i = 0; i < w; ++i) acc[i] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(row + 8 * i), acc[i]);
      }
    }
    for (int i = 0; i < w; ++i) _mm256_storeu_ps(out + c + 8 * i, acc[i]);
  }
}

}  // namespace origami::cpu::x86
