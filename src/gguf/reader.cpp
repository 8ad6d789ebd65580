// GGUF reader. Every read goes through Cursor, which checks the remaining length first, so no
// pointer is ever formed past the end of the file and every error names the byte offset.
#include <cstring>
#include <limits>

#include "gguf/gguf.h"
#include "tensor/dtype.h"
#include "util/checked.h"
#include "util/error.h"
#include "util/utf8.h"

namespace origami::gguf {

namespace {

// Nested arrays deeper than this are rejected: real files use depth 1 (merges are strings).
constexpr int kMaxArrayDepth = 8;
// Longest key or tensor name we accept; GGUF says 65535 for keys.
constexpr uint64_t kMaxNameLength = 65535;
// A parsed Value takes ~10x the 12 file bytes of the smallest nested array, and a metadata entry
// ~10x its smallest encoding, so both are capped: a hostile file cannot make us allocate many
// times its own size. Real files have a few dozen keys and no nested arrays at all.
constexpr uint64_t kMaxNestedArrayItems = uint64_t{1} << 20;
constexpr uint64_t kMaxMetadataCount = uint64_t{1} << 20;

class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size, const std::string& name)
      : base_(base), size_(size), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  [[noreturn]] void FailAt(uint64_t at, const std::string& what) const {
    Fail("{}: {} (at byte offset {})", name_, what, at);
  }

  const uint8_t* Take(uint64_t n, const char* what) {
    if (n > remaining())
      FailAt(pos_, fmt::format("truncated file: {} needs {} bytes, {} remain", what, n, remaining()));
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }

  template <typename T>
  T Read(const char* what) {
    T v;
    std::memcpy(&v, Take(sizeof(T), what), sizeof(T));
    return v;
  }

  std::string_view ReadString(const char* what, uint64_t max_len = std::numeric_limits<uint64_t>::max()) {
    const uint64_t at = pos_;
    const uint64_t len = Read<uint64_t>(what);
    if (len > max_len) FailAt(at, fmt::format("{} has length {} (limit {})", what, len, max_len));
    if (len > remaining())
      FailAt(at, fmt::format("{} has length {} but only {} bytes remain", what, len, remaining()));
    const uint8_t* p = Take(len, what);
    return {reinterpret_cast<const char*>(p), static_cast<size_t>(len)};
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& name_;
};

bool IsKnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kFloat64); }

// `key` is the key as shown in messages (escaped); `nested_left` is what remains of the file's
// budget of arrays inside arrays.
void ReadValue(Cursor& c, ValueType type, Value& v, int depth, const std::string& key, uint64_t& nested_left);

void ReadArray(Cursor& c, Value& v, int depth, const std::string& key, uint64_t& nested_left) {
  const uint64_t at = c.pos();
  const uint32_t et = c.Read<uint32_t>("array element type");
  if (!IsKnownValueType(et))
    c.FailAt(at, fmt::format("key '{}': unknown array element type {}", key, et));
  v.elem_type = static_cast<ValueType>(et);
  const uint64_t count_at = c.pos();
  v.count = c.Read<uint64_t>("array length");
  const size_t scalar = ScalarSize(v.elem_type);
  // Each element takes at least this many bytes in the file, which bounds what we allocate.
  const uint64_t min_elem = scalar ? scalar : (v.elem_type == ValueType::kString ? 8 : 12);
  auto need = CheckedMul(v.count, min_elem);
  if (!need || *need > c.remaining())
    c.FailAt(count_at, fmt::format("key '{}': array of {} {} elements does not fit in the {} bytes left",
                                   key, v.count, ValueTypeName(v.elem_type), c.remaining()));
  if (scalar) {
    v.raw = c.Take(v.count * scalar, "array data");
    if (v.elem_type == ValueType::kBool) {
      for (uint64_t i = 0; i < v.count; ++i)
        if (v.raw[i] > 1) c.FailAt(count_at + 8 + i, fmt::format("key '{}': bool element is {}", key, v.raw[i]));
    }
  } else if (v.elem_type == ValueType::kString) {
    v.strings.reserve(v.count);
    for (uint64_t i = 0; i < v.count; ++i) v.strings.push_back(c.ReadString("array string"));
  } else {
    if (depth + 1 > kMaxArrayDepth)
      c.FailAt(at, fmt::format("key '{}': arrays nested deeper than {}", key, kMaxArrayDepth));
    if (v.count > nested_left)
      c.FailAt(count_at, fmt::format("key '{}': more than {} nested array elements in the file", key,
                                     kMaxNestedArrayItems));
    nested_left -= v.count;
    v.items.resize(v.count);
    for (uint64_t i = 0; i < v.count; ++i)
      ReadValue(c, ValueType::kArray, v.items[i], depth + 1, key, nested_left);
  }
}

