// GGUF writer.
#include "gguf/writer.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "util/checked.h"
#include "util/error.h"

namespace origami::gguf {

void Writer::PutString(std::string_view s) {
  Put<uint64_t>(s.size());
  kv_bytes_.insert(kv_bytes_.end(), s.begin(), s.end());
}

void Writer::Key(const std::string& key, ValueType t) {
  if (key == "general.alignment") {
    if (t != ValueType::kUint32) Fail("general.alignment must be uint32");
    // Tensor offsets are fixed when a tensor is added, so the alignment cannot change afterwards.
    if (!tensors_.empty()) Fail("general.alignment must be set before the first tensor is added");
    has_alignment_key_ = true;
  }
  PutString(key);
  Put<uint32_t>(static_cast<uint32_t>(t));
  ++n_kv_;
}

// The writer lays tensors out by general.alignment, so it only accepts values a reader accepts;
// tests that need a bad alignment patch the bytes of HeaderBytes() instead.
static void CheckAlignment(uint64_t v) {
  if (!IsPowerOfTwo(v) || v > UINT32_MAX) Fail("general.alignment must be a power of two, is {}", v);
}

Writer::Writer(uint32_t alignment) : alignment_(alignment) { CheckAlignment(alignment); }

void Writer::SetU32(const std::string& key, uint32_t v) {
  if (key == "general.alignment") CheckAlignment(v);
  Key(key, ValueType::kUint32);
  if (key == "general.alignment") alignment_ = v;
  Put(v);
}
void Writer::SetI32(const std::string& key, int32_t v) { Key(key, ValueType::kInt32); Put(v); }
void Writer::SetU64(const std::string& key, uint64_t v) { Key(key, ValueType::kUint64); Put(v); }
void Writer::SetF32(const std::string& key, float v) { Key(key, ValueType::kFloat32); Put(v); }
void Writer::SetBool(const std::string& key, bool v) { Key(key, ValueType::kBool); Put<uint8_t>(v ? 1 : 0); }
void Writer::SetString(const std::string& key, const std::string& v) { Key(key, ValueType::kString); PutString(v); }

void Writer::SetStringArray(const std::string& key, const std::vector<std::string>& v) {
  Key(key, ValueType::kArray);
  Put<uint32_t>(static_cast<uint32_t>(ValueType::kString));
  Put<uint64_t>(v.size());
  for (const auto& s : v) PutString(s);
}
void Writer::SetF32Array(const std::string& key, const std::vector<float>& v) {
  Key(key, ValueType::kArray);
  Put<uint32_t>(static_cast<uint32_t>(ValueType::kFloat32));
  Put<uint64_t>(v.size());
  for (float x : v) Put(x);
}
void Writer::SetI32Array(const std::string& key, const std::vector<int32_t>& v) {
  Key(key, ValueType::kArray);
  Put<uint32_t>(static_cast<uint32_t>(ValueType::kInt32));
  Put<uint64_t>(v.size());
  for (int32_t x : v) Put(x);
}

void Writer::PutValue(const Value& v) {
  switch (v.type) {
    case ValueType::kString: PutString(v.str); break;
    case ValueType::kArray:
      Put<uint32_t>(static_cast<uint32_t>(v.elem_type));
      Put<uint64_t>(v.count);
      if (ScalarSize(v.elem_type)) {
        kv_bytes_.insert(kv_bytes_.end(), v.raw, v.raw + v.count * ScalarSize(v.elem_type));
      } else if (v.elem_type == ValueType::kString) {
        for (auto s : v.strings) PutString(s);
      } else {
        for (const auto& item : v.items) PutValue(item);
      }
      break;
    case ValueType::kFloat32: Put(static_cast<float>(v.f64)); break;
    case ValueType::kFloat64: Put(v.f64); break;
    case ValueType::kInt8: Put(static_cast<int8_t>(v.i64)); break;
    case ValueType::kInt16: Put(static_cast<int16_t>(v.i64)); break;
    case ValueType::kInt32: Put(static_cast<int32_t>(v.i64)); break;
    case ValueType::kInt64: Put(v.i64); break;
    case ValueType::kUint8: case ValueType::kBool: Put(static_cast<uint8_t>(v.u64)); break;
    case ValueType::kUint16: Put(static_cast<uint16_t>(v.u64)); break;
    case ValueType::kUint32: Put(static_cast<uint32_t>(v.u64)); break;
    case ValueType::kUint64: Put(v.u64); break;
  }
}

void Writer::CopyValue(const std::string& key, const Value& v) {
  const bool alignment = key == "general.alignment" && v.type == ValueType::kUint32;
  if (alignment) CheckAlignment(v.u64);
  Key(key, v.type);
  if (alignment) alignment_ = static_cast<uint32_t>(v.u64);
  PutValue(v);
}

void Writer::AddTensor(const std::string& name, uint32_t type, std::vector<int64_t> ne, uint64_t n_bytes,
                       std::function<void(uint8_t*)> fill) {
  if (ne.empty() || ne.size() > kMaxDims) Fail("tensor '{}': {} dimensions", name, ne.size());
  auto offset = CheckedAlignUp(data_size_, alignment_);
  auto end = offset ? CheckedAdd(*offset, n_bytes) : std::nullopt;
  if (!end) Fail("tensor '{}': data section size overflows", name);
  tensors_.push_back({name, type, std::move(ne), n_bytes, *offset, std::move(fill)});
  data_size_ = *end;
}

void Writer::AddTensor(const std::string& name, uint32_t type, std::vector<int64_t> ne, const void* data,
                       uint64_t n_bytes) {
  AddTensor(name, type, std::move(ne), n_bytes,
            [data, n_bytes](uint8_t* dst) { std::memcpy(dst, data, n_bytes); });
}

std::vector<uint8_t> Writer::HeaderBytes() const {
  std::vector<uint8_t> out;
  // resize + memcpy rather than insert(): GCC 12 warns (wrongly) about insert into an empty vector.
  auto put = [&out](auto v) {
    const size_t at = out.size();
    out.resize(at + sizeof(v));
    std::memcpy(out.data() + at, &v, sizeof(v));
  };
  put(kMagic);
  put(uint32_t{3});
  const bool implicit_alignment = !has_alignment_key_ && alignment_ != kDefaultAlignment;
  put(static_cast<uint64_t>(tensors_.size()));
  put(n_kv_ + (implicit_alignment ? 1 : 0));
  out.insert(out.end(), kv_bytes_.begin(), kv_bytes_.end());
  if (implicit_alignment) {
    const std::string_view key = "general.alignment";
    put(static_cast<uint64_t>(key.size()));
    out.insert(out.end(), key.begin(), key.end());
    put(static_cast<uint32_t>(ValueType::kUint32));
    put(alignment_);
  }
  for (const auto& t : tensors_) {
    put(static_cast<uint64_t>(t.name.size()));
    out.insert(out.end(), t.name.begin(), t.name.end());
    put(static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put(static_cast<uint64_t>(d));
    put(t.type);
    put(t.offset);
  }
  return out;
}

void Writer::Write(const std::string& path) const {
  std::vector<uint8_t> header = HeaderBytes();
  header.resize(*CheckedAlignUp(header.size(), alignment_), 0);
  // A temporary name of this writer's own: two writers of one path (processes or threads) never
  // share a half-written file, and the last rename wins with a whole one.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) FailKind(ErrorKind::kIo, "cannot create '{}': {}", tmp, std::strerror(errno));
  auto check = [&](bool ok) {
    if (!ok) {
      const int e = errno;
      std::fclose(f);
      std::remove(tmp.c_str());
      FailKind(ErrorKind::kIo, "cannot write '{}': {}", tmp, std::strerror(e));
    }
  };
  check(std::fwrite(header.data(), 1, header.size(), f) == header.size());
  uint64_t pos = 0;
  std::vector<uint8_t> buf;
  const uint8_t zeros[256] = {};
  for (const auto& t : tensors_) {
    while (pos < t.offset) {
      const size_t n = std::min<uint64_t>(sizeof(zeros), t.offset - pos);
      check(std::fwrite(zeros, 1, n, f) == n);
      pos += n;
    }
    buf.resize(t.n_bytes);
    t.fill(buf.data());
    check(std::fwrite(buf.data(), 1, buf.size(), f) == buf.size());
    pos += t.n_bytes;
  }
  check(std::fflush(f) == 0);
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    FailKind(ErrorKind::kIo, "cannot write '{}': {}", tmp, std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    FailKind(ErrorKind::kIo, "cannot rename '{}' to '{}': {}", tmp, path, std::strerror(errno));
}

}  // namespace origami::gguf
