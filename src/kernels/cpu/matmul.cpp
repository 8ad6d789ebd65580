// MatMul (decode mat-vec and prefill mat-mat over the kernel table) and DequantizeRow.
#include <algorithm>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/repack.h"
#include "util/error.h"

namespace origami::cpu {

namespace {

// Rows computed per call of the row kernel in decode; a multiple of the kernels' row group (4).
constexpr int64_t kDecodeGrain = 16;
// Prefill keeps a tile of weight rows in L2 while every token passes over it.
constexpr size_t kPrefillTileBytes = 96 * 1024;

void DotRows(const TypeKernels& tk, int64_t n, float* out, const uint8_t* w, size_t stride, int64_t rows,
             const void* act) {
  if (tk.vec_dot_rows) {
    tk.vec_dot_rows(n, out, w, stride, rows, act);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) tk.vec_dot(n, out + r, w + r * stride, act);
}

}  // namespace

void MatMul(const KernelTable& k, const MatrixView& w, const float* x, int64_t n_tokens, float* y,
            ThreadPool& pool, Workspace& ws) {
  if (n_tokens <= 0 || w.rows <= 0) return;
  if (static_cast<uint32_t>(w.type) >= 64) FailKind(ErrorKind::kUnsupported, "matmul: unknown weight type");
  const bool repacked = w.layout != Layout::kRows;
  const TypeKernels* lk = repacked ? LayoutKernels(k, w.layout) : nullptr;
  if (repacked && (!lk || w.type != LayoutType(w.layout) || w.rows % kRepackRows != 0))
    FailKind(ErrorKind::kUnsupported, "matmul: no {} kernel for a {} matrix in layout {} ({} rows)", IsaName(k.isa),
             TypeName(w.type), LayoutName(w.layout), w.rows);
  const TypeKernels& tk = repacked ? *lk : k.For(w.type);
  if (!tk.vec_dot && !repacked)
    FailKind(ErrorKind::kUnsupported, "matmul: no {} kernel for weight type {}", IsaName(k.isa), TypeName(w.type));
  const TypeTraits& wt = Traits(w.type);
  const TypeTraits& at = Traits(tk.act_type);
  if (w.cols <= 0 || w.cols % wt.block_size != 0 || w.cols % at.block_size != 0)
    Fail("matmul: {} weight with {} columns is not a whole number of blocks", wt.name, w.cols);

  const int64_t n = w.cols;
  const size_t w_stride = RowBytes(w.type, n);
  const auto* wbase = static_cast<const uint8_t*>(w.data);

  // Activations: converted once per token row into the workspace (F32 is used in place).
  const uint8_t* act;
  size_t a_stride;
  if (tk.act_type == DType::kF32) {
    act = reinterpret_cast<const uint8_t*>(x);
    a_stride = static_cast<size_t>(n) * sizeof(float);
  } else {
    const QuantizeRowFn quant = k.quantize[static_cast<uint32_t>(tk.act_type)];
    if (!quant) FailKind(ErrorKind::kInternal, "matmul: no {} activation converter", at.name);
    a_stride = RowBytes(tk.act_type, n);
    auto* buf = static_cast<uint8_t*>(ws.Get(a_stride * static_cast<size_t>(n_tokens)));
    if (n_tokens == 1 || pool.size() == 1) {
      for (int64_t t = 0; t < n_tokens; ++t) quant(x + t * n, buf + t * a_stride, n);
    } else {
      pool.Run(n_tokens, [&](int64_t t, int) { quant(x + t * n, buf + t * a_stride, n); });
    }
    act = buf;
  }

  if (n_tokens == 1) {
    // Decode: small chunks of rows handed out dynamically, so both threads finish together even
    // when one is slowed by the other work on the machine.
    const int64_t per_thread = (w.rows + pool.size() - 1) / pool.size();
    int64_t chunk = std::clamp<int64_t>(per_thread / 8, kDecodeGrain, 256);
    chunk = (chunk + 7) / 8 * 8;  // whole groups of the 8-row kernels
    const int64_t n_chunks = (w.rows + chunk - 1) / chunk;
    pool.Run(n_chunks, [&](int64_t c, int) {
      const int64_t r0 = c * chunk, r1 = std::min(w.rows, r0 + chunk);
      DotRows(tk, n, y + r0, wbase + r0 * w_stride, w_stride, r1 - r0, act);
    });
    return;
  }

  // Prefill: each task takes a tile of rows and runs every token over it, so each weight row is
  // read from memory once and then served from cache.
  int64_t tile = static_cast<int64_t>(kPrefillTileBytes / std::max<size_t>(w_stride, 1));
  tile = std::clamp<int64_t>(tile / 8 * 8, 8, 64);
  // Enough tiles for every thread to stay busy.
  while (tile > 8 && (w.rows + tile - 1) / tile < 4 * pool.size()) tile /= 2;
  tile = std::max<int64_t>(tile / 8 * 8, 8);
  const int64_t n_tiles = (w.rows + tile - 1) / tile;
  pool.Run(n_tiles, [&](int64_t c, int) {
    const int64_t r0 = c * tile, r1 = std::min(w.rows, r0 + tile);
    if (tk.vec_dot_tile) {
      tk.vec_dot_tile(n, y + r0, static_cast<size_t>(w.rows), wbase + r0 * w_stride, w_stride, r1 - r0, act, a_stride,
                      n_tokens);
      return;
    }
    for (int64_t t = 0; t < n_tokens; ++t)
      DotRows(tk, n, y + t * w.rows + r0, wbase + r0 * w_stride, w_stride, r1 - r0, act + t * a_stride);
  });
}

void DequantizeRow(const MatrixView& w, int64_t row, float* out) {
  if (row < 0 || row >= w.rows) Fail("dequantize: row {} out of range [0, {})", row, w.rows);
  const TypeTraits& tr = Traits(w.type);
  if (!tr.to_float) FailKind(ErrorKind::kUnsupported, "dequantize: no conversion for {}", tr.name);
  if (w.cols % tr.block_size != 0) Fail("dequantize: {} row of {} columns is not whole blocks", tr.name, w.cols);
  const size_t stride = RowBytes(w.type, w.cols);
  if (w.layout != Layout::kRows) {  // an embedding table that is also the (repacked) output
    uint8_t stack[16384];
    std::vector<uint8_t> heap(stride > sizeof stack ? stride : 0);
    uint8_t* blocks = heap.empty() ? stack : heap.data();
    ReadRow(w.layout, w.data, w.cols, row, blocks);
    tr.to_float(blocks, out, w.cols);
    return;
  }
  tr.to_float(static_cast<const uint8_t*>(w.data) + static_cast<size_t>(row) * stride, out, w.cols);
}

const char* LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kRows: return "rows";
    case Layout::kQ4_0x8: return "Q4_0x8";
    case Layout::kQ8_0x8: return "Q8_0x8";
  }
  return "?";
}

}  // namespace origami::cpu