void ReadValue(Cursor& c, ValueType type, Value& v, int depth, const std::string& key, uint64_t& nested_left) {
  v.type = type;
  const uint64_t at = c.pos();
  switch (type) {
    case ValueType::kUint8: v.u64 = c.Read<uint8_t>("uint8 value"); break;
    case ValueType::kInt8: v.i64 = c.Read<int8_t>("int8 value"); break;
    case ValueType::kUint16: v.u64 = c.Read<uint16_t>("uint16 value"); break;
    case ValueType::kInt16: v.i64 = c.Read<int16_t>("int16 value"); break;
    case ValueType::kUint32: v.u64 = c.Read<uint32_t>("uint32 value"); break;
    case ValueType::kInt32: v.i64 = c.Read<int32_t>("int32 value"); break;
    case ValueType::kUint64: v.u64 = c.Read<uint64_t>("uint64 value"); break;
    case ValueType::kInt64: v.i64 = c.Read<int64_t>("int64 value"); break;
    case ValueType::kFloat32: v.f64 = c.Read<float>("float32 value"); break;
    case ValueType::kFloat64: v.f64 = c.Read<double>("float64 value"); break;
    case ValueType::kBool: {
      const uint8_t b = c.Read<uint8_t>("bool value");
      if (b > 1) c.FailAt(at, fmt::format("key '{}': bool value is {}, not 0 or 1", key, b));
      v.u64 = b;
      break;
    }
    case ValueType::kString: v.str = c.ReadString("string value"); break;
    case ValueType::kArray: ReadArray(c, v, depth, key, nested_left); break;
  }
}

}  // namespace

const char* ValueTypeName(ValueType t) {
  static constexpr const char* kNames[] = {"uint8", "int8",   "uint16", "int16", "uint32",
                                           "int32", "float32", "bool",  "string", "array",
                                           "uint64", "int64", "float64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "?";
}

size_t ScalarSize(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kBool: return 1;
    case ValueType::kUint16: case ValueType::kInt16: return 2;
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kFloat32: return 4;
    case ValueType::kUint64: case ValueType::kInt64: case ValueType::kFloat64: return 8;
    default: return 0;
  }
}

std::unique_ptr<File> File::Open(const std::string& path) {
  auto map = std::make_unique<MappedFile>(path);
  auto f = std::unique_ptr<File>(new File());
  f->base_ = map->data();
  f->size_ = map->size();
  f->name_ = path;
  f->map_ = std::move(map);
  f->ParseAll();
  return f;
}

std::unique_ptr<File> File::Parse(const uint8_t* data, size_t size, std::string name) {
  auto f = std::unique_ptr<File>(new File());
  f->base_ = data;
  f->size_ = size;
  f->name_ = std::move(name);
  f->ParseAll();
  return f;
}

