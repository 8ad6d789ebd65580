// The scalar twins of the Q4_Kx8 / Q6_Kx8 kernels (the layouts themselves: repack.cpp).
#include "kernels/cpu/ref/vec_dot_ref.h"
#include "kernels/cpu/repack.h"

namespace origami::cpu {

namespace ref {

void VecDotRowsQ4_Kx8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  VecDotRowsVia(Layout::kQ4_Kx8, VecDotQ4_K, n, out, w, stride, rows, a);
}

void VecDotRowsQ6_Kx8(int64_t n, float* out, const void* w, size_t stride, int64_t rows, const void* a) {
  VecDotRowsVia(Layout::kQ6_Kx8, VecDotQ6_K, n, out, w, stride, rows, a);
}

void VecDotTileQ4_Kx8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok) {
  VecDotTileByRows(VecDotRowsQ4_Kx8, n, out, out_stride, w, w_stride, rows, a, a_stride, n_tok);
}

void VecDotTileQ6_Kx8(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride, int64_t rows,
                      const void* a, size_t a_stride, int64_t n_tok) {
  VecDotTileByRows(VecDotRowsQ6_Kx8, n, out, out_stride, w, w_stride, rows, a, a_stride, n_tok);
}

}  // namespace ref

}  // namespace origami::cpu
