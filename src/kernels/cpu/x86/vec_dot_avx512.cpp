// AVX-512 (F/BW/VL/DQ + VNNI) kernels: Q4_0 and Q8_0 against Q8_0 with vpdpbusd, two blocks per
// 512-bit vector; BF16 against F32 widened to F32 (exact products; vdpbf16ps would round the
// activations to BF16 and is not used). Intrinsics and plain loops only, see x86_kernels.h.
// GCC 12's AVX-512 headers build "undefined" vectors by self-initialization and warn about it.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/x86/x86_kernels.h"
#include "tensor/blocks.h"

namespace origami::cpu::x86 {

namespace {

inline __m256i Nibbles(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}
inline __m256i Load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m512i Join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
inline __m512 Scales2(float lo, float hi) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(lo)), _mm256_set1_ps(hi), 1);
}
inline float H2F(uint16_t h) { return _cvtsh_ss(h); }

// sum((q - 8) * qy) per 8 lanes of each 256-bit half: dpbusd(q, qy) - dpbusd(8, qy).
inline __m512i DotQ4(__m512i q, __m512i y) {
  const __m512i zero = _mm512_setzero_si512();
  return _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, q, y), _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(8), y));
}
inline __m256i DotQ4(__m256i q, __m256i y) {
  const __m256i zero = _mm256_setzero_si256();
  return _mm256_sub_epi32(_mm256_dpbusd_epi32(zero, q, y), _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(8), y));
}
// Signed x signed: |w| against y with w's sign (negating -128 in y wraps, as vpsignb does; the
// activation quantizers never produce -128).
inline __m512i DotQ8(__m512i w, __m512i y) {
  const __m512i ys = _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(w), _mm512_setzero_si512(), y);
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), ys);
}
inline __m256i DotQ8(__m256i w, __m256i y) {
  const __m256i ys = _mm256_sign_epi8(y, w);
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), ys);
}

}  // namespace

void VecDotQ4_0Avx512(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / kQK4_0;
  __m512 acc = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m512i s = DotQ4(Join(Nibbles(x[b].qs), Nibbles(x[b + 1].qs)), Join(Load256(y[b].qs), Load256(y[b + 1].qs)));
    acc = _mm512_fmadd_ps(Scales2(H2F(x[b].d) * H2F(y[b].d), H2F(x[b + 1].d) * H2F(y[b + 1].d)),
                          _mm512_cvtepi32_ps(s), acc);
  }
  float tail = 0;
  if (b < nb) {
    const __m256 s = _mm256_mul_ps(_mm256_set1_ps(H2F(x[b].d) * H2F(y[b].d)),
                                   _mm256_cvtepi32_ps(DotQ4(Nibbles(x[b].qs), Load256(y[b].qs))));
    const __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    tail = _mm_cvtss_f32(_mm_hadd_ps(_mm_hadd_ps(t, t), _mm_hadd_ps(t, t)));
  }
  *out = _mm512_reduce_add_ps(acc) + tail;
}

void VecDotQ8_0Avx512(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / kQK8_0;
  __m512 acc = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m512i s = DotQ8(Join(Load256(x[b].qs), Load256(x[b + 1].qs)), Join(Load256(y[b].qs), Load256(y[b + 1].qs)));
    acc = _mm512_fmadd_ps(Scales2(H2F(x[b].d) * H2F(y[b].d), H2F(x[b + 1].d) * H2F(y[b + 1].d)),
                          _mm512_cvtepi32_ps(s), acc);
  }
  float tail = 0;
  if (b < nb) {
    const __m256 s = _mm256_mul_ps(_mm256_set1_ps(H2F(x[b].d) * H2F(y[b].d)),
                                   _mm256_cvtepi32_ps(DotQ8(Load256(x[b].qs), Load256(y[b].qs))));
    const __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    tail = _mm_cvtss_f32(_mm_hadd_ps(_mm_hadd_ps(t, t), _mm_hadd_ps(t, t)));
  }
  *out = _mm512_reduce_add_ps(acc) + tail;
}

// Several rows: one row at a time is already two blocks per instruction; the activation blocks stay
// in L1 across the rows of a call.
void VecDotRowsQ4_0Avx512(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const char* base = static_cast<const char*>(w);
  for (int64_t r = 0; r < rows; ++r) VecDotQ4_0Avx512(n, out + r, base + r * stride, a);
}

void VecDotRowsQ8_0Avx512(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const char* base = static_cast<const char*>(w);
  for (int64_t r = 0; r < rows; ++r) VecDotQ8_0Avx512(n, out + r, base + r * stride, a);
}

void VecDotBF16Avx512(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const uint16_t*>(w);
  const auto* y = static_cast<const float*>(a);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i w0 = _mm512_cvtepu16_epi32(Load256(x + i)), w1 = _mm512_cvtepu16_epi32(Load256(x + i + 16));
    acc0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w0, 16)), _mm512_loadu_ps(y + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(w1, 16)), _mm512_loadu_ps(y + i + 16), acc1);
  }
  while (i < n) {
    const int64_t left = n - i;
    const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    const __m512i wv = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + i));
    acc0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(wv, 16)), _mm512_maskz_loadu_ps(m, y + i), acc0);
    i += left >= 16 ? 16 : left;
  }
  *out = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

}  // namespace origami::cpu::x86
