// Weight layouts repacked once at load for the kernels (kernels.h's Layout).
//
// Q4_0x8 and Q8_0x8: the rows of a Q4_0 / Q8_0 matrix in groups of 8, block by block. Both block
// types are an fp16 scale followed by Q quant bytes (Q = 16 for Q4_0's 32 nibbles, 32 for Q8_0).
// For each block index b of a group, 16 + 8 Q bytes (exactly the 8 original blocks, so a group
// covers the same bytes as its 8 rows did):
//   [16 B]   the 8 rows' fp16 scales, row k at bytes 2k..2k+1
//   [8 Q B]  Q/4 vectors of 32 bytes; vector j, 32-bit lane k = quant bytes 4j..4j+3 of row k
// so one 32-byte load feeds 8 rows (one per lane) with no transposition at run time, the 8 scales
// arrive as one 16-byte load, and each thread reads one contiguous stream per group instead of 8.
//
// Q4_Kx8: the same idea for Q4_K super-blocks (144 bytes: fp16 d, fp16 dmin, 12 bytes of packed
// 6-bit scales and mins, 128 nibble bytes). For each super-block index b of a group, 1152 bytes
// (exactly the 8 original blocks; the scales stay packed, the kernel unpacks 8 rows at once with
// a few 32-bit lane operations):
//   [16 B]    the 8 rows' d, row k at bytes 2k..2k+1
//   [16 B]    the 8 rows' dmin, row k at 16 + 2k
//   [35 x 32 B] vector j (j = 0..34) at 32 + 32j, 32-bit lane k = bytes 4 + 4j..7 + 4j of row k's
//            block: vectors 0..2 hold scales bytes 0..3, 4..7, 8..11; vector 3 + i holds
//            qs[4i..4i+3]
// i.e. a block's 2-byte fields, then its 4-byte words, are interleaved row by row in block order
// (the byte at offset o of a field with unit u lands at 8 * field_offset + u * (8 * (o / u) + k)
// + o % u). Q4_0x8 and Q8_0x8 above are the same rule for a block of one 2-byte field and one of
// 4-byte words; repack.cpp has one table of fields per layout and one copy loop for all.
//
// Q6_Kx8: Q6_K super-blocks (210 bytes: ql[128], qh[64], int8 scales[16], fp16 d) by the same
// rule, 1680 bytes per super-block index of a group:
//   [32 x 32 B] ql: vector j, lane k = ql[4j..4j+3] of row k
//   [16 x 32 B] qh at 1024: vector j, lane k = qh[4j..4j+3]
//   [4 x 32 B]  scales at 1536: vector j, lane k = scales[4j..4j+3]
//   [16 B]      d at 1664, row k at 1664 + 2k
#pragma once

#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace origami::cpu {

inline constexpr int64_t kRepackRows = 8;

// The layout `k` has kernels for that the row-major matrix `w` can be repacked to (kRows: none).
Layout RepackTarget(const KernelTable& k, const MatrixView& w);
// The type a layout holds (kQ4_0x8: Q4_0, ...), and the layout's kernels in `k` (null: none).
DType LayoutType(Layout layout);
const TypeKernels* LayoutKernels(const KernelTable& k, Layout layout);

// Writes a row-major matrix of LayoutType(to) (rows a multiple of 8) in layout `to` at dst (the
// same number of bytes); dst may equal src (in place) but must not otherwise overlap it.
void Repack(Layout to, const void* src, void* dst, int64_t rows, int64_t cols);
// The inverse, in place.
void Unpack(Layout from, void* data, int64_t rows, int64_t cols);
// Row `row` of a repacked matrix as row-major blocks (RowBytes(LayoutType(from), cols) at dst).
void ReadRow(Layout from, const void* data, int64_t cols, int64_t row, void* dst);

namespace ref {
// Scalar twins of the repacked kernels (kernels.h's VecDotRowsFn / VecDotTileFn; w points at a
// group boundary, rows a multiple of 8, stride = RowBytes(type, n)). Each row is read back to
// row-major blocks and handed to the row-major scalar kernel, so a twin's sums are that kernel's
// (ref::VecDotQ4_0, VecDotQ8_0, VecDotQ4_K, VecDotQ6_K) bit for bit, by construction.
void VecDotRowsQ4_0x8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotTileQ4_0x8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok);
void VecDotRowsQ8_0x8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotTileQ8_0x8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok);
// Q4_Kx8 / Q6_Kx8 against Q8_K activations.
void VecDotRowsQ4_Kx8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotTileQ4_Kx8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok);
void VecDotRowsQ6_Kx8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a);
void VecDotTileQ6_Kx8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok);

// What every twin above is made of: the rows form of the row-major kernel `dot` over layout `l`,
// and the tile form of a rows kernel (one `dot_rows` call per token).
void VecDotRowsVia(Layout l, VecDotFn dot, int64_t n, float* out, const void* w, size_t stride, int64_t rows,
                   const void* a);
void VecDotTileByRows(VecDotRowsFn dot_rows, int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride,
                      int64_t rows, const void* a, size_t a_stride, int64_t n_tok);
}  // namespace ref


}  // namespace origami::cpu