void File::ParseAll() {
  Cursor c(base_, size_, name_);
  if (size_ < 4) c.FailAt(0, "not a GGUF file: shorter than the 4-byte magic");
  const uint32_t magic = c.Read<uint32_t>("magic");
  if (magic != kMagic) c.FailAt(0, "not a GGUF file: bad magic");
  version_ = c.Read<uint32_t>("version");
  if (version_ == 1) c.FailAt(4, "GGUF version 1 is not supported (only 2 and 3)");
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xffff) == 0 && (version_ >> 16) != 0)
      c.FailAt(4, "big-endian GGUF files are not supported");
    c.FailAt(4, fmt::format("unsupported GGUF version {} (only 2 and 3)", version_));
  }
  const uint64_t n_tensors = c.Read<uint64_t>("tensor count");
  const uint64_t n_kv = c.Read<uint64_t>("metadata count");
  // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes, a tensor info at least
  // 8 + 4 + 8 + 4 + 8: counts the file cannot hold are rejected before anything is reserved.
  if (n_kv > c.remaining() / 13) c.FailAt(16, fmt::format("metadata count {} is larger than the file can hold", n_kv));
  if (n_kv > kMaxMetadataCount)
    c.FailAt(16, fmt::format("metadata count {} is over the limit of {}", n_kv, kMaxMetadataCount));
  if (n_tensors > c.remaining() / 32)
    c.FailAt(8, fmt::format("tensor count {} is larger than the file can hold", n_tensors));

  kv_.reserve(n_kv);
  uint64_t nested_left = kMaxNestedArrayItems;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t key_at = c.pos();
    std::string_view key = c.ReadString("metadata key", kMaxNameLength);
    if (key.empty()) c.FailAt(key_at, fmt::format("metadata key #{} is empty", i));
    if (!IsValidUtf8(key)) c.FailAt(key_at, fmt::format("metadata key #{} is not valid UTF-8", i));
    std::string k(key);
    // Names from the file go into messages escaped: a NUL would cut what() short, and control
    // bytes would reach the terminal.
    const std::string shown = EscapeForDisplay(k, 200);
    if (kv_index_.count(k)) c.FailAt(key_at, fmt::format("duplicate metadata key '{}'", shown));
    const uint64_t type_at = c.pos();
    const uint32_t type = c.Read<uint32_t>("metadata value type");
    if (!IsKnownValueType(type)) c.FailAt(type_at, fmt::format("key '{}': unknown value type {}", shown, type));
    const uint64_t value_at = c.pos();
    Value v;
    ReadValue(c, static_cast<ValueType>(type), v, 0, shown, nested_left);
    // general.alignment decides where every tensor lives, so it is checked where it is read.
    if (k == "general.alignment") {
      if (v.type != ValueType::kUint32)
        c.FailAt(type_at, fmt::format("general.alignment must be a uint32, is {}", ValueTypeName(v.type)));
      if (!IsPowerOfTwo(v.u64))
        c.FailAt(value_at, fmt::format("general.alignment must be a power of two, is {}", v.u64));
      alignment_ = static_cast<uint32_t>(v.u64);
    }
    kv_index_.emplace(k, kv_.size());
    kv_.emplace_back(std::move(k), std::move(v));
  }

  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.info_offset = c.pos();
    std::string_view name = c.ReadString("tensor name", kMaxNameLength);
    if (name.empty()) c.FailAt(t.info_offset, fmt::format("tensor #{} name is empty", i));
    if (!IsValidUtf8(name)) c.FailAt(t.info_offset, fmt::format("tensor #{} name is not valid UTF-8", i));
    t.name = std::string(name);
    const std::string shown = EscapeForDisplay(t.name, 200);
    if (tensor_index_.count(t.name)) c.FailAt(t.info_offset, fmt::format("duplicate tensor '{}'", shown));
    const uint64_t dims_at = c.pos();
    t.n_dims = c.Read<uint32_t>("tensor dimension count");
    if (t.n_dims == 0 || t.n_dims > kMaxDims)
      c.FailAt(dims_at, fmt::format("tensor '{}' has {} dimensions (1 to {} allowed)", shown, t.n_dims, kMaxDims));
    uint64_t n_elem = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      const uint64_t at = c.pos();
      const uint64_t ne = c.Read<uint64_t>("tensor dimension");
      if (ne == 0) c.FailAt(at, fmt::format("tensor '{}' dimension {} is zero", shown, d));
      auto m = CheckedMul(n_elem, ne);
      if (!m || *m > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        c.FailAt(at, fmt::format("tensor '{}' element count overflows", shown));
      n_elem = *m;
      t.ne[d] = static_cast<int64_t>(ne);
    }
    const uint64_t type_at = c.pos();
    t.type = c.Read<uint32_t>("tensor type");
    const TypeTraits* tr = FindTypeTraits(t.type);
    if (!tr) c.FailAt(type_at, fmt::format("tensor '{}' has unknown type {}", shown, t.type));
    if (t.ne[0] % tr->block_size != 0)
      c.FailAt(dims_at, fmt::format("tensor '{}' row length {} is not a multiple of the {} block size {}",
                                    shown, t.ne[0], tr->name, tr->block_size));
    auto bytes = CheckedMul(n_elem / tr->block_size, tr->type_size);
    if (!bytes) c.FailAt(dims_at, fmt::format("tensor '{}' byte size overflows", shown));
    t.n_bytes = *bytes;
    const uint64_t off_at = c.pos();
    t.offset = c.Read<uint64_t>("tensor data offset");
    if (t.offset % alignment_ != 0)
      c.FailAt(off_at, fmt::format("tensor '{}' offset {} is not a multiple of the alignment {}", shown,
                                   t.offset, alignment_));
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  auto data_start = CheckedAlignUp(c.pos(), alignment_);
  if (!data_start) c.FailAt(c.pos(), "data section offset overflows");
  data_offset_ = *data_start;
  if (tensors_.empty()) return;  // vocab-only files may end before the aligned data start
  if (data_offset_ > size_) c.FailAt(c.pos(), "truncated file: no data section after the tensor infos");
  const uint64_t data_size = size_ - data_offset_;
  for (auto& t : tensors_) {
    if (t.offset >= data_size)
      c.FailAt(t.info_offset, fmt::format("tensor '{}' data offset {} is past the end of the data section ({} bytes)",
                                          EscapeForDisplay(t.name, 200), t.offset, data_size));
    auto end = CheckedAdd(t.offset, t.n_bytes);
    if (!end || *end > data_size)
      c.FailAt(t.info_offset, fmt::format("tensor '{}' data [{}, +{}) runs past the end of the data section ({} bytes)",
                                          EscapeForDisplay(t.name, 200), t.offset, t.n_bytes, data_size));
    t.data = base_ + data_offset_ + t.offset;
  }
}

