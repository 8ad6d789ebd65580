// CPU kernels: the one dispatch table, filled once at start-up from the CPU's features.
// Model code calls only what is declared here; it never sees an ISA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/view.h"
#include "util/thread_pool.h"

namespace origami::cpu {

// Dot product of one weight row (n elements of the weight type) with one activation row already
// converted to the weight type's activation type (see ActType). Writes one float to *out.
using VecDotFn = void (*)(int64_t n, float* out, const void* w_row, const void* act_row);
// Converts n floats (n a multiple of the activation type's block size) to the activation type.
using QuantizeRowFn = void (*)(const float* x, void* dst, int64_t n);
// Dot products of n_rows consecutive weight rows (row r at w + r * w_stride bytes) with one
// activation row: out[r] = dot(row r, act). Lets a kernel share activation loads and keep several
// rows in flight; its results equal n_rows calls of the same ISA's vec_dot up to summation order.
using VecDotRowsFn = void (*)(int64_t n, float* out, const void* w, size_t w_stride, int64_t n_rows,
                              const void* act_row);

// Prefill form: dot products of n_rows weight rows with n_tok activation rows (token t at
// act + t * act_stride bytes): out[t * out_stride + r] = dot(row r, token t). A kernel unpacks each
// block of weights once and uses it for several tokens (a register tile of rows x tokens); its
// results equal the same ISA's vec_dot_rows per token up to summation order.
using VecDotTileFn = void (*)(int64_t n, float* out, size_t out_stride, const void* w, size_t w_stride,
                              int64_t n_rows, const void* act, size_t act_stride, int64_t n_tok);

// Attention over one head of the KV cache, rows stored in one KV type and given by pointers (the
// cache is paged): scores s[j] = scale * (q . dequant(k[j])) and out += sum_j p[j] * dequant(v[j]),
// for n rows of hd elements. Rows are read in their stored type; nothing is dequantised to memory.
// The value sum accumulates into out in row order, so a range of rows split into consecutive calls
// gives the same bits as one call (prefill attention walks the cache in blocks); scores of a call
// that starts at a multiple of 4 rows into a range equal those of one call over the range.
// Quantized types need hd to be a multiple of their block size (the KV pool checks it).
using AttnScoresFn = void (*)(const float* q, const void* const* k, int64_t n, int64_t hd, float scale, float* s);
using AttnValuesFn = void (*)(const float* p, const void* const* v, int64_t n, int64_t hd, float* out);
// Block converters for the online-softmax (flash) prefill path: n rows of hd elements of the KV
// type, read once per tile and reused by every query row of it. keys writes them transposed,
// dst[i * ld + j] (element i of row j; ld >= n), the layout the score tile reads; values writes
// them row by row, dst[j * hd + i]. Values equal the dtype table's to_float exactly. keys may also
// fill columns n up to the next multiple of 8 (copies of row n - 1), so ld leaves room for them.
using AttnConvertFn = void (*)(const void* const* rows, int64_t n, int64_t hd, float* dst, int64_t ld);
struct AttnKernels {
  AttnScoresFn scores = nullptr;
  AttnValuesFn values = nullptr;
  AttnConvertFn keys = nullptr;     // transposed float block of K rows
  AttnConvertFn rows = nullptr;     // row-major float block of V rows (ld unused)
};

// The type-independent kernels of the flash path, on float blocks.
// tile_scores: s[r * ld_s + j] = scale * sum_i q[r * hd + i] * kt[i * ld + j] for r < rows, j < m
// (kt as AttnKernels::keys writes it; q rows consecutive). Columns m up to the next multiple of 8
// may be computed and written too (ld and ld_s leave room); callers ignore them.
// exp_step: one online-softmax step over one row's scores of a block: m' = max(*m, max_j s[j])
// (NaN scores ignored for the max, as std::fmax), s[j] = exp(s[j] - m'), *m = m'; returns the sum
// of the new s[j]. A NaN score stays NaN (its query row becomes NaN, as in the exact softmax).
// row_values: out[c] += sum_j p[j] * v[j * hd + c] for j < n, c < hd, j in order.
using AttnTileScoresFn = void (*)(const float* q, int rows, const float* kt, int64_t ld, int64_t m,
                                  int64_t hd, float scale, float* s, int64_t ld_s);
using AttnExpStepFn = float (*)(float* s, int64_t n, float* m);
using AttnRowValuesFn = void (*)(const float* p, const float* v, int64_t n, int64_t hd, float* out);
struct AttnTileKernels {
  AttnTileScoresFn scores = nullptr;
  AttnExpStepFn exp_step = nullptr;
  AttnRowValuesFn values = nullptr;
};

enum class Isa { kScalar, kAvx2, kAvx512, kNeon };
const char* IsaName(Isa isa);

struct TypeKernels {
  DType act_type = DType::kF32;    // what activations are converted to for this weight type
  VecDotFn vec_dot = nullptr;      // null: type not supported as a matmul weight
  VecDotRowsFn vec_dot_rows = nullptr;  // optional multi-row form; null: MatMul loops vec_dot
  VecDotTileFn vec_dot_tile = nullptr;  // optional rows x tokens form for prefill; null: per token
};

struct KernelTable {
  Isa isa = Isa::kScalar;
  TypeKernels weights[64];         // indexed by the ggml type id
  // Kernels of the repacked layouts (rows form and tile only; unset: this ISA keeps such
  // matrices as they are in the file).
  TypeKernels q4_0x8;              // Q4_0 as Layout::kQ4_0x8
  TypeKernels q8_0x8;              // Q8_0 as Layout::kQ8_0x8
  TypeKernels q4_kx8;              // Q4_K as Layout::kQ4_Kx8
  TypeKernels q6_kx8;              // Q6_K as Layout::kQ6_Kx8
  QuantizeRowFn quantize[64] = {}; // activation converters, indexed by the activation type id
  // Attention over one head, per KV cache storage type (F32, F16, BF16, Q8_0, Q4_0; unset: not a KV
  // type), rows given by pointers because the cache is paged. See AttnKernels.
  AttnKernels attn[64];
  AttnTileKernels attn_tile;       // the flash path's float kernels (see AttnTileKernels)
  const TypeKernels& For(DType t) const { return weights[static_cast<uint32_t>(t)]; }
  const AttnKernels& Attn(DType t) const { return attn[static_cast<uint32_t>(t)]; }
};

// The table for the best ISA this CPU supports (chosen once). A backend may run a lower one
// (`origami` reads ORIGAMI_ISA=scalar|avx2|avx512|neon at start to force it, for testing).
const KernelTable& Kernels();
// The table of a given ISA, or nullptr if this CPU (or this build) cannot run it. For tests.
const KernelTable* KernelsFor(Isa isa);
// The ISAs this machine can run, scalar first.
std::vector<Isa> AvailableIsas();
// The ISA to use for a requested name (nullptr or "": the best available). A name this machine
// cannot run, or an unknown name, also gives the best available (with a warning on stderr).
Isa SelectIsa(const char* requested);

// The weight views live in tensor/view.h (every backend reads them); the CPU kernels name them
// as before.
using origami::Layout;
using origami::LayoutName;
using origami::MatrixView;

// Reusable scratch memory so the hot path does not allocate once warmed up.
class Workspace {
 public:
  void* Get(size_t bytes) {
    if (buf_.size() < bytes) buf_.resize(bytes);
    return buf_.data();
  }

 private:
  std::vector<uint8_t> buf_;
};

// y[t * rows + r] = dot(W[r, :], x[t * cols : (t+1) * cols]) for t < n_tokens, r < rows.
// Activations are converted once per token row; rows are split across the pool's threads.
void MatMul(const KernelTable& k, const MatrixView& w, const float* x, int64_t n_tokens, float* y,
            ThreadPool& pool, Workspace& ws);

// One product of a group: y[t * w->rows + r] = dot(W[r, :], x[t * cols : (t+1) * cols]).
struct MatMulJob {
  const MatrixView* w;
  const float* x;
  int64_t n_tokens;
  float* y;
};

// Several products in one parallel region (a layer's Q, K and V projections; gate and up; the
// routed experts of a token): decode products share one hand-off to the threads instead of one per
// matrix, prefill products keep one each, and products reading the same x convert it once. Results
// equal separate MatMul calls bit for bit. At most 64.
void MatMulGroup(const KernelTable& k, std::span<const MatMulJob> jobs, ThreadPool& pool, Workspace& ws);

// Reads one row of any matrix (e.g. a token embedding) as floats.
void DequantizeRow(const MatrixView& w, int64_t row, float* out);

}  // namespace origami::cpu
