// Every op of the Backend interface against a float64 reference written here from the op's
// definition (not from any backend's code), for every backend this build has: odd shapes, every
// weight and KV type the op reads, scattered block tables, and NaN confinement (a NaN in one
// token's or one sequence's data never reaches another's result). Tensors go in and out through
// Upload/Download, so a device backend runs the same cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/registry.h"
#include "tensor/dtype.h"
#include "util/thread_pool.h"

namespace origami {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A weight matrix in `type`, kept with its dequantized floats (what every backend must compute with).
struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // [rows, cols]
  MatrixView view;
};

Weights MakeWeights(DType type, int64_t rows, int64_t cols, uint32_t seed) {
  Weights w;
  const std::vector<float> f = Random(rows * cols, seed);
  const size_t row_bytes = RowBytes(type, cols);
  w.bytes.resize(row_bytes * rows);
  w.deq.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    Traits(type).from_float(&f[r * cols], &w.bytes[r * row_bytes], cols);
    Traits(type).to_float(&w.bytes[r * row_bytes], &w.deq[r * cols], cols);
  }
  w.view = {type, rows, cols, w.bytes.data()};
  return w;
}

class BackendOps : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { be_ = MakeBackend({GetParam(), &pool_}); }

  // A tensor in the backend's memory holding `host` (rows x cols).
  Tensor Put(const std::vector<float>& host, int64_t rows, int64_t cols) {
    bufs_.push_back(be_->Allocate(rows * cols));
    const Tensor t{bufs_.back()->data(), rows, cols};
    be_->Upload(host.data(), t);
    return t;
  }
  std::vector<float> Get(Tensor t) {
    std::vector<float> v(t.size());
    be_->Download(t, v.data());
    return v;
  }

  ThreadPool pool_{2};
  std::unique_ptr<Backend> be_;
  std::vector<std::unique_ptr<Buffer>> bufs_;
};

// |got - want| <= tol * (1 + |want|), with the index of the first miss in the message.
void ExpectClose(const std::vector<float>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_LE(std::abs(got[i] - want[i]), tol * (1 + std::abs(want[i]))) << what << " at " << i;
}

TEST_P(BackendOps, EmbedReadsRowsAndScales) {
  for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_0}) {
    const Weights table = MakeWeights(type, 11, 64, 1);
    const std::vector<int32_t> tokens = {7, 0, 10, 7};
    const Tensor x = Put(std::vector<float>(4 * 64), 4, 64);
    be_->Embed(table.view, tokens, 0.5f, x);
    const std::vector<float> got = Get(x);
    for (int t = 0; t < 4; ++t)
      for (int i = 0; i < 64; ++i)  // a dequantized value times a power of two: exact
        ASSERT_EQ(got[t * 64 + i], table.deq[tokens[t] * 64 + i] * 0.5f) << TypeName(type);
  }
}

TEST_P(BackendOps, RmsNormWholeRowsAndPerHead) {
  const int64_t n = 3, cols = 6 * 13;  // 6 heads of 13: off every SIMD grid
  const std::vector<float> xs = Random(n * cols, 2, -3, 3), w = Random(cols, 3);
  for (int64_t w_len : {cols, int64_t{13}}) {
    const Tensor x = Put(xs, n, cols), y = Put(std::vector<float>(n * cols), n, cols);
    be_->RmsNorm(x, w.data(), w_len, 1e-5f, y);
    std::vector<double> want(n * cols);
    for (int64_t r = 0; r < n * cols / w_len; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < w_len; ++i) ss += double(xs[r * w_len + i]) * xs[r * w_len + i];
      const double inv = 1 / std::sqrt(ss / w_len + 1e-5);
      for (int64_t i = 0; i < w_len; ++i) want[r * w_len + i] = xs[r * w_len + i] * inv * w[i];
    }
    ExpectClose(Get(y), want, 1e-5, "rmsnorm");
    be_->RmsNorm(x, w.data(), w_len, 1e-5f, x);  // in place
    ExpectClose(Get(x), want, 1e-5, "rmsnorm in place");
  }
}

TEST_P(BackendOps, LayerNormWithAndWithoutBias) {
  const int64_t n = 3, cols = 77;  // off every SIMD grid; rows far from zero mean
  const std::vector<float> xs = Random(n * cols, 21, 5, 9), w = Random(cols, 22), b = Random(cols, 23);
  for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
    const Tensor x = Put(xs, n, cols), y = Put(std::vector<float>(n * cols), n, cols);
    be_->LayerNorm(x, w.data(), bias, 1e-12f, y);
    std::vector<double> want(n * cols);
    for (int64_t r = 0; r < n; ++r) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < cols; ++i) mean += xs[r * cols + i];
      mean /= cols;
      for (int64_t i = 0; i < cols; ++i) var += (xs[r * cols + i] - mean) * (xs[r * cols + i] - mean);
      const double inv = 1 / std::sqrt(var / cols + 1e-12);
      for (int64_t i = 0; i < cols; ++i)
        want[r * cols + i] = (xs[r * cols + i] - mean) * inv * w[i] + (bias ? bias[i] : 0.0);
    }
    // float32 arithmetic on values of order 1 after the centring: a few ulps.
    ExpectClose(Get(y), want, 1e-5, "layernorm");
    be_->LayerNorm(x, w.data(), bias, 1e-12f, x);  // in place
    ExpectClose(Get(x), want, 1e-5, "layernorm in place");
  }
}

