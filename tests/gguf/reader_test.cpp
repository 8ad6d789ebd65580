// The GGUF reader on real files (every GGUF under shared/, checked against GGUF-LISTING.txt and the
// facts in models/README.md), the typed getters, and writer -> reader round trips.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/gguf_bytes.h"
#include "gguf/writer.h"
#include "tensor/dtype.h"
#include "util/error.h"

namespace origami::gguf {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;

const std::string kShared = ORIGAMI_SHARED_DIR;

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/" + name; }

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Reads everything a File exposes: every value rendered, every tensor byte summed (so ASan sees
// any view that points outside the mapping). Returns the byte sum so the work is not optimized away.
uint64_t Walk(const File& f) {
  uint64_t sum = 0;
  for (const auto& [key, v] : f.metadata()) {
    sum += v.ToString(std::numeric_limits<size_t>::max()).size();
    EXPECT_EQ(f.Find(key), &v);
  }
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(f.FindTensor(t.name), &t);
    EXPECT_EQ(t.data, f.base() + f.data_offset() + t.offset);
    EXPECT_LE(f.data_offset() + t.offset + t.n_bytes, f.file_size());
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += t.data[i];
  }
  return sum;
}

std::vector<fs::path> GgufFilesIn(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".gguf") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// ---- every shared GGUF -------------------------------------------------------------------------

class SharedGguf : public ::testing::TestWithParam<const char*> {};

TEST_P(SharedGguf, EveryFileParsesAndWalks) {
  const std::string dir = kShared + "/" + GetParam();
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " is missing";
  const auto files = GgufFilesIn(dir);
  ASSERT_FALSE(files.empty()) << "no .gguf in " << dir;
  for (const auto& p : files) {
    SCOPED_TRACE(p.string());
    std::unique_ptr<File> f;
    ASSERT_NO_THROW(f = File::Open(p.string()));
    EXPECT_TRUE(f->version() == 2 || f->version() == 3);
    EXPECT_EQ(f->data_offset() % f->alignment(), 0u);
    EXPECT_TRUE(f->Has("general.architecture"));
    Walk(*f);
  }
}

INSTANTIATE_TEST_SUITE_P(Folders, SharedGguf, ::testing::Values("models", "tokenizer"));

// GGUF-LISTING.txt was produced by an independent reader: every header field, key (name and type,
// in order) and tensor (name, type, shape, offset, size) must agree with ours.
TEST(GgufReader, AgreesWithIndependentListing) {
  std::ifstream in(kShared + "/GGUF-LISTING.txt");
  if (!in) GTEST_SKIP() << kShared << "/GGUF-LISTING.txt is missing";
  std::unique_ptr<File> f;
  size_t kv_i = 0, tensor_i = 0, files_checked = 0;
  auto finish = [&] {
    if (!f) return;
    EXPECT_EQ(kv_i, f->metadata().size()) << f->path();
    EXPECT_EQ(tensor_i, f->tensors().size()) << f->path();
    ++files_checked;
    f.reset();
  };
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("== ", 0) == 0) {
      finish();
      const std::string path = kShared + "/" + line.substr(3);
      if (!fs::exists(path)) continue;
      f = File::Open(path);
      kv_i = tensor_i = 0;
    } else if (!f) {
      continue;
    } else if (line.rfind("magic=", 0) == 0) {
      unsigned long long version, n_kv, n_tensors, alignment, data_offset, file_size;
      ASSERT_EQ(std::sscanf(line.c_str(),
                            "magic=b'GGUF' version=%llu n_kv=%llu n_tensors=%llu alignment=%llu data_offset=%llu "
                            "file_size=%llu",
                            &version, &n_kv, &n_tensors, &alignment, &data_offset, &file_size),
                6)
          << line;
      EXPECT_EQ(f->version(), version) << f->path();
      EXPECT_EQ(f->metadata().size(), n_kv) << f->path();
      EXPECT_EQ(f->tensors().size(), n_tensors) << f->path();
      EXPECT_EQ(f->alignment(), alignment) << f->path();
      EXPECT_EQ(f->data_offset(), data_offset) << f->path();
      EXPECT_EQ(f->file_size(), file_size) << f->path();
    } else if (line.rfind("  kv  ", 0) == 0) {
      std::istringstream ss(line.substr(6));
      std::string key, type;
      ss >> key >> type;
      ASSERT_LT(kv_i, f->metadata().size()) << f->path();
      const auto& [k, v] = f->metadata()[kv_i++];
      EXPECT_EQ(k, key) << f->path();
      EXPECT_EQ(Upper(ValueTypeName(v.type)), type) << f->path() << " " << key;
      if (v.type == ValueType::kArray) {
        std::string elem, x;
        uint64_t count = 0;
        ss >> elem >> x >> count;  // "[STRING x 32000]"
        EXPECT_EQ("[" + Upper(ValueTypeName(v.elem_type)), elem) << key;
        EXPECT_EQ(v.count, count) << key;
      }
    } else if (line.rfind("  tensor ", 0) == 0) {
      std::istringstream ss(line.substr(9));
      std::string name, type;
      ss >> name >> type;
      if (name == "data" && type.rfind("bytes=", 0) == 0) continue;  // the summary line
      ASSERT_LT(tensor_i, f->tensors().size()) << f->path();
      const TensorInfo& t = f->tensors()[tensor_i++];
      EXPECT_EQ(t.name, name);
      const TypeTraits* tr = FindTypeTraits(t.type);
      ASSERT_NE(tr, nullptr);
      EXPECT_EQ(tr->name, type) << name;
      const std::string rest = line.substr(line.find("ne=["));
      std::vector<int64_t> ne;
      unsigned long long offset = 0, n_bytes = 0;
      const size_t close = rest.find(']');
      std::istringstream dims(rest.substr(4, close - 4));
      for (std::string d; std::getline(dims, d, ',');) ne.push_back(std::stoll(d));
      ASSERT_EQ(std::sscanf(rest.c_str() + close + 1, " offset=%llu bytes=%llu", &offset, &n_bytes), 2) << line;
      ASSERT_EQ(ne.size(), t.n_dims) << name;
      for (size_t d = 0; d < ne.size(); ++d) EXPECT_EQ(t.ne[d], ne[d]) << name << " dim " << d;
      EXPECT_EQ(t.offset, offset) << name;
      EXPECT_EQ(t.n_bytes, n_bytes) << name;
    }
  }
  finish();
  EXPECT_GE(files_checked, 2u);
}

