// The scalar twins of the Q4_Kx8 / Q6_Kx8 kernels (the layouts themselves: repack.cpp).
#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels/cpu/ref/vec_dot_ref.h"
#include "kernels/cpu/repack.h"
#include "tensor/blocks.h"
#include "util/error.h"

namespace origami::cpu {

namespace ref {

namespace {

// Each row is read back to row-major blocks and handed to the scalar kernel, so the twin's sums are
// the scalar kernel's, bit for bit, by construction.
void RowsVia(Layout l, VecDotFn dot, int64_t n, float* out, const void* w, size_t stride, int64_t rows,
             const void* a) {
  std::vector<uint8_t> row(stride);
  const auto* base = static_cast<const uint8_t*>(w);
  for (int64_t r = 0; r < rows; ++r) {
    ReadRow(l, base + (r / kRepackRows) * kRepackRows * stride, n, r % kRepackRows, row.data());
    dot(n, out + r, row.data(), a);
  }
}

}  // namespace

void VecDotRowsQ4_Kx8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  RowsVia(Layout::kQ4_Kx8, VecDotQ4_K, n, out, w, stride, rows, a);
}

void VecDotRowsQ6_Kx8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  RowsVia(Layout::kQ6_Kx8, VecDotQ6_K, n, out, w, stride, rows, a);
}

void VecDotTileQ6_Kx8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok) {
  for (int64_t t = 0; t < n_tok; ++t)
    VecDotRowsQ6_Kx8(n, out + t * out_stride, w, w_stride, rows, static_cast<const uint8_t*>(a) + t * a_stride);
}

void VecDotTileQ4_Kx8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok) {
  for (int64_t t = 0; t < n_tok; ++t)
    VecDotRowsQ4_Kx8(n, out + t * out_stride, w, w_stride, rows, static_cast<const uint8_t*>(a) + t * a_stride);
}

}  // namespace ref

}  // namespace origami::cpu
