// The CPU backend's attention: causal grouped-query attention of each batch token against its own
// sequence's rows of the paged KV cache, read in their stored type.
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "kernels/cpu/ops.h"

namespace origami {

// Work is split into tiles: up to kTileRows / group consecutive tokens of one sequence (a prompt
// chunk) times the query heads of one KV head (a GQA group). A tile walks its KV head's cache rows
// in blocks of kBlockRows, and every query row of the tile uses a block while it is in L1: a
// 512-token prompt at depth 4096 reads each K and V row once per tile instead of once per query
// row. Scores are kept per tile (rows x context, in floats) and each row's softmax is taken over all
// of them, so every score, weight and output is the same float, in the same order, as a
// one-row-at-a-time pass (the kernels' blocked calls are exact, see kernels.h); an online (flash)
// softmax would have saved that buffer but changed the float32 cache's results.
void CpuBackend::Attention(const AttentionOp& op, int il, Tensor q, const PagedBatch& batch, Tensor out) {
  const int n = batch.n;
  const int hd = op.head_dim;
  const int hd_v = op.head_dim_v > 0 ? op.head_dim_v : op.head_dim;  // V rows and the output
  const int64_t q_dim = q.cols, out_dim = out.cols;
  const int group = op.n_head / op.n_head_kv;
  const float scale = op.scale;
  const int64_t window = op.window;
  auto first_pos = [window](int64_t pos) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0; };

  // Runs of consecutive batch tokens of one sequence at consecutive positions, cut into tiles.
  const int tile_tokens = std::max(1, kTileRows / group);
  tiles_.clear();
  for (int t = 0; t < n;) {
    int e = t + 1;
    while (e < n && e - t < tile_tokens && batch.seq[e] == batch.seq[t] && batch.pos[e] == batch.pos[e - 1] + 1) ++e;
    tiles_.push_back({t, e - t});
    t = e;
  }
  // Each tile's GQA group is split across tasks only as far as needed to give every thread work
  // (a single decoded token of a model with few KV heads).
  const int64_t n_tiles = static_cast<int64_t>(tiles_.size());
  int split = 1;
  for (int d = 1; d <= group; ++d)
    if (group % d == 0) {
      split = d;
      if (n_tiles * op.n_head_kv * d >= 2 * pool_.size()) break;
    }
  const int per_task = group / split;
  int64_t max_span = 0;  // the most cache rows one tile reads
  for (const Tile& tl : tiles_)
    max_span = std::max(max_span, batch.pos[tl.t0 + tl.nt - 1] + 1 - first_pos(batch.pos[tl.t0]));
  const int64_t tile_rows = static_cast<int64_t>(tile_tokens) * per_task;
  const int64_t max_len = window > 0 ? std::min<int64_t>(window, max_span) : max_span;
  if (scores_.size() < static_cast<size_t>(pool_.size() * tile_rows * max_len))
    scores_.resize(pool_.size() * tile_rows * max_len);
  if (rows_.size() < static_cast<size_t>(2 * pool_.size() * max_span)) rows_.resize(2 * pool_.size() * max_span);

  const int64_t tasks_per_tile = static_cast<int64_t>(op.n_head_kv) * split;
  pool_.Run(n_tiles * tasks_per_tile, [&](int64_t task, int thread) {
    const Tile& tl = tiles_[task / tasks_per_tile];
    const int kvh = static_cast<int>(task % tasks_per_tile) / split;
    const int h0 = kvh * group + static_cast<int>(task % split) * per_task;
    const KvLayout& kv = batch.Kv(tl.t0);
    const cpu::AttnKernels& ak = kernels_.Attn(kv.types.k);
    const cpu::AttnKernels& av = kernels_.Attn(kv.types.v);
    const size_t k_head = kv.layers[il].k_head_bytes, v_head = kv.layers[il].v_head_bytes;
    // The cache rows the tile reads: [base, end).
    const int64_t base = first_pos(batch.pos[tl.t0]), end = batch.pos[tl.t0 + tl.nt - 1] + 1;
    const void** k_rows = &rows_[2 * thread * max_span];
    const void** v_rows = k_rows + max_span;
    for (int64_t j = base; j < end; ++j) {
      k_rows[j - base] = batch.K(il, tl.t0, j) + kvh * k_head;
      v_rows[j - base] = batch.V(il, tl.t0, j) + kvh * v_head;
    }
    // Row r of the tile: token tl.t0 + r / per_task, head h0 + r % per_task; it attends to
    // [first_pos(pos), pos], len of them, from k_rows[off] on.
    const int rows = tl.nt * per_task;
    float* s_tile = &scores_[thread * tile_rows * max_len];
    struct Row {
      int64_t off, len;
      float* q;    // the row's query
      float* out;  // the row's output
    };
    auto row = [&](int r) {
      const int t = tl.t0 + r / per_task, h = h0 + r % per_task;
      const int64_t pos = batch.pos[t];
      return Row{first_pos(pos) - base, pos - first_pos(pos) + 1, q.data + t * q_dim + static_cast<int64_t>(h) * hd,
                 out.data + t * out_dim + static_cast<int64_t>(h) * hd_v};
    };
    int64_t longest = 0;
    for (int r = 0; r < rows; ++r) longest = std::max(longest, row(r).len);
    // One walk over the rows in blocks, every row of the tile while a block is in L1.
    auto for_each_block = [&](auto&& fn) {
      for (int64_t b = 0; b < longest; b += kBlockRows)
        for (int r = 0; r < rows; ++r) {
          const Row rr = row(r);
          if (b < rr.len) fn(r, rr, b, std::min<int64_t>(kBlockRows, rr.len - b));
        }
    };
    // Scores, block by block.
    for_each_block([&](int r, const Row& rr, int64_t b, int64_t m) {
      ak.scores(rr.q, k_rows + rr.off + b, m, hd, scale, s_tile + r * max_len + b);
    });
    for (int r = 0; r < rows; ++r) {
      const Row rr = row(r);
      float* s = s_tile + r * max_len;
      if (!op.sinks) {
        cpu::Softmax(s, rr.len);
      } else {
        // gpt-oss: the head's sink logit joins the softmax's normalization but has no value row.
        const float sink = op.sinks[h0 + r % per_task];
        float mx = sink;
        for (int64_t j = 0; j < rr.len; ++j) mx = std::max(mx, s[j]);
        float sum = std::exp(sink - mx);
        for (int64_t j = 0; j < rr.len; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int64_t j = 0; j < rr.len; ++j) s[j] /= sum;
      }
      std::fill_n(rr.out, hd_v, 0.0f);
    }
    // Weighted sums of the value rows, block by block (the kernels accumulate in row order).
    for_each_block([&](int r, const Row& rr, int64_t b, int64_t m) {
      av.values(s_tile + r * max_len + b, v_rows + rr.off + b, m, hd_v, rr.out);
    });
  });
}

}  // namespace origami