TEST_P(BackendOps, UnaryGeluAndTanh) {
  const int64_t n = 2, cols = 45;
  const std::vector<float> xs = Random(n * cols, 24, -6, 6);
  for (UnaryKind kind : {UnaryKind::kGelu, UnaryKind::kTanh}) {
    const Tensor x = Put(xs, n, cols);
    be_->Unary(kind, x);
    std::vector<double> want(n * cols);
    for (int64_t i = 0; i < n * cols; ++i) {
      const double v = xs[i];
      want[i] = kind == UnaryKind::kGelu ? 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))) : std::tanh(v);
    }
    ExpectClose(Get(x), want, 1e-5, kind == UnaryKind::kGelu ? "gelu" : "tanh");
  }
}

// Rope without a store (encoders): NeoX pairs (i, i + hd/2) of every head of Q and K turned by
// pos * theta_i, at each token's own position.
TEST_P(BackendOps, RopeRotatesAtTheGivenPositions) {
  const int n_head = 3, n_head_kv = 1, hd = 8;
  const std::vector<int32_t> pos = {0, 3, 17};
  const int64_t n = static_cast<int64_t>(pos.size());
  std::vector<float> inv(hd / 2);
  for (int i = 0; i < hd / 2; ++i) inv[i] = std::pow(1000.0f, -2.0f * i / hd);
  RopeOp op{{hd, RopeLayout::kNeox, 1.0f, inv.data()}, n_head, n_head_kv, hd};
  const std::vector<float> qs = Random(n * n_head * hd, 28), ks = Random(n * n_head_kv * hd, 29);
  const Tensor q = Put(qs, n, n_head * hd), k = Put(ks, n, n_head_kv * hd);
  be_->Rope(op, pos, q, k);
  auto rotated = [&](const std::vector<float>& x, int heads) {
    std::vector<double> y(x.size());
    for (int64_t t = 0; t < n; ++t)
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < hd / 2; ++i) {
          const size_t a = (t * heads + h) * hd + i, b = a + hd / 2;
          const double th = double(pos[t]) * inv[i];
          y[a] = x[a] * std::cos(th) - x[b] * std::sin(th);
          y[b] = x[a] * std::sin(th) + x[b] * std::cos(th);
        }
    return y;
  };
  // float32 angles of up to 17 radians: a few ulps of the angle.
  ExpectClose(Get(q), rotated(qs, n_head), 1e-5, "rope q");
  ExpectClose(Get(k), rotated(ks, n_head_kv), 1e-5, "rope k");
}

// Three sequences of 1, 5 and 9 tokens in one batch: each token's output is the softmax-weighted
// sum over its own sequence only, every position (no causal mask); a NaN in one sequence's values
// stays there.
TEST_P(BackendOps, EncoderAttentionSeesTheWholeOwnSequenceOnly) {
  const int n_head = 3, hd = 20;
  const std::vector<int64_t> starts = {0, 1, 6, 15};
  const int64_t n = starts.back(), c = n_head * hd;
  const std::vector<float> qs = Random(n * c, 25, -2, 2), ks = Random(n * c, 26, -2, 2);
  std::vector<float> vs = Random(n * c, 27);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<double> want(n * c, 0.0);
  for (size_t s = 0; s + 1 < starts.size(); ++s)
    for (int64_t i = starts[s]; i < starts[s + 1]; ++i)
      for (int h = 0; h < n_head; ++h) {
        std::vector<double> sc;
        double mx = -1e300, sum = 0;
        for (int64_t j = starts[s]; j < starts[s + 1]; ++j) {
          double d = 0;
          for (int k = 0; k < hd; ++k) d += double(qs[i * c + h * hd + k]) * ks[j * c + h * hd + k];
          sc.push_back(d * scale);
          mx = std::max(mx, sc.back());
        }
        for (double& x : sc) sum += (x = std::exp(x - mx));
        for (int64_t j = starts[s]; j < starts[s + 1]; ++j)
          for (int k = 0; k < hd; ++k) want[i * c + h * hd + k] += sc[j - starts[s]] / sum * vs[j * c + h * hd + k];
      }
  EncoderAttentionOp op;
  op.n_head = n_head;
  op.head_dim = hd;
  op.scale = scale;
  op.seq_start = starts;
  const Tensor q = Put(qs, n, c), k = Put(ks, n, c), v = Put(vs, n, c), out = Put(std::vector<float>(n * c), n, c);
  be_->EncoderAttention(op, q, k, v, out);
  ExpectClose(Get(out), want, 1e-5, "encoder attention");
  vs[3 * c + 4] = NAN;  // sequence 1 (tokens 1..5)
  const Tensor v2 = Put(vs, n, c), out2 = Put(std::vector<float>(n * c), n, c);
  be_->EncoderAttention(op, q, k, v2, out2);
  const std::vector<float> got = Get(out2);
  for (int64_t i = 0; i < n * c; ++i) {
    const bool in_seq1 = i / c >= 1 && i / c < 6;
    if (!in_seq1) EXPECT_TRUE(std::isfinite(got[i])) << "NaN escaped its sequence at " << i;
  }
}

TEST_P(BackendOps, AddAndAddBias) {
  const std::vector<float> a = Random(5 * 9, 4), b = Random(5 * 9, 5), bias = Random(9, 6);
  const Tensor x = Put(a, 5, 9), y = Put(b, 5, 9);
  be_->Add(x, y);
  be_->AddBias(y, bias.data());
  std::vector<double> want_x(45), want_y(45);
  for (int i = 0; i < 45; ++i) {
    want_x[i] = double(a[i]) + b[i];
    want_y[i] = double(b[i]) + bias[i % 9];
  }
  ExpectClose(Get(x), want_x, 1e-7, "add");
  ExpectClose(Get(y), want_y, 1e-7, "bias");
}

