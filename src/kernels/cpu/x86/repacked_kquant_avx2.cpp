// AVX2 kernels for Q4_K repacked at load as Q4_Kx8 (kernels/cpu/repack.h) against Q8_K activations.
//
// One row per 32-bit lane. Per super-block of 8 rows: the packed 6-bit scales and mins of all 8
// rows are unpacked at once with the 32-bit word operations of ref::UnpackScalesK4 (each lane is
// one row's word); each of the 32 nibble vectors gives two maddubs against 4 broadcast activation
// bytes, summed in int16 over a sub-block of 32 (8 x 2 x 15 x 128 = 30720 fits) and widened with one
// madd by that sub-block's scale; the mins term is 4 madds against the activation's sub-block sums.
// Two FMAs per super-block (d and dmin terms, kept in separate accumulators); no horizontal sums,
// no per-row scale unpacking, one contiguous stream per group. The integer sums are exact and equal
// the scalar kernel's; only the float accumulation order differs (tested within a stated bound).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/x86/x86_kernels.h"
#include "tensor/blocks.h"

namespace origami::cpu::x86 {

namespace {

constexpr size_t kGroupBlock = 8 * sizeof(BlockQ4_K);  // 1152 bytes: d, dmin, 3 scale vectors, 32 nibble vectors
constexpr int64_t kMaxBlocks = 128;                    // activation tables on the stack: n <= 32768 per piece
constexpr int64_t kTileTokens = 4;
constexpr size_t kPrefetchAhead = 2 * kGroupBlock;

inline __m256i Load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

inline __m256i Bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Per activation block: dy and the sub-block sums of 32 as int16 pairs for the mins' madds:
// pairs[0] = (bs0, bs2), [1] = (bs1, bs3), [2] = (bs4, bs6), [3] = (bs5, bs7).
struct ActTables {
  float dy[kMaxBlocks];
  int32_t pairs[kMaxBlocks][4];
};

void FillTables(const BlockQ8_K* y, int64_t nb, ActTables* t) {
  for (int64_t b = 0; b < nb; ++b) {
    int16_t bs[8];
    for (int j = 0; j < 8; ++j) bs[j] = static_cast<int16_t>(y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
    auto pair = [](int16_t lo, int16_t hi) {
      return static_cast<int32_t>(static_cast<uint16_t>(lo) | (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16));
    };
    t->dy[b] = y[b].d;
    t->pairs[b][0] = pair(bs[0], bs[2]);
    t->pairs[b][1] = pair(bs[1], bs[3]);
    t->pairs[b][2] = pair(bs[4], bs[6]);
    t->pairs[b][3] = pair(bs[5], bs[7]);
  }
}

// The scales and mins of the 8 rows of group block g: lane k of sc[0] holds row k's sc[0..3] as
// bytes, sc[1] its sc[4..7]; the same for m.
inline void UnpackScales8(const uint8_t* g, __m256i sc[2], __m256i m[2]) {
  const __m256i a = Load(g + 32), b = Load(g + 64), c = Load(g + 96);
  const __m256i k3f = _mm256_set1_epi8(0x3f), k0f = _mm256_set1_epi8(0x0f), k30 = _mm256_set1_epi8(0x30);
  sc[0] = _mm256_and_si256(a, k3f);
  m[0] = _mm256_and_si256(b, k3f);
  sc[1] = _mm256_or_si256(_mm256_and_si256(c, k0f), _mm256_and_si256(_mm256_srli_epi32(a, 2), k30));
  m[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(c, 4), k0f), _mm256_and_si256(_mm256_srli_epi32(b, 2), k30));
}

// pshufb masks that spread byte j (0..3) of each 32-bit lane over the lane's two int16 halves: as
// (s, 0) pairs (kPickU, zero-extended) or (0, s) pairs (kPickS, for an arithmetic shift that keeps
// the sign). Loaded from a table: masks built from a loop index cost ~20 scalar and insert
// instructions each when the compiler does not unroll the loop.
struct PickMasks {
  alignas(32) int8_t u[4][32];
  alignas(32) int8_t s[4][32];
};
constexpr PickMasks MakePickMasks() {
  PickMasks m{};
  for (int j = 0; j < 4; ++j)
    for (int b = 0; b < 32; ++b) {
      const int lane_byte = 4 * ((b % 16) / 4) + j;  // pshufb indexes within each 128-bit half
      m.u[j][b] = b % 2 == 0 ? static_cast<int8_t>(lane_byte) : static_cast<int8_t>(-128);
      m.s[j][b] = b % 2 == 1 ? static_cast<int8_t>(lane_byte) : static_cast<int8_t>(-128);
    }
  return m;
}
constexpr PickMasks kPick = MakePickMasks();

// Lane k = (s, s) as int16, s = byte j (0..3) of lane k of v.
inline __m256i PickScale(__m256i v, int j) {
  return _mm256_shuffle_epi8(v, _mm256_load_si256(reinterpret_cast<const __m256i*>(kPick.u[j])));
}

// sum_j m[j] * bs[j] per lane (int32).
inline __m256i MinSums(const __m256i m[2], const int32_t* pairs) {
  const __m256i lo8 = _mm256_set1_epi16(0x00ff);
  __m256i s = _mm256_madd_epi16(_mm256_and_si256(m[0], lo8), _mm256_set1_epi32(pairs[0]));
  s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_srli_epi16(m[0], 8), _mm256_set1_epi32(pairs[1])));
  s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_and_si256(m[1], lo8), _mm256_set1_epi32(pairs[2])));
  return _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_srli_epi16(m[1], 8), _mm256_set1_epi32(pairs[3])));
}

