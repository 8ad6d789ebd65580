// MatMul (decode mat-vec and prefill mat-mat over the kernel table) and DequantizeRow.
#include <algorithm>
#include <cstring>
#include <utility>
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
// Products over at most this many tokens run each token through the one-token kernels (the tile of
// weight rows stays in cache between tokens), so every token gets bit for bit the result of a
// one-token step: speculative decoding verifies up to 16 drafted tokens plus the last one in such a
// step, and its greedy output must equal plain decoding's.
constexpr int64_t kMaxExactTokens = 17;

void DotRows(const TypeKernels& tk, int64_t n, float* out, const uint8_t* w, size_t stride, int64_t rows,
             const void* act) {
  if (tk.vec_dot_rows) {
    tk.vec_dot_rows(n, out, w, stride, rows, act);
    return;
  }
  for (int64_t r = 0; r < rows; ++r) tk.vec_dot(n, out + r, w + r * stride, act);
}

}  // namespace

namespace {

// One product of a group, checked and with its kernels chosen.
struct Product {
  const TypeKernels* tk;
  const uint8_t* w;
  size_t w_stride;
  int64_t cols, rows, n_tok;
  const float* x;
  float* y;
  const uint8_t* act;  // the converted activations (x itself for F32 kernels)
  size_t a_stride;
  int64_t grain;  // rows per task: a decode chunk or a prefill tile
};

struct Task {
  int32_t product;
  int64_t r0, r1;
};

Product Check(const KernelTable& k, const MatMulJob& job) {
  const MatrixView& w = *job.w;
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
  if (tk.act_type != DType::kF32 && !k.quantize[static_cast<uint32_t>(tk.act_type)])
    FailKind(ErrorKind::kInternal, "matmul: no {} activation converter", at.name);
  Product p{&tk, static_cast<const uint8_t*>(w.data), RowBytes(w.type, w.cols), w.cols, w.rows, job.n_tokens,
            job.x, job.y, nullptr, 0, 0};
  return p;
}

// Rows per task. Decode: small chunks handed out dynamically, so both threads finish together even
// when one is slowed by other work on the machine. Prefill: a tile of rows kept in L2 while every
// token passes over it, so each weight row is read from memory once.
int64_t Grain(const Product& p, int threads) {
  if (p.n_tok == 1) {
    const int64_t per_thread = (p.rows + threads - 1) / threads;
    const int64_t chunk = std::clamp<int64_t>(per_thread / 8, kDecodeGrain, 256);
    return (chunk + 7) / 8 * 8;  // whole groups of the 8-row kernels
  }
  int64_t tile = static_cast<int64_t>(kPrefillTileBytes / std::max<size_t>(p.w_stride, 1));
  tile = std::clamp<int64_t>(tile / 8 * 8, 8, 64);
  // Enough tiles for every thread to stay busy.
  while (tile > 8 && (p.rows + tile - 1) / tile < 4 * threads) tile /= 2;
  return std::max<int64_t>(tile / 8 * 8, 8);
}

void RunTask(const Product& p, int64_t r0, int64_t r1) {
  const TypeKernels& tk = *p.tk;
  const uint8_t* w = p.w + r0 * p.w_stride;
  if (p.n_tok == 1) {
    DotRows(tk, p.cols, p.y + r0, w, p.w_stride, r1 - r0, p.act);
  } else if (tk.vec_dot_tile && p.n_tok > kMaxExactTokens) {
    tk.vec_dot_tile(p.cols, p.y + r0, static_cast<size_t>(p.rows), w, p.w_stride, r1 - r0, p.act, p.a_stride,
                    p.n_tok);
  } else {
    for (int64_t t = 0; t < p.n_tok; ++t)
      DotRows(tk, p.cols, p.y + t * p.rows + r0, w, p.w_stride, r1 - r0, p.act + t * p.a_stride);
  }
}

constexpr size_t Align64(size_t n) { return (n + 63) & ~size_t{63}; }

// Float activations are read in place, except in prefill: there the rows of a model's activations
// are a multiple of 4 KiB apart (2048 or 8192 floats), so the 6-12 token rows a float tile reads
// side by side all fall in the same L1 set and evict each other (measured: an 8 x 12 float tile ran
// at 27 GFLOP/s with such rows, 65 with rows one cache line further apart). Prefill copies them to
// rows one line longer than a multiple of 64 bytes; the copy costs one pass over the activations.
bool Direct(const Product& p) { return p.tk->act_type == DType::kF32 && p.n_tok == 1; }
size_t ActStride(const Product& p) {
  if (p.tk->act_type == DType::kF32) return Align64(static_cast<size_t>(p.cols) * sizeof(float)) + 64;
  return RowBytes(p.tk->act_type, p.cols);
}

}  // namespace

