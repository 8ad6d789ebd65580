// MoE routing and expert traffic, and the MXFP4 reference conversions.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/ref/vec_dot_mxfp4.h"
#include "model/decoder.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "backend/ops.h"
#include "model/synth.h"
#include "tensor/blocks.h"
#include "tensor/dtype.h"
#include "util/thread_pool.h"

namespace origami {
namespace {

std::string TempModel(const std::string& arch, const std::string& type) {
  const auto path = std::filesystem::temp_directory_path() / ("origami-moe-test-" + arch + "-" + type + ".gguf");
  SynthOptions o;
  o.arch = arch;
  o.type = type;
  o.seed = 3;
  o.output = path.string();
  WriteSynthModel(o);
  return o.output;
}

TEST(Route, SoftmaxTopKRenormalizes) {
  MoeOp l;
  l.n_expert = 4;
  l.n_expert_used = 2;
  const float logits[4] = {0.0f, 2.0f, 1.0f, -1.0f};
  int ids[2];
  float w[2];
  Route(l, logits, ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(w[0] + w[1], 1.0, 1e-6);
  l.norm_topk = false;  // plain softmax weights over all four
  Route(l, logits, ids, w);
  const double z = 1 + std::exp(2.0) + std::exp(1.0) + std::exp(-1.0);
  EXPECT_NEAR(w[0], std::exp(2.0) / z, 1e-6);
}

TEST(Route, TopKThenSoftmax) {
  MoeOp l;
  l.n_expert = 3;
  l.n_expert_used = 2;
  l.router_kind = RouterKind::kTopKSoftmax;
  l.norm_topk = false;
  const float logits[3] = {3.0f, -5.0f, 3.0f};  // a tie goes to the lower id
  int ids[2];
  float w[2];
  Route(l, logits, ids, w);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], 0.5, 1e-6);
}

// Decoding one token reads exactly k experts' three matrices per layer, and a prefill runs each
// expert at most once per layer (grouped over the tokens routed to it).
TEST(Moe, OnlyRoutedExpertsAreRead) {
  for (const char* arch : {"qwen3moe", "mixtral", "gpt-oss"}) {
    SCOPED_TRACE(arch);
    auto model = Model::Open(TempModel(arch, "F32"));
    const DecoderSpec& s = model->spec();
    ASSERT_TRUE(s.IsMoe());
    ThreadPool pool(1);
    Decoder dec(s, pool);
    KvCache cache(s, 64);
    std::vector<float> logits(s.n_vocab);
    const int32_t prompt[8] = {1, 72, 101, 108, 108, 111, 44, 32};
    dec.Forward(prompt, 8, 0, cache, logits.data());
    uint64_t k_total = 0, bytes_one = 0, e_total = 0;
    for (const auto& l : s.layers) {
      k_total += l.n_expert_used;
      e_total += l.n_expert;
      bytes_one += static_cast<uint64_t>(l.n_expert_used) * (l.gate_exps.stride + l.up_exps.stride + l.down_exps.stride);
    }
    EXPECT_EQ(dec.moe_stats().routed_tokens, 8 * k_total);
    EXPECT_LE(dec.moe_stats().expert_matmuls, 3 * e_total);
    dec.moe_stats() = {};
    const int32_t next = 119;
    dec.Forward(&next, 1, 8, cache, logits.data());
    EXPECT_EQ(dec.moe_stats().expert_matmuls, 3 * k_total);
    EXPECT_EQ(dec.moe_stats().expert_bytes, bytes_one);
    EXPECT_EQ(dec.moe_stats().routed_tokens, k_total);
    // Active parameters count k of the n experts.
    EXPECT_LT(s.ActiveParameters(), s.TotalParameters());
  }
}

TEST(Mxfp4, DequantFollowsTheSpec) {
  // E8M0 127 is a scale of 1; element j low nibble of byte j, element j + 16 the high nibble.
  BlockMxfp4 b{};
  b.e = 127;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float out[32];
  Traits(DType::kMXFP4).to_float(&b, out, 32);
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], e2m1[j]);
    EXPECT_EQ(out[j + 16], e2m1[15 - j]);
  }
  b.e = 130;  // x 8
  Traits(DType::kMXFP4).to_float(&b, out, 32);
  EXPECT_EQ(out[7], 48.0f);
  b.e = 0;  // 2^-127, a float32 subnormal
  Traits(DType::kMXFP4).to_float(&b, out, 32);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -127));
}

TEST(Mxfp4, QuantizeRoundTripsRepresentableValuesAndDotMatches) {
  std::vector<float> x(64);
  const float e2m1[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int i = 0; i < 64; ++i) x[i] = (i % 2 ? -1.0f : 1.0f) * e2m1[i % 8] * (i < 32 ? 0.25f : 4.0f);
  std::vector<BlockMxfp4> q(2);
  Traits(DType::kMXFP4).from_float(x.data(), q.data(), 64);
  std::vector<float> y(64);
  Traits(DType::kMXFP4).to_float(q.data(), y.data(), 64);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(y[i], x[i]) << i;
  // The scalar MXFP4 x F32 oracle equals dequantize-then-dot (the kernel table pairs MXFP4 with
  // Q8_0 activations; tests/kernels/mxfp4_test.cpp holds those kernels to this oracle).
  ASSERT_NE(cpu::Kernels().For(DType::kMXFP4).vec_dot, nullptr);
  std::vector<float> a(64);
  double want = 0;
  for (int i = 0; i < 64; ++i) want += static_cast<double>(y[i]) * (a[i] = std::sin(i * 0.37f));
  float got = 0;
  cpu::ref::VecDotMxfp4(64, &got, q.data(), a.data());
  EXPECT_NEAR(got, want, 1e-4);
}

}  // namespace
}  // namespace origami
