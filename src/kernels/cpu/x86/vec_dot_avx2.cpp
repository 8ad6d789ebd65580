// AVX2 + FMA + F16C kernels: float weights (F32, F16, BF16) against F32 activations, Q4_0 and Q8_0
// against Q8_0, and the Q8_0 / Q8_K activation quantizers. Intrinsics and plain loops only (no
// std templates, no inline functions from shared headers: see x86_kernels.h).
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

inline float H2F(uint16_t h) { return _cvtsh_ss(h); }

using VecDotFnPtr = void (*)(int64_t, float*, const void*, const void*);

inline float Bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline __m256 LoadF16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 LoadBf16(const uint16_t* p) {
  const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

// 32 nibbles of a Q4 block as bytes 0..15: element j (low nibble of byte j) in byte j, element
// j + 16 (high nibble) in byte j + 16.
inline __m256i UnpackNibbles(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(raw), _mm_srli_epi16(raw, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Sum of products of 32 unsigned bytes (<= 128 each) with 32 signed bytes, as 8 int32 lanes.
inline __m256i DotU8I8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
// Same for two signed byte vectors: |w| * (a with w's sign). -128 in w gives |w| = 128, exact.
inline __m256i DotI8I8(__m256i w, __m256i a) {
  return DotU8I8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
}

// Software prefetch for a group of g rows read side by side. Rows of a matrix are short (1-10 KB),
// so a group ends before the hardware prefetcher has learnt its g streams, and the next group
// would start cold. Each row k is prefetched `off` bytes ahead of its read position; once that
// runs past the row's end it continues into row k + g, the same row of the next group.
inline void PrefetchGroup(const char* row0, size_t stride, int g, size_t off) {
  const char* p = row0 + off + (off >= stride ? static_cast<size_t>(g - 1) * stride : 0);
  for (int k = 0; k < g; ++k) _mm_prefetch(p + k * stride, _MM_HINT_T0);
}
constexpr size_t kPrefetchAhead = 768;  // bytes ahead of the read position in each row

}  // namespace

// ---- float weights -----------------------------------------------------------------------------
// Four rows share each activation load; 2 x 8 lanes per row keep the FMA latency covered.

#define ORIGAMI_FLOAT_KERNELS(NAME, WT, LOAD, SCALAR)                                                \
  void VecDot##NAME##Avx2(int64_t n, float* out, const void* w, const void* a) {                    \
    const WT* x = static_cast<const WT*>(w);                                                         \
    const float* y = static_cast<const float*>(a);                                                   \
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(),            \
           s3 = _mm256_setzero_ps();                                                                 \
    int64_t i = 0;                                                                                   \
    for (; i + 32 <= n; i += 32) {                                                                   \
      s0 = _mm256_fmadd_ps(LOAD(x + i), _mm256_loadu_ps(y + i), s0);                                 \
      s1 = _mm256_fmadd_ps(LOAD(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);                         \
      s2 = _mm256_fmadd_ps(LOAD(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);                       \
      s3 = _mm256_fmadd_ps(LOAD(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);                       \
    }                                                                                                \
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(LOAD(x + i), _mm256_loadu_ps(y + i), s0);        \
    float s = Hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));                     \
    for (; i < n; ++i) s += SCALAR(x[i]) * y[i];                                                     \
    *out = s;                                                                                        \
  }                                                                                                  \
  void VecDotRows##NAME##Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows,     \
                              const void* a) {                                                       \
    const float* y = static_cast<const float*>(a);                                                   \
    const char* base = static_cast<const char*>(w);                                                  \
    int64_t r = 0;                                                                                   \
    for (; r + 4 <= rows; r += 4) {                                                                  \
      const WT* x0 = reinterpret_cast<const WT*>(base + r * stride);                                 \
      const WT* x1 = reinterpret_cast<const WT*>(base + (r + 1) * stride);                           \
      const WT* x2 = reinterpret_cast<const WT*>(base + (r + 2) * stride);                           \
      const WT* x3 = reinterpret_cast<const WT*>(base + (r + 3) * stride);                           \
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0; \
      int64_t i = 0;                                                                                 \
      for (; i + 16 <= n; i += 16) {                                                                 \
        PrefetchGroup(reinterpret_cast<const char*>(x0), stride, 4, i * sizeof(WT) + kPrefetchAhead);     \
        const __m256 ya = _mm256_loadu_ps(y + i), yb = _mm256_loadu_ps(y + i + 8);                   \
        a0 = _mm256_fmadd_ps(LOAD(x0 + i), ya, a0);                                                  \
        a1 = _mm256_fmadd_ps(LOAD(x1 + i), ya, a1);                                                  \
        a2 = _mm256_fmadd_ps(LOAD(x2 + i), ya, a2);                                                  \
        a3 = _mm256_fmadd_ps(LOAD(x3 + i), ya, a3);                                                  \
        b0 = _mm256_fmadd_ps(LOAD(x0 + i + 8), yb, b0);                                              \
        b1 = _mm256_fmadd_ps(LOAD(x1 + i + 8), yb, b1);                                              \
        b2 = _mm256_fmadd_ps(LOAD(x2 + i + 8), yb, b2);                                              \
        b3 = _mm256_fmadd_ps(LOAD(x3 + i + 8), yb, b3);                                              \
      }                                                                                              \
      for (; i + 8 <= n; i += 8) {                                                                   \
        const __m256 ya = _mm256_loadu_ps(y + i);                                                    \
        a0 = _mm256_fmadd_ps(LOAD(x0 + i), ya, a0);                                                  \
        a1 = _mm256_fmadd_ps(LOAD(x1 + i), ya, a1);                                                  \
        a2 = _mm256_fmadd_ps(LOAD(x2 + i), ya, a2);                                                  \
        a3 = _mm256_fmadd_ps(LOAD(x3 + i), ya, a3);                                                  \
      }                                                                                              \
      float s0 = Hsum(_mm256_add_ps(a0, b0)), s1 = Hsum(_mm256_add_ps(a1, b1));                      \
      float s2 = Hsum(_mm256_add_ps(a2, b2)), s3 = Hsum(_mm256_add_ps(a3, b3));                      \
      for (; i < n; ++i) {                                                                           \
        s0 += SCALAR(x0[i]) * y[i];                                                                  \
        s1 += SCALAR(x1[i]) * y[i];                                                                  \
        s2 += SCALAR(x2[i]) * y[i];                                                                  \
        s3 += SCALAR(x3[i]) * y[i];                                                                  \
      }                                                                                              \
      out[r] = s0;                                                                                   \
      out[r + 1] = s1;                                                                               \
      out[r + 2] = s2;                                                                               \
      out[r + 3] = s3;                                                                               \
    }                                                                                                \
    for (; r < rows; ++r) VecDot##NAME##Avx2(n, out + r, base + r * stride, a);                      \
  }

#define ORIGAMI_IDENT(v) (v)
ORIGAMI_FLOAT_KERNELS(F32, float, _mm256_loadu_ps, ORIGAMI_IDENT)
ORIGAMI_FLOAT_KERNELS(F16, uint16_t, LoadF16, H2F)
ORIGAMI_FLOAT_KERNELS(BF16, uint16_t, LoadBf16, Bf16)
#undef ORIGAMI_IDENT
#undef ORIGAMI_FLOAT_KERNELS

// ---- Q4_0 x Q8_0 -------------------------------------------------------------------------------
// sum((q - 8) * qy) = sum(q * qy) - 8 * sum(qy): the nibbles stay unsigned for maddubs, and the
// correction 8 * sum(qy) is computed once per activation block and shared by every row.

void VecDotQ4_0Avx2(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / kQK4_0;
  const __m256i eight = _mm256_set1_epi8(8);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i ya = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
    const __m256i yb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b + 1].qs));
    const __m256i sa = _mm256_sub_epi32(DotU8I8(UnpackNibbles(x[b].qs), ya), DotU8I8(eight, ya));
    const __m256i sb = _mm256_sub_epi32(DotU8I8(UnpackNibbles(x[b + 1].qs), yb), DotU8I8(eight, yb));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x[b].d) * H2F(y[b].d)), _mm256_cvtepi32_ps(sa), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x[b + 1].d) * H2F(y[b + 1].d)), _mm256_cvtepi32_ps(sb), acc1);
  }
  for (; b < nb; ++b) {
    const __m256i ya = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
    const __m256i sa = _mm256_sub_epi32(DotU8I8(UnpackNibbles(x[b].qs), ya), DotU8I8(eight, ya));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x[b].d) * H2F(y[b].d)), _mm256_cvtepi32_ps(sa), acc0);
  }
  *out = Hsum(_mm256_add_ps(acc0, acc1));
}

