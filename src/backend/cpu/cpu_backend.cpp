// The CPU backend's element-wise ops, products, rope and the KV store, and the output head.
// Attention and the routed experts are in cpu_attention.cpp and cpu_moe.cpp.
#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/repack.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace origami {

namespace {

class HostBuffer final : public Buffer {
 public:
  explicit HostBuffer(size_t floats) : v_(floats) {}
  float* data() override { return v_.data(); }
  size_t size() const override { return v_.size(); }

 private:
  std::vector<float> v_;
};

// One K or V row (n floats after rope) into the cache in its KV type: F32 as it is, the others by
// the dtype table's reference conversion (round to nearest; Q8_0/Q4_0 one scale per 32 values, as
// ggml quantizes them). O(n) per token and layer, against attention's O(context * n).
void StoreKvRow(DType type, const float* x, uint8_t* dst, int64_t n) {
  if (type == DType::kF32) {
    std::memcpy(dst, x, n * sizeof(float));
  } else {
    Traits(type).from_float(x, dst, n);
  }
}

class HostKv final : public KvMemory {
 public:
  explicit HostKv(size_t bytes) : mem_(bytes) {}
  uint8_t* data() override { return mem_.data(); }
  size_t size() const override { return mem_.size(); }

 private:
  AnonymousBuffer mem_;
};

}  // namespace

std::unique_ptr<KvMemory> HostKvMemory(size_t bytes) { return std::make_unique<HostKv>(bytes); }

void CpuGatedActivation(const ActivationOp& op, const float* gate, const float* up, float* out, int64_t n) {
  switch (op.kind) {
    case FfnKind::kSwiGlu: cpu::SwiGlu(gate, up, out, n); return;
    case FfnKind::kGeGlu: cpu::GeGlu(gate, up, out, n); return;
    case FfnKind::kSwiGluClamped: {
      // gpt-oss: the gate is clamped from above only, the up projection on both sides, and the
      // up term carries a +1 (as in the published reference implementation).
      const float a = op.alpha, lim = op.limit;
      for (int64_t i = 0; i < n; ++i) {
        const float g = std::min(gate[i], lim);
        const float u = std::clamp(up[i], -lim, lim);
        out[i] = g / (1.0f + std::exp(-a * g)) * (u + 1.0f);
      }
      return;
    }
  }
}

CpuBackend::CpuBackend(ThreadPool& pool, const cpu::KernelTable& kernels) : pool_(pool), kernels_(kernels) {}

Layout CpuBackend::PreferredLayout(const MatrixView& w) const { return cpu::RepackTarget(kernels_, w); }

void CpuBackend::Repack(Layout to, const void* src, void* dst, int64_t rows, int64_t cols) const {
  cpu::Repack(to, src, dst, rows, cols);
}

std::unique_ptr<Buffer> CpuBackend::Allocate(size_t floats) { return std::make_unique<HostBuffer>(floats); }

void CpuBackend::Upload(const float* host, Tensor x) { std::copy_n(host, x.size(), x.data); }

void CpuBackend::Download(Tensor x, float* host) { std::copy_n(x.data, x.size(), host); }

void CpuBackend::Embed(const MatrixView& table, std::span<const int32_t> tokens, float scale, Tensor x) {
  const int64_t e = x.cols;
  for (size_t t = 0; t < tokens.size(); ++t) {
    float* row = x.data + static_cast<int64_t>(t) * e;
    cpu::DequantizeRow(table, tokens[t], row);
    if (scale != 1.0f)
      for (int64_t i = 0; i < e; ++i) row[i] *= scale;
  }
}

void CpuBackend::RmsNorm(Tensor x, const float* w, int64_t w_len, float eps, Tensor y) {
  const int64_t runs = x.size() / w_len;
  for (int64_t r = 0; r < runs; ++r) cpu::RmsNorm(x.data + r * w_len, w, y.data + r * w_len, w_len, eps);
}

// Sums in double: a row's mean and variance are the only reductions, and a BERT row's values can
// sit far from zero (the embedding sums), where float sums of squares would lose digits.
void CpuBackend::LayerNorm(Tensor x, const float* w, const float* b, float eps, Tensor y) {
  const int64_t e = x.cols;
  pool_.Run(x.rows, [&](int64_t t, int) {
    const float* in = x.data + t * e;
    float* out = y.data + t * e;
    double sum = 0;
    for (int64_t i = 0; i < e; ++i) sum += in[i];
    const double mean = sum / static_cast<double>(e);
    double ss = 0;
    for (int64_t i = 0; i < e; ++i) ss += (in[i] - mean) * (in[i] - mean);
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(e) + eps));
    const float m = static_cast<float>(mean);
    for (int64_t i = 0; i < e; ++i) out[i] = (in[i] - m) * inv * w[i] + (b ? b[i] : 0.0f);
  });
}

