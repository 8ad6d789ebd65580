// The dtype table.
#include "tensor/dtype.h"

#include <array>
#include <cctype>
#include <string>

#include "tensor/blocks.h"
#include "tensor/dtype_ref.h"
#include "tensor/quantize_k.h"
#include "util/error.h"

namespace origami {

namespace ref {
// dtype_mxfp4.cpp
void DequantMxfp4(const void* src, float* dst, int64_t n);
void QuantMxfp4(const float* src, void* dst, int64_t n);
// dtype_nvfp4.cpp
void DequantNvfp4(const void* src, float* dst, int64_t n);
void QuantNvfp4(const float* src, void* dst, int64_t n);
}  // namespace ref

namespace {

using namespace ref;

constexpr TypeTraits kTable[] = {
    {DType::kF32, "F32", 1, 4, false, DequantF32, QuantF32},
    {DType::kF16, "F16", 1, 2, false, DequantF16, QuantF16},
    {DType::kBF16, "BF16", 1, 2, false, DequantBF16, QuantBF16},
    {DType::kQ4_0, "Q4_0", kQK4_0, sizeof(BlockQ4_0), true, DequantQ4_0, QuantQ4_0},
    {DType::kQ4_1, "Q4_1", kQK4_1, sizeof(BlockQ4_1), true, DequantQ4_1, QuantQ4_1},
    {DType::kQ5_0, "Q5_0", kQK5_0, sizeof(BlockQ5_0), true, DequantQ5_0, QuantQ5_0},
    {DType::kQ5_1, "Q5_1", kQK5_1, sizeof(BlockQ5_1), true, DequantQ5_1, QuantQ5_1},
    {DType::kQ8_0, "Q8_0", kQK8_0, sizeof(BlockQ8_0), true, DequantQ8_0, QuantQ8_0},
    {DType::kQ8_1, "Q8_1", kQK8_1, sizeof(BlockQ8_1), true, DequantQ8_1, QuantQ8_1},
    {DType::kQ2_K, "Q2_K", kQK_K, sizeof(BlockQ2_K), true, DequantQ2_K, QuantQ2_K},
    {DType::kQ3_K, "Q3_K", kQK_K, sizeof(BlockQ3_K), true, DequantQ3_K, QuantQ3_K},
    {DType::kQ4_K, "Q4_K", kQK_K, sizeof(BlockQ4_K), true, DequantQ4_K, QuantQ4_K},
    {DType::kQ5_K, "Q5_K", kQK_K, sizeof(BlockQ5_K), true, DequantQ5_K, QuantQ5_K},
    {DType::kQ6_K, "Q6_K", kQK_K, sizeof(BlockQ6_K), true, DequantQ6_K, QuantQ6_K},
    {DType::kQ8_K, "Q8_K", kQK_K, sizeof(BlockQ8_K), true, DequantQ8_K, QuantQ8_K},
    {DType::kI8, "I8", 1, 1, false, nullptr, nullptr},
    {DType::kI16, "I16", 1, 2, false, nullptr, nullptr},
    {DType::kI32, "I32", 1, 4, false, nullptr, nullptr},
    {DType::kI64, "I64", 1, 8, false, nullptr, nullptr},
    {DType::kF64, "F64", 1, 8, false, nullptr, nullptr},
    {DType::kMXFP4, "MXFP4", kQKMxfp4, sizeof(BlockMxfp4), true, DequantMxfp4, QuantMxfp4},
    {DType::kNVFP4, "NVFP4", kQKNvfp4, sizeof(BlockNvfp4), true, DequantNvfp4, QuantNvfp4},
};

}  // namespace

const TypeTraits* FindTypeTraits(uint32_t id) {
  for (const auto& t : kTable)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const TypeTraits& Traits(DType t) {
  const TypeTraits* tr = FindTypeTraits(static_cast<uint32_t>(t));
  if (!tr) FailKind(ErrorKind::kInternal, "dtype {} missing from the table", static_cast<uint32_t>(t));
  return *tr;
}

const TypeTraits* FindTypeTraitsByName(std::string_view name) {
  std::string up(name);
  for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& t : kTable)
    if (up == t.name) return &t;
  return nullptr;
}

}  // namespace origami
