// Reference K-quant quantization. Each super-block of 256 is fitted in two stages:
//  1. every sub-block gets its own float scale (and min) from a small search that minimizes the
//     squared error of the sub-block: try a handful of candidate grids, round the values onto each,
//     solve the least-squares scale (and offset) for the resulting integers, keep the best;
//  2. the sub-block scales are quantized against one fp16 super-block scale (4, 6 or 8 bits), and
//     the values are rounded again onto the grid the decoder will actually use.
// Same spirit as ggml's converter, not its code; the blocks decode with the ggml dequantizers.
#include "tensor/quantize_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/blocks.h"
#include "tensor/dtype.h"
#include "util/fp16.h"

namespace origami::ref {

namespace {

// Rounds v to the nearest integer in [lo, hi]; NaN goes to lo so a bad input never reaches an
// undefined float-to-int conversion.
int RoundClamp(float v, int lo, int hi) {
  if (!(v >= static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::nearbyint(v));
}

// Candidate grids per fit: the natural one plus +-kSteps steps of kStep levels around it. A finer
// or wider search gains little (under 1% RMS in experiments) for a proportional cost.
constexpr int kSteps = 10;
constexpr float kStep = 0.1f;

// Fits x[0..n) ~= s * q with integer q in [-nmax, nmax - 1] (the asymmetric range of Q3_K and
// Q6_K), minimizing sum (x - s q)^2. Returns s (either sign); 0 for an all-zero sub-block.
float FitSigned(const float* x, int n, int nmax) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax == 0) return 0;
  float best_s = max / -static_cast<float>(nmax);  // the extreme value lands on -nmax
  double best_err = INFINITY;
  // Try the extreme on the negative end (-nmax) and on the positive end (nmax - 1), each with
  // slightly stretched and shrunk grids; for each, the least-squares s for the rounded q.
  for (int side = 0; side < 2; ++side) {
    const float target = side == 0 ? -static_cast<float>(nmax) : static_cast<float>(nmax - 1);
    for (int t = -kSteps; t <= kSteps; ++t) {
      const float levels = target + kStep * static_cast<float>(t);
      if (levels == 0) continue;
      const float iscale = levels / max;
      double sxq = 0, sqq = 0, sxx = 0;
      for (int i = 0; i < n; ++i) {
        const int q = RoundClamp(iscale * x[i], -nmax, nmax - 1);
        sxq += static_cast<double>(x[i]) * q;
        sqq += static_cast<double>(q) * q;
        sxx += static_cast<double>(x[i]) * x[i];
      }
      if (sqq == 0) continue;
      const double err = sxx - sxq * sxq / sqq;  // residual of the least-squares fit
      if (err < best_err) {
        best_err = err;
        best_s = static_cast<float>(sxq / sqq);
      }
    }
  }
  return best_s;
}

// Fits x[0..n) ~= s * q - m with integer q in [0, nmax], s >= 0 and m >= 0 (the grid always
// reaches down to zero or below, as the K-quant formats store m unsigned). Minimizes the squared
// error over candidate grids; the plain min/max grid is always among them, so the fit is never
// worse than it.
void FitWithMin(const float* x, int n, int nmax, float* s_out, float* m_out) {
  float lo = 0, hi = x[0];  // lo <= 0 because m >= 0
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (!(hi > lo)) {  // all zero, or all equal to the same negative value
    *s_out = 0;
    *m_out = -lo;
    return;
  }
  auto error_of = [&](float s, float b) {
    double err = 0;
    for (int i = 0; i < n; ++i) {
      const int q = s > 0 ? RoundClamp((x[i] - b) / s, 0, nmax) : 0;
      const double r = static_cast<double>(x[i]) - (static_cast<double>(s) * q + b);
      err += r * r;
    }
    return err;
  };
  float best_s = (hi - lo) / static_cast<float>(nmax), best_b = lo;
  double best_err = error_of(best_s, best_b);
  for (int t = -kSteps; t <= kSteps; ++t) {
    const float iscale = (static_cast<float>(nmax) + kStep * static_cast<float>(t)) / (hi - lo);
    // Round onto the candidate grid, then solve the 2x2 least squares for x ~= s q + b.
    double sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int i = 0; i < n; ++i) {
      const int q = RoundClamp(iscale * (x[i] - lo), 0, nmax);
      sq += q;
      sqq += static_cast<double>(q) * q;
      sx += x[i];
      sxq += static_cast<double>(x[i]) * q;
    }
    const double det = n * sqq - sq * sq;
    if (det <= 0) continue;
    double s = (n * sxq - sq * sx) / det;
    double b = (sqq * sx - sq * sxq) / det;
    if (b > 0) {  // the offset must stay <= 0: refit the scale alone with b = 0
      b = 0;
      s = sxq / sqq;
    }
    if (!(s > 0)) continue;
    const double err = error_of(static_cast<float>(s), static_cast<float>(b));
    if (err < best_err) {
      best_err = err;
      best_s = static_cast<float>(s);
      best_b = static_cast<float>(b);
    }
  }
  *s_out = best_s;
  *m_out = -best_b;
}

