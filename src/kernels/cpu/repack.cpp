// Row-major <-> interleaved (Q4_0x8, Q8_0x8) repacking and the scalar twins of their kernels.
#include "kernels/cpu/repack.h"

#include <cstring>
#include <vector>

#include "tensor/blocks.h"
#include "util/error.h"
#include "util/fp16.h"

namespace origami::cpu {

namespace {

static_assert(sizeof(BlockQ4_0) == 2 + 16 && sizeof(BlockQ8_0) == 2 + 32);

// Geometry of one layout: the source block and its quant bytes.
struct Geometry {
  size_t block;  // bytes of one row-major block (fp16 scale + quants)
  size_t qs;     // quant bytes per block
  int64_t qk;    // elements per block
  size_t group_block() const { return kRepackRows * block; }
};

Geometry GeometryOf(Layout l) {
  switch (l) {
    case Layout::kQ4_0x8: return {sizeof(BlockQ4_0), 16, kQK4_0};
    case Layout::kQ8_0x8: return {sizeof(BlockQ8_0), 32, kQK8_0};
    case Layout::kRows: break;
  }
  FailKind(ErrorKind::kInternal, "repack: layout {} has no geometry", LayoutName(l));
}

void CheckShape(Layout l, const Geometry& g, int64_t rows, int64_t cols) {
  if (rows < 0 || rows % kRepackRows != 0 || cols <= 0 || cols % g.qk != 0)
    Fail("{}: a {} x {} matrix cannot be repacked (rows must be a multiple of 8, cols of {})", LayoutName(l), rows,
         cols, g.qk);
}

// One group: 8 row-major rows of nb blocks (src) -> nb interleaved blocks (dst).
void PackGroup(const Geometry& g, const uint8_t* src, uint8_t* dst, int64_t nb) {
  const size_t row_bytes = static_cast<size_t>(nb) * g.block;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* out = dst + b * g.group_block();
    for (int k = 0; k < kRepackRows; ++k) {
      const uint8_t* blk = src + k * row_bytes + b * g.block;
      std::memcpy(out + 2 * k, blk, 2);
      for (size_t j = 0; j < g.qs / 4; ++j) std::memcpy(out + 16 + 32 * j + 4 * k, blk + 2 + 4 * j, 4);
    }
  }
}

// Block b of row k of a group, back in row-major block form.
void UnpackBlock(const Geometry& g, const uint8_t* group, int64_t b, int k, uint8_t* blk) {
  const uint8_t* in = group + b * g.group_block();
  std::memcpy(blk, in + 2 * k, 2);
  for (size_t j = 0; j < g.qs / 4; ++j) std::memcpy(blk + 2 + 4 * j, in + 16 + 32 * j + 4 * k, 4);
}

}  // namespace

DType LayoutType(Layout layout) {
  switch (layout) {
    case Layout::kQ4_0x8: return DType::kQ4_0;
    case Layout::kQ8_0x8: return DType::kQ8_0;
    case Layout::kRows: break;
  }
  FailKind(ErrorKind::kInternal, "repack: layout {} holds no single type", LayoutName(layout));
}

const TypeKernels* LayoutKernels(const KernelTable& k, Layout layout) {
  const TypeKernels* tk = layout == Layout::kQ4_0x8 ? &k.q4_0x8 : layout == Layout::kQ8_0x8 ? &k.q8_0x8 : nullptr;
  return tk && tk->vec_dot_rows ? tk : nullptr;
}

Layout RepackTarget(const KernelTable& k, const MatrixView& w) {
  if (w.layout != Layout::kRows || !w.data || w.rows <= 0 || w.rows % kRepackRows != 0) return Layout::kRows;
  for (Layout l : {Layout::kQ4_0x8, Layout::kQ8_0x8})
    if (w.type == LayoutType(l) && LayoutKernels(k, l) && w.cols % GeometryOf(l).qk == 0) return l;
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

namespace {

// Row k of a group: each block unpacked and handed to `dot(block, b)` returning its integer sum.
template <typename Block, typename IntDot>
void RowsOfGroups(Layout l, int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a,
                  IntDot dot) {
  const Geometry g = GeometryOf(l);
  const int64_t nb = n / g.qk;
  const auto* y = static_cast<const BlockQ8_0*>(a);
  const auto* base = static_cast<const uint8_t*>(w);
  for (int64_t r = 0; r < rows; r += kRepackRows) {
    const uint8_t* group = base + r * stride;
    for (int k = 0; k < kRepackRows; ++k) {
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        Block x;
        UnpackBlock(g, group, b, k, reinterpret_cast<uint8_t*>(&x));
        acc += Fp16ToFp32(x.d) * Fp16ToFp32(y[b].d) * static_cast<float>(dot(x, y[b]));
      }
      out[r + k] = acc;
    }
  }
}

}  // namespace

void VecDotRowsQ4_0x8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  RowsOfGroups<BlockQ4_0>(Layout::kQ4_0x8, n, out, w, stride, rows, a, [](const BlockQ4_0& x, const BlockQ8_0& y) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += ((x.qs[j] & 0x0f) - 8) * y.qs[j];
      isum += ((x.qs[j] >> 4) - 8) * y.qs[j + 16];
    }
    return isum;
  });
}

void VecDotRowsQ8_0x8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  RowsOfGroups<BlockQ8_0>(Layout::kQ8_0x8, n, out, w, stride, rows, a, [](const BlockQ8_0& x, const BlockQ8_0& y) {
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += x.qs[j] * y.qs[j];
    return isum;
  });
}

void VecDotTileQ4_0x8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok) {
  for (int64_t t = 0; t < n_tok; ++t)
    VecDotRowsQ4_0x8(n, out + t * out_stride, w, w_stride, rows, static_cast<const uint8_t*>(a) + t * a_stride);
}

void VecDotTileQ8_0x8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok) {
  for (int64_t t = 0; t < n_tok; ++t)
    VecDotRowsQ8_0x8(n, out + t * out_stride, w, w_stride, rows, static_cast<const uint8_t*>(a) + t * a_stride);
}

}  // namespace ref

}  // namespace origami::cpu
