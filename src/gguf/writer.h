// GGUF v3 writer: metadata in insertion order, tensors aligned to general.alignment.
// Used by `convert`, `quantize` and the tests that build (malformed) files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace origami::gguf {

class Writer {
 public:
  // An alignment other than the default is recorded as general.alignment in the file (unless the
  // caller sets that key itself), so that readers find the data where it was written.
  explicit Writer(uint32_t alignment = kDefaultAlignment);

  void SetU32(const std::string& key, uint32_t v);
  void SetI32(const std::string& key, int32_t v);
  void SetU64(const std::string& key, uint64_t v);
  void SetF32(const std::string& key, float v);
  void SetBool(const std::string& key, bool v);
  void SetString(const std::string& key, const std::string& v);
  void SetStringArray(const std::string& key, const std::vector<std::string>& v);
  void SetF32Array(const std::string& key, const std::vector<float>& v);
  void SetI32Array(const std::string& key, const std::vector<int32_t>& v);
  // Copies a value from another file verbatim (any type, arrays included).
  void CopyValue(const std::string& key, const Value& v);

  // Adds a tensor whose bytes are produced later by `fill(dst)` (dst has n_bytes of room).
  void AddTensor(const std::string& name, uint32_t type, std::vector<int64_t> ne, uint64_t n_bytes,
                 std::function<void(uint8_t* dst)> fill);
  // Adds a tensor from existing bytes (copied when written).
  void AddTensor(const std::string& name, uint32_t type, std::vector<int64_t> ne, const void* data,
                 uint64_t n_bytes);

  // Writes everything to path (via a temporary file of its own beside it, then a rename, so
  // concurrent writers of one path never mix). Throws origami::Error on I/O failure.
  void Write(const std::string& path) const;
  // The header and metadata only, as bytes (for tests that build malformed files).
  std::vector<uint8_t> HeaderBytes() const;

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<int64_t> ne;
    uint64_t n_bytes;
    uint64_t offset;
    std::function<void(uint8_t*)> fill;
  };
  void Key(const std::string& key, ValueType t);
  void PutValue(const Value& v);
  template <typename T>
  void Put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    kv_bytes_.insert(kv_bytes_.end(), p, p + sizeof(T));
  }
  void PutString(std::string_view s);

  uint32_t alignment_;
  bool has_alignment_key_ = false;
  uint64_t n_kv_ = 0;
  std::vector<uint8_t> kv_bytes_;
  std::vector<Tensor> tensors_;
  uint64_t data_size_ = 0;
};

}  // namespace origami::gguf