// One group block against one activation block: isum per lane (row).
inline __m256i NibbleSums(const uint8_t* g, const int8_t* yq, const __m256i sc[2]) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256i isum = _mm256_setzero_si256();
  #pragma GCC unroll 8
  for (int c = 0; c < 4; ++c) {
    const uint8_t* v = g + 128 + 256 * c;
    const int8_t* y = yq + 64 * c;
    __m256i plo = _mm256_setzero_si256(), phi = _mm256_setzero_si256();
    #pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const __m256i q = Load(v + 32 * i);
      plo = _mm256_add_epi16(plo, _mm256_maddubs_epi16(_mm256_and_si256(q, m4), Bcast4(y + 4 * i)));
      phi = _mm256_add_epi16(phi, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), Bcast4(y + 32 + 4 * i)));
    }
    // Sub-blocks 2c and 2c + 1: scale bytes (2c) % 4 and (2c + 1) % 4 of sc[c / 2].
    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(plo, PickScale(sc[c / 2], (2 * c) % 4)));
    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(phi, PickScale(sc[c / 2], (2 * c + 1) % 4)));
  }
  return isum;
}

inline void Block8(const uint8_t* g, const BlockQ8_K& y, float dy, const int32_t* pairs, __m256* acc, __m256* macc) {
  __m256i sc[2], m[2];
  UnpackScales8(g, sc, m);
  const __m256i isum = NibbleSums(g, y.qs, sc);
  const __m256i msum = MinSums(m, pairs);
  const __m256 vdy = _mm256_set1_ps(dy);
  const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
  const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 16)));
  *acc = _mm256_fmadd_ps(_mm256_mul_ps(d, vdy), _mm256_cvtepi32_ps(isum), *acc);
  *macc = _mm256_fmadd_ps(_mm256_mul_ps(dmin, vdy), _mm256_cvtepi32_ps(msum), *macc);
}