// Strided column copies (MLA's per-head splits and joins), a repeated source included.
TEST_P(BackendOps, CopyColumnsSplitsAndJoinsHeads) {
  const std::vector<float> a = Random(3 * 10, 11);
  const Tensor src = Put(a, 3, 10), dst = Put(std::vector<float>(3 * 12, 0.0f), 3, 12);
  be_->CopyColumns({1, 4, 0, 6, 3, 2}, src, dst);  // columns 1-3 and 5-7 to 0-2 and 6-8
  be_->CopyColumns({8, 0, 3, 6, 2, 2}, src, dst);  // columns 8-9 to 3-4 and 9-10
  const std::vector<float> got = Get(dst);
  for (int t = 0; t < 3; ++t)
    for (int c = 0; c < 12; ++c) {
      const int g = c / 6, i = c % 6;
      const double want = i < 3 ? a[t * 10 + 1 + 4 * g + i] : i < 5 ? a[t * 10 + 8 + i - 3] : 0.0;
      ASSERT_EQ(got[t * 12 + c], want) << "token " << t << " column " << c;
    }
}

// Per-head products with row blocks of one matrix (MLA's absorbed key and value expansions), both
// orientations, against the dequantized weights in float64.
TEST_P(BackendOps, HeadMatMulUsesEachHeadsRowBlock) {
  const int64_t n = 3, heads = 3, cols = 64, stride = 10, row0 = 2, rows = 5;
  for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    SCOPED_TRACE(TypeName(type));
    const Weights w = MakeWeights(type, heads * stride, cols, 12);
    for (bool transposed : {false, true}) {
      const int64_t in = transposed ? rows : cols, out = transposed ? cols : rows;
      // Inputs at x[t, 1 + h * (in + 2)], outputs at y[t, h * out].
      const std::vector<float> xs = Random(n * (1 + heads * (in + 2)), 13);
      const Tensor x = Put(xs, n, 1 + heads * (in + 2)), y = Put(std::vector<float>(n * heads * out), n, heads * out);
      be_->HeadMatMul({&w.view, static_cast<int>(heads), stride, row0, rows, transposed, 1, in + 2, 0, out}, x, y);
      const std::vector<float> got = Get(y);
      std::vector<double> want(n * heads * out, 0.0);
      for (int64_t t = 0; t < n; ++t)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t c = 0; c < cols; ++c) {
              const double wv = w.deq[(h * stride + row0 + i) * cols + c];
              if (transposed)
                want[t * heads * out + h * out + c] += wv * xs[t * x.cols + 1 + h * (in + 2) + i];
              else
                want[t * heads * out + h * out + i] += wv * xs[t * x.cols + 1 + h * (in + 2) + c];
            }
      ExpectClose(got, want, 1e-5, transposed ? "transposed" : "plain");
    }
  }
}

// y = W x for every weight type the decoder meets, against the dequantized weights in float64.
// Quantized weights pair with 8-bit activations (one scale per block of 32 or 256, rounding to
// nearest), whose error on a dot product is at most sum_i |w_i| * max|x_block| / 254 per block; the
// bound below is twice that plus float32 summation noise. A wrong row, block or scale misses by
// about |W x| itself, several times the bound on these sizes.
TEST_P(BackendOps, MatMulMatchesTheDequantizedProduct) {
  const int64_t n = 5, cols = 256;
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K}) {
    SCOPED_TRACE(TypeName(type));
    for (int64_t rows : {int64_t{13}, int64_t{64}}) {
      const Weights w = MakeWeights(type, rows, cols, 7);
      const std::vector<float> xs = Random(n * cols, 8);
      const Tensor x = Put(xs, n, cols), y = Put(std::vector<float>(n * rows), n, rows);
      const MatMulOp op{&w.view, x, y};
      be_->MatMul({&op, 1});
      const std::vector<float> got = Get(y);
      const bool exact = type == DType::kF32;
      for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          double want = 0, mag = 0, act = 0;
          for (int64_t i = 0; i < cols; ++i) {
            want += double(w.deq[r * cols + i]) * xs[t * cols + i];
            mag += std::abs(double(w.deq[r * cols + i]) * xs[t * cols + i]);
          }
          for (int64_t b = 0; b < cols; b += 32) {
            double mx = 0, sw = 0;
            for (int64_t i = b; i < b + 32; ++i) {
              mx = std::max(mx, std::abs(double(xs[t * cols + i])));
              sw += std::abs(double(w.deq[r * cols + i]));
            }
            act += sw * mx / 254;
          }
          const double bound = (exact ? 0 : 2 * act) + 1e-5 * mag + 1e-6;
          ASSERT_LE(std::abs(got[t * rows + r] - want), bound) << "token " << t << " row " << r;
        }
    }
  }
}

TEST_P(BackendOps, MatMulGroupEqualsSeparateProductsAndConfinesNaN) {
  const int64_t n = 4, cols = 96;
  const Weights a = MakeWeights(DType::kQ8_0, 24, cols, 9), b = MakeWeights(DType::kF16, 17, cols, 10),
                c = MakeWeights(DType::kQ4_0, 32, cols, 11);
  std::vector<float> xs = Random(n * cols, 12);
  xs[2 * cols + 5] = NAN;  // token 2's activations
  const Tensor x = Put(xs, n, cols);
  const Tensor ya = Put(std::vector<float>(n * 24), n, 24), yb = Put(std::vector<float>(n * 17), n, 17),
               yc = Put(std::vector<float>(n * 32), n, 32);
  const MatMulOp group[3] = {{&a.view, x, ya}, {&b.view, x, yb}, {&c.view, x, yc}};
  be_->MatMul(group);
  for (const MatMulOp& op : group) {
    const Tensor alone = Put(std::vector<float>(op.y.size()), op.y.rows, op.y.cols);
    const MatMulOp one{op.w, x, alone};
    be_->MatMul({&one, 1});
    const std::vector<float> g = Get(op.y), s = Get(alone);
    for (size_t i = 0; i < g.size(); ++i) {
      const int64_t t = static_cast<int64_t>(i) / op.y.cols;
      if (t == 2) continue;
      ASSERT_EQ(g[i], s[i]) << "group and single product differ at " << i;
      ASSERT_TRUE(std::isfinite(g[i])) << "token 2's NaN reached token " << t;
    }
  }
}