// Stage 2 for the formats with unsigned scales and mins (Q2_K, Q4_K, Q5_K): nsub sub-blocks of
// 256/nsub, quants in [0, nmax], scales and mins of `sbits` bits against fp16 d and dmin.
// Writes the integer quants, the integer scales and mins, and the fp16 super-block scales.
void QuantizeWithMin(const float* x, int nsub, int nmax, int sbits, int q[kQK_K], int sc[16],
                     int mn[16], uint16_t* d_out, uint16_t* dmin_out) {
  const int len = kQK_K / nsub;
  const int smax = (1 << sbits) - 1;
  float s[16], m[16];
  float max_s = 0, max_m = 0;
  for (int j = 0; j < nsub; ++j) {
    FitWithMin(x + j * len, len, nmax, &s[j], &m[j]);
    max_s = std::max(max_s, s[j]);
    max_m = std::max(max_m, m[j]);
  }
  // The integer scales are rounded against the fp16 super-block scale the decoder will see.
  const float d = Fp16ToFp32(Fp32ToFp16(max_s / static_cast<float>(smax)));
  const float dmin = Fp16ToFp32(Fp32ToFp16(max_m / static_cast<float>(smax)));
  *d_out = Fp32ToFp16(d);
  *dmin_out = Fp32ToFp16(dmin);
  for (int j = 0; j < nsub; ++j) {
    // Rounding s and m to integers separately is not always best (and where d or dmin flush to
    // zero in fp16 it can be far off), so try the neighbours and (0, 0), which decodes to zeros,
    // and keep the pair whose grid gives the least squared error.
    const float* xs = x + j * len;
    const int sc0 = d > 0 ? RoundClamp(s[j] / d, 0, smax) : 0;
    const int mn0 = dmin > 0 ? RoundClamp(m[j] / dmin, 0, smax) : 0;
    double best_err = INFINITY;
    for (int ds = -1; ds <= 1; ++ds) {
      for (int dm = -2; dm <= 1; ++dm) {
        const int cs = std::clamp(sc0 + ds, 0, smax);
        const int cm = dm == -2 ? 0 : std::clamp(mn0 + dm, 0, smax);
        const float dl = d * static_cast<float>(cs);
        const float ml = dmin * static_cast<float>(cm);
        double err = 0;
        for (int i = 0; i < len; ++i) {
          const int qi = dl > 0 ? RoundClamp((xs[i] + ml) / dl, 0, nmax) : 0;
          const double r = static_cast<double>(xs[i]) - (dl * static_cast<float>(qi) - ml);
          err += r * r;
        }
        if (err < best_err) {
          best_err = err;
          sc[j] = cs;
          mn[j] = cm;
        }
      }
    }
    // Round again onto the decoder's grid: x ~= dl * q - ml.
    const float dl = d * static_cast<float>(sc[j]);
    const float ml = dmin * static_cast<float>(mn[j]);
    for (int i = 0; i < len; ++i)
      q[j * len + i] = dl > 0 ? RoundClamp((xs[i] + ml) / dl, 0, nmax) : 0;
  }
}

