// Declarations of the x86 kernels. Each lives in a *_avx2.cpp or *_avx512.cpp file compiled with
// that ISA's flags; dispatch.cpp takes their addresses only after CPUID and XGETBV said yes.
// Arguments as kernels.h's VecDotFn / VecDotRowsFn / QuantizeRowFn.
#pragma once

#include <cstddef>
#include <cstdint>

namespace origami::cpu::x86 {

// AVX2 + FMA + F16C.
// The flash attention path (attn_tile_avx2.cpp, KernelTable::attn_tile; the block converters per
// KV type in ops_avx2.cpp, KernelTable::attn[type].keys / rows).
void AttnTileScoresAvx2(const float* q, int rows, const float* kt, int64_t ld, int64_t m, int64_t hd,
                        float scale, float* s, int64_t ld_s);
float AttnExpStepAvx2(float* s, int64_t n, float* m);
void AttnRowValuesAvx2(const float* p, const float* v, int64_t n, int64_t hd, float* out);
#define ORIGAMI_ATTN_CONVERT_DECL(Name)                                                              \
  void AttnKeys##Name##Avx2(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld); \
  void AttnRows##Name##Avx2(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld);
ORIGAMI_ATTN_CONVERT_DECL(F32)
ORIGAMI_ATTN_CONVERT_DECL(F16)
ORIGAMI_ATTN_CONVERT_DECL(BF16)
ORIGAMI_ATTN_CONVERT_DECL(Q8_0)
ORIGAMI_ATTN_CONVERT_DECL(Q4_0)
#undef ORIGAMI_ATTN_CONVERT_DECL
// Attention over one head (ops_avx2.cpp; KernelTable::attn, per KV type).
void AttnScoresAvx2(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesAvx2(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresF16Avx2(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesF16Avx2(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresBF16Avx2(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesBF16Avx2(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresQ8_0Avx2(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesQ8_0Avx2(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void AttnScoresQ4_0Avx2(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
void AttnValuesQ4_0Avx2(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
void VecDotF32Avx2(int64_t n, float* out, const void* w, const void* a);
void VecDotF16Avx2(int64_t n, float* out, const void* w, const void* a);
void VecDotBF16Avx2(int64_t n, float* out, const void* w, const void* a);
void VecDotQ4_0Avx2(int64_t n, float* out, const void* w, const void* a);
void VecDotQ8_0Avx2(int64_t n, float* out, const void* w, const void* a);
void VecDotQ4_KAvx2(int64_t n, float* out, const void* w, const void* a);
void VecDotQ6_KAvx2(int64_t n, float* out, const void* w, const void* a);
void VecDotRowsF32Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotRowsF16Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotRowsBF16Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotRowsQ4_0Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotRowsQ8_0Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotRowsQ4_KAvx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotRowsQ6_KAvx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
// Prefill tiles (kernels.h's VecDotTileFn).
void VecDotTileF16Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                       const void* a, size_t a_stride, int64_t n_tok);
void VecDotTileBF16Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                        const void* a, size_t a_stride, int64_t n_tok);
void VecDotTileQ4_0Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                        const void* a, size_t a_stride, int64_t n_tok);
void VecDotTileQ4_KAvx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                        const void* a, size_t a_stride, int64_t n_tok);
// Q4_0 / Q8_0 repacked as Q4_0x8 / Q8_0x8 (kernels/cpu/repack.h): w at a group boundary, rows a multiple of 8.
void VecDotRowsQ4_0x8Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotTileQ4_0x8Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                          const void* a, size_t a_stride, int64_t n_tok);
void VecDotRowsQ8_0x8Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotTileQ8_0x8Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                          const void* a, size_t a_stride, int64_t n_tok);
// Q4_K / Q6_K repacked as Q4_Kx8 / Q6_Kx8 against Q8_K activations (repacked_kquant_avx2.cpp).
void VecDotRowsQ4_Kx8Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotTileQ4_Kx8Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                          const void* a, size_t a_stride, int64_t n_tok);
void VecDotRowsQ6_Kx8Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotTileQ6_Kx8Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                          const void* a, size_t a_stride, int64_t n_tok);
// For the one-row-per-lane Q4_0 kernels (here and in repacked_avx2.cpp): per Q8_0 activation block,
// 8 * sum(qy) (Q4_0's -8 offset, applied once per block) and the block's scale as a float.
void Q4_0ActTablesAvx2(const void* act, int64_t nb, int32_t* corr, float* dy);
// The 4-row forms the 8-row kernels use for their last rows.
void VecDotRows4Q4_0Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
// MXFP4 x Q8_0 (mxfp4_avx2.cpp).
void VecDotMxfp4Avx2(int64_t n, float* out, const void* w, const void* a);
void VecDotRowsMxfp4Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotTileMxfp4Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                         const void* a, size_t a_stride, int64_t n_tok);
// NVFP4 x Q8_0 (nvfp4_avx2.cpp).
void VecDotNvfp4Avx2(int64_t n, float* out, const void* w, const void* a);
void VecDotRowsNvfp4Avx2(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotTileNvfp4Avx2(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                         const void* a, size_t a_stride, int64_t n_tok);
// Same bytes as ref::QuantizeActQ8_0 / QuantizeActQ8_K (tested bit-exact).
void QuantizeQ8_0Avx2(const float* x, void* dst, int64_t n);
void QuantizeQ8_KAvx2(const float* x, void* dst, int64_t n);

// AVX-512 F/BW/VL/DQ + VNNI.
void VecDotQ4_0Avx512(int64_t n, float* out, const void* w, const void* a);
void VecDotQ8_0Avx512(int64_t n, float* out, const void* w, const void* a);
void VecDotRowsQ4_0Avx512(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotRowsQ8_0Avx512(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
// AVX-512 BF16: BF16 weights against F32 activations, rounded to BF16 inside the kernel.
void VecDotBF16Avx512(int64_t n, float* out, const void* w, const void* a);

}  // namespace origami::cpu::x86