void CpuBackend::Unary(UnaryKind kind, Tensor x) {
  const int64_t c = x.cols;
  pool_.Run(x.rows, [&](int64_t t, int) {
    float* row = x.data + t * c;
    if (kind == UnaryKind::kGelu) {
      for (int64_t i = 0; i < c; ++i) row[i] = 0.5f * row[i] * (1.0f + std::erf(row[i] * 0.70710678118654752f));
    } else {
      for (int64_t i = 0; i < c; ++i) row[i] = std::tanh(row[i]);
    }
  });
}

void CpuBackend::AddBias(Tensor y, const float* b) {
  for (int64_t t = 0; t < y.rows; ++t)
    for (int64_t i = 0; i < y.cols; ++i) y.data[t * y.cols + i] += b[i];
}

void CpuBackend::Add(Tensor x, Tensor y) {
  for (int64_t i = 0; i < x.size(); ++i) x.data[i] += y.data[i];
}

void CpuBackend::CopyColumns(const CopyOp& op, Tensor src, Tensor dst) {
  for (int64_t t = 0; t < src.rows; ++t)
    for (int g = 0; g < op.groups; ++g)
      std::copy_n(src.data + t * src.cols + op.src_col + g * op.src_step, op.width,
                  dst.data + t * dst.cols + op.dst_col + g * op.dst_step);
}

void CpuBackend::MatMul(std::span<const MatMulOp> ops) {
  if (ops.size() == 1) {
    cpu::MatMul(kernels_, *ops[0].w, ops[0].x.data, ops[0].x.rows, ops[0].y.data, pool_, ws_);
    return;
  }
  jobs_.clear();
  for (const MatMulOp& op : ops) jobs_.push_back({op.w, op.x.data, op.x.rows, op.y.data});
  cpu::MatMulGroup(kernels_, jobs_, pool_, ws_);
}

// One task per head: each row of the head's block is converted to float once and used for every
// token of the batch (a dot product, or an axpy for the transposed product, in row order). A
// decoded token thus reads each row once, like a matrix-vector product.
void CpuBackend::HeadMatMul(const HeadMatMulOp& op, Tensor x, Tensor y) {
  const int64_t cols = op.w->cols, n = x.rows;
  pool_.Run(op.n_head, [&](int64_t h, int) {
    std::vector<float> row(cols);
    auto xh = [&](int64_t t) { return x.data + t * x.cols + op.x_col + h * op.x_step; };
    auto yh = [&](int64_t t) { return y.data + t * y.cols + op.y_col + h * op.y_step; };
    if (op.transposed)
      for (int64_t t = 0; t < n; ++t) std::fill_n(yh(t), cols, 0.0f);
    for (int64_t i = 0; i < op.rows; ++i) {
      cpu::DequantizeRow(*op.w, h * op.head_stride + op.row0 + i, row.data());
      for (int64_t t = 0; t < n; ++t) {
        if (op.transposed) cpu::Axpy(xh(t)[i], row.data(), yh(t), cols);
        else yh(t)[i] = cpu::Dot(row.data(), xh(t), cols);
      }
    }
  });
}

void CpuBackend::LoraAdd(std::span<const LoraOp> ops) {
  // Two rounds of F32 products through the kernel table (every op's A x in one group, then every
  // B (A x)), then the scaled sums in op order. Rank is small (8-64), so both rounds together cost
  // rank * (n_in + n_out) multiply-adds per token against the base product's n_in * n_out.
  constexpr size_t kGroup = 64;  // MatMulGroup's limit
  for (size_t first = 0; first < ops.size(); first += kGroup) {
    const std::span<const LoraOp> part = ops.subspan(first, std::min(kGroup, ops.size() - first));
    size_t nu = 0, nv = 0;
    for (const LoraOp& op : part) {
      if (op.a->type != DType::kF32 || op.b->type != DType::kF32 || op.a->cols != op.x.cols ||
          op.b->cols != op.a->rows || op.b->rows != op.y.cols || op.x.rows != op.y.rows)
        FailKind(ErrorKind::kInternal, "LoraAdd: A [{}, {}] and B [{}, {}] do not fit x [{}, {}] -> y [{}, {}]",
                 op.a->rows, op.a->cols, op.b->rows, op.b->cols, op.x.rows, op.x.cols, op.y.rows, op.y.cols);
      nu += static_cast<size_t>(op.x.rows * op.a->rows);
      nv += static_cast<size_t>(op.y.size());
    }
    if (lora_u_.size() < nu) lora_u_.resize(nu);
    if (lora_v_.size() < nv) lora_v_.resize(nv);
    jobs_.clear();
    for (size_t i = 0, off = 0; i < part.size(); off += part[i].x.rows * part[i].a->rows, ++i)
      jobs_.push_back({part[i].a, part[i].x.data, part[i].x.rows, lora_u_.data() + off});
    cpu::MatMulGroup(kernels_, jobs_, pool_, ws_);
    jobs_.clear();
    for (size_t i = 0, ou = 0, ov = 0; i < part.size(); ++i) {
      jobs_.push_back({part[i].b, lora_u_.data() + ou, part[i].x.rows, lora_v_.data() + ov});
      ou += part[i].x.rows * part[i].a->rows;
      ov += part[i].y.size();
    }
    cpu::MatMulGroup(kernels_, jobs_, pool_, ws_);
    const float* v = lora_v_.data();
    for (const LoraOp& op : part) {
      cpu::Axpy(op.scale, v, op.y.data, op.y.size());
      v += op.y.size();
    }
  }
}