void VecDotRows4Q4_0Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const char* base = static_cast<const char*>(w);
  const int64_t nb = n / kQK4_0;
  const __m256i eight = _mm256_set1_epi8(8);
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const auto* x0 = reinterpret_cast<const BlockQ4_0*>(base + r * stride);
    const auto* x1 = reinterpret_cast<const BlockQ4_0*>(base + (r + 1) * stride);
    const auto* x2 = reinterpret_cast<const BlockQ4_0*>(base + (r + 2) * stride);
    const auto* x3 = reinterpret_cast<const BlockQ4_0*>(base + (r + 3) * stride);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t b = 0; b < nb; ++b) {
      _mm_prefetch(reinterpret_cast<const char*>(x0 + b) + 512, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x1 + b) + 512, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x2 + b) + 512, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x3 + b) + 512, _MM_HINT_T0);
      const __m256i ya = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
      const __m256i corr = DotU8I8(eight, ya);
      const float dy = H2F(y[b].d);
      const __m256i s0 = _mm256_sub_epi32(DotU8I8(UnpackNibbles(x0[b].qs), ya), corr);
      const __m256i s1 = _mm256_sub_epi32(DotU8I8(UnpackNibbles(x1[b].qs), ya), corr);
      const __m256i s2 = _mm256_sub_epi32(DotU8I8(UnpackNibbles(x2[b].qs), ya), corr);
      const __m256i s3 = _mm256_sub_epi32(DotU8I8(UnpackNibbles(x3[b].qs), ya), corr);
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x0[b].d) * dy), _mm256_cvtepi32_ps(s0), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x1[b].d) * dy), _mm256_cvtepi32_ps(s1), acc1);
      acc2 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x2[b].d) * dy), _mm256_cvtepi32_ps(s2), acc2);
      acc3 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x3[b].d) * dy), _mm256_cvtepi32_ps(s3), acc3);
    }
    out[r] = Hsum(acc0);
    out[r + 1] = Hsum(acc1);
    out[r + 2] = Hsum(acc2);
    out[r + 3] = Hsum(acc3);
  }
  for (; r < rows; ++r) VecDotQ4_0Avx2(n, out + r, base + r * stride, a);
}