// ---- facts from models/README.md ---------------------------------------------------------------

TEST(GgufReader, Stories260K) {
  const std::string path = kShared + "/models/stories260K.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is missing";
  auto f = File::Open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 48u);
  EXPECT_EQ(f->metadata().size(), 19u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_FALSE(f->Has("general.alignment"));
  EXPECT_EQ(f->metadata()[4].first, "general.architecture");  // the 5th key, not the first
  EXPECT_EQ(f->GetString("general.architecture"), "llama");
  EXPECT_EQ(f->GetUint("llama.context_length"), 2048u);
  EXPECT_EQ(f->GetUint("llama.embedding_length"), 64u);
  EXPECT_EQ(f->GetUint("llama.block_count"), 5u);
  EXPECT_EQ(f->GetUint("tokenizer.ggml.seperator_token_id"), 0xFFFFFFFFu);
  EXPECT_FALSE(f->Has("llama.rope.freq_base"));
  EXPECT_NEAR(*f->GetFloat("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-10);
  for (const auto& t : f->tensors()) EXPECT_EQ(t.type, static_cast<uint32_t>(DType::kF32)) << t.name;

  const Value* tokens = f->GetArray("tokenizer.ggml.tokens", ValueType::kString);
  ASSERT_NE(tokens, nullptr);
  ASSERT_EQ(tokens->count, 512u);
  EXPECT_EQ(tokens->strings[1], "<s>");
  EXPECT_EQ(tokens->strings[3], "<0x00>");
  const std::vector<int32_t> types = f->GetInt32Array("tokenizer.ggml.token_type");
  ASSERT_EQ(types.size(), 512u);
  EXPECT_EQ(types[0], 2);
  EXPECT_EQ(types[1], 3);
  EXPECT_EQ(types[3], 6);
  EXPECT_EQ(f->GetFloatArray("tokenizer.ggml.scores").size(), 512u);

  // output.weight is an exact copy of token_embd.weight.
  const TensorInfo* embd = f->FindTensor("token_embd.weight");
  const TensorInfo* out = f->FindTensor("output.weight");
  ASSERT_TRUE(embd && out);
  EXPECT_EQ(embd->ne[0], 64);
  EXPECT_EQ(embd->ne[1], 512);
  EXPECT_EQ(embd->NumElements(), 64 * 512);
  ASSERT_EQ(embd->n_bytes, out->n_bytes);
  EXPECT_EQ(std::memcmp(embd->data, out->data, embd->n_bytes), 0);
  EXPECT_EQ(f->FindTensor("no.such.tensor"), nullptr);
}

TEST(GgufReader, Llama2TinyRandom) {
  const std::string path = kShared + "/models/llama-2-tiny-random.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is missing";
  auto f = File::Open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 12u);
  EXPECT_EQ(f->metadata().size(), 18u);
  EXPECT_EQ(f->GetUint("general.file_type"), 1u);
  EXPECT_EQ(f->GetUint("llama.context_length"), 4096u);
  for (const auto& t : f->tensors()) {
    const bool is_vector = t.n_dims == 1;
    EXPECT_EQ(t.type, static_cast<uint32_t>(is_vector ? DType::kF32 : DType::kF16)) << t.name;
  }
  EXPECT_EQ(f->GetArray("tokenizer.ggml.tokens", ValueType::kString)->count, 32000u);
}

TEST(GgufReader, VocabOnlyVersion2FileEndsBeforeDataStart) {
  // ggml-vocab-aquila.gguf is GGUF v2 with no tensors; its aligned data start lies past its end.
  const std::string path = kShared + "/tokenizer/ggml-vocab-aquila.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is missing";
  auto f = File::Open(path);
  EXPECT_EQ(f->version(), 2u);
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_GT(f->data_offset(), f->file_size());
}

// ---- typed getters -----------------------------------------------------------------------------

class Getters : public ::testing::Test {
 protected:
  void SetUp() override {
    Writer w;
    w.SetU32("u32", 4000000000u);
    w.SetI32("neg", -5);
    w.SetI32("pos", 5);
    w.SetU64("big", ~uint64_t{0});
    w.SetF32("f", 2.5f);
    w.SetBool("b", true);
    w.SetString("s", "hello");
    w.SetF32Array("fa", {1.5f, -2});
    w.SetI32Array("ia", {1, -2, 3});
    w.SetStringArray("sa", {"x", "y"});
    static const uint64_t kWide[2] = {1, uint64_t{1} << 40};
    Value wide;
    wide.type = ValueType::kArray;
    wide.elem_type = ValueType::kUint64;
    wide.count = 2;
    wide.raw = reinterpret_cast<const uint8_t*>(kWide);
    w.CopyValue("wide", wide);
    path_ = TempPath("getters.gguf");
    w.Write(path_);
    f_ = File::Open(path_);
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
  std::unique_ptr<File> f_;
};

TEST_F(Getters, MissingKeysGiveNullopt) {
  EXPECT_EQ(f_->GetUint("nope"), std::nullopt);
  EXPECT_EQ(f_->GetInt("nope"), std::nullopt);
  EXPECT_EQ(f_->GetFloat("nope"), std::nullopt);
  EXPECT_EQ(f_->GetBool("nope"), std::nullopt);
  EXPECT_EQ(f_->GetString("nope"), std::nullopt);
  EXPECT_EQ(f_->GetArray("nope", ValueType::kString), nullptr);
  EXPECT_TRUE(f_->GetFloatArray("nope").empty());
  EXPECT_TRUE(f_->GetInt32Array("nope").empty());
  EXPECT_FALSE(f_->Has("nope"));
}

TEST_F(Getters, RightTypesGiveValues) {
  EXPECT_EQ(f_->GetUint("u32"), 4000000000u);
  EXPECT_EQ(f_->GetInt("u32"), 4000000000);
  EXPECT_EQ(f_->GetInt("neg"), -5);
  EXPECT_EQ(f_->GetUint("pos"), 5u);
  EXPECT_EQ(f_->GetUint("big"), ~uint64_t{0});
  EXPECT_EQ(f_->GetFloat("f"), 2.5);
  EXPECT_EQ(f_->GetFloat("neg"), -5.0);  // integers are accepted as numbers
  EXPECT_EQ(f_->GetBool("b"), true);
  EXPECT_EQ(f_->GetString("s"), "hello");
  EXPECT_EQ(f_->GetFloatArray("fa"), (std::vector<float>{1.5f, -2}));
  EXPECT_EQ(f_->GetInt32Array("ia"), (std::vector<int32_t>{1, -2, 3}));
  const Value* sa = f_->GetArray("sa", ValueType::kString);
  ASSERT_NE(sa, nullptr);
  EXPECT_EQ(sa->strings, (std::vector<std::string_view>{"x", "y"}));
  EXPECT_EQ(f_->Find("wide")->IntAt(1), int64_t{1} << 40);
}

// Each call must throw origami::Error whose message names the key.
template <typename F>
void ExpectKeyError(F&& call, const std::string& key) {
  try {
    call();
    ADD_FAILURE() << "no error for key " << key;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos) << e.what();
  }
}

TEST_F(Getters, WrongTypesThrow) {
  ExpectKeyError([&] { f_->GetUint("s"); }, "s");
  ExpectKeyError([&] { f_->GetUint("f"); }, "f");
  ExpectKeyError([&] { f_->GetUint("neg"); }, "neg");   // negative
  ExpectKeyError([&] { f_->GetInt("big"); }, "big");    // above int64
  ExpectKeyError([&] { f_->GetInt("b"); }, "b");
  ExpectKeyError([&] { f_->GetFloat("s"); }, "s");
  ExpectKeyError([&] { f_->GetBool("u32"); }, "u32");
  ExpectKeyError([&] { f_->GetString("u32"); }, "u32");
  ExpectKeyError([&] { f_->GetString("sa"); }, "sa");
  ExpectKeyError([&] { f_->GetArray("sa", ValueType::kInt32); }, "sa");
  ExpectKeyError([&] { f_->GetArray("s", ValueType::kString); }, "s");
  ExpectKeyError([&] { f_->GetFloatArray("ia"); }, "ia");
  ExpectKeyError([&] { f_->GetInt32Array("fa"); }, "fa");
  ExpectKeyError([&] { f_->GetInt32Array("sa"); }, "sa");
  ExpectKeyError([&] { f_->GetInt32Array("wide"); }, "wide");  // 2^40 is out of int32 range
}

// ---- writer round trips ------------------------------------------------------------------------

Value Scalar(ValueType t, uint64_t u, int64_t i = 0, double f = 0) {
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

Value StringArray(std::vector<std::string_view> s) {
  Value v;
  v.type = ValueType::kArray;
  v.elem_type = ValueType::kString;
  v.count = s.size();
  v.strings = std::move(s);
  return v;
}

Value ArrayOfArrays(std::vector<Value> items) {
  Value v;
  v.type = ValueType::kArray;
  v.elem_type = ValueType::kArray;
  v.count = items.size();
  v.items = std::move(items);
  return v;
}

TEST(GgufWriter, RoundTripsEveryValueTypeAndTensors) {
  static const uint16_t kU16[3] = {0, 1, 65535};
  static const int8_t kI8[2] = {-128, 127};
  static const double kF64[2] = {1e300, -0.0};
  static const uint8_t kBools[3] = {1, 0, 1};
  static const int16_t kI16[2] = {-32768, 32767};
  static const int64_t kI64[1] = {std::numeric_limits<int64_t>::min()};

  Writer w;
  w.CopyValue("u8", Scalar(ValueType::kUint8, 200));
  w.CopyValue("i8", Scalar(ValueType::kInt8, 0, -100));
  w.CopyValue("u16", Scalar(ValueType::kUint16, 65000));
  w.CopyValue("i16", Scalar(ValueType::kInt16, 0, -32000));
  w.SetU32("u32", 123456789);
  w.SetI32("i32", -123456789);
  w.SetF32("f32", 3.25f);
  w.SetBool("bool", false);
  w.SetString("str", "h\xc3\xa9llo\n");
  w.SetU64("u64", ~uint64_t{0});
  w.CopyValue("i64", Scalar(ValueType::kInt64, 0, std::numeric_limits<int64_t>::min()));
  w.CopyValue("f64", Scalar(ValueType::kFloat64, 0, 0, 1e-300));
  w.CopyValue("a.u16", RawArray(ValueType::kUint16, kU16, 3));
  w.CopyValue("a.i8", RawArray(ValueType::kInt8, kI8, 2));
  w.CopyValue("a.f64", RawArray(ValueType::kFloat64, kF64, 2));
  w.CopyValue("a.bool", RawArray(ValueType::kBool, kBools, 3));
  w.CopyValue("a.empty", RawArray(ValueType::kUint32, nullptr, 0));
  w.SetStringArray("a.str", {"", "b", std::string(300, 'z')});
  // [[i16 x2], ["p", "q"], [[i64 x1], []], []]
  w.CopyValue("a.nested", ArrayOfArrays({RawArray(ValueType::kInt16, kI16, 2), StringArray({"p", "q"}),
                                          ArrayOfArrays({RawArray(ValueType::kInt64, kI64, 1), ArrayOfArrays({})}),
                                          ArrayOfArrays({})}));

  std::vector<float> a(6 * 4);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i) * 0.5f;
  std::vector<uint16_t> h(7, 0x3c00);  // F16 ones, 14 bytes: the next tensor needs padding
  std::vector<uint8_t> q(34 * 2);      // two Q8_0 blocks
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<uint8_t>(i * 7);
  w.AddTensor("a", static_cast<uint32_t>(DType::kF32), {6, 4}, a.data(), a.size() * 4);
  w.AddTensor("h", static_cast<uint32_t>(DType::kF16), {7}, h.data(), h.size() * 2);
  w.AddTensor("q", static_cast<uint32_t>(DType::kQ8_0), {32, 1, 2, 1}, q.data(), q.size());

  const std::string path = TempPath("roundtrip.gguf");
  w.Write(path);
  auto f = File::Open(path);
  std::remove(path.c_str());  // the mapping stays valid

  ASSERT_EQ(f->metadata().size(), 19u);
  EXPECT_EQ(f->metadata()[0].first, "u8");  // insertion order is kept
  EXPECT_EQ(f->Find("u8")->type, ValueType::kUint8);
  EXPECT_EQ(f->GetUint("u8"), 200u);
  EXPECT_EQ(f->Find("i8")->type, ValueType::kInt8);
  EXPECT_EQ(f->GetInt("i8"), -100);
  EXPECT_EQ(f->GetUint("u16"), 65000u);
  EXPECT_EQ(f->GetInt("i16"), -32000);
  EXPECT_EQ(f->GetUint("u32"), 123456789u);
  EXPECT_EQ(f->GetInt("i32"), -123456789);
  EXPECT_EQ(f->GetFloat("f32"), 3.25);
  EXPECT_EQ(f->GetBool("bool"), false);
  EXPECT_EQ(f->GetString("str"), "h\xc3\xa9llo\n");
  EXPECT_EQ(f->GetUint("u64"), ~uint64_t{0});
  EXPECT_EQ(f->GetInt("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f->Find("f64")->type, ValueType::kFloat64);
  EXPECT_EQ(f->GetFloat("f64"), 1e-300);

  const Value* u16 = f->GetArray("a.u16", ValueType::kUint16);
  ASSERT_TRUE(u16 && u16->count == 3);
  EXPECT_EQ(u16->IntAt(2), 65535);
  const Value* i8 = f->GetArray("a.i8", ValueType::kInt8);
  EXPECT_EQ(i8->IntAt(0), -128);
  EXPECT_EQ(i8->IntAt(1), 127);
  const Value* f64 = f->GetArray("a.f64", ValueType::kFloat64);
  EXPECT_EQ(f64->NumberAt(0), 1e300);
  EXPECT_TRUE(std::signbit(f64->NumberAt(1)));
  EXPECT_EQ(f->GetFloatArray("a.f64")[1], 0.0f);
  const Value* bools = f->GetArray("a.bool", ValueType::kBool);
  EXPECT_EQ(bools->IntAt(0), 1);
  EXPECT_EQ(bools->IntAt(1), 0);
  EXPECT_EQ(f->GetArray("a.empty", ValueType::kUint32)->count, 0u);
  const Value* strs = f->GetArray("a.str", ValueType::kString);
  ASSERT_EQ(strs->count, 3u);
  EXPECT_EQ(strs->strings[0], "");
  EXPECT_EQ(strs->strings[2], std::string(300, 'z'));

  const Value* nested = f->GetArray("a.nested", ValueType::kArray);
  ASSERT_TRUE(nested && nested->count == 4 && nested->items.size() == 4);
  EXPECT_EQ(nested->items[0].elem_type, ValueType::kInt16);
  EXPECT_EQ(nested->items[0].IntAt(0), -32768);
  EXPECT_EQ(nested->items[0].IntAt(1), 32767);
  EXPECT_EQ(nested->items[1].strings, (std::vector<std::string_view>{"p", "q"}));
  const Value& inner = nested->items[2];
  ASSERT_EQ(inner.elem_type, ValueType::kArray);
  ASSERT_EQ(inner.items.size(), 2u);
  EXPECT_EQ(inner.items[0].IntAt(0), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(inner.items[1].elem_type, ValueType::kArray);
  EXPECT_EQ(inner.items[1].count, 0u);
  EXPECT_EQ(nested->items[3].count, 0u);
  EXPECT_EQ(nested->ToString(), "[4 x array] [[2 x int16] [-32768, 32767], [2 x string] [\"p\", \"q\"], "
                                "[2 x array] [[1 x int64] [-9223372036854775808], [0 x array]], [0 x array]]");

  ASSERT_EQ(f->tensors().size(), 3u);
  const TensorInfo* ta = f->FindTensor("a");
  ASSERT_EQ(ta->n_bytes, a.size() * 4);
  EXPECT_EQ(ta->NumElements(), 24);
  EXPECT_EQ(std::memcmp(ta->data, a.data(), ta->n_bytes), 0);
  const TensorInfo* th = f->FindTensor("h");
  EXPECT_EQ(th->n_bytes, 14u);
  EXPECT_EQ(std::memcmp(th->data, h.data(), 14), 0);
  const TensorInfo* tq = f->FindTensor("q");
  EXPECT_EQ(tq->n_dims, 4u);
  EXPECT_EQ(tq->ne[2], 2);
  EXPECT_EQ(tq->n_bytes, 68u);
  EXPECT_EQ(tq->offset % 32, 0u);
  EXPECT_EQ(std::memcmp(tq->data, q.data(), q.size()), 0);
  Walk(*f);
}

TEST(GgufWriter, CopiesARealModelExactly) {
  // What `convert` does: every key copied with CopyValue, every tensor re-added; the copy must
  // read back with the same metadata and the same tensor bytes.
  const std::string src_path = kShared + "/models/stories260K.gguf";
  if (!fs::exists(src_path)) GTEST_SKIP() << src_path << " is missing";
  auto src = File::Open(src_path);
  Writer w;
  for (const auto& [k, v] : src->metadata()) w.CopyValue(k, v);
  for (const auto& t : src->tensors())
    w.AddTensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.n_bytes);
  const std::string path = TempPath("stories-copy.gguf");
  w.Write(path);
  auto dst = File::Open(path);
  std::remove(path.c_str());
  ASSERT_EQ(dst->metadata().size(), src->metadata().size());
  for (size_t i = 0; i < src->metadata().size(); ++i) {
    EXPECT_EQ(dst->metadata()[i].first, src->metadata()[i].first);
    EXPECT_EQ(dst->metadata()[i].second.ToString(1 << 20), src->metadata()[i].second.ToString(1 << 20));
  }
  ASSERT_EQ(dst->tensors().size(), src->tensors().size());
  for (size_t i = 0; i < src->tensors().size(); ++i) {
    const auto& a = src->tensors()[i];
    const auto& b = dst->tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.offset, b.offset);  // llama.cpp packs with the same 32-byte alignment
    ASSERT_EQ(a.n_bytes, b.n_bytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.n_bytes), 0) << a.name;
  }
  EXPECT_EQ(dst->data_offset(), src->data_offset());
}

void ExpectAlignment(const File& f, uint32_t alignment) {
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(t.offset % alignment, 0u) << t.name;
    EXPECT_EQ((f.data_offset() + t.offset) % alignment, 0u) << t.name;
  }
}

