// AVX2 kernels for the K-quants most downloads use: Q4_K and Q6_K against Q8_K activations.
// Integer sums per super-block with maddubs/madd, one float FMA per super-block.
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

inline int32_t HsumI32(__m128i v) {
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
  return _mm_cvtsi128_si32(v);
}

inline __m256i Load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Software prefetch of `lines` cache lines `off` bytes ahead in each of g rows read side by side;
// past a row's end it continues into row k + g, the same row of the next group (see
// vec_dot_avx2.cpp: short rows end before the hardware prefetcher has learnt their streams).
inline void PrefetchGroup(const char* row0, size_t stride, int g, size_t off, int lines) {
  const char* p = row0 + off + (off >= stride ? static_cast<size_t>(g - 1) * stride : 0);
  for (int k = 0; k < g; ++k)
    for (int l = 0; l < lines; ++l) _mm_prefetch(p + k * stride + 64 * l, _MM_HINT_T0);
}
constexpr size_t kPrefetchAhead = 1024;

// The 6-bit scales and mins of a Q4_K block as 8 int16 each, unpacked with 32-bit word operations
// (the layout of ref::UnpackScalesK4: sc[0..3], m[0..3] are the low 6 bits of bytes 0..3 and 4..7;
// sc[4..7], m[4..7] take 4 bits from bytes 8..11 and their top 2 bits from bytes 0..3 / 4..7).
inline void UnpackK4Vec(const uint8_t* q, __m128i* sc, __m128i* m) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, q, 4);
  std::memcpy(&w1, q + 4, 4);
  std::memcpy(&w2, q + 8, 4);
  const uint32_t sc_lo = w0 & 0x3f3f3f3fu, m_lo = w1 & 0x3f3f3f3fu;
  const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u);
  const uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u);
  *sc = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>((static_cast<uint64_t>(sc_hi) << 32) | sc_lo)));
  *m = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>((static_cast<uint64_t>(m_hi) << 32) | m_lo)));
}

// One Q4_K super-block against its activations, with the sub-block sums of 32 activations (bs,
// 8 x int16) shared by every row: adds (d dy) isum to acc (8 lanes) and (dmin dy) msum to macc
// (4 lanes). No horizontal sums and no scalar scale unpacking inside the loop.
inline void Q4KBlockVec(const BlockQ4_K& x, const BlockQ8_K& y, __m128i bs, __m256* acc, __m128* macc) {
  __m128i sc16, m16;
  UnpackK4Vec(x.scales, &sc16, &m16);
  const __m128 dm = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(x.d | (uint32_t{x.dmin} << 16)))),
                               _mm_set1_ps(y.d));
  *macc = _mm_fmadd_ps(_mm_shuffle_ps(dm, dm, 0x55), _mm_cvtepi32_ps(_mm_madd_epi16(m16, bs)), *macc);
  const __m256i sc = _mm256_broadcastsi128_si256(sc16);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256i sumi = _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    const __m256i q = Load(x.qs + 32 * c);
    const __m256i lo = _mm256_and_si256(q, m4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    // int16 lanes holding sc[2c] and sc[2c + 1]: bytes (2j, 2j + 1) of each 128-bit half.
    const __m256i s_lo = _mm256_shuffle_epi8(sc, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * (2 * c))));
    const __m256i s_hi = _mm256_shuffle_epi8(sc, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * (2 * c + 1))));
    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, Load(y.qs + 64 * c)), s_lo));
    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, Load(y.qs + 64 * c + 32)), s_hi));
  }
  *acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dm), _mm256_cvtepi32_ps(sumi), *acc);
}

inline __m128i SubBlockSums(const BlockQ8_K& y) {
  return _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums)),
                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums + 8)));
}

inline float Hsum128(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
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
  __m128 macc = _mm_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) Q4KBlockVec(x[b], y[b], SubBlockSums(y[b]), &acc, &macc);
  *out = Hsum(acc) - Hsum128(macc);
}