// ---- lookups -----------------------------------------------------------------------------------

const Value* File::Find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

bool Value::IsInteger() const {
  switch (type) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kUint16: case ValueType::kInt16:
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kUint64: case ValueType::kInt64:
      return true;
    default: return false;
  }
}

static bool IsSigned(ValueType t) {
  return t == ValueType::kInt8 || t == ValueType::kInt16 || t == ValueType::kInt32 || t == ValueType::kInt64;
}

std::optional<uint64_t> File::GetUint(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (!v->IsInteger()) Fail("{}: key '{}' should be an integer, is {}", name_, key, ValueTypeName(v->type));
  if (IsSigned(v->type)) {
    if (v->i64 < 0) Fail("{}: key '{}' is negative ({})", name_, key, v->i64);
    return static_cast<uint64_t>(v->i64);
  }
  return v->u64;
}

std::optional<int64_t> File::GetInt(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (!v->IsInteger()) Fail("{}: key '{}' should be an integer, is {}", name_, key, ValueTypeName(v->type));
  if (IsSigned(v->type)) return v->i64;
  if (v->u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    Fail("{}: key '{}' is out of range ({})", name_, key, v->u64);
  return static_cast<int64_t>(v->u64);
}

std::optional<double> File::GetFloat(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (v->IsFloat()) return v->f64;
  if (v->IsInteger()) return IsSigned(v->type) ? static_cast<double>(v->i64) : static_cast<double>(v->u64);
  Fail("{}: key '{}' should be a number, is {}", name_, key, ValueTypeName(v->type));
}

std::optional<bool> File::GetBool(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::kBool) Fail("{}: key '{}' should be a bool, is {}", name_, key, ValueTypeName(v->type));
  return v->u64 != 0;
}

std::optional<std::string_view> File::GetString(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (v->type != ValueType::kString) Fail("{}: key '{}' should be a string, is {}", name_, key, ValueTypeName(v->type));
  return v->str;
}

const Value* File::GetArray(std::string_view key, ValueType elem) const {
  const Value* v = Find(key);
  if (!v) return nullptr;
  if (v->type != ValueType::kArray || v->elem_type != elem)
    Fail("{}: key '{}' should be an array of {}, is {}", name_, key, ValueTypeName(elem), v->ToString(0));
  return v;
}