// ---- Q8_0 x Q8_0 -------------------------------------------------------------------------------

// Eight rows at a time, one row per 32-bit lane: the 16 quant bytes of each row's block are
// transposed so that lane k holds 4 bytes of row k, and each 4-byte group of activations is
// broadcast to all lanes. One maddubs then serves 8 rows, the int16 sums of a block need no
// horizontal adds (|sum| <= 8 x 2 x 15 x 128 = 30720 fits int16), and the block ends with one
// madd, one convert and one FMA against the 8 rows' scales. The 8 * sum(qy) correction is
// computed once per call for each activation block.
namespace {

constexpr int64_t kMaxStackBlocks = 4096;  // activation blocks whose sums fit the stack table

inline __m256i Bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Dword j of 8 rows' 16-byte blocks: v[j] lane k = bytes 4j..4j+3 of row k.
inline void Transpose8x4(const uint8_t* const* q, size_t off, __m256i* v) {
  const __m256i a0 = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(q[4] + off),
                                         reinterpret_cast<const __m128i*>(q[0] + off));
  const __m256i a1 = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(q[5] + off),
                                         reinterpret_cast<const __m128i*>(q[1] + off));
  const __m256i a2 = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(q[6] + off),
                                         reinterpret_cast<const __m128i*>(q[2] + off));
  const __m256i a3 = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(q[7] + off),
                                         reinterpret_cast<const __m128i*>(q[3] + off));
  const __m256i t0 = _mm256_unpacklo_epi32(a0, a1), t1 = _mm256_unpackhi_epi32(a0, a1);
  const __m256i t2 = _mm256_unpacklo_epi32(a2, a3), t3 = _mm256_unpackhi_epi32(a2, a3);
  v[0] = _mm256_unpacklo_epi64(t0, t2);
  v[1] = _mm256_unpackhi_epi64(t0, t2);
  v[2] = _mm256_unpacklo_epi64(t1, t3);
  v[3] = _mm256_unpackhi_epi64(t1, t3);
}

// The fp16 scales at byte offset off of 8 rows, as 8 floats.
inline __m256 Scales8(const uint8_t* const* q, size_t off) {
  uint16_t h[8];
  for (int k = 0; k < 8; ++k) std::memcpy(&h[k], q[k] + off, 2);
  // Inserted lane by lane: eight 2-byte stores read back as one 16-byte load would stall on
  // store-to-load forwarding.
  __m128i v = _mm_cvtsi32_si128(h[0]);
  v = _mm_insert_epi16(v, h[1], 1);
  v = _mm_insert_epi16(v, h[2], 2);
  v = _mm_insert_epi16(v, h[3], 3);
  v = _mm_insert_epi16(v, h[4], 4);
  v = _mm_insert_epi16(v, h[5], 5);
  v = _mm_insert_epi16(v, h[6], 6);
  v = _mm_insert_epi16(v, h[7], 7);
  return _mm256_cvtph_ps(v);
}

inline __m256 Q4_0Group8(const uint8_t* const* q, size_t off, const BlockQ8_0& y, int32_t corr, float dy,
                         __m256 acc) {
  __m256i v[4];
  Transpose8x4(q, off + 2, v);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256i p = _mm256_setzero_si256();
  for (int j = 0; j < 4; ++j) {
    const __m256i lo = _mm256_and_si256(v[j], m4), hi = _mm256_and_si256(_mm256_srli_epi16(v[j], 4), m4);
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(lo, Bcast4(y.qs + 4 * j)));
    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi, Bcast4(y.qs + 16 + 4 * j)));
  }
  const __m256i s = _mm256_sub_epi32(_mm256_madd_epi16(p, _mm256_set1_epi16(1)), _mm256_set1_epi32(corr));
  return _mm256_fmadd_ps(_mm256_mul_ps(Scales8(q, off), _mm256_set1_ps(dy)), _mm256_cvtepi32_ps(s), acc);
}

}  // namespace

