// Hand-assembled GGUF bytes for the parser tests and the fuzz seeds: a little-endian byte builder
// with helpers for the header, keys and tensor infos, so malformed files read like their layout.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"

namespace origami::gguf::testing {

class Bytes {
 public:
  template <typename T>
  Bytes& Put(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));  // the tests (like the reader) assume a little-endian host
    bytes_.insert(bytes_.end(), b, b + sizeof(T));
    return *this;
  }
  Bytes& U8(uint8_t v) { return Put(v); }
  Bytes& U32(uint32_t v) { return Put(v); }
  Bytes& U64(uint64_t v) { return Put(v); }
  Bytes& Raw(std::string_view s) {
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& Raw(const std::vector<uint8_t>& b) {
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return *this;
  }
  // A GGUF string: u64 length, then the bytes.
  Bytes& Str(std::string_view s) { return U64(s.size()).Raw(s); }
  Bytes& Zeros(size_t n) {
    bytes_.resize(bytes_.size() + n, 0);
    return *this;
  }
  Bytes& PadTo(uint64_t alignment) {
    while (bytes_.size() % alignment) bytes_.push_back(0);
    return *this;
  }

  // magic, version, tensor count, metadata count (24 bytes).
  Bytes& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return U32(kMagic).U32(version).U64(n_tensors).U64(n_kv);
  }
  // A metadata key and its value type; the value follows.
  Bytes& Key(std::string_view key, ValueType type) { return Str(key).U32(static_cast<uint32_t>(type)); }
  // The head of an array value: element type and count; the elements follow.
  Bytes& ArrayHead(ValueType elem, uint64_t count) { return U32(static_cast<uint32_t>(elem)).U64(count); }
  Bytes& TensorInfo(std::string_view name, std::initializer_list<uint64_t> ne, uint32_t type, uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) U64(d);
    return U32(type).U64(offset);
  }

  size_t size() const { return bytes_.size(); }
  uint8_t& operator[](size_t i) { return bytes_[i]; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  operator const std::vector<uint8_t>&() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace origami::gguf::testing