std::vector<float> File::GetFloatArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return {};
  if (v->type != ValueType::kArray || !(v->elem_type == ValueType::kFloat32 || v->elem_type == ValueType::kFloat64))
    Fail("{}: key '{}' should be an array of floats", name_, key);
  std::vector<float> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i) out[i] = static_cast<float>(v->NumberAt(i));
  return out;
}

std::vector<int32_t> File::GetInt32Array(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return {};
  if (v->type != ValueType::kArray || ScalarSize(v->elem_type) == 0 || v->elem_type == ValueType::kFloat32 ||
      v->elem_type == ValueType::kFloat64 || v->elem_type == ValueType::kBool)
    Fail("{}: key '{}' should be an array of integers", name_, key);
  std::vector<int32_t> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i) {
    const int64_t x = v->IntAt(i);
    if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max())
      Fail("{}: key '{}' element {} is out of int32 range", name_, key, i);
    out[i] = static_cast<int32_t>(x);
  }
  return out;
}

// Float to integer for values read from a file: a plain cast of NaN or of anything outside the
// int64 range is undefined behaviour, so NaN gives 0 and out-of-range values saturate.
static int64_t SaturateToInt64(double x) {
  if (x != x) return 0;
  if (x >= 9223372036854775808.0) return std::numeric_limits<int64_t>::max();
  if (x < -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(x);
}

double Value::NumberAt(uint64_t i) const {
  const uint8_t* p = raw + i * ScalarSize(elem_type);
  auto get = [p](auto x) {
    std::memcpy(&x, p, sizeof(x));
    return x;
  };
  switch (elem_type) {
    case ValueType::kFloat32: return get(float{});
    case ValueType::kFloat64: return get(double{});
    default: return static_cast<double>(IntAt(i));
  }
}

int64_t Value::IntAt(uint64_t i) const {
  const uint8_t* p = raw + i * ScalarSize(elem_type);
  auto get = [p](auto x) {
    std::memcpy(&x, p, sizeof(x));
    return x;
  };
  switch (elem_type) {
    case ValueType::kUint8: case ValueType::kBool: return get(uint8_t{});
    case ValueType::kInt8: return get(int8_t{});
    case ValueType::kUint16: return get(uint16_t{});
    case ValueType::kInt16: return get(int16_t{});
    case ValueType::kUint32: return get(uint32_t{});
    case ValueType::kInt32: return get(int32_t{});
    case ValueType::kUint64: return static_cast<int64_t>(get(uint64_t{}));
    case ValueType::kInt64: return get(int64_t{});
    case ValueType::kFloat32: return SaturateToInt64(get(float{}));
    case ValueType::kFloat64: return SaturateToInt64(get(double{}));
    default: return 0;
  }
}

std::string Value::ToString(size_t max_items) const {
  switch (type) {
    case ValueType::kBool: return u64 ? "true" : "false";
    case ValueType::kUint8: case ValueType::kUint16: case ValueType::kUint32: case ValueType::kUint64:
      return std::to_string(u64);
    case ValueType::kInt8: case ValueType::kInt16: case ValueType::kInt32: case ValueType::kInt64:
      return std::to_string(i64);
    case ValueType::kFloat32: return fmt::format("{}", static_cast<float>(f64));
    case ValueType::kFloat64: return fmt::format("{}", f64);
    case ValueType::kString: return fmt::format("\"{}\"", EscapeForDisplay(str, 200));
    case ValueType::kArray: {
      std::string s = fmt::format("[{} x {}]", count, ValueTypeName(elem_type));
      if (max_items == 0 || count == 0) return s;
      s += " [";
      for (uint64_t i = 0; i < count && i < max_items; ++i) {
        if (i) s += ", ";
        if (elem_type == ValueType::kString) s += fmt::format("\"{}\"", EscapeForDisplay(strings[i], 40));
        else if (elem_type == ValueType::kArray) s += items[i].ToString(2);
        else if (elem_type == ValueType::kFloat32) s += fmt::format("{}", static_cast<float>(NumberAt(i)));
        else if (elem_type == ValueType::kFloat64) s += fmt::format("{}", NumberAt(i));
        else s += std::to_string(IntAt(i));
      }
      if (count > max_items) s += ", ...";
      return s + "]";
    }
  }
  return "?";
}

}  // namespace origami::gguf