template <int T>
void Tile8(const uint8_t* group, int64_t nb, const BlockQ8_K* const* y, const ActTables* tabs, float* out,
           size_t out_stride) {
  __m256 acc[T], macc[T];
  for (int t = 0; t < T; ++t) acc[t] = macc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* g = group + b * kGroupBlock;
    __m256i sc[2], m[2];
    UnpackScales8(g, sc, m);
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g)));
    const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 16)));
    // The nibbles of each vector are unpacked once and used for every token.
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i isum[T];
    for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
    #pragma GCC unroll 8
    for (int c = 0; c < 4; ++c) {
      const uint8_t* v = g + 128 + 256 * c;
      __m256i plo[T], phi[T];
      for (int t = 0; t < T; ++t) plo[t] = phi[t] = _mm256_setzero_si256();
      #pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) {
        const __m256i q = Load(v + 32 * i);
        const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        for (int t = 0; t < T; ++t) {
          const int8_t* yq = y[t][b].qs + 64 * c + 4 * i;
          plo[t] = _mm256_add_epi16(plo[t], _mm256_maddubs_epi16(lo, Bcast4(yq)));
          phi[t] = _mm256_add_epi16(phi[t], _mm256_maddubs_epi16(hi, Bcast4(yq + 32)));
        }
      }
      const __m256i s_lo = PickScale(sc[c / 2], (2 * c) % 4), s_hi = PickScale(sc[c / 2], (2 * c + 1) % 4);
      for (int t = 0; t < T; ++t)
        isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(plo[t], s_lo),
                                                             _mm256_madd_epi16(phi[t], s_hi)));
    }
    for (int t = 0; t < T; ++t) {
      const __m256i msum = MinSums(m, tabs[t].pairs[b]);
      const __m256 vdy = _mm256_set1_ps(tabs[t].dy[b]);
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, vdy), _mm256_cvtepi32_ps(isum[t]), acc[t]);
      macc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dmin, vdy), _mm256_cvtepi32_ps(msum), macc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * out_stride, _mm256_sub_ps(acc[t], macc[t]));
}

}  // namespace

void VecDotRowsQ4_Kx8Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const auto* base = static_cast<const uint8_t*>(w);
  const int64_t nb = n / kQK_K;
  ActTables tabs;
  for (int64_t r = 0; r + 8 <= rows; r += 8) {
    const uint8_t* group = base + r * stride;
    __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += kMaxBlocks) {
      const int64_t len = nb - b0 < kMaxBlocks ? nb - b0 : kMaxBlocks;
      if (r == 0 || nb > kMaxBlocks) FillTables(y + b0, len, &tabs);
      for (int64_t b = 0; b < len; ++b) {
        const uint8_t* g = group + (b0 + b) * kGroupBlock;
        for (size_t off = 0; off < kGroupBlock; off += 64)
          _mm_prefetch(reinterpret_cast<const char*>(g) + kPrefetchAhead + off, _MM_HINT_T0);
        Block8(g, y[b0 + b], tabs.dy[b], tabs.pairs[b], &acc, &macc);
      }
    }
    _mm256_storeu_ps(out + r, _mm256_sub_ps(acc, macc));
  }
}

void VecDotTileQ4_Kx8Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                          const void* act, size_t a_stride, int64_t n_tok) {
  const auto* base = static_cast<const uint8_t*>(w);
  const auto* a = static_cast<const uint8_t*>(act);
  const int64_t nb = n / kQK_K;
  if (nb > kMaxBlocks) {
    for (int64_t t = 0; t < n_tok; ++t) VecDotRowsQ4_Kx8Avx2(n, out + t * out_stride, w, w_stride, rows, a + t * a_stride);
    return;
  }
  ActTables tabs[kTileTokens];
  for (int64_t t0 = 0; t0 < n_tok; t0 += kTileTokens) {
    const int64_t nt = n_tok - t0 < kTileTokens ? n_tok - t0 : kTileTokens;
    const BlockQ8_K* y[kTileTokens];
    for (int64_t t = 0; t < nt; ++t) {
      y[t] = reinterpret_cast<const BlockQ8_K*>(a + (t0 + t) * a_stride);
      FillTables(y[t], nb, &tabs[t]);
    }
    float* ot = out + t0 * out_stride;
    for (int64_t r = 0; r + 8 <= rows; r += 8) {
      const uint8_t* group = base + r * w_stride;
      switch (nt) {
        case 4: Tile8<4>(group, nb, y, tabs, ot + r, out_stride); break;
        case 3: Tile8<3>(group, nb, y, tabs, ot + r, out_stride); break;
        case 2: Tile8<2>(group, nb, y, tabs, ot + r, out_stride); break;
        default: Tile8<1>(group, nb, y, tabs, ot + r, out_stride); break;
      }
    }
  }
}