TEST(GgufWriter, HonoursGeneralAlignment) {
  for (const bool explicit_key : {true, false}) {
    SCOPED_TRACE(explicit_key ? "general.alignment set" : "Writer(64)");
    Writer w(explicit_key ? kDefaultAlignment : 64);
    if (explicit_key) w.SetU32("general.alignment", 64);
    w.SetString("general.architecture", "test");
    const uint8_t bytes[40] = {1, 2, 3};
    w.AddTensor("x", static_cast<uint32_t>(DType::kI8), {3}, bytes, 3);
    w.AddTensor("y", static_cast<uint32_t>(DType::kI8), {40}, bytes, 40);
    w.AddTensor("z", static_cast<uint32_t>(DType::kI8), {1}, bytes, 1);
    const std::string path = TempPath("aligned.gguf");
    w.Write(path);
    auto f = File::Open(path);
    std::remove(path.c_str());
    EXPECT_EQ(f->GetUint("general.alignment"), 64u);
    ExpectAlignment(*f, 64);
    EXPECT_EQ(f->FindTensor("y")->offset, 64u);
    EXPECT_EQ(f->FindTensor("z")->offset, 128u);
    EXPECT_EQ(f->FindTensor("y")->data[0], 1);
  }
}

TEST(GgufWriter, RejectsAlignmentsAReaderWouldReject) {
  EXPECT_THROW(Writer(0), Error);
  EXPECT_THROW(Writer(48), Error);
  Writer w;
  EXPECT_THROW(w.SetU32("general.alignment", 0), Error);
  EXPECT_THROW(w.SetU32("general.alignment", 96), Error);
  EXPECT_THROW(w.SetU64("general.alignment", 64), Error);
  const uint8_t b[4] = {};
  w.AddTensor("t", static_cast<uint32_t>(DType::kI8), {4}, b, 4);
  EXPECT_THROW(w.SetU32("general.alignment", 64), Error);  // too late: "t" is already laid out
}