TEST_P(BackendOps, GatedActivations) {
  const int64_t n = 77;
  const std::vector<float> g = Random(n, 13, -9, 9), u = Random(n, 14, -9, 9);
  for (FfnKind kind : {FfnKind::kSwiGlu, FfnKind::kGeGlu, FfnKind::kSwiGluClamped}) {
    const Tensor gate = Put(g, 1, n), up = Put(u, 1, n);
    const ActivationOp op{kind, 1.702f, 7.0f};
    be_->Activation(op, gate, up);
    std::vector<double> want(n);
    for (int64_t i = 0; i < n; ++i) {
      const double x = g[i], y = u[i];
      if (kind == FfnKind::kSwiGlu) want[i] = x / (1 + std::exp(-x)) * y;
      if (kind == FfnKind::kGeGlu)
        want[i] = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * y;
      if (kind == FfnKind::kSwiGluClamped) {
        const double gc = std::min(x, 7.0), uc = std::clamp(y, -7.0, 7.0);
        want[i] = gc / (1 + std::exp(-1.702 * gc)) * (uc + 1);
      }
    }
    ExpectClose(Get(gate), want, 2e-6, "activation");
  }
}

// A small paged KV storage laid out by hand: `slots` blocks of 4 positions per layer, one layer.
struct TestKv {
  static constexpr int kShift = 2;  // blocks of 4 positions
  KvLayout layout;
  std::vector<uint8_t> k, v;

  TestKv(KvTypes types, int n_head_kv, int hd, int slots, bool sliding = false) {
    layout.types = types;
    layout.block_shift = kShift;
    KvLayout::Layer l;
    l.k_row_bytes = RowBytes(types.k, int64_t{n_head_kv} * hd);
    l.v_row_bytes = RowBytes(types.v, int64_t{n_head_kv} * hd);
    l.k_head_bytes = RowBytes(types.k, hd);
    l.v_head_bytes = RowBytes(types.v, hd);
    l.sliding = sliding;
    k.resize(l.k_row_bytes * slots << kShift);
    v.resize(l.v_row_bytes * slots << kShift);
    l.k = k.data();
    l.v = v.data();
    layout.layers.push_back(l);
  }
};

// Sequences with their block tables (scattered, out of order) and the batch's tokens.
struct TestBatch {
  PagedBatchTables tables;
  void AddSequence(const KvLayout* kv, std::vector<int32_t> blocks, std::vector<int32_t> windows = {}) {
    tables.kv.push_back(kv);
    for (size_t i = 0; i < blocks.size(); ++i) {
      tables.block.push_back(blocks[i]);
      tables.window.push_back(windows.empty() ? -1 : windows[i]);
    }
    tables.table_begin.push_back(static_cast<int32_t>(tables.block.size()));
  }
  void AddToken(int seq, int64_t pos, bool logits = false) {
    tables.token.push_back(0);
    tables.pos.push_back(pos);
    tables.seq.push_back(seq);
    tables.logits.push_back(logits);
  }
};

void Rope(std::vector<double>& x, int heads, int hd, int64_t pos, const RopeTable& r) {
  const int half = r.n_rot / 2;
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < half; ++i) {
      const double th = double(pos) * r.inv_freq[i], c = std::cos(th) * r.attn_factor, s = std::sin(th) * r.attn_factor;
      const int a = r.layout == RopeLayout::kAdjacent ? 2 * i : i, b = r.layout == RopeLayout::kAdjacent ? 2 * i + 1 : i + half;
      const double xa = x[h * hd + a], xb = x[h * hd + b];
      x[h * hd + a] = xa * c - xb * s;
      x[h * hd + b] = xa * s + xb * c;
    }
}

TEST_P(BackendOps, RopeAndStoreRotatesAndStoresEveryKvType) {
  const int n_head = 4, n_kv = 2, hd = 64, n = 3;
  std::vector<float> inv_freq(24);  // n_rot 48 < hd: the last 16 dimensions stay as they are
  for (int i = 0; i < 24; ++i) inv_freq[i] = std::pow(10000.0f, -2.0f * i / 48);
  for (RopeLayout layout : {RopeLayout::kAdjacent, RopeLayout::kNeox}) {
    for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
      SCOPED_TRACE(TypeName(type));
      TestKv kv({type, type}, n_kv, hd, 8);
      TestBatch b;
      b.AddSequence(&kv.layout, {5, 2});  // positions 0..3 in block 5, 4..7 in block 2
      for (int64_t p : {3, 4, 6}) b.AddToken(0, p);
      const PagedBatch batch = b.tables.View();
      const std::vector<float> qs = Random(n * n_head * hd, 15), ks = Random(n * n_kv * hd, 16),
                               vs = Random(n * n_kv * hd, 17);
      const Tensor q = Put(qs, n, n_head * hd), k = Put(ks, n, n_kv * hd), v = Put(vs, n, n_kv * hd);
      const RopeOp op{{48, layout, 0.9f, inv_freq.data()}, n_head, n_kv, hd};
      be_->RopeAndStore(op, 0, q, k, v, batch);
      const std::vector<float> q_got = Get(q), k_got = Get(k);
      for (int t = 0; t < n; ++t) {
        std::vector<double> qw(qs.begin() + t * n_head * hd, qs.begin() + (t + 1) * n_head * hd);
        std::vector<double> kw(ks.begin() + t * n_kv * hd, ks.begin() + (t + 1) * n_kv * hd);
        Rope(qw, n_head, hd, batch.pos[t], op.table);
        Rope(kw, n_kv, hd, batch.pos[t], op.table);
        for (int i = 0; i < n_head * hd; ++i) ASSERT_NEAR(q_got[t * n_head * hd + i], qw[i], 1e-5) << "q " << t;
        // The stored rows, read back from where the block table says they live.
        std::vector<float> k_row(n_kv * hd), v_row(n_kv * hd);
        Traits(type).to_float(batch.K(0, t, batch.pos[t]), k_row.data(), n_kv * hd);
        Traits(type).to_float(batch.V(0, t, batch.pos[t]), v_row.data(), n_kv * hd);
        const double tol = type == DType::kF32 ? 1e-5 : type == DType::kQ4_0 ? 0.15 : type == DType::kQ8_0 ? 0.01 : 0.008;
        for (int i = 0; i < n_kv * hd; ++i) {
          ASSERT_NEAR(k_got[t * n_kv * hd + i], kw[i], 1e-5) << "k " << t;
          ASSERT_NEAR(k_row[i], kw[i], tol) << "stored k " << t << " at " << i;
          ASSERT_NEAR(v_row[i], vs[t * n_kv * hd + i], tol) << "stored v " << t << " at " << i;
        }
      }
    }
  }
}