void Q4_0ActTablesAvx2(const void* act, int64_t nb, int32_t* corr, float* dy) {
  const auto* y = static_cast<const BlockQ8_0*>(act);
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i s = DotU8I8(_mm256_set1_epi8(8), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs)));
    const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    const __m128i h2 = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    corr[b] = _mm_cvtsi128_si32(_mm_add_epi32(h2, _mm_shuffle_epi32(h2, 0xb1)));
    dy[b] = H2F(y[b].d);
  }
}

void VecDotRowsQ4_0Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const char* base = static_cast<const char*>(w);
  const int64_t nb = n / kQK4_0;
  int64_t r = 0;
  if (rows >= 8 && nb <= kMaxStackBlocks) {
    int32_t corr[kMaxStackBlocks];
    float dy[kMaxStackBlocks];
    Q4_0ActTablesAvx2(y, nb, corr, dy);
    for (; r + 8 <= rows; r += 8) {
      const char* row0 = base + r * stride;
      const uint8_t* q[8];
      for (int k = 0; k < 8; ++k) q[k] = reinterpret_cast<const uint8_t*>(row0 + k * stride);
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        PrefetchGroup(row0, stride, 8, static_cast<size_t>(b) * sizeof(BlockQ4_0) + kPrefetchAhead);
        const size_t off = static_cast<size_t>(b) * sizeof(BlockQ4_0);
        acc0 = Q4_0Group8(q, off, y[b], corr[b], dy[b], acc0);
        acc1 = Q4_0Group8(q, off + sizeof(BlockQ4_0), y[b + 1], corr[b + 1], dy[b + 1], acc1);
      }
      if (b < nb) acc0 = Q4_0Group8(q, static_cast<size_t>(b) * sizeof(BlockQ4_0), y[b], corr[b], dy[b], acc0);
      _mm256_storeu_ps(out + r, _mm256_add_ps(acc0, acc1));
    }
  }
  VecDotRows4Q4_0Avx2(n, out + r, base + r * stride, stride, rows - r, a);
}

void VecDotQ8_0Avx2(int64_t n, float* out, const void* w, const void* a) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const int64_t nb = n / kQK8_0;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i sa = DotI8I8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs)),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs)));
    const __m256i sb = DotI8I8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b + 1].qs)),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b + 1].qs)));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x[b].d) * H2F(y[b].d)), _mm256_cvtepi32_ps(sa), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x[b + 1].d) * H2F(y[b + 1].d)), _mm256_cvtepi32_ps(sb), acc1);
  }
  for (; b < nb; ++b) {
    const __m256i sa = DotI8I8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs)),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs)));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x[b].d) * H2F(y[b].d)), _mm256_cvtepi32_ps(sa), acc0);
  }
  *out = Hsum(_mm256_add_ps(acc0, acc1));
}

void VecDotRowsQ8_0Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const char* base = static_cast<const char*>(w);
  const int64_t nb = n / kQK8_0;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const auto* x0 = reinterpret_cast<const BlockQ8_0*>(base + r * stride);
    const auto* x1 = reinterpret_cast<const BlockQ8_0*>(base + (r + 1) * stride);
    const auto* x2 = reinterpret_cast<const BlockQ8_0*>(base + (r + 2) * stride);
    const auto* x3 = reinterpret_cast<const BlockQ8_0*>(base + (r + 3) * stride);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int64_t b = 0; b < nb; ++b) {
      PrefetchGroup(reinterpret_cast<const char*>(x0), stride, 4, b * sizeof(BlockQ8_0) + kPrefetchAhead);
      const __m256i ya = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
      const float dy = H2F(y[b].d);
      const __m256i s0 = DotI8I8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x0[b].qs)), ya);
      const __m256i s1 = DotI8I8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x1[b].qs)), ya);
      const __m256i s2 = DotI8I8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x2[b].qs)), ya);
      const __m256i s3 = DotI8I8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x3[b].qs)), ya);
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x0[b].d) * dy), _mm256_cvtepi32_ps(s0), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x1[b].d) * dy), _mm256_cvtepi32_ps(s1), acc1);
      acc2 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x2[b].d) * dy), _mm256_cvtepi32_ps(s2), acc2);
      acc3 = _mm256_fmadd_ps(_mm256_set1_ps(H2F(x3[b].d) * dy), _mm256_cvtepi32_ps(s3), acc3);
    }
    out[r] = Hsum(acc0);
    out[r + 1] = Hsum(acc1);
    out[r + 2] = Hsum(acc2);
    out[r + 3] = Hsum(acc3);
  }
  for (; r < rows; ++r) VecDotQ8_0Avx2(n, out + r, base + r * stride, a);
}

// ---- prefill tiles -----------------------------------------------------------------------------
// Each block of weights is loaded and unpacked once for a tile of tokens: the token loop is inside
// the block loop, so a prefill matmul does the unpacking (F16/BF16 conversion, Q4_0 transpose and
// nibble split, scale conversion) once per T tokens instead of once per token. Tokens go in chunks
// of T over the whole row tile (whose weights the caller keeps in L2), so the chunk's activations
// stay in L1 across row groups.

