// AVX2 kernels for the K-quants most downloads use: Q4_K and Q6_K against Q8_K activations.
// Integer sums per super-block with maddubs/madd, one float FMA per super-block.
#include <immintrin.h>

#include "kernels/cpu/x86/x86_kernels.h"
#include "tensor/blocks.h"

namespace origami::cpu::x86 {

namespace {

inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t HsumI32(__m128i v) {
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
  return _mm_cvtsi128_si32(v);
}

inline __m256i Load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// The 6-bit scales and mins of Q4_K: sc[j] and m[j] for the 8 sub-blocks of 32.
inline void UnpackK4(const uint8_t* q, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = q[j] & 63;
    m[j] = q[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    m[j] = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// One Q4_K super-block: returns the float contribution dy * (d * isum - dmin * msum) pieces as
// (d * dy) * isum accumulated into acc and (dmin * dy) * msum into *macc.
inline __m256 Q4KBlock(const BlockQ4_K& x, const BlockQ8_K& y, __m256 acc, float* macc) {
  alignas(16) uint8_t sc[8], m[8];
  UnpackK4(x.scales, sc, m);
  // Mins against the sums of each sub-block of 32 (two bsums of 16).
  const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums)),
                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums + 8)));
  const __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m)));
  const int32_t msum = HsumI32(_mm_madd_epi16(mins, bs));
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256i sumi = _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    const __m256i q = Load(x.qs + 32 * c);
    const __m256i lo = _mm256_and_si256(q, m4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    const __m256i plo = _mm256_maddubs_epi16(lo, Load(y.qs + 64 * c));
    const __m256i phi = _mm256_maddubs_epi16(hi, Load(y.qs + 64 * c + 32));
    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])));
    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1])));
  }
  const float xd = _cvtsh_ss(x.d), xm = _cvtsh_ss(x.dmin);
  *macc += y.d * xm * static_cast<float>(msum);
  return _mm256_fmadd_ps(_mm256_set1_ps(y.d * xd), _mm256_cvtepi32_ps(sumi), acc);
}

// One Q6_K super-block. q in [0, 63]; sum((q - 32) * qy) = sum(q * qy) - 32 * bsum per sub-block.
inline __m256 Q6KBlock(const BlockQ6_K& x, const BlockQ8_K& y, __m256 acc) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i sc_all = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales)));
  const __m256i off = _mm256_madd_epi16(sc_all, Load(y.bsums));
  __m256i sumi = _mm256_setzero_si256();
  for (int h = 0; h < 2; ++h) {
    const __m256i ql0 = Load(x.ql + 64 * h), ql1 = Load(x.ql + 64 * h + 32), qh = Load(x.qh + 32 * h);
    __m256i q[4];
    q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                           _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                           _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0c)), 2));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                           _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                           _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(static_cast<char>(0xc0))), 2));
    // Scales of this half as int16, in both 128-bit lanes.
    const __m256i sc16 = _mm256_broadcastsi128_si256(
        _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x.scales + 8 * h))));
    for (int k = 0; k < 4; ++k) {
      // Lower 128 bits: scale 2k broadcast; upper: scale 2k + 1.
      const char s0 = static_cast<char>(4 * k), s1 = static_cast<char>(4 * k + 2);
      const __m256i pick = _mm256_setr_epi8(s0, s0 + 1, s0, s0 + 1, s0, s0 + 1, s0, s0 + 1, s0, s0 + 1, s0, s0 + 1,
                                            s0, s0 + 1, s0, s0 + 1, s1, s1 + 1, s1, s1 + 1, s1, s1 + 1, s1, s1 + 1,
                                            s1, s1 + 1, s1, s1 + 1, s1, s1 + 1, s1, s1 + 1);
      const __m256i scv = _mm256_shuffle_epi8(sc16, pick);
      const __m256i p = _mm256_maddubs_epi16(q[k], Load(y.qs + 128 * h + 32 * k));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scv));
    }
  }
  sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(off, 5));
  return _mm256_fmadd_ps(_mm256_set1_ps(y.d * _cvtsh_ss(x.d)), _mm256_cvtepi32_ps(sumi), acc);
}

}  // namespace

void VecDotQ4_KAvx2(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  float macc = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b) acc = Q4KBlock(x[b], y[b], acc, &macc);
  *out = Hsum(acc) - macc;
}

void VecDotRowsQ4_KAvx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const char* base = static_cast<const char*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const int64_t nb = n / kQK_K;
  int64_t r = 0;
  for (; r + 2 <= rows; r += 2) {
    const auto* x0 = reinterpret_cast<const BlockQ4_K*>(base + r * stride);
    const auto* x1 = reinterpret_cast<const BlockQ4_K*>(base + (r + 1) * stride);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    float m0 = 0, m1 = 0;
    for (int64_t b = 0; b < nb; ++b) {
      _mm_prefetch(reinterpret_cast<const char*>(x0 + b + 2), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x1 + b + 2), _MM_HINT_T0);
      acc0 = Q4KBlock(x0[b], y[b], acc0, &m0);
      acc1 = Q4KBlock(x1[b], y[b], acc1, &m1);
    }
    out[r] = Hsum(acc0) - m0;
    out[r + 1] = Hsum(acc1) - m1;
  }
  for (; r < rows; ++r) VecDotQ4_KAvx2(n, out + r, base + r * stride, a);
}

void VecDotQ6_KAvx2(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) acc = Q6KBlock(x[b], y[b], acc);
  *out = Hsum(acc);
}

void VecDotRowsQ6_KAvx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const char* base = static_cast<const char*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const int64_t nb = n / kQK_K;
  int64_t r = 0;
  for (; r + 2 <= rows; r += 2) {
    const auto* x0 = reinterpret_cast<const BlockQ6_K*>(base + r * stride);
    const auto* x1 = reinterpret_cast<const BlockQ6_K*>(base + (r + 1) * stride);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (int64_t b = 0; b < nb; ++b) {
      _mm_prefetch(reinterpret_cast<const char*>(x0 + b + 2), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x0 + b + 2) + 128, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x1 + b + 2), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x1 + b + 2) + 128, _MM_HINT_T0);
      acc0 = Q6KBlock(x0[b], y[b], acc0);
      acc1 = Q6KBlock(x1[b], y[b], acc1);
    }
    out[r] = Hsum(acc0);
    out[r + 1] = Hsum(acc1);
  }
  for (; r < rows; ++r) VecDotQ6_KAvx2(n, out + r, base + r * stride, a);
}

}  // namespace origami::cpu::x86