// Attention reference: token t, head h over its sequence's stored rows [first, pos], as floats
// read back from the storage, softmax (with the sink, if any) and weighted sum in float64.
std::vector<double> AttentionRef(const AttentionOp& op, const PagedBatch& b, const std::vector<float>& q, DType kt, DType vt) {
  const int hd = op.head_dim, group = op.n_head / op.n_head_kv;
  std::vector<double> out(static_cast<size_t>(b.n) * op.n_head * hd);
  std::vector<float> k(hd), v(hd);
  for (int t = 0; t < b.n; ++t)
    for (int h = 0; h < op.n_head; ++h) {
      const int64_t pos = b.pos[t], first = op.window > 0 ? std::max<int64_t>(0, pos - op.window + 1) : 0;
      const int kvh = h / group;
      std::vector<double> s;
      for (int64_t j = first; j <= pos; ++j) {
        Traits(kt).to_float(b.K(0, t, j) + kvh * b.Kv(t).layers[0].k_head_bytes, k.data(), hd);
        double d = 0;
        for (int i = 0; i < hd; ++i) d += double(q[(int64_t(t) * op.n_head + h) * hd + i]) * k[i];
        s.push_back(d * op.scale);
      }
      double mx = op.sinks ? op.sinks[h] : -INFINITY;
      for (double x : s) mx = std::max(mx, x);
      double sum = op.sinks ? std::exp(op.sinks[h] - mx) : 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t j = first; j <= pos; ++j) {
        Traits(vt).to_float(b.V(0, t, j) + kvh * b.Kv(t).layers[0].v_head_bytes, v.data(), hd);
        for (int i = 0; i < hd; ++i) out[(int64_t(t) * op.n_head + h) * hd + i] += s[j - first] / sum * v[i];
      }
    }
  return out;
}

// Fills every row a sequence's tokens attend to (positions [0, len)) with random values.
void FillRows(const PagedBatch& b, int t, int64_t len, int row_elems, uint32_t seed, bool nan = false) {
  const KvLayout& kv = b.Kv(t);
  for (int64_t j = 0; j < len; ++j) {
    std::vector<float> row = Random(row_elems, seed + static_cast<uint32_t>(j), -2, 2);
    if (nan) row[3] = NAN;
    Traits(kv.types.k).from_float(row.data(), b.K(0, t, j), row_elems);
    row = Random(row_elems, seed + 1000 + static_cast<uint32_t>(j), -2, 2);
    if (nan) row[5] = NAN;
    Traits(kv.types.v).from_float(row.data(), b.V(0, t, j), row_elems);
  }
}

TEST_P(BackendOps, PagedAttentionOverEveryKvType) {
  const int n_kv = 2, hd = 64;
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    for (int variant = 0; variant < 3; ++variant) {  // plain GQA; a sliding window; sinks and MHA
      SCOPED_TRACE(std::string(TypeName(type)) + " variant " + std::to_string(variant));
      const int n_head = variant == 2 ? 2 : 6;
      TestKv kv_a({type, type}, n_kv, hd, 16), kv_b({type, type}, n_kv, hd, 16);
      TestBatch tb;
      tb.AddSequence(&kv_a.layout, {9, 3, 14, 0, 7});    // 20 positions, blocks scattered
      tb.AddSequence(&kv_b.layout, {1, 12, 5});          // another storage
      for (int64_t p = 9; p < 17; ++p) tb.AddToken(0, p);  // a prompt chunk of sequence 0
      tb.AddToken(1, 10);                                  // one decoded token of sequence 1
      const PagedBatch b = tb.tables.View();
      FillRows(b, 0, 17, n_kv * hd, 100);
      FillRows(b, b.n - 1, 11, n_kv * hd, 200);
      AttentionOp op;
      op.n_head = n_head, op.n_head_kv = n_kv, op.head_dim = hd, op.scale = 1 / std::sqrt(float(hd));
      op.window = variant == 1 ? 5 : 0;
      const std::vector<float> sinks = Random(n_head, 18, -1, 3);
      op.sinks = variant == 2 ? sinks.data() : nullptr;
      const std::vector<float> qs = Random(b.n * n_head * hd, 19);
      const Tensor q = Put(qs, b.n, n_head * hd), out = Put(std::vector<float>(b.n * n_head * hd), b.n, n_head * hd);
      be_->Attention(op, 0, q, b, out);
      ExpectClose(Get(out), AttentionRef(op, b, qs, type, type), 2e-5, "attention");
    }
  }
}

