// Row-major <-> interleaved repacking (every layout), the scalar twins of the Q4_0x8 / Q8_0x8 kernels
// and the two pieces all the twins are built from.
#include "kernels/cpu/repack.h"

#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels/cpu/ref/vec_dot_ref.h"
#include "tensor/blocks.h"
#include "util/error.h"

namespace origami::cpu {

namespace {

static_assert(sizeof(BlockQ4_0) == 2 + 16 && sizeof(BlockQ8_0) == 2 + 32);
static_assert(sizeof(BlockQ4_K) == 144 && offsetof(BlockQ4_K, scales) == 4);
static_assert(sizeof(BlockQ6_K) == 210 && offsetof(BlockQ6_K, qh) == 128 && offsetof(BlockQ6_K, scales) == 192 &&
              offsetof(BlockQ6_K, d) == 208);

// A run of bytes of a block interleaved across the 8 rows of a group in units of `unit` bytes.
struct Field {
  size_t offset, size, unit;
};

// A layout: its block and the block's fields, in block order, covering it exactly (repack.h).
struct Geometry {
  size_t block;  // bytes of one row-major block
  int64_t qk;    // elements per block
  Field fields[4];
  int n_fields;
  size_t group_block() const { return kRepackRows * block; }
};

Geometry GeometryOf(Layout l) {
  switch (l) {
    case Layout::kQ4_0x8: return {sizeof(BlockQ4_0), kQK4_0, {{0, 2, 2}, {2, 16, 4}}, 2};
    case Layout::kQ8_0x8: return {sizeof(BlockQ8_0), kQK8_0, {{0, 2, 2}, {2, 32, 4}}, 2};
    case Layout::kQ4_Kx8: return {sizeof(BlockQ4_K), kQK_K, {{0, 2, 2}, {2, 2, 2}, {4, 140, 4}}, 3};
    case Layout::kQ6_Kx8: return {sizeof(BlockQ6_K), kQK_K, {{0, 128, 4}, {128, 64, 4}, {192, 16, 4}, {208, 2, 2}}, 4};
    case Layout::kRows: break;
  }
  FailKind(ErrorKind::kInternal, "repack: layout {} has no geometry", LayoutName(l));
}

void CheckShape(Layout l, const Geometry& g, int64_t rows, int64_t cols) {
  if (rows < 0 || rows % kRepackRows != 0 || cols <= 0 || cols % g.qk != 0)
    Fail("{}: a {} x {} matrix cannot be repacked (rows must be a multiple of 8, cols of {})", LayoutName(l), rows,
         cols, g.qk);
}

// Copies one block between row-major form (blk) and its slot for row k in a group block (gb);
// to_group: blk -> gb, else gb -> blk.
template <bool to_group>
void MoveBlock(const Geometry& g, uint8_t* gb, int k, uint8_t* blk) {
  for (int f = 0; f < g.n_fields; ++f) {
    const Field& fd = g.fields[f];
    uint8_t* base = gb + kRepackRows * fd.offset + fd.unit * k;
    for (size_t o = 0; o < fd.size; o += fd.unit) {
      uint8_t* slot = base + kRepackRows * o;
      uint8_t* b = blk + fd.offset + o;
      if (fd.unit == 4) {
        if (to_group) std::memcpy(slot, b, 4); else std::memcpy(b, slot, 4);
      } else {
        if (to_group) std::memcpy(slot, b, 2); else std::memcpy(b, slot, 2);
      }
    }
  }
}

// One group: 8 row-major rows of nb blocks (src) -> nb interleaved blocks (dst).
void PackGroup(const Geometry& g, const uint8_t* src, uint8_t* dst, int64_t nb) {
  const size_t row_bytes = static_cast<size_t>(nb) * g.block;
  // Q4_0 / Q8_0 (an fp16 scale, then quants in 4-byte units) with the geometry as compile-time
  // constants, so every copy is a fixed-size move and the loops unroll: the load-time repack of
  // the common files. Same bytes as the generic form below.
  auto pack = [&]<size_t kQs, size_t kBlock>() {
    constexpr size_t kGroup = kRepackRows * kBlock;
    const uint8_t* rows[kRepackRows];
    for (int k = 0; k < kRepackRows; ++k) rows[k] = src + k * row_bytes;
    for (int64_t b = 0; b < nb; ++b, dst += kGroup) {
      uint8_t out[kGroup];
      for (int k = 0; k < kRepackRows; ++k) {
        const uint8_t* blk = rows[k] + b * kBlock;
        std::memcpy(out + 2 * k, blk, 2);
        for (size_t j = 0; j < kQs / 4; ++j) std::memcpy(out + 16 + 32 * j + 4 * k, blk + 2 + 4 * j, 4);
      }
      std::memcpy(dst, out, kGroup);
    }
  };
  if (g.block == sizeof(BlockQ4_0) && g.n_fields == 2) return pack.template operator()<16, sizeof(BlockQ4_0)>();
  if (g.block == sizeof(BlockQ8_0) && g.n_fields == 2) return pack.template operator()<32, sizeof(BlockQ8_0)>();
  for (int64_t b = 0; b < nb; ++b)
    for (int k = 0; k < kRepackRows; ++k)
      MoveBlock<true>(g, dst + b * g.group_block(), k, const_cast<uint8_t*>(src + k * row_bytes + b * g.block));
}

// Block b of row k of a group, back in row-major block form.
void UnpackBlock(const Geometry& g, const uint8_t* group, int64_t b, int k, uint8_t* blk) {
  MoveBlock<false>(g, const_cast<uint8_t*>(group + b * g.group_block()), k, blk);
}

}  // namespace

DType LayoutType(Layout layout) {
  switch (layout) {
    case Layout::kQ4_0x8: return DType::kQ4_0;
    case Layout::kQ8_0x8: return DType::kQ8_0;
    case Layout::kQ4_Kx8: return DType::kQ4_K;
    case Layout::kQ6_Kx8: return DType::kQ6_K;
    case Layout::kRows: break;
  }
  FailKind(ErrorKind::kInternal, "repack: layout {} holds no single type", LayoutName(layout));
}

const TypeKernels* LayoutKernels(const KernelTable& k, Layout layout) {
  const TypeKernels* tk = layout == Layout::kQ4_0x8   ? &k.q4_0x8
                          : layout == Layout::kQ8_0x8 ? &k.q8_0x8
                          : layout == Layout::kQ4_Kx8 ? &k.q4_kx8
                          : layout == Layout::kQ6_Kx8 ? &k.q6_kx8
                                                      : nullptr;
  return tk && tk->vec_dot_rows ? tk : nullptr;
}

Layout RepackTarget(const KernelTable& k, const MatrixView& w) {
  if (w.layout != Layout::kRows || !w.data || w.rows <= 0 || w.rows % kRepackRows != 0) return Layout::kRows;
  for (Layout l : {Layout::kQ4_0x8, Layout::kQ8_0x8, Layout::kQ4_Kx8, Layout::kQ6_Kx8})
    if (w.type == LayoutType(l) && LayoutKernels(k, l) && w.cols % Traits(LayoutType(l)).block_size == 0) return l;
  return Layout::kRows;
}

void Repack(Layout to, const void* src, void* dst, int64_t rows, int64_t cols) {
  const Geometry g = GeometryOf(to);
  CheckShape(to, g, rows, cols);
  const int64_t nb = cols / g.qk;
  const size_t group_bytes = static_cast<size_t>(nb) * g.group_block();
  const bool in_place = src == dst;
  std::vector<uint8_t> tmp(in_place ? group_bytes : 0);
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < rows; r += kRepackRows, s += group_bytes, d += group_bytes) {
    if (!in_place) {
      PackGroup(g, s, d, nb);
      continue;
    }
    PackGroup(g, s, tmp.data(), nb);
    std::memcpy(d, tmp.data(), group_bytes);
  }
}

