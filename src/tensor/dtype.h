// The dtype table: one row per ggml tensor type with its block layout and the reference
// (scalar, exact) conversions to and from float. Ids are ggml's, as stored in GGUF files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace origami {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
  kMXFP4 = 39,
  kNVFP4 = 40,
};

// Elements per super-block of the K-quants.
inline constexpr int kQK_K = 256;

struct TypeTraits {
  DType type;
  const char* name;     // as ggml spells it: "Q4_0", "Q4_K", "BF16"
  int64_t block_size;   // elements per block
  size_t type_size;     // bytes per block
  bool is_quantized;
  // Reference dequantization of n elements (n a multiple of block_size). Null for integer types.
  void (*to_float)(const void* src, float* dst, int64_t n);
  // Reference quantization of n elements (n a multiple of block_size). Null where not supported.
  void (*from_float)(const float* src, void* dst, int64_t n);
};

// The row for a ggml type id, or nullptr when the id is unknown to origami.
const TypeTraits* FindTypeTraits(uint32_t id);
// The row for a known type (never null).
const TypeTraits& Traits(DType t);
// Parses a type name such as "q4_0" or "BF16" (case-insensitive); nullptr if unknown.
const TypeTraits* FindTypeTraitsByName(std::string_view name);

inline const char* TypeName(DType t) { return Traits(t).name; }
// Bytes of n elements of type t (n must be a multiple of the block size).
inline size_t RowBytes(DType t, int64_t n) {
  const TypeTraits& tr = Traits(t);
  return static_cast<size_t>(n / tr.block_size) * tr.type_size;
}

}  // namespace origami