// Four rows per pass; they share the activation block's sub-block sums and stay in flight together.
void VecDotRowsQ4_KAvx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const char* base = static_cast<const char*>(w);
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const int64_t nb = n / kQK_K;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const char* row0 = base + r * stride;
    const auto* x0 = reinterpret_cast<const BlockQ4_K*>(row0);
    const auto* x1 = reinterpret_cast<const BlockQ4_K*>(row0 + stride);
    const auto* x2 = reinterpret_cast<const BlockQ4_K*>(row0 + 2 * stride);
    const auto* x3 = reinterpret_cast<const BlockQ4_K*>(row0 + 3 * stride);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    __m128 macc[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
    for (int64_t b = 0; b < nb; ++b) {
      PrefetchGroup(row0, stride, 4, b * sizeof(BlockQ4_K) + kPrefetchAhead, 3);
      const __m128i bs = SubBlockSums(y[b]);
      Q4KBlockVec(x0[b], y[b], bs, &acc[0], &macc[0]);
      Q4KBlockVec(x1[b], y[b], bs, &acc[1], &macc[1]);
      Q4KBlockVec(x2[b], y[b], bs, &acc[2], &macc[2]);
      Q4KBlockVec(x3[b], y[b], bs, &acc[3], &macc[3]);
    }
    for (int k = 0; k < 4; ++k) out[r + k] = Hsum(acc[k]) - Hsum128(macc[k]);
  }
  for (; r < rows; ++r) VecDotQ4_KAvx2(n, out + r, base + r * stride, a);
}

// Prefill: one row x T tokens. The scales, mins and nibbles of each weight block are unpacked once
// and used for T tokens; the mins term is folded into the same accumulator (low 4 lanes).
template <int T>
void Q4KTile1(const BlockQ4_K* x, int64_t nb, const BlockQ8_K* const* y, float* out, size_t out_stride) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m128i sc16, m16;
    UnpackK4Vec(x[b].scales, &sc16, &m16);
    const __m256i sc = _mm256_broadcastsi128_si256(sc16);
    const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(x[b].d | (uint32_t{x[b].dmin} << 16))));
    __m256i sumi[T];
    for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = Load(x[b].qs + 32 * c);
      const __m256i lo = _mm256_and_si256(q, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      const __m256i s_lo = _mm256_shuffle_epi8(sc, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * (2 * c))));
      const __m256i s_hi = _mm256_shuffle_epi8(sc, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * (2 * c + 1))));
      for (int t = 0; t < T; ++t) {
        const __m256i plo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, Load(y[t][b].qs + 64 * c)), s_lo);
        const __m256i phi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, Load(y[t][b].qs + 64 * c + 32)), s_hi);
        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(plo, phi));
      }
    }
    for (int t = 0; t < T; ++t) {
      const __m128 dmy = _mm_mul_ps(dm, _mm_set1_ps(y[t][b].d));
      acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(dmy), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
      const __m128 mins = _mm_mul_ps(_mm_shuffle_ps(dmy, dmy, 0x55), _mm_cvtepi32_ps(_mm_madd_epi16(m16, SubBlockSums(y[t][b]))));
      acc[t] = _mm256_sub_ps(acc[t], _mm256_zextps128_ps256(mins));
    }
  }
  for (int t = 0; t < T; ++t) out[t * out_stride] = Hsum(acc[t]);
}

void VecDotTileQ4_KAvx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                        const void* act, size_t a_stride, int64_t n_tok) {
  constexpr int64_t kTok = 4;
  const char* base = static_cast<const char*>(w);
  const auto* a = static_cast<const char*>(act);
  const int64_t nb = n / kQK_K;
  for (int64_t t0 = 0; t0 < n_tok; t0 += kTok) {
    const int64_t nt = n_tok - t0 < kTok ? n_tok - t0 : kTok;
    const BlockQ8_K* y[kTok];
    for (int64_t t = 0; t < nt; ++t) y[t] = reinterpret_cast<const BlockQ8_K*>(a + (t0 + t) * a_stride);
    float* ot = out + t0 * out_stride;
    for (int64_t r = 0; r < rows; ++r) {
      const auto* x = reinterpret_cast<const BlockQ4_K*>(base + r * w_stride);
      switch (nt) {
        case 4: Q4KTile1<4>(x, nb, y, ot + r, out_stride); break;
        case 3: Q4KTile1<3>(x, nb, y, ot + r, out_stride); break;
        case 2: Q4KTile1<2>(x, nb, y, ot + r, out_stride); break;
        default: Q4KTile1<1>(x, nb, y, ot + r, out_stride); break;
      }
    }
  }
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
      PrefetchGroup(reinterpret_cast<const char*>(x0), stride, 2, b * sizeof(BlockQ6_K) + kPrefetchAhead, 4);
      acc0 = Q6KBlock(x0[b], y[b], acc0);
      acc1 = Q6KBlock(x1[b], y[b], acc1);
    }
    out[r] = Hsum(acc0);
    out[r + 1] = Hsum(acc1);
  }
  for (; r < rows; ++r) VecDotQ6_KAvx2(n, out + r, base + r * stride, a);
}

}  // namespace origami::cpu::x86
