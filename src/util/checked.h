// Overflow-checked integer arithmetic for sizes and offsets that come from untrusted bytes.
#pragma once

#include <cstdint>
#include <optional>

namespace origami {

// Each returns nullopt when the exact result does not fit in uint64_t.
inline std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<uint64_t> CheckedMul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Rounds x up to a multiple of align (a power of two); nullopt on overflow.
inline std::optional<uint64_t> CheckedAlignUp(uint64_t x, uint64_t align) {
  auto r = CheckedAdd(x, align - 1);
  if (!r) return std::nullopt;
  return *r & ~(align - 1);
}

inline bool IsPowerOfTwo(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace origami
