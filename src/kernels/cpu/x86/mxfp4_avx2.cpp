// AVX2 MXFP4 x Q8_0 kernels (decode rows and a prefill tile). The doubled E2M1 values
// {0, 1, 2, 3, 4, 6, 8, 12} x sign fit int8, so one pshufb turns 32 nibbles into 32 int8 weights;
// the block is then an exact int8 x int8 dot product, scaled by d_act * 2^(e - 128) formed in
// that order (as ref::VecDotMxfp4Q8_0, so Inf appears alike). Own helpers only: see x86_kernels.h.
#include <immintrin.h>

#include <cstring>

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

// 2^(e - 128) from the E8M0 byte's bits (exact; e = 0, 1 are float subnormals).
inline float E8M0Half(uint8_t e) {
  const uint32_t bits = e >= 2 ? static_cast<uint32_t>(e - 1) << 23 : (0x00200000u << e);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline __m256i Lut() {
  return _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,  //
                          0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
}

// The 32 weights of one block as int8 in element order: element j (low nibble of byte j) in
// byte j, element j + 16 (high nibble) in byte j + 16.
inline __m256i Decode(const BlockMxfp4& b, __m256i lut) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1);
  return _mm256_shuffle_epi8(lut, _mm256_and_si256(both, _mm256_set1_epi8(0x0f)));
}

// Products of int8 weights w (|w| <= 12) and int8 activations a summed into 8 int32 lanes:
// |w| * (a with w's sign); maddubs pairs stay <= 2 * 12 * 128, far from int16 saturation.
inline __m256i Dot(__m256i w, __m256i a) {
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

inline __m256i LoadQ(const BlockQ8_0& y) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs)); }

}  // namespace

void VecDotMxfp4Avx2(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockMxfp4*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / kQKMxfp4;
  const __m256i lut = Lut();
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i s0 = Dot(Decode(x[b], lut), LoadQ(y[b]));
    const __m256i s1 = Dot(Decode(x[b + 1], lut), LoadQ(y[b + 1]));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(y[b].d) * E8M0Half(x[b].e)), _mm256_cvtepi32_ps(s0), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(y[b + 1].d) * E8M0Half(x[b + 1].e)), _mm256_cvtepi32_ps(s1),
                           acc1);
  }
  for (; b < nb; ++b) {
    const __m256i s0 = Dot(Decode(x[b], lut), LoadQ(y[b]));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(y[b].d) * E8M0Half(x[b].e)), _mm256_cvtepi32_ps(s0), acc0);
  }
  *out = Hsum(_mm256_add_ps(acc0, acc1));
}

// Four rows share each activation load and its fp16 scale conversion.
void VecDotRowsMxfp4Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const char* base = static_cast<const char*>(w);
  const int64_t nb = n / kQKMxfp4;
  const __m256i lut = Lut();
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const BlockMxfp4* x[4];
    for (int k = 0; k < 4; ++k) x[k] = reinterpret_cast<const BlockMxfp4*>(base + (r + k) * stride);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t b = 0; b < nb; ++b) {
      for (int k = 0; k < 4; ++k) _mm_prefetch(reinterpret_cast<const char*>(x[k] + b) + 512, _MM_HINT_T0);
      const __m256i ya = LoadQ(y[b]);
      const float dy = _cvtsh_ss(y[b].d);
      for (int k = 0; k < 4; ++k) {
        const __m256i s = Dot(Decode(x[k][b], lut), ya);
        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dy * E8M0Half(x[k][b].e)), _mm256_cvtepi32_ps(s), acc[k]);
      }
    }
    for (int k = 0; k < 4; ++k) out[r + k] = Hsum(acc[k]);
  }
  for (; r < rows; ++r) VecDotMxfp4Avx2(n, out + r, base + r * stride, a);
}

// Prefill: 4 rows x 2 tokens per step, so each decoded block of weights serves two tokens and
// each activation block four rows (8 accumulators leave registers for the operands).
void VecDotTileMxfp4Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                         const void* act, size_t a_stride, int64_t n_tok) {
  const char* base = static_cast<const char*>(w);
  const auto* abase = static_cast<const char*>(act);
  const int64_t nb = n / kQKMxfp4;
  const __m256i lut = Lut();
  int64_t t = 0;
  for (; t + 2 <= n_tok; t += 2) {
    const auto* y0 = reinterpret_cast<const BlockQ8_0*>(abase + t * a_stride);
    const auto* y1 = reinterpret_cast<const BlockQ8_0*>(abase + (t + 1) * a_stride);
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
      const BlockMxfp4* x[4];
      for (int k = 0; k < 4; ++k) x[k] = reinterpret_cast<const BlockMxfp4*>(base + (r + k) * w_stride);
      __m256 c0[4], c1[4];
      for (int k = 0; k < 4; ++k) c0[k] = c1[k] = _mm256_setzero_ps();
      for (int64_t b = 0; b < nb; ++b) {
        const __m256i ya = LoadQ(y0[b]), yb = LoadQ(y1[b]);
        const float da = _cvtsh_ss(y0[b].d), db = _cvtsh_ss(y1[b].d);
        for (int k = 0; k < 4; ++k) {
          const __m256i wk = Decode(x[k][b], lut);
          const float e = E8M0Half(x[k][b].e);
          c0[k] = _mm256_fmadd_ps(_mm256_set1_ps(da * e), _mm256_cvtepi32_ps(Dot(wk, ya)), c0[k]);
          c1[k] = _mm256_fmadd_ps(_mm256_set1_ps(db * e), _mm256_cvtepi32_ps(Dot(wk, yb)), c1[k]);
        }
      }
      for (int k = 0; k < 4; ++k) {
        out[t * out_stride + r + k] = Hsum(c0[k]);
        out[(t + 1) * out_stride + r + k] = Hsum(c1[k]);
      }
    }
    if (r < rows) {
      VecDotRowsMxfp4Avx2(n, out + t * out_stride + r, base + r * w_stride, w_stride, rows - r, y0);
      VecDotRowsMxfp4Avx2(n, out + (t + 1) * out_stride + r, base + r * w_stride, w_stride, rows - r, y1);
    }
  }
  if (t < n_tok) VecDotRowsMxfp4Avx2(n, out + t * out_stride, w, w_stride, rows, abase + t * a_stride);
}

}  // namespace origami::cpu::x86
