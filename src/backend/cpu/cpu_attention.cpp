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
// row. Two ways to walk them:
// - A float32 cache (K and V both F32) keeps scores per tile (rows x context, in floats) and takes
//   each row's softmax over all of them, so every score, weight and output is the same float, in
//   the same order, as a one-row-at-a-time pass (the kernels' blocked calls are exact, see
//   kernels.h): `-ctk f32 -ctv f32` stays bit-identical to the float32 cache this engine started
//   with (tests/model, kv_f32_bitexact).
// - Every other cache type takes the flash path (AttentionFlash): each block of K and V rows is
//   converted to floats once per tile, scored against all the tile's query rows at once
//   (AttnTileKernels::scores, keys in SIMD lanes), and folded into per-row running softmax states
//   (max, sum, unnormalized output); no score matrix per row, and the conversion that used to run
//   once per query row runs once per tile.
void CpuBackend::Attention(const AttentionOp& op, int il, Tensor q, const PagedBatch& batch, Tensor out) {
  const int n = batch.n;
  const int group = op.n_head / op.n_head_kv;

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
  bool all_f32 = true;  // (a batch's sequences share one pool and so one type pair; checked anyway)
  for (const Tile& tl : tiles_) {
    const KvTypes& types = batch.Kv(tl.t0).types;
    all_f32 = all_f32 && types.k == DType::kF32 && types.v == DType::kF32;
  }
  if (all_f32)
    AttentionExact(op, il, q, batch, out, tile_tokens, split);
  else
    AttentionFlash(op, il, q, batch, out, tile_tokens, split);
}

void CpuBackend::AttentionExact(const AttentionOp& op, int il, Tensor q, const PagedBatch& batch, Tensor out,
                                int tile_tokens, int split) {
  const int hd = op.head_dim;
  const int hd_v = op.head_dim_v > 0 ? op.head_dim_v : op.head_dim;  // V rows and the output
  const int64_t q_dim = q.cols, out_dim = out.cols;
  const int group = op.n_head / op.n_head_kv;
  const float scale = op.scale;
  const int64_t window = op.window;
  auto first_pos = [window](int64_t pos) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0; };
  const int64_t n_tiles = static_cast<int64_t>(tiles_.size());
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

