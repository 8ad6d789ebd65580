// Test helpers for the CPU kernels: random weight rows and matrices of every type with finite scales,
// the list of weight types the kernel table covers, Q8_0 activations, and a loop over every ISA.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/ref/vec_dot_ref.h"
#include "tensor/blocks.h"
#include "tensor/dtype.h"
#include "tensor/dtype_ref.h"
#include "tensor/nvfp4.h"
#include "util/fp16.h"

namespace origami::cpu::testing {

inline const std::vector<DType>& WeightTypes() {
  static const std::vector<DType> t = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0, DType::kQ5_0,
                                       DType::kQ8_0, DType::kQ4_1, DType::kQ5_1, DType::kQ2_K, DType::kQ3_K,
                                       DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kMXFP4,
                                       DType::kNVFP4};
  return t;
}

// Byte offsets of the fp16 scale fields inside one block of a quantized type.
inline std::vector<size_t> ScaleOffsets(DType t) {
  switch (t) {
    case DType::kQ4_0: case DType::kQ5_0: case DType::kQ8_0: return {0};
    case DType::kQ4_1: case DType::kQ5_1: return {0, 2};
    case DType::kQ2_K: return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
    case DType::kQ3_K: return {offsetof(BlockQ3_K, d)};
    case DType::kQ4_K: return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case DType::kQ5_K: return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case DType::kQ6_K: return {offsetof(BlockQ6_K, d)};
    default: return {};
  }
}

// Random row bytes of n elements of type t: random quants, finite scales of magnitude `scale`
// (times a random factor in [0.5, 1], random sign for the non-K types).
inline std::vector<uint8_t> RandomRow(DType t, int64_t n, std::mt19937& rng, float scale = 0.01f) {
  std::vector<uint8_t> row(RowBytes(t, n));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  if (t == DType::kF32 || t == DType::kF16 || t == DType::kBF16) {
    std::vector<float> f(n);
    for (auto& v : f) v = u(rng) * scale * 100;
    Traits(t).from_float(f.data(), row.data(), n);
    return row;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : row) b = static_cast<uint8_t>(byte(rng));
  if (t == DType::kMXFP4) {
    // The E8M0 byte gives 2^(e - 127) near `scale` (x 2^0..2^-2): random bytes would overflow.
    const int e0 = 127 + static_cast<int>(std::lround(std::log2(scale)));
    for (size_t off = 0; off < row.size(); off += sizeof(BlockMxfp4))
      row[off] = static_cast<uint8_t>(std::clamp(e0 - byte(rng) % 3, 0, 255));
    return row;
  }
  if (t == DType::kNVFP4) {
    // Each UE4M3 byte decodes (halved, as the doubled E2M1 values expect) to about `scale` x [0.5, 1],
    // saturating at 0x7E for huge scales; random bytes would include the NaN-as-zero 0x7F only.
    for (size_t off = 0; off < row.size(); off += sizeof(BlockNvfp4))
      for (size_t s = 0; s < 4; ++s) row[off + s] = Fp32ToUe4m3(2 * scale * (0.5f + 0.5f * std::fabs(u(rng))));
    return row;
  }
  const size_t bs = Traits(t).type_size;
  const bool kquant = Traits(t).block_size == kQK_K;
  for (size_t off = 0; off < row.size(); off += bs) {
    for (size_t s : ScaleOffsets(t)) {
      float v = scale * (0.5f + 0.5f * std::fabs(u(rng)));
      if (!kquant && u(rng) < 0) v = -v;
      const uint16_t h = Fp32ToFp16(v);
      std::memcpy(&row[off + s], &h, 2);
    }
  }
  return row;
}

inline std::vector<float> RandomFloats(int64_t n, std::mt19937& rng, float scale = 1.0f) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> f(n);
  for (auto& v : f) v = u(rng);
  return f;
}

// The rows make_row(0), make_row(1), ... make_row(rows - 1) (byte vectors), one after another.
template <typename MakeRow>
std::vector<uint8_t> StackRows(int64_t rows, MakeRow make_row) {
  std::vector<uint8_t> m;
  for (int64_t r = 0; r < rows; ++r) {
    const auto row = make_row(r);
    m.insert(m.end(), row.begin(), row.end());
  }
  return m;
}

// A row-major matrix of RandomRow rows.
inline std::vector<uint8_t> RandomMatrix(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  return StackRows(rows, [&](int64_t) { return RandomRow(t, cols, rng); });
}

// x as Q8_0 activations, by the scalar table's converter (non-finite blocks get a NaN scale).
inline std::vector<uint8_t> QuantizeQ8_0(const std::vector<float>& x) {
  std::vector<uint8_t> q(RowBytes(DType::kQ8_0, static_cast<int64_t>(x.size())));
  ref::QuantizeActQ8_0(x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

// check(result, isa) for type t's vec_dot of (w, a) on every ISA this machine runs.
template <typename Check>
void ForEachIsaVecDot(DType t, int64_t n, const void* w, const void* a, Check check) {
  for (Isa isa : AvailableIsas()) {
    float result;
    KernelsFor(isa)->For(t).vec_dot(n, &result, w, a);
    check(result, isa);
  }
}

}  // namespace origami::cpu::testing