void Unpack(Layout from, void* data, int64_t rows, int64_t cols) {
  const Geometry g = GeometryOf(from);
  CheckShape(from, g, rows, cols);
  const int64_t nb = cols / g.qk;
  const size_t group_bytes = static_cast<size_t>(nb) * g.group_block();
  std::vector<uint8_t> tmp(group_bytes);
  auto* p = static_cast<uint8_t*>(data);
  for (int64_t r = 0; r < rows; r += kRepackRows, p += group_bytes) {
    for (int k = 0; k < kRepackRows; ++k)
      for (int64_t b = 0; b < nb; ++b) UnpackBlock(g, p, b, k, tmp.data() + (k * nb + b) * g.block);
    std::memcpy(p, tmp.data(), group_bytes);
  }
}

void ReadRow(Layout from, const void* data, int64_t cols, int64_t row, void* dst) {
  const Geometry g = GeometryOf(from);
  const int64_t nb = cols / g.qk;
  const auto* group = static_cast<const uint8_t*>(data) + (row / kRepackRows) * nb * g.group_block();
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t b = 0; b < nb; ++b) UnpackBlock(g, group, b, static_cast<int>(row % kRepackRows), out + b * g.block);
}

namespace ref {

void VecDotRowsVia(Layout l, VecDotFn dot, int64_t n, float* out, const void* w, size_t stride, int64_t rows,
                   const void* a) {
  std::vector<uint8_t> row(stride);
  const auto* base = static_cast<const uint8_t*>(w);
  for (int64_t r = 0; r < rows; ++r) {
    ReadRow(l, base + (r / kRepackRows) * kRepackRows * stride, n, r % kRepackRows, row.data());
    dot(n, out + r, row.data(), a);
  }
}

void VecDotTileByRows(VecDotRowsFn dot_rows, int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride,
                      int64_t rows, const void* a, size_t a_stride, int64_t n_tok) {
  for (int64_t t = 0; t < n_tok; ++t)
    dot_rows(n, out + t * out_stride, w, w_stride, rows, static_cast<const uint8_t*>(a) + t * a_stride);
}

void VecDotRowsQ4_0x8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  VecDotRowsVia(Layout::kQ4_0x8, VecDotQ4_0, n, out, w, stride, rows, a);
}

void VecDotRowsQ8_0x8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  VecDotRowsVia(Layout::kQ8_0x8, VecDotQ8_0, n, out, w, stride, rows, a);
}

void VecDotTileQ4_0x8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok) {
  VecDotTileByRows(VecDotRowsQ4_0x8, n, out, out_stride, w, w_stride, rows, a, a_stride, n_tok);
}

void VecDotTileQ8_0x8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok) {
  VecDotTileByRows(VecDotRowsQ8_0x8, n, out, out_stride, w, w_stride, rows, a, a_stride, n_tok);
}

}  // namespace ref

}  // namespace origami::cpu