void MatMulGroup(const KernelTable& k, std::span<const MatMulJob> jobs, ThreadPool& pool, Workspace& ws) {
  constexpr size_t kMaxProducts = 64;
  if (jobs.size() > kMaxProducts) Fail("matmul: {} products in one group (at most {})", jobs.size(), kMaxProducts);
  Product prod[kMaxProducts];
  int np = 0;
  int64_t n_tasks = 0;
  for (const MatMulJob& j : jobs) {
    if (j.n_tokens <= 0 || j.w->rows <= 0) continue;
    Product p = Check(k, j);
    p.grain = Grain(p, pool.size());
    n_tasks += (p.rows + p.grain - 1) / p.grain;
    prod[np++] = p;
  }
  if (np == 0) return;

  // One workspace block: the task list, then each distinct activation conversion. Products that
  // read the same x with the same activation type (Q, K and V; gate and up) share one.
  int owner[kMaxProducts];
  size_t offset[kMaxProducts];
  size_t bytes = Align64(static_cast<size_t>(n_tasks) * sizeof(Task));
  for (int i = 0; i < np; ++i) {
    Product& p = prod[i];
    owner[i] = i;
    if (Direct(p)) {
      p.act = reinterpret_cast<const uint8_t*>(p.x);
      p.a_stride = static_cast<size_t>(p.cols) * sizeof(float);
      continue;
    }
    p.a_stride = ActStride(p);
    for (int o = 0; o < i; ++o)
      if (owner[o] == o && prod[o].x == p.x && prod[o].tk->act_type == p.tk->act_type && prod[o].cols == p.cols &&
          prod[o].n_tok == p.n_tok)
        owner[i] = o;
    if (owner[i] == i) {
      offset[i] = bytes;
      bytes += Align64(p.a_stride * static_cast<size_t>(p.n_tok));
    }
  }
  auto* base = static_cast<uint8_t*>(ws.Get(bytes + 64));
  base += (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
  auto* tasks = reinterpret_cast<Task*>(base);

  // Activations: converted once per token row; every conversion of the group in one region.
  int64_t n_rows = 0;
  for (int i = 0; i < np; ++i) {
    if (Direct(prod[i])) continue;
    if (owner[i] == i) {
      prod[i].act = base + offset[i];
      n_rows += prod[i].n_tok;
    } else {
      prod[i].act = prod[owner[i]].act;
    }
  }
  auto convert = [&](int64_t row) {
    for (int i = 0; i < np; ++i) {
      const Product& p = prod[i];
      if (Direct(p) || owner[i] != i) continue;
      if (row < p.n_tok) {
        auto* dst = const_cast<uint8_t*>(p.act) + row * p.a_stride;
        if (p.tk->act_type == DType::kF32)
          std::memcpy(dst, p.x + row * p.cols, static_cast<size_t>(p.cols) * sizeof(float));
        else
          k.quantize[static_cast<uint32_t>(p.tk->act_type)](p.x + row * p.cols, dst, p.cols);
        return;
      }
      row -= p.n_tok;
    }
  };
  if (n_rows <= np || pool.size() == 1) {
    for (int64_t r = 0; r < n_rows; ++r) convert(r);
  } else {
    pool.Run(n_rows, [&](int64_t r, int) { convert(r); });
  }

  // Decode products (one token: memory-bound, short) share one region. A prefill product keeps a
  // region of its own: interleaving the tiles of several (measured: F16 pp512 on 2 threads, 27.7
  // tok/s grouped vs 30.8 one by one) costs more than the hand-offs it saves.
  auto add_tasks = [&, t = int64_t{0}](int i) mutable {
    const int64_t begin = t;
    for (int64_t r0 = 0; r0 < prod[i].rows; r0 += prod[i].grain)
      tasks[t++] = {i, r0, std::min(prod[i].rows, r0 + prod[i].grain)};
    return std::pair<int64_t, int64_t>{begin, t};
  };
  auto run = [&](int64_t begin, int64_t end) {
    pool.Run(end - begin, [&](int64_t c, int) {
      const Task& task = tasks[begin + c];
      RunTask(prod[task.product], task.r0, task.r1);
    });
  };
  int64_t decode_end = 0;
  for (int i = 0; i < np; ++i)
    if (prod[i].n_tok == 1) decode_end = add_tasks(i).second;
  run(0, decode_end);
  for (int i = 0; i < np; ++i)
    if (prod[i].n_tok > 1) {
      const auto [begin, end] = add_tasks(i);
      run(begin, end);
    }
}

void MatMul(const KernelTable& k, const MatrixView& w, const float* x, int64_t n_tokens, float* y,
            ThreadPool& pool, Workspace& ws) {
  const MatMulJob job{&w, x, n_tokens, y};
  MatMulGroup(k, std::span<const MatMulJob>(&job, 1), pool, ws);
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

}  // namespace origami::cpu