// The flash path. A task is (tile, KV head, part of the GQA group, chunk of the cache rows): with
// few tiles (decode) the rows of a long context are split into chunks across the threads too, each
// chunk leaves its rows' partial softmax states (max, sum, unnormalized output), and a merge
// rescales them to the common max and adds them up.
void CpuBackend::AttentionFlash(const AttentionOp& op, int il, Tensor q, const PagedBatch& batch, Tensor out,
                                int tile_tokens, int split) {
  const int hd = op.head_dim;
  const int hd_v = op.head_dim_v > 0 ? op.head_dim_v : op.head_dim;
  const int64_t q_dim = q.cols, out_dim = out.cols;
  const int group = op.n_head / op.n_head_kv;
  const int64_t window = op.window;
  auto first_pos = [window](int64_t pos) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0; };
  const int64_t n_tiles = static_cast<int64_t>(tiles_.size());
  const int per_task = group / split;
  const int64_t tile_rows = static_cast<int64_t>(tile_tokens) * per_task;
  int64_t max_span = 0;
  for (const Tile& tl : tiles_)
    max_span = std::max(max_span, batch.pos[tl.t0 + tl.nt - 1] + 1 - first_pos(batch.pos[tl.t0]));
  const int64_t max_blocks = (max_span + kBlockRows - 1) / kBlockRows;
  // Chunks of cache blocks per tile: enough tasks for twice the threads, at least 4 blocks each.
  const int64_t tasks_per_tile = static_cast<int64_t>(op.n_head_kv) * split;
  int64_t chunks = 1;
  while (n_tiles * tasks_per_tile * chunks < 2 * pool_.size() && max_blocks >= 8 * chunks) chunks *= 2;
  const int64_t blocks_per_chunk = (max_blocks + chunks - 1) / chunks;

  // Per thread: the tile's queries [tile rows, hd], the K block transposed [hd, kBlockRows], the V
  // block [kBlockRows, hd_v], the scores [tile rows, kBlockRows], and per row the output
  // accumulator [hd_v], running max and sum.
  const int64_t state = tile_rows * (hd_v + 2);
  const int64_t per_thread = tile_rows * hd + int64_t{hd} * kBlockRows + kBlockRows * int64_t{hd_v} +
                             tile_rows * kBlockRows + state;
  if (flash_.size() < static_cast<size_t>(pool_.size() * per_thread)) flash_.resize(pool_.size() * per_thread);
  if (rows_.size() < static_cast<size_t>(2 * pool_.size() * kBlockRows)) rows_.resize(2 * pool_.size() * kBlockRows);
  // Partial states of the chunks ([task, chunk, state]) when there is more than one.
  const int64_t n_tasks = n_tiles * tasks_per_tile * chunks;
  if (chunks > 1 && partial_.size() < static_cast<size_t>(n_tasks * state)) partial_.resize(n_tasks * state);
  const cpu::AttnTileKernels& tk = kernels_.attn_tile;

  pool_.Run(n_tasks, [&](int64_t task, int thread) {
    const int64_t chunk = task % chunks, tt = task / chunks;
    const Tile& tl = tiles_[tt / tasks_per_tile];
    const int kvh = static_cast<int>(tt % tasks_per_tile) / split;
    const int h0 = kvh * group + static_cast<int>(tt % split) * per_task;
    const KvLayout& kv = batch.Kv(tl.t0);
    const cpu::AttnKernels& ak = kernels_.Attn(kv.types.k);
    const cpu::AttnKernels& av = kernels_.Attn(kv.types.v);
    const size_t k_head = kv.layers[il].k_head_bytes, v_head = kv.layers[il].v_head_bytes;
    const int64_t base = first_pos(batch.pos[tl.t0]), end = batch.pos[tl.t0 + tl.nt - 1] + 1;
    const int rows = tl.nt * per_task;
    float* qs = &flash_[thread * per_thread];
    float* kt = qs + tile_rows * hd;
    float* vf = kt + int64_t{hd} * kBlockRows;
    float* s = vf + kBlockRows * int64_t{hd_v};
    float* st = chunks > 1 ? &partial_[task * state] : s + tile_rows * kBlockRows;
    float* o = st;  // [rows, hd_v], then the maxes [rows] and the sums [rows]
    float* mx = st + tile_rows * hd_v;
    float* sum = mx + tile_rows;
    const void** k_rows = &rows_[2 * thread * kBlockRows];
    const void** v_rows = k_rows + kBlockRows;
    // Row r: token tl.t0 + r / per_task, head h0 + r % per_task; attends to cache rows
    // [first_pos(pos), pos], i.e. [lo_r, hi_r) from base.
    auto token = [&](int r) { return tl.t0 + r / per_task; };
    auto head = [&](int r) { return h0 + r % per_task; };
    for (int r = 0; r < rows; ++r) {
      std::copy_n(q.data + token(r) * q_dim + static_cast<int64_t>(head(r)) * hd, hd, qs + r * hd);
      std::fill_n(o + r * hd_v, hd_v, 0.0f);
      // gpt-oss: the head's sink logit joins the softmax's normalization but has no value row; as
      // a starting state (max = sink, sum = e^0) it is counted once, in chunk 0.
      const bool sink = op.sinks && chunk == 0;
      mx[r] = sink ? op.sinks[head(r)] : -INFINITY;
      sum[r] = sink ? 1.0f : 0.0f;
    }
    const int64_t b_first = chunk * blocks_per_chunk * kBlockRows;
    const int64_t b_last = std::min(end - base, (chunk + 1) * blocks_per_chunk * kBlockRows);
    for (int64_t b = b_first; b < b_last; b += kBlockRows) {
      const int64_t m = std::min<int64_t>(kBlockRows, end - base - b);
      for (int64_t j = 0; j < m; ++j) {
        k_rows[j] = batch.K(il, tl.t0, base + b + j) + kvh * k_head;
        v_rows[j] = batch.V(il, tl.t0, base + b + j) + kvh * v_head;
      }
      ak.keys(k_rows, m, hd, kt, kBlockRows);
      av.rows(v_rows, m, hd_v, vf, kBlockRows);
      tk.scores(qs, rows, kt, kBlockRows, m, hd, op.scale, s, kBlockRows);
      for (int r = 0; r < rows; ++r) {
        const int64_t pos = batch.pos[token(r)];
        const int64_t lo = std::max(b, first_pos(pos) - base), hi = std::min(b + m, pos + 1 - base);
        if (lo >= hi) continue;
        float* sr = s + r * kBlockRows + (lo - b);
        const float old = mx[r];
        const float block_sum = tk.exp_step(sr, hi - lo, &mx[r]);
        float* orow = o + r * hd_v;
        if (mx[r] != old) {  // a new max: the earlier sum and output shrink by e^(old - new)
          const float c = std::exp(old - mx[r]);
          sum[r] *= c;
          for (int i = 0; i < hd_v; ++i) orow[i] *= c;
        }
        sum[r] += block_sum;
        tk.values(sr, vf + (lo - b) * hd_v, hi - lo, hd_v, orow);
      }
    }
    if (chunks > 1) return;  // the merge below finishes the rows
    for (int r = 0; r < rows; ++r) {
      float* dst = out.data + token(r) * out_dim + static_cast<int64_t>(head(r)) * hd_v;
      const float inv = 1.0f / sum[r];
      for (int i = 0; i < hd_v; ++i) dst[i] = o[r * hd_v + i] * inv;
    }
  });
  if (chunks == 1) return;
  // The merge: per (tile, KV head, part of the group) and row, the chunks' states rescaled to
  // their common max. A chunk that saw none of a row's cache rows has max -inf and adds nothing.
  pool_.Run(n_tiles * tasks_per_tile, [&](int64_t tt, int) {
    const Tile& tl = tiles_[tt / tasks_per_tile];
    const int kvh = static_cast<int>(tt % tasks_per_tile) / split;
    const int h0 = kvh * group + static_cast<int>(tt % split) * per_task;
    for (int r = 0; r < tl.nt * per_task; ++r) {
      const int t = tl.t0 + r / per_task, h = h0 + r % per_task;
      float m_all = -INFINITY;
      for (int64_t c = 0; c < chunks; ++c) m_all = std::fmax(m_all, partial_[(tt * chunks + c) * state + tile_rows * hd_v + r]);
      float* dst = out.data + t * out_dim + static_cast<int64_t>(h) * hd_v;
      std::fill_n(dst, hd_v, 0.0f);
      float total = 0;
      for (int64_t c = 0; c < chunks; ++c) {
        const float* st = &partial_[(tt * chunks + c) * state];
        const float m_c = st[tile_rows * hd_v + r];
        if (m_c == -INFINITY) continue;
        const float w = std::exp(m_c - m_all);
        total += st[tile_rows * hd_v + tile_rows + r] * w;
        for (int i = 0; i < hd_v; ++i) dst[i] += st[r * hd_v + i] * w;
      }
      const float inv = 1.0f / total;
      for (int i = 0; i < hd_v; ++i) dst[i] *= inv;
    }
  });
}

}  // namespace origami