// ---- Q6_Kx8 ------------------------------------------------------------------------------------
//
// One row per 32-bit lane again. For each 4-byte step i of a half h, one ql0, ql1 and qh vector give
// the four 6-bit quant vectors of elements 128h + 32s + 4i.. (s = 0..3, as in kquant_avx2.cpp's
// Q6KBlock); maddubs against 4 broadcast activation bytes, two steps summed in int16 (2 x 2 x 63 x
// 128 = 32256 fits), widened by one madd with the sub-block's signed scale. The -32 offset is
// applied once per block as 32 sum_j sc[j] bsums[j] (8 madds of scale pairs against bsum pairs).

namespace {

constexpr size_t kGroupBlock6 = 8 * sizeof(BlockQ6_K);  // 1680: ql 1024, qh 512, scales 128, d 16

// Lane k = (s, s) as int16, s = signed byte j (0..3) of lane k of v.
inline __m256i PickScaleSigned(__m256i v, int j) {
  return _mm256_srai_epi16(_mm256_shuffle_epi8(v, _mm256_load_si256(reinterpret_cast<const __m256i*>(kPick.s[j]))), 8);
}

// Per activation block: dy and the 16-element sums as int16 pairs (bs[4v], bs[4v + 2]) and
// (bs[4v + 1], bs[4v + 3]) for v = 0..3.
struct ActTables6 {
  float dy[kMaxBlocks];
  int32_t pairs[kMaxBlocks][8];
};

void FillTables6(const BlockQ8_K* y, int64_t nb, ActTables6* t) {
  auto pair = [](int16_t lo, int16_t hi) {
    return static_cast<int32_t>(static_cast<uint16_t>(lo) | (static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16));
  };
  for (int64_t b = 0; b < nb; ++b) {
    t->dy[b] = y[b].d;
    for (int v = 0; v < 4; ++v) {
      t->pairs[b][2 * v] = pair(y[b].bsums[4 * v], y[b].bsums[4 * v + 2]);
      t->pairs[b][2 * v + 1] = pair(y[b].bsums[4 * v + 1], y[b].bsums[4 * v + 3]);
    }
  }
}

// sum_j sc[j] * bsums[j] per lane.
inline __m256i ScaleBsums(const __m256i sc[4], const int32_t* pairs) {
  __m256i o = _mm256_setzero_si256();
  for (int v = 0; v < 4; ++v) {
    const __m256i even = _mm256_srai_epi16(_mm256_slli_epi16(sc[v], 8), 8), odd = _mm256_srai_epi16(sc[v], 8);
    o = _mm256_add_epi32(o, _mm256_madd_epi16(even, _mm256_set1_epi32(pairs[2 * v])));
    o = _mm256_add_epi32(o, _mm256_madd_epi16(odd, _mm256_set1_epi32(pairs[2 * v + 1])));
  }
  return o;
}

// The four quant vectors of step i of half h (elements 128h + 32s + 4i..4i+3 of each row).
inline void Quants6(const uint8_t* g, int h, int i, __m256i q[4]) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i ql0 = Load(g + 32 * (16 * h + i)), ql1 = Load(g + 32 * (16 * h + 8 + i));
  const __m256i qh = Load(g + 1024 + 32 * (8 * h + i));
  q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4));
  q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0c)), 2));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                         _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(static_cast<char>(0xc0))), 2));
}

// sum of sc[j] * q * qy over the block, per lane (without the -32 offset).
template <int T>
inline void QuantSums6(const uint8_t* g, const int8_t* const* yq, const __m256i sc[4], __m256i* isum) {
  #pragma GCC unroll 8
  for (int h = 0; h < 2; ++h)
    #pragma GCC unroll 8
    for (int half = 0; half < 2; ++half) {
      // Sub-block 8h + 2s + half: byte (2s + half) % 4 of scale vector 2h + (2s + half) / 4.
      __m256i scv[4];
      for (int s = 0; s < 4; ++s) scv[s] = PickScaleSigned(sc[(8 * h + 2 * s + half) / 4], (2 * s + half) % 4);
      #pragma GCC unroll 8
      for (int u = 0; u < 2; ++u) {
        __m256i p[T][4];
        #pragma GCC unroll 8
        for (int i2 = 0; i2 < 2; ++i2) {
          const int i = 4 * half + 2 * u + i2;
          __m256i q[4];
          Quants6(g, h, i, q);
          for (int t = 0; t < T; ++t)
            for (int s = 0; s < 4; ++s) {
              const __m256i m = _mm256_maddubs_epi16(q[s], Bcast4(yq[t] + 128 * h + 32 * s + 4 * i));
              p[t][s] = i2 == 0 ? m : _mm256_add_epi16(p[t][s], m);
            }
        }
        for (int s = 0; s < 4; ++s)
          for (int t = 0; t < T; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p[t][s], scv[s]));
      }
    }
}