namespace {

// Float weights: 2 rows x T tokens of 8-lane accumulators. T <= 5 keeps the 10 sums, 2 weight
// vectors and one activation vector within the 16 registers (a spilled accumulator would put a
// store-to-load round trip into the FMA chain); 5 FMAs per converted weight vector keep the
// F16/BF16 conversion off the critical port.
constexpr int kFloatTileRows = 2, kFloatTileTokens = 5;
constexpr int64_t kFloatTileCols = 1024;  // a multiple of 8: only the last slice has a scalar tail

template <int T, typename WT, __m256 (*LoadW)(const WT*), float (*Scalar)(WT)>
void FloatTile2(int64_t i0, int64_t n, bool add, float* out, size_t out_stride, const char* w, size_t w_stride,
                const float* a, size_t a_floats) {
  const WT* x0 = reinterpret_cast<const WT*>(w);
  const WT* x1 = reinterpret_cast<const WT*>(w + w_stride);
  __m256 acc0[T], acc1[T];
  for (int t = 0; t < T; ++t) acc0[t] = acc1[t] = _mm256_setzero_ps();
  int64_t i = i0;
  for (; i + 8 <= n; i += 8) {
    const __m256 w0 = LoadW(x0 + i), w1 = LoadW(x1 + i);
    for (int t = 0; t < T; ++t) {
      const __m256 av = _mm256_loadu_ps(a + t * a_floats + i);
      acc0[t] = _mm256_fmadd_ps(w0, av, acc0[t]);
      acc1[t] = _mm256_fmadd_ps(w1, av, acc1[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    float s0 = Hsum(acc0[t]), s1 = Hsum(acc1[t]);
    for (int64_t j = i; j < n; ++j) {
      s0 += Scalar(x0[j]) * a[t * a_floats + j];
      s1 += Scalar(x1[j]) * a[t * a_floats + j];
    }
    out[t * out_stride] = add ? out[t * out_stride] + s0 : s0;
    out[t * out_stride + 1] = add ? out[t * out_stride + 1] + s1 : s1;
  }
}

template <typename WT, __m256 (*LoadW)(const WT*), float (*Scalar)(WT), VecDotFnPtr Single>
void FloatTile(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
               const void* act, size_t a_stride, int64_t n_tok) {
  const char* base = static_cast<const char*>(w);
  const auto* a = static_cast<const float*>(act);
  const size_t a_floats = a_stride / sizeof(float);
  for (int64_t t0 = 0; t0 < n_tok; t0 += kFloatTileTokens) {
    const int64_t nt = n_tok - t0 < kFloatTileTokens ? n_tok - t0 : kFloatTileTokens;
    const float* at = a + t0 * a_floats;
    float* ot = out + t0 * out_stride;
    int64_t r = 0;
    // Columns in slices of kFloatTileCols, so the slice of the chunk's activations (5 x 4 KB) stays
    // in L1 while every row pair of the tile passes over it; partial sums add up in out.
    const int64_t full = rows / kFloatTileRows * kFloatTileRows;
    for (int64_t i0 = 0; i0 < n; i0 += kFloatTileCols) {
      const int64_t i1 = n - i0 > kFloatTileCols ? i0 + kFloatTileCols : n;
      for (r = 0; r < full; r += kFloatTileRows) {
        const char* wr = base + r * w_stride;
        float* o = ot + r;
        const bool add = i0 > 0;
        switch (nt) {
          case 5: FloatTile2<5, WT, LoadW, Scalar>(i0, i1, add, o, out_stride, wr, w_stride, at, a_floats); break;
          case 4: FloatTile2<4, WT, LoadW, Scalar>(i0, i1, add, o, out_stride, wr, w_stride, at, a_floats); break;
          case 3: FloatTile2<3, WT, LoadW, Scalar>(i0, i1, add, o, out_stride, wr, w_stride, at, a_floats); break;
          case 2: FloatTile2<2, WT, LoadW, Scalar>(i0, i1, add, o, out_stride, wr, w_stride, at, a_floats); break;
          default: FloatTile2<1, WT, LoadW, Scalar>(i0, i1, add, o, out_stride, wr, w_stride, at, a_floats); break;
        }
      }
    }
    for (r = full; r < rows; ++r)
      for (int64_t t = 0; t < nt; ++t) Single(n, ot + t * out_stride + r, base + r * w_stride, at + t * a_floats);
  }
}

// Float weights, many tokens: packed panels. From kPanelMinTokens tokens on, each strip of 16 (or
// 8) weight rows is converted once per slice of kPanelCols columns into a panel of floats, column by
// column (panel[k * R + j] = W[r0 + j][k0 + k]), and an outer-product micro-kernel runs over it:
// per column k, R / 8 panel vectors and one broadcast activation per token feed R / 8 x T FMAs into
// as many accumulators (16 rows x 6 tokens or 8 rows x 12 tokens: 12 of the 16 registers). That is
// 8 loads per 12 FMAs, all from L1, where the dot-product tile above needs 7 per 10 (5 of them
// 32-byte activation vectors streaming from L2) and a horizontal sum per output; the conversion
// is paid once per slice for a pass of up to kPanelTokens tokens. Each output sums one slice's
// columns in order in one FMA chain, then adds the slices in order.
constexpr int64_t kPanelMinTokens = 8;
constexpr int64_t kPanelCols = 256;     // a 16-row panel is 16 KB, and stays in L1
constexpr int64_t kPanelTokens = 128;   // a pass reads 128 x 1 KB of activations per slice (L2)

// In place: r[c] becomes column c of the 8 x 8 block whose row j was r[j].
inline void Transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    const __m256 *lo = t + 4 * h, *hi = t + 4 * h + 2;
    s[4 * h + 0] = _mm256_shuffle_ps(lo[0], hi[0], 0x44);  // columns 0 and 4
    s[4 * h + 1] = _mm256_shuffle_ps(lo[0], hi[0], 0xee);  // 1 and 5
    s[4 * h + 2] = _mm256_shuffle_ps(lo[1], hi[1], 0x44);  // 2 and 6
    s[4 * h + 3] = _mm256_shuffle_ps(lo[1], hi[1], 0xee);  // 3 and 7
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x31);
  }
}

// Columns [k0, k0 + kc) of R rows (row j at w + j * w_stride) as a panel (32-byte aligned).
template <typename WT, __m256 (*LoadW)(const WT*), float (*Scalar)(WT)>
void PackPanel(const char* w, size_t w_stride, int R, int64_t k0, int64_t kc, float* panel) {
  for (int j0 = 0; j0 < R; j0 += 8) {
    const WT* x[8];
    for (int j = 0; j < 8; ++j) x[j] = reinterpret_cast<const WT*>(w + (j0 + j) * w_stride) + k0;
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) r[j] = LoadW(x[j] + k);
      Transpose8(r);
      for (int c = 0; c < 8; ++c) _mm256_store_ps(panel + (k + c) * R + j0, r[c]);
    }
    for (; k < kc; ++k)
      for (int j = 0; j < 8; ++j) panel[k * R + j0 + j] = Scalar(x[j][k]);
  }
}