TEST_P(BackendOps, AttentionConfinesANaNToItsSequence) {
  const int n_kv = 1, n_head = 4, hd = 32;
  for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0}) {  // the exact path and the flash path
  SCOPED_TRACE(TypeName(type));
  TestKv kv({type, type}, n_kv, hd, 8);
  TestBatch tb;
  tb.AddSequence(&kv.layout, {0, 1});
  tb.AddSequence(&kv.layout, {2, 3});
  tb.AddToken(0, 6);
  tb.AddToken(1, 7);
  const PagedBatch b = tb.tables.View();
  FillRows(b, 0, 7, n_kv * hd, 300, /*nan=*/true);
  FillRows(b, 1, 8, n_kv * hd, 400);
  AttentionOp op;
  op.n_head = n_head, op.n_head_kv = n_kv, op.head_dim = hd, op.scale = 0.2f;
  const std::vector<float> qs = Random(2 * n_head * hd, 20);
  const Tensor q = Put(qs, 2, n_head * hd), out = Put(std::vector<float>(2 * n_head * hd), 2, n_head * hd);
  be_->Attention(op, 0, q, b, out);
  const std::vector<float> got = Get(out);
  const std::vector<double> want = AttentionRef(op, b, qs, type, type);
  // The NaN row reaches every output of its own sequence (for Q8_0 the quantizer decides what a
  // NaN element stores, so only the other sequence is checked).
  if (type != DType::kQ8_0) {
    for (int i = 0; i < n_head * hd; ++i) ASSERT_TRUE(std::isnan(got[i])) << i;
  }
  for (int i = n_head * hd; i < 2 * n_head * hd; ++i) ASSERT_NEAR(got[i], want[i], 1e-5) << i;
  }
}

// Contexts of many cache blocks (the CPU backend walks them in blocks of 64 rows, and splits a
// decoded token's rows across threads): a prompt chunk and a decoded token at depth ~700, plain,
// with a sliding window that starts mid-block, and with sinks; head sizes on and off the 8-float
// grid. Tolerance as for the short contexts (2e-5 relative to 1 + |want|): the float sums of 700
// weights stay within a few eps of the float64 reference.
TEST_P(BackendOps, AttentionAtDepthOverManyBlocks) {
  const int n_kv = 1, n_head = 2;
  const int64_t depth = 700;
  const int slots = 180;  // blocks of 4 positions
  for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    for (int hd : {64, 36}) {
      if (type == DType::kQ8_0 && hd % 32 != 0) continue;
      for (int variant = 0; variant < 3; ++variant) {  // plain; window 150; sinks
        SCOPED_TRACE(std::string(TypeName(type)) + " hd " + std::to_string(hd) + " variant " + std::to_string(variant));
        TestKv kv({type, type}, n_kv, hd, slots);
        std::vector<int32_t> blocks(slots);
        for (int i = 0; i < slots; ++i) blocks[i] = (i * 37) % slots;  // scattered (37 is prime to 180)
        TestBatch tb;
        tb.AddSequence(&kv.layout, blocks);
        for (int64_t p = depth - 40; p < depth; ++p) tb.AddToken(0, p);  // a prompt chunk
        const PagedBatch chunk = tb.tables.View();
        FillRows(chunk, 0, depth + 1, n_kv * hd, 600);
        TestBatch td;
        td.AddSequence(&kv.layout, blocks);
        td.AddToken(0, depth);  // one decoded token
        AttentionOp op;
        op.n_head = n_head, op.n_head_kv = n_kv, op.head_dim = hd, op.scale = 1 / std::sqrt(float(hd));
        op.window = variant == 1 ? 150 : 0;
        const std::vector<float> sinks = Random(n_head, 22, -1, 3);
        op.sinks = variant == 2 ? sinks.data() : nullptr;
        for (const PagedBatch& b : {chunk, td.tables.View()}) {
          const std::vector<float> qs = Random(b.n * n_head * hd, 23, -3, 3);
          const Tensor q = Put(qs, b.n, n_head * hd), out = Put(std::vector<float>(b.n * n_head * hd), b.n, n_head * hd);
          be_->Attention(op, 0, q, b, out);
          ExpectClose(Get(out), AttentionRef(op, b, qs, type, type), 2e-5, "attention at depth");
        }
      }
    }
  }
}

TEST_P(BackendOps, SlidingLayersReadWindowParts) {
  const int n_kv = 1, n_head = 2, hd = 32;
  TestKv kv({DType::kF16, DType::kF16}, n_kv, hd, 8, /*sliding=*/true);
  TestBatch tb;
  tb.AddSequence(&kv.layout, {6, 7, 4}, {3, 0, 5});  // block ids unused: rows live in window parts
  tb.AddToken(0, 10);
  const PagedBatch b = tb.tables.View();
  FillRows(b, 0, 11, n_kv * hd, 500);
  AttentionOp op;
  op.n_head = n_head, op.n_head_kv = n_kv, op.head_dim = hd, op.scale = 0.3f, op.window = 6;
  const std::vector<float> qs = Random(n_head * hd, 21);
  const Tensor q = Put(qs, 1, n_head * hd), out = Put(std::vector<float>(n_head * hd), 1, n_head * hd);
  be_->Attention(op, 0, q, b, out);
  ExpectClose(Get(out), AttentionRef(op, b, qs, DType::kF16, DType::kF16), 2e-5, "windowed attention");
  // Row 10 lives in window part 5 at offset 2 (block 2 of the table), not in block 4.
  EXPECT_EQ(b.K(0, 0, 10), kv.k.data() + (5 * 4 + 2) * kv.layout.layers[0].k_row_bytes);
}

