// GGUF v2/v3 reader: the file is mmap'd, metadata parsed with every count, size and offset checked
// against the file size, tensors exposed as zero-copy views. Malformed input throws origami::Error
// naming the field and the byte offset.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/mapped_file.h"

namespace origami::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint32_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;

// Metadata value types, numbered as in the GGUF specification.
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* ValueTypeName(ValueType t);
// Size in bytes of a fixed-size scalar type, 0 for string/array.
size_t ScalarSize(ValueType t);

// One metadata value. Scalars are decoded; strings and arrays view the mapped file (zero copy),
// except that string and nested arrays keep a vector of element views for random access.
struct Value {
  ValueType type = ValueType::kUint8;
  uint64_t u64 = 0;  // unsigned integer types and bool
  int64_t i64 = 0;   // signed integer types
  double f64 = 0;    // float types
  std::string_view str;
  // Arrays
  ValueType elem_type = ValueType::kUint8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;             // scalar arrays: count * ScalarSize(elem_type) bytes
  std::vector<std::string_view> strings;    // string arrays
  std::vector<Value> items;                 // arrays of arrays

  bool IsInteger() const;
  bool IsFloat() const { return type == ValueType::kFloat32 || type == ValueType::kFloat64; }
  // Element i of a scalar array, converted. Caller ensures i < count and a numeric elem_type.
  double NumberAt(uint64_t i) const;
  int64_t IntAt(uint64_t i) const;
  // Human-readable rendering (arrays abbreviated after `max_items`).
  std::string ToString(size_t max_items = 8) const;
};

struct TensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  int64_t ne[kMaxDims] = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  uint32_t type = 0;                     // ggml type id; see tensor/dtype.h
  uint64_t offset = 0;                   // relative to the start of the data section
  uint64_t n_bytes = 0;
  uint64_t info_offset = 0;              // where this tensor's info starts in the file
  const uint8_t* data = nullptr;         // points into the mapping

  int64_t NumElements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class File {
 public:
  // Opens and validates a GGUF file. Throws origami::Error on any problem.
  static std::unique_ptr<File> Open(const std::string& path);
  // Parses a buffer already in memory (used by the fuzzer). The buffer must outlive the File.
  static std::unique_ptr<File> Parse(const uint8_t* data, size_t size, std::string name);

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }
  const uint8_t* base() const { return base_; }
  const MappedFile* mapping() const { return map_.get(); }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  // Typed getters: nullopt when the key is absent; Error when present with the wrong type or out of range.
  std::optional<uint64_t> GetUint(std::string_view key) const;
  std::optional<int64_t> GetInt(std::string_view key) const;
  std::optional<double> GetFloat(std::string_view key) const;  // accepts integers too
  std::optional<bool> GetBool(std::string_view key) const;
  std::optional<std::string_view> GetString(std::string_view key) const;
  // Arrays (Error if present with the wrong element type).
  const Value* GetArray(std::string_view key, ValueType elem) const;
  std::vector<float> GetFloatArray(std::string_view key) const;
  std::vector<int32_t> GetInt32Array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(std::string_view name) const;

 private:
  File() = default;
  void ParseAll();

  std::unique_ptr<MappedFile> map_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  std::string name_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace origami::gguf