// out[t][0..R) (+)= sum over the panel's kc columns of panel[k][.] * a[t][k], for T tokens.
template <int R, int T>
void PanelTile(const float* panel, int64_t kc, const float* a, size_t a_floats, float* out, size_t out_stride,
               bool add) {
  constexpr int V = R / 8;
  // A flat array and fully unrolled loops over it: otherwise GCC keeps the accumulators in memory
  // and stores every one of them back on every column.
  __m256 c[T * V];
  #pragma GCC unroll 16
  for (int i = 0; i < T * V; ++i) c[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m256 wv[V];
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) wv[v] = _mm256_load_ps(panel + k * R + 8 * v);
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const __m256 av = _mm256_broadcast_ss(a + t * a_floats + k);
      #pragma GCC unroll 16
      for (int v = 0; v < V; ++v) c[t * V + v] = _mm256_fmadd_ps(wv[v], av, c[t * V + v]);
    }
  }
  #pragma GCC unroll 16
  for (int t = 0; t < T; ++t)
    #pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      float* o = out + t * out_stride + 8 * v;
      _mm256_storeu_ps(o, add ? _mm256_add_ps(_mm256_loadu_ps(o), c[t * V + v]) : c[t * V + v]);
    }
}

using PanelTileFn = void (*)(const float*, int64_t, const float*, size_t, float*, size_t, bool);
constexpr PanelTileFn kPanelTile16[6] = {PanelTile<16, 1>, PanelTile<16, 2>, PanelTile<16, 3>,
                                         PanelTile<16, 4>, PanelTile<16, 5>, PanelTile<16, 6>};
constexpr PanelTileFn kPanelTile8[12] = {PanelTile<8, 1>, PanelTile<8, 2>,  PanelTile<8, 3>,  PanelTile<8, 4>,
                                         PanelTile<8, 5>, PanelTile<8, 6>,  PanelTile<8, 7>,  PanelTile<8, 8>,
                                         PanelTile<8, 9>, PanelTile<8, 10>, PanelTile<8, 11>, PanelTile<8, 12>};