// The routed experts against a float64 reference: router (with bias), top-k by logit (ties to the
// lower id), softmax weights (renormalised, or over all experts), per-expert gated FFN with biases,
// weighted sum. F32 experts, so only summation order separates the two.
TEST_P(BackendOps, MoeMatchesTheReference) {
  const int64_t n = 6, e = 48, ff = 40;
  const int ne = 5, k = 2;
  const Weights router = MakeWeights(DType::kF32, ne, e, 22);
  std::vector<Weights> g, u, d;
  std::vector<uint8_t> gb, ub, db;  // stacks
  auto stack = [](std::vector<Weights>& ws, DType type, int64_t rows, int64_t cols, uint32_t seed, std::vector<uint8_t>& bytes) {
    for (int x = 0; x < 5; ++x) {
      ws.push_back(MakeWeights(type, rows, cols, seed + x));
      bytes.insert(bytes.end(), ws.back().bytes.begin(), ws.back().bytes.end());
    }
    return ExpertsView{type, 5, rows, cols, bytes.data(), RowBytes(type, cols) * rows};
  };
  for (RouterKind kind : {RouterKind::kSoftmaxTopK, RouterKind::kTopKSoftmax}) {
    g.clear(), u.clear(), d.clear(), gb.clear(), ub.clear(), db.clear();
    MoeOp op;
    op.n_expert = ne, op.n_expert_used = k, op.n_embd = e, op.n_ff = ff;
    op.router_kind = kind, op.norm_topk = kind == RouterKind::kTopKSoftmax ? false : true;
    op.act = {kind == RouterKind::kTopKSoftmax ? FfnKind::kSwiGluClamped : FfnKind::kSwiGlu, 1.702f, 7.0f};
    op.router = &router.view;
    op.gate = stack(g, DType::kF32, ff, e, 30, gb);
    op.up = stack(u, DType::kF32, ff, e, 40, ub);
    op.down = stack(d, DType::kF32, e, ff, 50, db);
    const std::vector<float> rbias = Random(ne, 23), gbias = Random(ne * ff, 24), ubias = Random(ne * ff, 25),
                             dbias = Random(ne * e, 26);
    if (kind == RouterKind::kTopKSoftmax) {
      op.router_bias = rbias.data(), op.gate_b = gbias.data(), op.up_b = ubias.data(), op.down_b = dbias.data();
    }
    const std::vector<float> xs = Random(n * e, 27);
    const Tensor xn = Put(xs, n, e), out = Put(std::vector<float>(n * e), n, e);
    be_->Moe(op, xn, out);
    std::vector<double> want(n * e);
    for (int64_t t = 0; t < n; ++t) {
      std::vector<double> lg(ne);
      for (int x = 0; x < ne; ++x) {
        for (int64_t i = 0; i < e; ++i) lg[x] += double(router.deq[x * e + i]) * xs[t * e + i];
        if (op.router_bias) lg[x] += op.router_bias[x];
      }
      std::vector<int> order(ne);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return lg[a] > lg[b]; });
      const double mx = lg[order[0]];
      double denom = 0;
      for (int j = 0; j < (op.norm_topk || kind == RouterKind::kTopKSoftmax ? k : ne); ++j) denom += std::exp(lg[order[j]] - mx);
      for (int j = 0; j < k; ++j) {
        const int x = order[j];
        const double w = std::exp(lg[x] - mx) / denom;
        std::vector<double> h(ff);
        for (int64_t r = 0; r < ff; ++r) {
          double a = 0, c = 0;
          for (int64_t i = 0; i < e; ++i) {
            a += double(g[x].deq[r * e + i]) * xs[t * e + i];
            c += double(u[x].deq[r * e + i]) * xs[t * e + i];
          }
          if (op.gate_b) a += op.gate_b[x * ff + r];
          if (op.up_b) c += op.up_b[x * ff + r];
          if (op.act.kind == FfnKind::kSwiGlu) {
            h[r] = a / (1 + std::exp(-a)) * c;
          } else {
            const double gc = std::min(a, 7.0), uc = std::clamp(c, -7.0, 7.0);
            h[r] = gc / (1 + std::exp(-1.702 * gc)) * (uc + 1);
          }
        }
        for (int64_t i = 0; i < e; ++i) {
          double y = 0;
          for (int64_t r = 0; r < ff; ++r) y += double(d[x].deq[i * ff + r]) * h[r];
          if (op.down_b) y += op.down_b[x * e + i];
          want[t * e + i] += w * y;
        }
      }
    }
    ExpectClose(Get(out), want, 2e-5, kind == RouterKind::kSoftmaxTopK ? "moe softmax-topk" : "moe topk-softmax");
  }
}

TEST_P(BackendOps, LogitsOfTheRowsThatAskOnly) {
  const int64_t n = 4, e = 40, vocab = 29;
  const Weights out = MakeWeights(DType::kF32, vocab, e, 28);
  const std::vector<float> xs = Random(n * e, 29, -4, 4), norm = Random(e, 30);
  const Tensor x = Put(xs, n, e);
  const uint8_t want_rows[4] = {0, 1, 0, 1};
  std::vector<float> got(2 * vocab, -1);
  be_->Logits(x, want_rows, norm.data(), 1e-6f, out.view, got.data());
  std::vector<double> want;
  for (int64_t t : {1, 3}) {
    double ss = 0;
    for (int64_t i = 0; i < e; ++i) ss += double(xs[t * e + i]) * xs[t * e + i];
    const double inv = 1 / std::sqrt(ss / e + 1e-6);
    for (int64_t r = 0; r < vocab; ++r) {
      double y = 0;
      for (int64_t i = 0; i < e; ++i) y += xs[t * e + i] * inv * norm[i] * out.deq[r * e + i];
      want.push_back(y);
    }
  }
  ExpectClose(got, want, 1e-5, "logits");
}