// ---- hand-built files that are valid -----------------------------------------------------------

TEST(GgufReader, ParsesVersion2) {
  Bytes b;
  b.Header(1, 1, 2).Key("general.architecture", ValueType::kString).Str("x");
  b.TensorInfo("t", {2}, static_cast<uint32_t>(DType::kF32), 0).PadTo(32).Put(1.0f).Put(2.0f);
  std::vector<uint8_t> buf = b;
  auto f = File::Parse(buf.data(), buf.size(), "v2.gguf");
  EXPECT_EQ(f->version(), 2u);
  float x;
  std::memcpy(&x, f->tensors()[0].data + 4, 4);
  EXPECT_EQ(x, 2.0f);
}

TEST(GgufReader, NestedArraysUpToDepthEight) {
  // Eight arrays of one array each, the innermost (depth 8) holding three uint8: the deepest accepted.
  Bytes b;
  b.Header(0, 1).Key("deep", ValueType::kArray);
  for (int i = 0; i < 8; ++i) b.ArrayHead(ValueType::kArray, 1);
  b.ArrayHead(ValueType::kUint8, 3).U8(1).U8(2).U8(3);
  std::vector<uint8_t> buf = b;
  auto f = File::Parse(buf.data(), buf.size(), "deep.gguf");
  const Value* v = f->Find("deep");
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(v->items.size(), 1u);
    v = &v->items[0];
  }
  ASSERT_EQ(v->elem_type, ValueType::kUint8);
  EXPECT_EQ(v->IntAt(2), 3);
}