// The float tile: panels for the rows in whole groups of 8 when there are enough tokens, the
// dot-product tile for the rest.
template <typename WT, __m256 (*LoadW)(const WT*), float (*Scalar)(WT), VecDotFnPtr Single>
void FloatTileAny(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                  const void* act, size_t a_stride, int64_t n_tok) {
  const char* base = static_cast<const char*>(w);
  const int64_t full = n_tok >= kPanelMinTokens ? rows / 8 * 8 : 0;
  if (full > 0) {
    const auto* a = static_cast<const float*>(act);
    const size_t a_floats = a_stride / sizeof(float);
    alignas(32) float panel[16 * kPanelCols];
    for (int64_t t0 = 0; t0 < n_tok; t0 += kPanelTokens) {
      const int64_t t1 = n_tok - t0 > kPanelTokens ? t0 + kPanelTokens : n_tok;
      for (int64_t k0 = 0; k0 < n; k0 += kPanelCols) {
        const int64_t kc = n - k0 > kPanelCols ? kPanelCols : n - k0;
        for (int64_t r0 = 0; r0 < full;) {
          const int R = r0 + 16 <= full ? 16 : 8;
          PackPanel<WT, LoadW, Scalar>(base + r0 * w_stride, w_stride, R, k0, kc, panel);
          const int64_t step = R == 16 ? 6 : 12;
          for (int64_t t = t0; t < t1; t += step) {
            const int64_t nt = t1 - t < step ? t1 - t : step;
            const PanelTileFn fn = R == 16 ? kPanelTile16[nt - 1] : kPanelTile8[nt - 1];
            fn(panel, kc, a + t * a_floats + k0, a_floats, out + t * out_stride + r0, out_stride, k0 > 0);
          }
          r0 += R;
        }
      }
    }
  }
  if (full < rows)
    FloatTile<WT, LoadW, Scalar, Single>(n, out + full, out_stride, base + full * w_stride, w_stride, rows - full,
                                         act, a_stride, n_tok);
}

// Q4_0: 8 rows (one per lane, as VecDotRowsQ4_0Avx2) x T tokens.
template <int T>
void Q4_0Tile8(const uint8_t* const* q, int64_t nb, const BlockQ8_0* const* y, const int32_t* corr,
               const float* dy, int64_t table_stride, float* out, size_t out_stride) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const size_t off = static_cast<size_t>(b) * sizeof(BlockQ4_0);
    __m256i v[4];
    Transpose8x4(q, off + 2, v);
    __m256i p[T];
    for (int t = 0; t < T; ++t) p[t] = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      const __m256i lo = _mm256_and_si256(v[j], m4), hi = _mm256_and_si256(_mm256_srli_epi16(v[j], 4), m4);
      for (int t = 0; t < T; ++t) {
        p[t] = _mm256_add_epi16(p[t], _mm256_maddubs_epi16(lo, Bcast4(y[t][b].qs + 4 * j)));
        p[t] = _mm256_add_epi16(p[t], _mm256_maddubs_epi16(hi, Bcast4(y[t][b].qs + 16 + 4 * j)));
      }
    }
    const __m256 dx = Scales8(q, off);
    for (int t = 0; t < T; ++t) {
      const __m256i s = _mm256_sub_epi32(_mm256_madd_epi16(p[t], _mm256_set1_epi16(1)),
                                         _mm256_set1_epi32(corr[t * table_stride + b]));
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dx, _mm256_set1_ps(dy[t * table_stride + b])), _mm256_cvtepi32_ps(s),
                               acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * out_stride, acc[t]);
}

constexpr int64_t kTileTokens = 4;
constexpr int64_t kMaxTileBlocks = 1024;  // per-token tables on the stack: n <= 32768

}  // namespace

void VecDotTileF16Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                       const void* a, size_t a_stride, int64_t n_tok) {
  FloatTileAny<uint16_t, LoadF16, H2F, VecDotF16Avx2>(n, out, out_stride, w, w_stride, rows, a, a_stride, n_tok);
}

void VecDotTileBF16Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                        const void* a, size_t a_stride, int64_t n_tok) {
  FloatTileAny<uint16_t, LoadBf16, Bf16, VecDotBF16Avx2>(n, out, out_stride, w, w_stride, rows, a, a_stride, n_tok);
}

void VecDotTileQ4_0Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                        const void* act, size_t a_stride, int64_t n_tok) {
  const char* base = static_cast<const char*>(w);
  const auto* a = static_cast<const char*>(act);
  const int64_t nb = n / kQK4_0;
  if (nb > kMaxTileBlocks) {
    for (int64_t t = 0; t < n_tok; ++t) VecDotRowsQ4_0Avx2(n, out + t * out_stride, w, w_stride, rows, a + t * a_stride);
    return;
  }
  int32_t corr[kTileTokens * kMaxTileBlocks];
  float dy[kTileTokens * kMaxTileBlocks];
  for (int64_t t0 = 0; t0 < n_tok; t0 += kTileTokens) {
    const int64_t nt = n_tok - t0 < kTileTokens ? n_tok - t0 : kTileTokens;
    const BlockQ8_0* y[kTileTokens];
    for (int64_t t = 0; t < nt; ++t) {
      y[t] = reinterpret_cast<const BlockQ8_0*>(a + (t0 + t) * a_stride);
      Q4_0ActTablesAvx2(y[t], nb, corr + t * nb, dy + t * nb);
    }
    float* ot = out + t0 * out_stride;
    int64_t r = 0;
    for (; r + 8 <= rows; r += 8) {
      const uint8_t* q[8];
      for (int k = 0; k < 8; ++k) q[k] = reinterpret_cast<const uint8_t*>(base + (r + k) * w_stride);
      switch (nt) {
        case 4: Q4_0Tile8<4>(q, nb, y, corr, dy, nb, ot + r, out_stride); break;
        case 3: Q4_0Tile8<3>(q, nb, y, corr, dy, nb, ot + r, out_stride); break;
        case 2: Q4_0Tile8<2>(q, nb, y, corr, dy, nb, ot + r, out_stride); break;
        default: Q4_0Tile8<1>(q, nb, y, corr, dy, nb, ot + r, out_stride); break;
      }
    }
    if (r < rows)
      for (int64_t t = 0; t < nt; ++t)
        VecDotRows4Q4_0Avx2(n, ot + t * out_stride + r, base + r * w_stride, w_stride, rows - r, y[t]);
  }
}