void CpuLoraAddRef(const LoraOp& op) {
  const int64_t rank = op.a->rows, n_in = op.a->cols, n_out = op.b->rows;
  const auto* a = static_cast<const float*>(op.a->data);
  const auto* b = static_cast<const float*>(op.b->data);
  std::vector<float> u(rank);
  for (int64_t t = 0; t < op.x.rows; ++t) {
    const float* x = op.x.data + t * n_in;
    for (int64_t r = 0; r < rank; ++r) {
      double s = 0;
      for (int64_t i = 0; i < n_in; ++i) s += static_cast<double>(a[r * n_in + i]) * x[i];
      u[r] = static_cast<float>(s);
    }
    float* y = op.y.data + t * n_out;
    for (int64_t o = 0; o < n_out; ++o) {
      double s = 0;
      for (int64_t r = 0; r < rank; ++r) s += static_cast<double>(b[o * rank + r]) * u[r];
      y[o] += op.scale * static_cast<float>(s);
    }
  }
}

void CpuBackend::Activation(const ActivationOp& op, Tensor gate, Tensor up) {
  CpuGatedActivation(op, gate.data, up.data, gate.data, gate.size());
}

void CpuBackend::RopeAndStore(const RopeOp& op, int il, Tensor q, Tensor k, Tensor v, const PagedBatch& batch) {
  const int64_t kv_dim = k.cols;
  for (int t = 0; t < batch.n; ++t) {
    // The rotated part of every head starts rot_offset values in (its last head ends within x).
    cpu::Rope(q.data + t * q.cols + op.rot_offset, op.n_head, op.head_dim, batch.pos[t], op.table);
    cpu::Rope(k.data + t * kv_dim + op.rot_offset, op.n_head_kv, op.head_dim, batch.pos[t], op.table);
    const KvTypes types = batch.Kv(t).types;
    StoreKvRow(types.k, k.data + t * kv_dim, batch.K(il, t, batch.pos[t]), kv_dim);
    StoreKvRow(types.v, v.data + t * v.cols, batch.V(il, t, batch.pos[t]), v.cols);
  }
}

void CpuBackend::Rope(const RopeOp& op, std::span<const int32_t> pos, Tensor q, Tensor k) {
  for (size_t t = 0; t < pos.size(); ++t) {
    cpu::Rope(q.data + t * q.cols + op.rot_offset, op.n_head, op.head_dim, pos[t], op.table);
    cpu::Rope(k.data + t * k.cols + op.rot_offset, op.n_head_kv, op.head_dim, pos[t], op.table);
  }
}

void CpuBackend::Logits(Tensor x, const uint8_t* want, const float* norm, float eps, const MatrixView& out,
                        float* host_logits) {
  const int64_t e = x.cols;
  head_in_.resize(static_cast<size_t>(x.rows) * e);
  int rows = 0;
  for (int64_t t = 0; t < x.rows; ++t)
    if (!want || want[t]) cpu::RmsNorm(x.data + t * e, norm, &head_in_[rows++ * e], e, eps);
  if (rows > 0) cpu::MatMul(kernels_, out, head_in_.data(), rows, host_logits, pool_, ws_);
}

void CpuBackend::NormedRows(Tensor x, const uint8_t* want, const float* norm, float eps, float* host_rows) {
  const int64_t e = x.cols;
  int64_t rows = 0;
  for (int64_t t = 0; t < x.rows; ++t)
    if (!want || want[t]) cpu::RmsNorm(x.data + t * e, norm, host_rows + rows++ * e, e, eps);
}

}  // namespace origami