template <int T>
void Tile8Q6(const uint8_t* group, int64_t nb, const BlockQ8_K* const* y, const ActTables6* tabs, float* out,
             size_t out_stride) {
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* g = group + b * kGroupBlock6;
    if (T == 1)
      for (size_t off = 0; off < kGroupBlock6; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(g) + 2 * kGroupBlock6 + off, _MM_HINT_T0);
    __m256i sc[4];
    for (int v = 0; v < 4; ++v) sc[v] = Load(g + 1536 + 32 * v);
    const int8_t* yq[T];
    __m256i isum[T];
    for (int t = 0; t < T; ++t) {
      yq[t] = y[t][b].qs;
      isum[t] = _mm256_setzero_si256();
    }
    QuantSums6<T>(g, yq, sc, isum);
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 1664)));
    for (int t = 0; t < T; ++t) {
      const __m256i s = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(ScaleBsums(sc, tabs[t].pairs[b]), 5));
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(tabs[t].dy[b])), _mm256_cvtepi32_ps(s), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
}

}  // namespace

void VecDotRowsQ6_Kx8Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const auto* y = static_cast<const BlockQ8_K*>(a);
  const auto* base = static_cast<const uint8_t*>(w);
  const int64_t nb = n / kQK_K;
  ActTables6 tabs;
  for (int64_t b0 = 0; b0 < nb; b0 += kMaxBlocks) {
    const int64_t len = nb - b0 < kMaxBlocks ? nb - b0 : kMaxBlocks;
    FillTables6(y + b0, len, &tabs);
    const BlockQ8_K* yy[1] = {y + b0};
    for (int64_t r = 0; r + 8 <= rows; r += 8) {
      float part[8];
      Tile8Q6<1>(base + r * stride + b0 * kGroupBlock6, len, yy, &tabs, part, 0);
      for (int k = 0; k < 8; ++k) out[r + k] = b0 == 0 ? part[k] : out[r + k] + part[k];
    }
  }
}

void VecDotTileQ6_Kx8Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                          const void* act, size_t a_stride, int64_t n_tok) {
  const auto* base = static_cast<const uint8_t*>(w);
  const auto* a = static_cast<const uint8_t*>(act);
  const int64_t nb = n / kQK_K;
  if (nb > kMaxBlocks) {
    for (int64_t t = 0; t < n_tok; ++t) VecDotRowsQ6_Kx8Avx2(n, out + t * out_stride, w, w_stride, rows, a + t * a_stride);
    return;
  }
  constexpr int64_t kTok6 = 2;  // 2 tokens x 4 sub-block sums already fill the registers
  ActTables6 tabs[kTok6];
  for (int64_t t0 = 0; t0 < n_tok; t0 += kTok6) {
    const int64_t nt = n_tok - t0 < kTok6 ? n_tok - t0 : kTok6;
    const BlockQ8_K* y[kTok6];
    for (int64_t t = 0; t < nt; ++t) {
      y[t] = reinterpret_cast<const BlockQ8_K*>(a + (t0 + t) * a_stride);
      FillTables6(y[t], nb, &tabs[t]);
    }
    float* ot = out + t0 * out_stride;
    for (int64_t r = 0; r + 8 <= rows; r += 8) {
      if (nt == 2)
        Tile8Q6<2>(base + r * w_stride, nb, y, tabs, ot + r, out_stride);
      else
        Tile8Q6<1>(base + r * w_stride, nb, y, tabs, ot + r, out_stride);
    }
  }
}

}  // namespace origami::cpu::x86
