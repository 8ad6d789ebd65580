// Writes small GGUF seeds for the GGUF fuzz target: writer-built files covering every value type,
// nested arrays, several tensor types and alignments, plus a shrunk copy of each real GGUF given
// (its keys with arrays cut to a few elements, its first tensors cut to one block), so the fuzzer
// starts from real key names and layouts without the megabytes.
//
//   gguf_fuzz_seeds OUT_DIR [GGUF_FILE_OR_DIR...]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/gguf_bytes.h"
#include "gguf/writer.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace {

namespace fs = std::filesystem;
using origami::DType;
using origami::gguf::Value;
using origami::gguf::ValueType;
using origami::gguf::Writer;

constexpr uint64_t kKeepItems = 4;    // array elements kept per array
constexpr size_t kKeepTensors = 3;    // tensors kept per file

void WriteBytes(const fs::path& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!out) origami::Fail("cannot write {}", path.string());
}

uint32_t Id(DType t) { return static_cast<uint32_t>(t); }

// Adds a tensor of one block of type t with bytes 0, 1, 2, ...
void AddOneBlock(Writer& w, const std::string& name, DType t, std::vector<int64_t> ne) {
  const auto& tr = origami::Traits(t);
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  const uint64_t bytes = static_cast<uint64_t>(n / tr.block_size) * tr.type_size;
  w.AddTensor(name, Id(t), std::move(ne), bytes, [bytes](uint8_t* dst) {
    for (uint64_t i = 0; i < bytes; ++i) dst[i] = static_cast<uint8_t>(i * 37);
  });
}

Value Scalar(ValueType t, uint64_t u, int64_t i, double f) {
  Value v;
  v.type = t;
  v.u64 = u;
  v.i64 = i;
  v.f64 = f;
  return v;
}

Value RawArray(ValueType elem, const void* data, uint64_t count) {
  Value v;
  v.type = ValueType::kArray;
  v.elem_type = elem;
  v.count = count;
  v.raw = static_cast<const uint8_t*>(data);
  return v;
}

void WriteAllTypes(const fs::path& dir) {
  static const int16_t kI16[3] = {-1, 0, 1};
  static const double kF64[2] = {0.5, -1e10};
  static const uint8_t kBools[2] = {0, 1};
  Writer w;
  w.SetString("general.architecture", "llama");
  w.CopyValue("u8", Scalar(ValueType::kUint8, 9, 0, 0));
  w.CopyValue("i8", Scalar(ValueType::kInt8, 0, -9, 0));
  w.CopyValue("u16", Scalar(ValueType::kUint16, 999, 0, 0));
  w.CopyValue("i16", Scalar(ValueType::kInt16, 0, -999, 0));
  w.SetU32("llama.block_count", 2);
  w.SetI32("i32", -5);
  w.SetF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetBool("flag", true);
  w.SetU64("u64", 1ull << 40);
  w.CopyValue("i64", Scalar(ValueType::kInt64, 0, -(1ll << 40), 0));
  w.CopyValue("f64", Scalar(ValueType::kFloat64, 0, 0, 3.5));
  w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "\xe2\x96\x81the", ""});
  w.SetF32Array("tokenizer.ggml.scores", {0, -1, -2, -3});
  w.SetI32Array("tokenizer.ggml.token_type", {2, 3, 1, 1});
  w.CopyValue("a.i16", RawArray(ValueType::kInt16, kI16, 3));
  w.CopyValue("a.f64", RawArray(ValueType::kFloat64, kF64, 2));
  w.CopyValue("a.bool", RawArray(ValueType::kBool, kBools, 2));
  Value nested;
  nested.type = ValueType::kArray;
  nested.elem_type = ValueType::kArray;
  nested.items = {RawArray(ValueType::kInt16, kI16, 2), RawArray(ValueType::kUint8, nullptr, 0)};
  nested.count = nested.items.size();
  w.CopyValue("a.nested", nested);
  AddOneBlock(w, "token_embd.weight", DType::kF32, {4, 2});
  AddOneBlock(w, "blk.0.attn_q.weight", DType::kF16, {4, 4});
  AddOneBlock(w, "blk.0.ffn_up.weight", DType::kQ8_0, {32, 1});
  AddOneBlock(w, "blk.0.ffn_down.weight", DType::kQ4_K, {256});
  w.Write((dir / "writer-all-types.gguf").string());
}