TEST(GgufReader, CustomAlignmentFromHandBuiltFile) {
  Bytes b;
  b.Header(1, 1).Key("general.alignment", ValueType::kUint32).U32(256);
  b.TensorInfo("t", {4}, static_cast<uint32_t>(DType::kF32), 256).PadTo(256).Zeros(256).Put(7.0f).Zeros(12);
  std::vector<uint8_t> buf = b;
  auto f = File::Parse(buf.data(), buf.size(), "a256.gguf");
  EXPECT_EQ(f->data_offset(), 256u);
  ExpectAlignment(*f, 256);
  float x;
  std::memcpy(&x, f->tensors()[0].data, 4);
  EXPECT_EQ(x, 7.0f);
}

TEST(GgufReader, FloatToIntConversionsSaturate) {
  // IntAt on a float array must not hit the undefined float -> int cast for NaN or huge values.
  const float kF[4] = {std::numeric_limits<float>::quiet_NaN(), 1e30f, -1e30f, -7.9f};
  const Value v = RawArray(ValueType::kFloat32, kF, 4);
  EXPECT_EQ(v.IntAt(0), 0);
  EXPECT_EQ(v.IntAt(1), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(v.IntAt(2), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(v.IntAt(3), -7);
}

TEST(GgufReader, OpenMissingFileIsAnIoError) {
  try {
    File::Open(TempPath("does-not-exist.gguf"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
  }
}

TEST(GgufReader, OpenEmptyFileIsRejected) {
  const std::string path = TempPath("empty.gguf");
  std::fclose(std::fopen(path.c_str(), "wb"));
  try {
    File::Open(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shorter than the 4-byte magic (at byte offset 0)"), std::string::npos);
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace origami::gguf