// ---- activation quantizers (bit-exact with ref::QuantizeActQ8_0 / Q8_K) ------------------------

namespace {

// All-ones in each lane that is NaN or +-Inf (exponent bits all set).
inline __m256i NonFinite(__m256 v) {
  const __m256i bits = _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7fffffff));
  return _mm256_cmpgt_epi32(bits, _mm256_set1_epi32(0x7f7fffff));
}
inline bool Any(__m256i m) { return !_mm256_testz_si256(m, m); }
inline __m256 Abs(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
inline float HMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
// Round half away from zero, as std::lround: truncate, then add +-1 where |fraction| >= 0.5.
inline __m256i RoundAway(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = Abs(_mm256_sub_ps(v, t));
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f)));
  const __m256 adj = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
  return _mm256_cvttps_epi32(_mm256_add_ps(t, adj));
}
// Packs 4 x 8 int32 (each in [-128, 127]) into 32 int8 in order.
inline __m256i PackI32ToI8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace

void QuantizeQ8_0Avx2(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK8_0; ++i, src += kQK8_0) {
    const __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8);
    const __m256 v2 = _mm256_loadu_ps(src + 16), v3 = _mm256_loadu_ps(src + 24);
    if (Any(_mm256_or_si256(_mm256_or_si256(NonFinite(v0), NonFinite(v1)),
                            _mm256_or_si256(NonFinite(v2), NonFinite(v3))))) {
      std::memset(&b[i], 0, sizeof(BlockQ8_0));
      b[i].d = 0x7e00;  // NaN: the block poisons every dot product, as the reference rule says
      continue;
    }
    const float amax = HMax(_mm256_max_ps(_mm256_max_ps(Abs(v0), Abs(v1)), _mm256_max_ps(Abs(v2), Abs(v3))));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i q = PackI32ToI8(RoundAway(_mm256_mul_ps(v0, vid)), RoundAway(_mm256_mul_ps(v1, vid)),
                                  RoundAway(_mm256_mul_ps(v2, vid)), RoundAway(_mm256_mul_ps(v3, vid)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs), q);
  }
}

void QuantizeQ8_KAvx2(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    __m256 vmax = _mm256_setzero_ps();
    __m256i bad = _mm256_setzero_si256();
    for (int j = 0; j < kQK_K; j += 8) {
      const __m256 v = Abs(_mm256_loadu_ps(src + j));
      vmax = _mm256_max_ps(vmax, v);
      bad = _mm256_or_si256(bad, NonFinite(v));
    }
    if (Any(bad)) {
      std::memset(&b[i], 0, sizeof(BlockQ8_K));
      const uint32_t nan_bits = 0x7fc00000u;
      std::memcpy(&b[i].d, &nan_bits, 4);
      continue;
    }
    const float amax = HMax(vmax);
    if (amax == 0) {
      std::memset(&b[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    // The reference keeps the sign of the first element of largest magnitude.
    float max = amax;
    for (int j = 0; j < kQK_K; j += 8) {
      const int m = _mm256_movemask_ps(
          _mm256_cmp_ps(Abs(_mm256_loadu_ps(src + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (m) {
        max = src[j + __builtin_ctz(static_cast<unsigned>(m))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 vs = _mm256_set1_ps(iscale), lim = _mm256_set1_ps(127.0f);
    for (int j = 0; j < kQK_K; j += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        const __m256 v = _mm256_round_ps(_mm256_mul_ps(vs, _mm256_loadu_ps(src + j + 8 * k)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q[k] = _mm256_cvttps_epi32(_mm256_min_ps(v, lim));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs + j), PackI32ToI8(q[0], q[1], q[2], q[3]));
      // Group sums of 16: lanes of q[0] + q[1] and of q[2] + q[3].
      const __m256i s01 = _mm256_add_epi32(q[0], q[1]), s23 = _mm256_add_epi32(q[2], q[3]);
      __m256i h = _mm256_hadd_epi32(s01, s23);  // pairs, interleaved by 128-bit half
      h = _mm256_hadd_epi32(h, h);
      // h lanes: [s01 lo-half, s23 lo-half, ., ., s01 hi-half, s23 hi-half, ., .]
      const __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
      b[i].bsums[j / 16] = static_cast<int16_t>(_mm_cvtsi128_si32(sum));
      b[i].bsums[j / 16 + 1] = static_cast<int16_t>(_mm_extract_epi32(sum, 1));
    }
    b[i].d = 1.0f / iscale;
  }
}

}  // namespace origami::cpu::x86
