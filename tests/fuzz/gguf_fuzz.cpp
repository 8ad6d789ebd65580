// Fuzz target for the GGUF reader: parse arbitrary bytes, then read everything the File exposes
// (every value, every tensor byte) and check that the writer reproduces the parsed metadata.
// Only origami::Error may escape the parser; anything else (a crash, a sanitizer report, another
// exception) is a bug. Runs under libFuzzer (clang) or fuzz_driver.cpp (any compiler).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "util/error.h"

namespace {

using origami::gguf::File;
using origami::gguf::Value;
using origami::gguf::ValueType;

[[noreturn]] void Bug(const std::string& what) {
  std::fprintf(stderr, "gguf_fuzz: %s\n", what.c_str());
  std::abort();
}

// Reads every element of an array (recursively), the way a consumer would.
uint64_t TouchValue(const Value& v) {
  uint64_t sum = v.u64 + static_cast<uint64_t>(v.i64) + v.str.size();
  if (v.type != ValueType::kArray) return sum;
  if (v.elem_type == ValueType::kString) {
    if (v.strings.size() != v.count) Bug("string array size differs from its count");
    for (auto s : v.strings)
      for (char c : s) sum += static_cast<uint8_t>(c);
  } else if (v.elem_type == ValueType::kArray) {
    if (v.items.size() != v.count) Bug("nested array size differs from its count");
    for (const auto& item : v.items) sum += TouchValue(item);
  } else {
    for (uint64_t i = 0; i < v.count; ++i) {
      sum += static_cast<uint64_t>(v.IntAt(i));
      const double d = v.NumberAt(i);
      sum += d == d ? 1 : 0;
    }
  }
  return sum;
}

// Every typed getter on every key: each either answers or throws origami::Error.
void CallGetters(const File& f, const std::string& key) {
  auto quietly = [](auto&& call) {
    try {
      call();
    } catch (const origami::Error&) {
    }
  };
  quietly([&] { f.GetUint(key); });
  quietly([&] { f.GetInt(key); });
  quietly([&] { f.GetFloat(key); });
  quietly([&] { f.GetBool(key); });
  quietly([&] { f.GetString(key); });
  quietly([&] { f.GetFloatArray(key); });
  quietly([&] { f.GetInt32Array(key); });
  quietly([&] { f.GetArray(key, ValueType::kString); });
}

// The writer must reproduce what the reader parsed: copy every key, parse the header bytes again,
// and compare the renderings.
void CheckMetadataRoundTrip(const File& f) {
  origami::gguf::Writer w;
  for (const auto& [key, value] : f.metadata()) w.CopyValue(key, value);
  const std::vector<uint8_t> bytes = w.HeaderBytes();
  std::unique_ptr<File> g;
  try {
    g = File::Parse(bytes.data(), bytes.size(), "roundtrip");
  } catch (const origami::Error& e) {
    Bug(std::string("the writer's copy does not parse: ") + e.what());
  }
  if (g->metadata().size() != f.metadata().size()) Bug("round trip changed the number of keys");
  for (size_t i = 0; i < f.metadata().size(); ++i) {
    const auto& [ka, va] = f.metadata()[i];
    const auto& [kb, vb] = g->metadata()[i];
    if (ka != kb || va.ToString(64) != vb.ToString(64)) Bug("round trip changed key '" + ka + "'");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<File> f;
  try {
    f = File::Parse(data, size, "fuzz.gguf");
  } catch (const origami::Error& e) {
    const std::string msg = e.what();
    if (msg.find("(at byte offset ") == std::string::npos) Bug("error without a byte offset: " + msg);
    return 0;
  }
  uint64_t sum = 0;
  for (const auto& [key, value] : f->metadata()) {
    if (f->Find(key) != &value) Bug("Find does not return the key's own value");
    sum += TouchValue(value) + value.ToString(std::numeric_limits<size_t>::max()).size();
    CallGetters(*f, key);
  }
  for (const auto& t : f->tensors()) {
    if (f->FindTensor(t.name) != &t) Bug("FindTensor does not return the tensor's own info");
    if (t.data < data || t.n_bytes > size || t.data + t.n_bytes > data + size) Bug("tensor view outside the input");
    if (t.NumElements() <= 0) Bug("tensor with no elements");
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += t.data[i];  // ASan sees any byte out of bounds
  }
  CheckMetadataRoundTrip(*f);
  volatile uint64_t sink = sum;
  (void)sink;
  return 0;
}
