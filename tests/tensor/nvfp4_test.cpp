// NVFP4 (ggml type 40) in the dtype table: decoding bit for bit and the reference quantizer byte
// for byte against the independent numpy oracle (make_nvfp4_vectors.py, nvfp4_vectors.bin), the
// UE4M3 encoder against the decoder, and the round-trip error bound of the quantizer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "tensor/blocks.h"
#include "tensor/dtype.h"
#include "tensor/nvfp4.h"

namespace origami {
namespace {

struct Vectors {
  std::vector<uint8_t> blocks;  // dequantization input
  std::vector<float> values;    // and what it decodes to
  std::vector<float> inputs;    // quantization input
  std::vector<uint8_t> quant;   // and the blocks made of it
};

// Layout in make_nvfp4_vectors.py; the file sits next to this source.
Vectors Load() {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "nvfp4_vectors.bin";
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> d((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Vectors v;
  size_t pos = 0;
  auto take = [&](void* dst, size_t n) {
    if (pos + n > d.size()) return false;
    if (n) std::memcpy(dst, d.data() + pos, n);
    pos += n;
    return true;
  };
  char magic[4];
  uint32_t version = 0, nb = 0, nq = 0;
  if (!take(magic, 4) || std::memcmp(magic, "ONV4", 4) != 0 || !take(&version, 4) || version != 1 || !take(&nb, 4) ||
      nb > (1u << 20)) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  v.blocks.resize(size_t{nb} * 36);
  v.values.resize(size_t{nb} * 64);
  bool ok = take(v.blocks.data(), v.blocks.size()) && take(v.values.data(), v.values.size() * 4) && take(&nq, 4) &&
            nq % 64 == 0 && nq <= (1u << 24);
  if (ok) {
    v.inputs.resize(nq);
    v.quant.resize(size_t{nq} / 64 * 36);
    ok = take(v.inputs.data(), v.inputs.size() * 4) && take(v.quant.data(), v.quant.size()) && pos == d.size();
  }
  if (!ok) ADD_FAILURE() << "malformed " << path;
  return v;
}

TEST(Nvfp4, TableRow) {
  const TypeTraits* tr = FindTypeTraits(40);
  ASSERT_NE(tr, nullptr);
  EXPECT_EQ(tr->type, DType::kNVFP4);
  EXPECT_STREQ(tr->name, "NVFP4");
  EXPECT_EQ(tr->block_size, 64);
  EXPECT_EQ(tr->type_size, 36u);
  EXPECT_TRUE(tr->is_quantized);
  EXPECT_EQ(FindTypeTraitsByName("nvfp4"), tr);
}

TEST(Nvfp4, DequantMatchesNumpyBitForBit) {
  const Vectors v = Load();
  ASSERT_GE(v.blocks.size(), 64u * 36) << "the vectors must cover all 256 scale bytes";
  const int64_t n = static_cast<int64_t>(v.values.size());
  std::vector<float> got(n, -1.0f);
  Traits(DType::kNVFP4).to_float(v.blocks.data(), got.data(), n);
  int bad = 0;
  for (int64_t i = 0; i < n && bad < 10; ++i) {
    if (std::memcmp(&got[i], &v.values[i], 4) != 0) {
      ++bad;
      ADD_FAILURE() << "element " << i << " (block " << i / 64 << ", scale byte "
                    << int(v.blocks[(i / 64) * 36 + (i % 64) / 16]) << "): got " << got[i] << ", numpy "
                    << v.values[i];
    }
  }
}

TEST(Nvfp4, QuantMatchesNumpyByteForByte) {
  const Vectors v = Load();
  ASSERT_FALSE(v.inputs.empty());
  const int64_t n = static_cast<int64_t>(v.inputs.size());
  std::vector<uint8_t> got(v.quant.size(), 0xAA);
  Traits(DType::kNVFP4).from_float(v.inputs.data(), got.data(), n);
  for (size_t b = 0; b < got.size() / 36; ++b)
    EXPECT_EQ(std::memcmp(&got[b * 36], &v.quant[b * 36], 36), 0) << "block " << b;
}

// Every byte below 0x78 is the encoding of its own decoded value; 0x7F and bit-7 bytes are never
// produced; zero, negatives and NaN give 0; huge values saturate at 0x7E.
TEST(Nvfp4, Ue4m3EncoderInvertsDecoder) {
  EXPECT_EQ(Ue4m3Half(0x00), 0.0f);
  EXPECT_EQ(Ue4m3Half(0x7F), 0.0f);
  EXPECT_EQ(Ue4m3Half(0x38), 0.5f);             // exponent 7, mantissa 0: 1, halved
  EXPECT_EQ(Ue4m3Half(0x01), std::ldexp(1.0f, -10));  // smallest subnormal 2^-9, halved
  EXPECT_EQ(Ue4m3Half(0x7E), 224.0f);           // 448, halved
  EXPECT_EQ(Ue4m3Half(0xFF), 240.0f);           // bit 7 ignored: exponent 15, mantissa 7
  EXPECT_EQ(Ue4m3Half(0xB8), 0.5f);
  for (int b = 1; b < 0x78; ++b)
    EXPECT_EQ(Fp32ToUe4m3(2 * Ue4m3Half(static_cast<uint8_t>(b))), b) << "byte " << b;
  // The reference encoder saturates everything with exponent 15 (>= 256) to 0x7E (448).
  for (int b = 0x78; b < 0x7F; ++b)
    EXPECT_EQ(Fp32ToUe4m3(2 * Ue4m3Half(static_cast<uint8_t>(b))), 0x7E) << "byte " << b;
  EXPECT_EQ(Fp32ToUe4m3(0.0f), 0);
  EXPECT_EQ(Fp32ToUe4m3(-1.0f), 0);
  EXPECT_EQ(Fp32ToUe4m3(NAN), 0);
  EXPECT_EQ(Fp32ToUe4m3(1e30f), 0x7E);
  EXPECT_EQ(Fp32ToUe4m3(INFINITY), 0x7E);
  EXPECT_EQ(Fp32ToUe4m3(1.0625f), 0x39);  // halfway 1 .. 1.125 rounds up (round bit set)
  EXPECT_EQ(Fp32ToUe4m3(1.06f), 0x38);
}

// Round trip: per element |x - y| <= max(s (1 + 1/16) + 2^-10, 6 x 2^-10) with s = amax / 6 of
// its sub-block: the scale is s rounded to 3 mantissa bits (relative error <= 2^-4) or, below
// 2^-6, to a multiple of 2^-9 (absolute error <= 2^-10); x / scale then lies within 1 of the
// E2M1 grid {0, 0.5, 1, 1.5, 2, 3, 4, 6} (largest gap 2, or up to 6.4 beyond 6), and a scale
// that rounds to 0 leaves |x| <= amax < 6 x 2^-10. Values on the grid times 1 come back exactly.
TEST(Nvfp4, RoundTripWithinBound) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  const float mags[] = {0.0f, 1e-5f, 1e-3f, 0.01f, 1.0f, 30.0f, 200.0f};
  const int64_t n = 64 * 35;
  std::vector<float> x(n), y(n);
  for (int64_t i = 0; i < n; ++i) x[i] = g(rng) * mags[(i / 16) % 7];
  std::vector<uint8_t> q(RowBytes(DType::kNVFP4, n));
  Traits(DType::kNVFP4).from_float(x.data(), q.data(), n);
  Traits(DType::kNVFP4).to_float(q.data(), y.data(), n);
  for (int64_t s = 0; s < n / 16; ++s) {
    float amax = 0;
    for (int j = 0; j < 16; ++j) amax = std::fmax(amax, std::fabs(x[s * 16 + j]));
    const double sc = amax / 6.0;
    const double bound = std::fmax(sc * (1 + 1.0 / 16) + std::ldexp(1.0, -10), 6 * std::ldexp(1.0, -10)) * (1 + 1e-6);
    for (int j = 0; j < 16; ++j) {
      const int64_t i = s * 16 + j;
      ASSERT_TRUE(std::isfinite(y[i]));
      EXPECT_LE(std::fabs(static_cast<double>(x[i]) - y[i]), bound)
          << "element " << i << " x " << x[i] << " y " << y[i];
    }
  }
  const float grid[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  std::vector<float> gx(64);
  for (int i = 0; i < 64; ++i) gx[i] = grid[(i * 7) % 16];
  for (int s = 0; s < 4; ++s) gx[s * 16 + 3] = 6.0f;  // amax 6 in every sub-block: scale exactly 1
  std::vector<uint8_t> gq(36);
  std::vector<float> gy(64);
  Traits(DType::kNVFP4).from_float(gx.data(), gq.data(), 64);
  Traits(DType::kNVFP4).to_float(gq.data(), gy.data(), 64);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(gy[i], gx[i]) << "grid element " << i;
}

}  // namespace
}  // namespace origami
