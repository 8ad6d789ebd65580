// The CPU backend's encoder attention: every token of a sequence attends to every token of the
// same sequence (bert), over the batch's own Q, K and V; nothing is cached.
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_backend.h"

namespace origami {

// One task per (sequence, head): its queries against its keys, a row of scores at a time. The
// sequences an encoder sees are short (512 tokens at most for BERT), so a row of scores fits in
// L1 and the products, not this loop, set the speed; plain loops the compiler vectorises suffice.
// The softmax subtracts the row's maximum and sums in float, as the decoder's attention does.
void CpuBackend::EncoderAttention(const EncoderAttentionOp& op, Tensor q, Tensor k, Tensor v,
                                  Tensor out) {
  const int hd = op.head_dim;
  const int64_t n_seq = static_cast<int64_t>(op.seq_start.size()) - 1;
  if (n_seq <= 0) return;
  int64_t max_len = 0;
  for (int64_t s = 0; s < n_seq; ++s)
    max_len = std::max(max_len, op.seq_start[s + 1] - op.seq_start[s]);
  if (enc_scores_.size() < static_cast<size_t>(pool_.size() * max_len))
    enc_scores_.resize(pool_.size() * max_len);

  pool_.Run(n_seq * op.n_head, [&](int64_t task, int thread) {
    const int64_t s = task / op.n_head;
    const int h = static_cast<int>(task % op.n_head);
    const int64_t t0 = op.seq_start[s], len = op.seq_start[s + 1] - t0;
    float* sc = enc_scores_.data() + thread * max_len;
    for (int64_t i = 0; i < len; ++i) {
      const float* qi = q.data + (t0 + i) * q.cols + h * hd;
      float mx = -INFINITY;
      for (int64_t j = 0; j < len; ++j) {
        const float* kj = k.data + (t0 + j) * k.cols + h * hd;
        float d = 0;
        for (int c = 0; c < hd; ++c) d += qi[c] * kj[c];
        sc[j] = d * op.scale;
        mx = std::max(mx, sc[j]);
      }
      float sum = 0;
      for (int64_t j = 0; j < len; ++j) {
        sc[j] = std::exp(sc[j] - mx);
        sum += sc[j];
      }
      const float inv = 1.0f / sum;
      float* o = out.data + (t0 + i) * out.cols + h * hd;
      std::fill_n(o, hd, 0.0f);
      for (int64_t j = 0; j < len; ++j) {
        const float w = sc[j] * inv;
        const float* vj = v.data + (t0 + j) * v.cols + h * hd;
        for (int c = 0; c < hd; ++c) o[c] += w * vj[c];
      }
    }
  });
}

}  // namespace origami