// Stage 2 for the formats with signed scales (Q3_K: 6-bit, Q6_K: 8-bit): 16 sub-blocks of 16,
// quants in [-nmax, nmax - 1], scales in [-smax, smax - 1] against an fp16 d.
void QuantizeSigned(const float* x, int nmax, int smax, int q[kQK_K], int sc[16], uint16_t* d_out) {
  float s[16];
  float amax = 0, max = 0;
  for (int j = 0; j < 16; ++j) {
    s[j] = FitSigned(x + 16 * j, 16, nmax);
    if (std::fabs(s[j]) > amax) {
      amax = std::fabs(s[j]);
      max = s[j];
    }
  }
  // The scale of largest magnitude lands on -smax, using the longer side of the signed range.
  const float d = Fp16ToFp32(Fp32ToFp16(max / -static_cast<float>(smax)));
  *d_out = Fp32ToFp16(d);
  for (int j = 0; j < 16; ++j) {
    // As above: the rounded integer scale, its neighbours and 0, whichever fits best.
    const float* xs = x + 16 * j;
    const int sc0 = d != 0 ? RoundClamp(s[j] / d, -smax, smax - 1) : 0;
    double best_err = INFINITY;
    for (int cand = -2; cand <= 1; ++cand) {
      const int cs = cand == -2 ? 0 : std::clamp(sc0 + cand, -smax, smax - 1);
      const float dl = d * static_cast<float>(cs);
      double err = 0;
      for (int i = 0; i < 16; ++i) {
        const int qi = dl != 0 ? RoundClamp(xs[i] / dl, -nmax, nmax - 1) : 0;
        const double r = static_cast<double>(xs[i]) - dl * static_cast<float>(qi);
        err += r * r;
      }
      if (err < best_err) {
        best_err = err;
        sc[j] = cs;
      }
    }
    const float dl = d * static_cast<float>(sc[j]);
    for (int i = 0; i < 16; ++i)
      q[16 * j + i] = dl != 0 ? RoundClamp(xs[i] / dl, -nmax, nmax - 1) : 0;
  }
}

}  // namespace

// Q2_K: 16 sub-blocks of 16, q in [0, 3], 4-bit scale (low nibble) and min (high nibble).
void QuantQ2_K(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ2_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    int q[kQK_K], sc[16], mn[16];
    std::memset(&b[i], 0, sizeof(BlockQ2_K));
    QuantizeWithMin(src, 16, 3, 4, q, sc, mn, &b[i].d, &b[i].dmin);
    for (int j = 0; j < 16; ++j) b[i].scales[j] = static_cast<uint8_t>(sc[j] | mn[j] << 4);
    // Element e = 128 h + 32 k + l goes to bits 2k of qs[32 h + l].
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      b[i].qs[32 * h + l] |= static_cast<uint8_t>(q[e] << (2 * k));
    }
  }
}

// Q3_K: 16 sub-blocks of 16, q in [-4, 3], 6-bit signed scales stored with a bias of 32.
void QuantQ3_K(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ3_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    int q[kQK_K], sc[16];
    std::memset(&b[i], 0, sizeof(BlockQ3_K));
    QuantizeSigned(src, 4, 32, q, sc, &b[i].d);
    // Scale s: low 4 bits in a nibble of byte s % 8, top 2 bits in byte 8 + s % 4 at bit 2(s/4).
    for (int s = 0; s < 16; ++s) {
      const int v = sc[s] + 32;
      b[i].scales[s % 8] |= static_cast<uint8_t>((v & 15) << (s < 8 ? 0 : 4));
      b[i].scales[8 + s % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (s / 4)));
    }
    // q + 4 in 3 bits: low 2 bits as in Q2_K, bit 2 in hmask[l] at bit 4h + k.
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const int v = q[e] + 4;
      b[i].qs[32 * h + l] |= static_cast<uint8_t>((v & 3) << (2 * k));
      b[i].hmask[l] |= static_cast<uint8_t>((v >> 2) << (4 * h + k));
    }
  }
}