TEST_P(BackendOps, NormedRowsOfTheRowsThatAskOnly) {
  const int64_t n = 5, e = 37;  // off every SIMD grid
  const std::vector<float> xs = Random(n * e, 31, -4, 4), norm = Random(e, 32);
  const Tensor x = Put(xs, n, e);
  for (const bool all : {false, true}) {
    const uint8_t want_rows[5] = {1, 0, 0, 1, 1};
    const std::vector<int64_t> rows = all ? std::vector<int64_t>{0, 1, 2, 3, 4} : std::vector<int64_t>{0, 3, 4};
    std::vector<float> got(rows.size() * e, -1);
    be_->NormedRows(x, all ? nullptr : want_rows, norm.data(), 1e-6f, got.data());
    std::vector<double> want;
    for (int64_t t : rows) {
      double ss = 0;
      for (int64_t i = 0; i < e; ++i) ss += double(xs[t * e + i]) * xs[t * e + i];
      const double inv = 1 / std::sqrt(ss / e + 1e-6);
      for (int64_t i = 0; i < e; ++i) want.push_back(xs[t * e + i] * inv * norm[i]);
    }
    ExpectClose(got, want, 1e-5, all ? "normed rows (all)" : "normed rows");
  }
}

TEST_P(BackendOps, LoraAddMatchesTheReferenceAndSums) {
  // Odd shapes (n_in 13, n_out 7 and 29, ranks 1, 3 and 5) and 1, 5 and 19 tokens (one-token
  // kernels, then tiles); two terms on the same y sum; a NaN in one token's x stays in its row.
  for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{19}}) {
    SCOPED_TRACE(n);
    const int64_t n_in = 13;
    struct Term {
      int64_t rank, n_out;
      float scale;
      int y;  // which output tensor
    };
    const Term terms[3] = {{3, 7, 0.75f, 0}, {1, 29, -2.0f, 1}, {5, 7, 0.5f, 0}};
    std::vector<Weights> as, bs;
    for (int i = 0; i < 3; ++i) {
      as.push_back(MakeWeights(DType::kF32, terms[i].rank, n_in, 40 + i));
      bs.push_back(MakeWeights(DType::kF32, terms[i].n_out, terms[i].rank, 50 + i));
    }
    std::vector<float> xs = Random(n * n_in, 60);
    if (n > 1) xs[1 * n_in + 4] = NAN;  // token 1
    const std::vector<float> y0 = Random(n * 7, 61), y1 = Random(n * 29, 62);
    const Tensor x = Put(xs, n, n_in);
    const Tensor ys[2] = {Put(y0, n, 7), Put(y1, n, 29)};
    std::vector<LoraOp> ops;
    for (int i = 0; i < 3; ++i) ops.push_back({&as[i].view, &bs[i].view, terms[i].scale, x, ys[terms[i].y]});
    be_->LoraAdd(ops);
    std::vector<double> want[2] = {{y0.begin(), y0.end()}, {y1.begin(), y1.end()}};
    for (int i = 0; i < 3; ++i) {
      const Term& tm = terms[i];
      for (int64_t t = 0; t < n; ++t)
        for (int64_t o = 0; o < tm.n_out; ++o) {
          double d = 0;
          for (int64_t r = 0; r < tm.rank; ++r) {
            double u = 0;
            for (int64_t k = 0; k < n_in; ++k) u += double(as[i].deq[r * n_in + k]) * xs[t * n_in + k];
            d += double(bs[i].deq[o * tm.rank + r]) * u;
          }
          want[tm.y][t * tm.n_out + o] += tm.scale * d;
        }
    }
    for (int j = 0; j < 2; ++j) {
      const std::vector<float> got = Get(ys[j]);
      for (size_t i = 0; i < got.size(); ++i) {
        const int64_t t = static_cast<int64_t>(i) / ys[j].cols;
        if (n > 1 && t == 1) {
          ASSERT_TRUE(std::isnan(got[i])) << "token 1's NaN did not reach its own output";
          continue;
        }
        ASSERT_LE(std::abs(got[i] - want[j][i]), 1e-5 * (1 + std::abs(want[j][i]))) << "y" << j << " at " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendOps, ::testing::ValuesIn(BackendNames()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// The CPU backend's LoraAdd (two rounds of F32 products through the kernel table) against its
// plain twin CpuLoraAddRef, on a decoder-sized shape, for 1 and 9 tokens, with every kernel
// table this machine runs.
TEST(CpuLora, PlainTwinAgreesWithTheBackendOp) {
  ThreadPool pool(2);
  for (cpu::Isa isa : cpu::AvailableIsas()) {
    SCOPED_TRACE(cpu::IsaName(isa));
    auto be = MakeCpuBackend(pool, cpu::IsaName(isa));
    for (int64_t n : {int64_t{1}, int64_t{9}}) {
      const int64_t n_in = 64, n_out = 128, rank = 8;
      const Weights a = MakeWeights(DType::kF32, rank, n_in, 70), b = MakeWeights(DType::kF32, n_out, rank, 71);
      std::vector<float> xs = Random(n * n_in, 72), y_fast = Random(n * n_out, 73);
      std::vector<float> y_ref = y_fast;
      const LoraOp fast{&a.view, &b.view, 1.5f, {xs.data(), n, n_in}, {y_fast.data(), n, n_out}};
      const LoraOp ref{&a.view, &b.view, 1.5f, {xs.data(), n, n_in}, {y_ref.data(), n, n_out}};
      be->LoraAdd({&fast, 1});
      CpuLoraAddRef(ref);
      for (size_t i = 0; i < y_ref.size(); ++i)
        ASSERT_LE(std::abs(y_fast[i] - y_ref[i]), 1e-5 * (1 + std::abs(y_ref[i]))) << n << " tokens, at " << i;
    }
  }
}

}  // namespace
}  // namespace origami