void WriteAligned(const fs::path& dir) {
  Writer w(64);
  w.SetString("general.architecture", "test");
  AddOneBlock(w, "a", DType::kI8, {3});
  AddOneBlock(w, "b", DType::kBF16, {5});
  w.Write((dir / "writer-align64.gguf").string());
}

void WriteHandBuilt(const fs::path& dir) {
  using origami::gguf::testing::Bytes;
  Bytes v2;  // GGUF version 2, one key, one tensor
  v2.Header(1, 1, 2).Key("general.architecture", ValueType::kString).Str("gpt2");
  v2.TensorInfo("w", {2, 2}, Id(DType::kF32), 0).PadTo(32).Zeros(16);
  WriteBytes(dir / "hand-v2.gguf", v2);
  Bytes vocab;  // no tensors: ends before the aligned data start
  vocab.Header(0, 2).Key("tokenizer.ggml.model", ValueType::kString).Str("gpt2");
  vocab.Key("tokenizer.ggml.merges", ValueType::kArray).ArrayHead(ValueType::kString, 2).Str("a b").Str("ab c");
  WriteBytes(dir / "hand-vocab-only.gguf", vocab);
  Bytes deep;  // arrays nested to the deepest accepted level
  deep.Header(0, 1).Key("deep", ValueType::kArray);
  for (int i = 0; i < 8; ++i) deep.ArrayHead(ValueType::kArray, 1);
  deep.ArrayHead(ValueType::kUint8, 2).U8(1).U8(2);
  WriteBytes(dir / "hand-deep.gguf", deep);
}

// The first kKeepItems elements of an array (recursively); other values unchanged.
Value Shrink(const Value& v) {
  if (v.type != ValueType::kArray) return v;
  Value out = v;
  out.count = std::min(v.count, kKeepItems);
  if (v.elem_type == ValueType::kString) out.strings.resize(out.count);
  if (v.elem_type == ValueType::kArray) {
    out.items.clear();
    for (uint64_t i = 0; i < out.count; ++i) out.items.push_back(Shrink(v.items[i]));
  }
  return out;
}

void WriteShrunk(const fs::path& src, const fs::path& dir) {
  auto f = origami::gguf::File::Open(src.string());
  Writer w(f->alignment());
  for (const auto& [key, value] : f->metadata()) w.CopyValue(key, Shrink(value));
  for (size_t i = 0; i < f->tensors().size() && i < kKeepTensors; ++i) {
    const auto& t = f->tensors()[i];
    const origami::TypeTraits* tr = origami::FindTypeTraits(t.type);
    std::vector<int64_t> ne(t.n_dims, 1);
    ne[0] = tr->block_size;
    const uint64_t bytes = tr->type_size;
    w.AddTensor(t.name, t.type, ne, t.data, std::min<uint64_t>(bytes, t.n_bytes));
  }
  w.Write((dir / ("shrunk-" + src.filename().string())).string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: gguf_fuzz_seeds OUT_DIR [GGUF_FILE_OR_DIR...]\n");
    return 2;
  }
  try {
    const fs::path out = argv[1];
    fs::create_directories(out);
    WriteAllTypes(out);
    WriteAligned(out);
    WriteHandBuilt(out);
    int shrunk = 0;
    for (int i = 2; i < argc; ++i) {
      std::vector<fs::path> files;
      if (fs::is_directory(argv[i])) {
        for (const auto& e : fs::directory_iterator(argv[i]))
          if (e.path().extension() == ".gguf") files.push_back(e.path());
      } else if (fs::exists(argv[i])) {
        files.emplace_back(argv[i]);
      }
      std::sort(files.begin(), files.end());
      for (const auto& p : files) {
        WriteShrunk(p, out);
        ++shrunk;
      }
    }
    std::printf("gguf_fuzz_seeds: wrote 6 built and %d shrunk seeds to %s\n", shrunk, out.string().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gguf_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