namespace {
// Packs eight 6-bit scales and mins into Q4_K/Q5_K's 12 bytes (the inverse of Q4KScaleMin).
void PackQ4KScales(const int sc[8], const int mn[8], uint8_t out[12]) {
  for (int s = 0; s < 4; ++s) {
    out[s] = static_cast<uint8_t>(sc[s] | (sc[s + 4] >> 4) << 6);
    out[s + 4] = static_cast<uint8_t>(mn[s] | (mn[s + 4] >> 4) << 6);
    out[s + 8] = static_cast<uint8_t>((sc[s + 4] & 15) | (mn[s + 4] & 15) << 4);
  }
}
}  // namespace

// Q4_K: 8 sub-blocks of 32, q in [0, 15], 6-bit scales and mins.
void QuantQ4_K(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    int q[kQK_K], sc[16], mn[16];
    std::memset(&b[i], 0, sizeof(BlockQ4_K));
    QuantizeWithMin(src, 8, 15, 6, q, sc, mn, &b[i].d, &b[i].dmin);
    PackQ4KScales(sc, mn, b[i].scales);
    // Sub-block s: low (s even) or high (s odd) nibbles of qs[32 (s / 2) ..].
    for (int e = 0; e < kQK_K; ++e) {
      const int s = e / 32, l = e % 32;
      b[i].qs[32 * (s / 2) + l] |= static_cast<uint8_t>(q[e] << (4 * (s % 2)));
    }
  }
}

// Q5_K: Q4_K with q in [0, 31]; bit 4 of element l of sub-block s goes to bit s of qh[l].
void QuantQ5_K(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    int q[kQK_K], sc[16], mn[16];
    std::memset(&b[i], 0, sizeof(BlockQ5_K));
    QuantizeWithMin(src, 8, 31, 6, q, sc, mn, &b[i].d, &b[i].dmin);
    PackQ4KScales(sc, mn, b[i].scales);
    for (int e = 0; e < kQK_K; ++e) {
      const int s = e / 32, l = e % 32;
      b[i].qs[32 * (s / 2) + l] |= static_cast<uint8_t>((q[e] & 15) << (4 * (s % 2)));
      b[i].qh[l] |= static_cast<uint8_t>((q[e] >> 4) << s);
    }
  }
}

// Q6_K: 16 sub-blocks of 16, q in [-32, 31] stored as q + 32, int8 scales.
void QuantQ6_K(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQK_K; ++i, src += kQK_K) {
    int q[kQK_K], sc[16];
    std::memset(&b[i], 0, sizeof(BlockQ6_K));
    QuantizeSigned(src, 32, 128, q, sc, &b[i].d);
    for (int s = 0; s < 16; ++s) b[i].scales[s] = static_cast<int8_t>(sc[s]);
    // Element 128 h + 32 k + l: low 4 bits in the low (k < 2) or high nibble of
    // ql[64 h + 32 (k % 2) + l], top 2 bits at bit 2k of qh[32 h + l].
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const int v = q[e] + 32;
      b[i].ql[64 * h + 32 * (k % 2) + l] |= static_cast<uint8_t>((v & 15) << (k < 2 ? 0 : 4));
      b[i].qh[32 * h + l] |= static_cast<uint8_t>((v >> 4) << (2 * k));
    }
  }
}

}  // namespace origami::ref
