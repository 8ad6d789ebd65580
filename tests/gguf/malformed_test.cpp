// Malformed GGUF files, each built byte by byte in the test, must throw origami::Error naming the
// field and the byte offset: never crash, hang or allocate more than the file size justifies.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "gguf/gguf.h"
#include "gguf/gguf_bytes.h"
#include "gguf/writer.h"
#include "util/error.h"

// Counts the bytes that operator new hands out while g_track is set, so a test can show that a
// hostile count does not turn into a huge allocation (a reserve() of 2^60 elements would
// otherwise only show up as bad_alloc or an OOM kill). Every other allocation passes straight through.
namespace {
std::atomic<bool> g_track{false};
std::atomic<uint64_t> g_tracked_bytes{0};

void* CountedAlloc(std::size_t n) {
  if (g_track.load(std::memory_order_relaxed)) g_tracked_bytes.fetch_add(n, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return CountedAlloc(n); }
void* operator new[](std::size_t n) { return CountedAlloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace origami::gguf {
namespace {

using testing::Bytes;
constexpr uint32_t kF32 = 0, kQ8_0 = 8, kF64 = 28;
constexpr uint64_t k2p60 = uint64_t{1} << 60;

// A heap block of exactly b's size, so ASan sees any read past the end of the "file".
std::unique_ptr<uint8_t[]> ExactCopy(const std::vector<uint8_t>& b) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[b.empty() ? 1 : b.size()]);
  if (!b.empty()) std::memcpy(buf.get(), b.data(), b.size());
  return buf;
}

// Parses a copy of b; when that succeeds, renders every value and reads every tensor byte.
void ParseCopy(const std::vector<uint8_t>& b) {
  auto buf = ExactCopy(b);
  auto f = File::Parse(buf.get(), b.size(), "bad.gguf");
  size_t sum = 0;
  for (const auto& [key, value] : f->metadata()) sum += value.ToString(1 << 20).size();
  for (const auto& t : f->tensors())
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += t.data[i];
  EXPECT_GE(sum, 0u);
}

// Passes when parsing `b` throws origami::Error whose message contains every needle.
::testing::AssertionResult Rejects(const std::vector<uint8_t>& b, const std::vector<std::string>& needles) {
  try {
    ParseCopy(b);
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& n : needles)
      if (msg.find(n) == std::string::npos)
        return ::testing::AssertionFailure() << "message \"" << msg << "\" lacks \"" << n << "\"";
    if (msg.rfind("bad.gguf: ", 0) != 0) return ::testing::AssertionFailure() << "no file name in \"" << msg << "\"";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-origami exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "parsed without error";
}

std::string At(uint64_t offset) { return "(at byte offset " + std::to_string(offset) + ")"; }

// A key "a" of type uint8 (14 bytes).
Bytes& SmallKv(Bytes& b, std::string_view key = "a") { return b.Key(key, ValueType::kUint8).U8(7); }

// One tensor "w" of shape ne and type, its info padded to 32 and followed by `data` zero bytes.
Bytes OneTensor(std::initializer_list<uint64_t> ne, uint32_t type, uint64_t offset, size_t data) {
  Bytes b;
  b.Header(1, 0).TensorInfo("w", ne, type, offset).PadTo(32).Zeros(data);
  return b;
}

// ---- header ------------------------------------------------------------------------------------

TEST(GgufMalformed, EmptyFile) {
  EXPECT_TRUE(Rejects({}, {"shorter than the 4-byte magic", At(0)}));
}

TEST(GgufMalformed, ShortMagic) {
  EXPECT_TRUE(Rejects({'G', 'G', 'U'}, {"shorter than the 4-byte magic", At(0)}));
}

TEST(GgufMalformed, BadMagic) {
  Bytes b;
  b.Raw("GGML").U32(3).U64(0).U64(0);
  EXPECT_TRUE(Rejects(b, {"not a GGUF file: bad magic", At(0)}));
}

TEST(GgufMalformed, TruncatedVersion) {
  Bytes b;
  b.U32(kMagic).U8(3).U8(0);
  EXPECT_TRUE(Rejects(b, {"truncated file: version needs 4 bytes, 2 remain", At(4)}));
}

TEST(GgufMalformed, Version1) {
  Bytes b;
  b.Header(0, 0, 1);
  EXPECT_TRUE(Rejects(b, {"GGUF version 1 is not supported", At(4)}));
}

TEST(GgufMalformed, Version4) {
  Bytes b;
  b.Header(0, 0, 4);
  EXPECT_TRUE(Rejects(b, {"unsupported GGUF version 4 (only 2 and 3)", At(4)}));
}

TEST(GgufMalformed, BigEndianVersion) {
  Bytes b;
  b.Header(0, 0, 0x03000000);  // version 3 written big-endian
  EXPECT_TRUE(Rejects(b, {"big-endian GGUF files are not supported", At(4)}));
}

TEST(GgufMalformed, TruncatedTensorCount) {
  Bytes b;
  b.U32(kMagic).U32(3).U32(0);
  EXPECT_TRUE(Rejects(b, {"truncated file: tensor count needs 8 bytes, 4 remain", At(8)}));
}

TEST(GgufMalformed, TruncatedMetadataCount) {
  Bytes b;
  b.U32(kMagic).U32(3).U64(0).U32(0);
  EXPECT_TRUE(Rejects(b, {"truncated file: metadata count needs 8 bytes, 4 remain", At(16)}));
}

TEST(GgufMalformed, HugeMetadataCount) {
  Bytes b;
  SmallKv(b.Header(0, k2p60));
  EXPECT_TRUE(Rejects(b, {"metadata count 1152921504606846976 is larger than the file can hold", At(16)}));
}

TEST(GgufMalformed, HugeTensorCount) {
  Bytes b;
  b.Header(k2p60, 0).TensorInfo("w", {4}, kF32, 0);
  EXPECT_TRUE(Rejects(b, {"tensor count 1152921504606846976 is larger than the file can hold", At(8)}));
}

TEST(GgufMalformed, MetadataCountOverLimit) {
  // 2^20 + 1 keys would fit in the bytes (13 each), but the count is over the reader's limit.
  Bytes b;
  const uint64_t n = (uint64_t{1} << 20) + 1;
  b.Header(0, n).Zeros(13 * n);
  EXPECT_TRUE(Rejects(b, {"metadata count 1048577 is over the limit of 1048576", At(16)}));
}

// ---- metadata keys -----------------------------------------------------------------------------

TEST(GgufMalformed, MetadataCountBeyondEntries) {
  // One key of 27 bytes: enough for the count check (13 bytes a key), but the second key is missing.
  Bytes b;
  SmallKv(b.Header(0, 2), "abcdefghijklmn");
  EXPECT_TRUE(Rejects(b, {"truncated file: metadata key needs 8 bytes, 0 remain", At(51)}));
}

TEST(GgufMalformed, HugeKeyLength) {
  Bytes b;
  b.Header(0, 1).U64(uint64_t{1} << 63).Zeros(8);
  EXPECT_TRUE(Rejects(b, {"metadata key has length 9223372036854775808 (limit 65535)", At(24)}));
}

TEST(GgufMalformed, KeyLengthPastEnd) {
  Bytes b;
  b.Header(0, 1).U64(1000).Raw("abcdefgh");
  EXPECT_TRUE(Rejects(b, {"metadata key has length 1000 but only 8 bytes remain", At(24)}));
}

TEST(GgufMalformed, EmptyKey) {
  Bytes b;
  SmallKv(b.Header(0, 1), "");
  EXPECT_TRUE(Rejects(b, {"metadata key #0 is empty", At(24)}));
}

// The second key is the bad one, so the index and offset in the message are not just the defaults.
void ExpectBadUtf8Key(std::string_view key) {
  Bytes b;
  SmallKv(b.Header(0, 2));
  const size_t at = b.size();
  SmallKv(b, key);
  EXPECT_TRUE(Rejects(b, {"metadata key #1 is not valid UTF-8", At(at)})) << "key bytes: " << key.size();
}

TEST(GgufMalformed, Utf8OverlongKey) { ExpectBadUtf8Key("a\xc0\xaf"); }         // overlong '/'
TEST(GgufMalformed, Utf8SurrogateKey) { ExpectBadUtf8Key("\xed\xa0\x80x"); }   // U+D800
TEST(GgufMalformed, Utf8TruncatedKey) { ExpectBadUtf8Key("ab\xe2\x82"); }       // 3-byte sequence cut
TEST(GgufMalformed, Utf8StrayContinuationKey) { ExpectBadUtf8Key("\x80"); }
TEST(GgufMalformed, Utf8AboveMaxKey) { ExpectBadUtf8Key("\xf4\x90\x80\x80"); }  // U+110000

TEST(GgufMalformed, DuplicateKey) {
  Bytes b;
  SmallKv(b.Header(0, 2), "general.name");
  const size_t at = b.size();
  SmallKv(b, "general.name");
  EXPECT_TRUE(Rejects(b, {"duplicate metadata key 'general.name'", At(at)}));
}

TEST(GgufMalformed, ControlBytesInKeyAreEscapedInMessage) {
  // A NUL inside a key is valid UTF-8; the message must show it escaped, not end at it.
  using namespace std::string_view_literals;
  Bytes b;
  SmallKv(b.Header(0, 2), "a\0b\x1b[2J"sv);
  const size_t at = b.size();
  SmallKv(b, "a\0b\x1b[2J"sv);
  EXPECT_TRUE(Rejects(b, {"duplicate metadata key 'a\\x00b\\x1b[2J'", At(at)}));
}

TEST(GgufMalformed, ControlBytesInTensorNameAreEscapedInMessage) {
  using namespace std::string_view_literals;
  Bytes b;
  b.Header(1, 0).TensorInfo("t\0\n"sv, {4}, 77, 0).PadTo(32).Zeros(16);
  EXPECT_TRUE(Rejects(b, {"tensor 't\\x00\\n' has unknown type 77"}));
}

// ---- metadata values ---------------------------------------------------------------------------

TEST(GgufMalformed, UnknownValueType) {
  Bytes b;
  b.Header(0, 1).Str("a").U32(13).U32(0);
  EXPECT_TRUE(Rejects(b, {"key 'a': unknown value type 13", At(33)}));
}

TEST(GgufMalformed, UnknownValueTypeAllOnes) {
  Bytes b;
  b.Header(0, 1).Str("a").U32(0xffffffff).U32(0);
  EXPECT_TRUE(Rejects(b, {"key 'a': unknown value type 4294967295", At(33)}));
}

TEST(GgufMalformed, TruncatedValueType) {
  Bytes b;
  b.Header(0, 1).Str("abcdef").U8(0).U8(0);
  EXPECT_TRUE(Rejects(b, {"truncated file: metadata value type needs 4 bytes, 2 remain", At(38)}));
}

TEST(GgufMalformed, TruncatedScalarValue) {
  Bytes b;
  b.Header(0, 1).Key("a", ValueType::kUint32).U8(1).U8(2);
  EXPECT_TRUE(Rejects(b, {"truncated file: uint32 value needs 4 bytes, 2 remain", At(37)}));
}

TEST(GgufMalformed, BoolByteTwo) {
  Bytes b;
  b.Header(0, 1).Key("flag", ValueType::kBool).U8(2);
  EXPECT_TRUE(Rejects(b, {"key 'flag': bool value is 2, not 0 or 1", At(40)}));
}

TEST(GgufMalformed, BoolArrayElementTwo) {
  Bytes b;
  b.Header(0, 1).Key("flags", ValueType::kArray).ArrayHead(ValueType::kBool, 3);
  const size_t at = b.size() + 2;
  b.U8(0).U8(1).U8(2);
  EXPECT_TRUE(Rejects(b, {"key 'flags': bool element is 2", At(at)}));
}

TEST(GgufMalformed, HugeStringLength) {
  Bytes b;
  b.Header(0, 1).Key("s", ValueType::kString).U64(uint64_t{1} << 62).Raw("abc");
  EXPECT_TRUE(Rejects(b, {"string value has length 4611686018427387904 but only 3 bytes remain", At(37)}));
}

TEST(GgufMalformed, HugeUint8ArrayCount) {
  Bytes b;
  b.Header(0, 1).Key("arr", ValueType::kArray).ArrayHead(ValueType::kUint8, uint64_t{1} << 62).Raw("xyz");
  EXPECT_TRUE(Rejects(b, {"key 'arr': array of 4611686018427387904 uint8 elements does not fit in the 3 bytes left",
                          At(43)}));
}

TEST(GgufMalformed, Uint64ArrayCountOverflowsByteSize) {
  // 2^61 elements of 8 bytes is 2^64 bytes: the multiplication itself overflows.
  Bytes b;
  b.Header(0, 1).Key("arr", ValueType::kArray).ArrayHead(ValueType::kUint64, uint64_t{1} << 61).U64(1);
  EXPECT_TRUE(Rejects(b, {"key 'arr': array of 2305843009213693952 uint64 elements does not fit", At(43)}));
}

TEST(GgufMalformed, HugeStringArrayCount) {
  Bytes b;
  b.Header(0, 1).Key("toks", ValueType::kArray).ArrayHead(ValueType::kString, k2p60).Str("a");
  EXPECT_TRUE(Rejects(b, {"key 'toks': array of 1152921504606846976 string elements does not fit in the 9 bytes left",
                          At(44)}));
}

TEST(GgufMalformed, HugeNestedArrayCount) {
  Bytes b;
  b.Header(0, 1).Key("nest", ValueType::kArray).ArrayHead(ValueType::kArray, k2p60).ArrayHead(ValueType::kUint8, 0);
  EXPECT_TRUE(Rejects(b, {"key 'nest': array of 1152921504606846976 array elements does not fit", At(44)}));
}

TEST(GgufMalformed, HugeCountInsideNestedArray) {
  Bytes b;
  b.Header(0, 1).Key("nest", ValueType::kArray).ArrayHead(ValueType::kArray, 1);
  const size_t at = b.size() + 4;
  b.ArrayHead(ValueType::kFloat32, k2p60).Zeros(4);
  EXPECT_TRUE(Rejects(b, {"key 'nest': array of 1152921504606846976 float32 elements does not fit", At(at)}));
}

TEST(GgufMalformed, HugeStringInsideArray) {
  Bytes b;
  b.Header(0, 1).Key("toks", ValueType::kArray).ArrayHead(ValueType::kString, 2).Str("ok");
  const size_t at = b.size();
  b.U64(uint64_t{1} << 40).Raw("x");
  EXPECT_TRUE(Rejects(b, {"array string has length 1099511627776 but only 1 bytes remain", At(at)}));
}

TEST(GgufMalformed, UnknownArrayElementType) {
  Bytes b;
  b.Header(0, 1).Key("arr", ValueType::kArray).U32(13).U64(0);
  EXPECT_TRUE(Rejects(b, {"key 'arr': unknown array element type 13", At(39)}));
}

TEST(GgufMalformed, UnknownNestedArrayElementType) {
  Bytes b;
  b.Header(0, 1).Key("arr", ValueType::kArray).ArrayHead(ValueType::kArray, 1);
  const size_t at = b.size();
  b.U32(200).U64(0);
  EXPECT_TRUE(Rejects(b, {"key 'arr': unknown array element type 200", At(at)}));
}

TEST(GgufMalformed, NestedArrayDepthBomb) {
  // 10000 arrays each holding one array: rejected at depth 8, without deep recursion.
  Bytes b;
  b.Header(0, 1).Key("deep", ValueType::kArray);
  const size_t first = b.size();
  for (int i = 0; i < 10000; ++i) b.ArrayHead(ValueType::kArray, 1);
  EXPECT_TRUE(Rejects(b, {"key 'deep': arrays nested deeper than 8", At(first + 8 * 12)}));
}

TEST(GgufMalformed, NestedArrayElementBudget) {
  // 2^20 + 1 empty uint8 arrays (12 zero bytes each) inside one array: each would become a ~100-byte
  // Value, so the reader caps the total.
  Bytes b;
  const uint64_t n = (uint64_t{1} << 20) + 1;
  b.Header(0, 1).Key("nest", ValueType::kArray).ArrayHead(ValueType::kArray, n).Zeros(12 * n);
  EXPECT_TRUE(Rejects(b, {"key 'nest': more than 1048576 nested array elements in the file", At(44)}));
}

TEST(GgufMalformed, TruncatedInsideArray) {
  Bytes b;
  b.Header(0, 1).Key("xs", ValueType::kArray).ArrayHead(ValueType::kInt32, 4).U32(1).U32(2);
  // 4 int32 need 16 bytes but only 8 remain: caught by the count check before any element is read.
  EXPECT_TRUE(Rejects(b, {"key 'xs': array of 4 int32 elements does not fit in the 8 bytes left", At(42)}));
}

// ---- general.alignment -------------------------------------------------------------------------

TEST(GgufMalformed, AlignmentZero) {
  Bytes b;
  b.Header(0, 1).Key("general.alignment", ValueType::kUint32).U32(0);
  EXPECT_TRUE(Rejects(b, {"general.alignment must be a power of two, is 0", At(53)}));
}

TEST(GgufMalformed, AlignmentNotPowerOfTwo) {
  Bytes b;
  b.Header(0, 1).Key("general.alignment", ValueType::kUint32).U32(48);
  EXPECT_TRUE(Rejects(b, {"general.alignment must be a power of two, is 48", At(53)}));
}

TEST(GgufMalformed, AlignmentWrongTypeUint64) {
  Bytes b;
  b.Header(0, 1).Key("general.alignment", ValueType::kUint64).U64(32);
  EXPECT_TRUE(Rejects(b, {"general.alignment must be a uint32, is uint64", At(49)}));
}

TEST(GgufMalformed, AlignmentWrongTypeString) {
  Bytes b;
  b.Header(0, 1).Key("general.alignment", ValueType::kString).Str("32");
  EXPECT_TRUE(Rejects(b, {"general.alignment must be a uint32, is string", At(49)}));
}

TEST(GgufMalformed, AlignmentViaWriterThenPatched) {
  // Byte surgery on a writer-built header: the value 64 becomes 63.
  Writer w;
  w.SetString("general.architecture", "llama");
  w.SetU32("general.alignment", 64);
  std::vector<uint8_t> bytes = w.HeaderBytes();
  const size_t value_at = bytes.size() - 4;
  ASSERT_EQ(bytes[value_at], 64);
  bytes[value_at] = 63;
  EXPECT_TRUE(Rejects(bytes, {"general.alignment must be a power of two, is 63", At(value_at)}));
}

// ---- tensor infos ------------------------------------------------------------------------------

TEST(GgufMalformed, TensorCountWithoutInfos) {
  Bytes b;
  b.Header(1, 0);
  EXPECT_TRUE(Rejects(b, {"tensor count 1 is larger than the file can hold", At(8)}));
}

TEST(GgufMalformed, TruncatedTensorInfo) {
  Bytes b;
  b.Header(1, 0).Str("abcdefghijklmnop").U32(2).U64(4);  // the second dimension is missing
  EXPECT_TRUE(Rejects(b, {"truncated file: tensor dimension needs 8 bytes, 0 remain", At(60)}));
}

TEST(GgufMalformed, EmptyTensorName) {
  Bytes b;
  b.Header(1, 0).TensorInfo("", {4}, kF32, 0).PadTo(32).Zeros(16);
  EXPECT_TRUE(Rejects(b, {"tensor #0 name is empty", At(24)}));
}

TEST(GgufMalformed, InvalidUtf8TensorName) {
  Bytes b;
  b.Header(2, 0).TensorInfo("w", {4}, kF32, 0);
  const size_t at = b.size();
  b.TensorInfo("x\xc3(", {4}, kF32, 32).PadTo(32).Zeros(64);
  EXPECT_TRUE(Rejects(b, {"tensor #1 name is not valid UTF-8", At(at)}));
}

TEST(GgufMalformed, HugeTensorNameLength) {
  Bytes b;
  b.Header(1, 0).U64(uint64_t{1} << 32).Zeros(40);
  EXPECT_TRUE(Rejects(b, {"tensor name has length 4294967296 (limit 65535)", At(24)}));
}

TEST(GgufMalformed, ZeroDimensions) {
  EXPECT_TRUE(Rejects(OneTensor({}, kF32, 0, 32), {"tensor 'w' has 0 dimensions (1 to 4 allowed)", At(33)}));
}

TEST(GgufMalformed, FiveDimensions) {
  EXPECT_TRUE(Rejects(OneTensor({1, 1, 1, 1, 1}, kF32, 0, 32), {"tensor 'w' has 5 dimensions (1 to 4 allowed)", At(33)}));
}

TEST(GgufMalformed, ZeroDim) {
  EXPECT_TRUE(Rejects(OneTensor({4, 0}, kF32, 0, 32), {"tensor 'w' dimension 1 is zero", At(45)}));
}

TEST(GgufMalformed, DimsProductOverflowsUint64) {
  EXPECT_TRUE(Rejects(OneTensor({uint64_t{1} << 32, uint64_t{1} << 32}, kF32, 0, 32),
                      {"tensor 'w' element count overflows", At(45)}));
}

TEST(GgufMalformed, DimsProductAboveInt64) {
  // 2^62 * 2 = 2^63 fits in uint64 but not in the int64 that ne[] and NumElements() use.
  EXPECT_TRUE(Rejects(OneTensor({uint64_t{1} << 62, 2}, kF32, 0, 32), {"tensor 'w' element count overflows", At(45)}));
}

TEST(GgufMalformed, SingleDimAboveInt64) {
  EXPECT_TRUE(Rejects(OneTensor({uint64_t{1} << 63}, kF32, 0, 32), {"tensor 'w' element count overflows", At(37)}));
}

TEST(GgufMalformed, ByteSizeOverflows) {
  // 2^62 float32 elements are 2^64 bytes.
  EXPECT_TRUE(Rejects(OneTensor({uint64_t{1} << 31, uint64_t{1} << 31}, kF32, 0, 32),
                      {"tensor 'w' byte size overflows", At(33)}));
}

TEST(GgufMalformed, UnknownTensorType) {
  EXPECT_TRUE(Rejects(OneTensor({4}, 99, 0, 32), {"tensor 'w' has unknown type 99", At(45)}));
}

TEST(GgufMalformed, RowNotMultipleOfBlockSize) {
  EXPECT_TRUE(Rejects(OneTensor({33, 2}, kQ8_0, 0, 96),
                      {"tensor 'w' row length 33 is not a multiple of the Q8_0 block size 32", At(33)}));
}

TEST(GgufMalformed, OffsetNotAligned) {
  EXPECT_TRUE(Rejects(OneTensor({4}, kF32, 3, 64), {"tensor 'w' offset 3 is not a multiple of the alignment 32", At(49)}));
}

TEST(GgufMalformed, OffsetNotAlignedToGeneralAlignment) {
  Bytes b;
  b.Header(1, 1).Key("general.alignment", ValueType::kUint32).U32(64);
  const size_t at = b.size() + 8 + 1 + 4 + 8 + 4;
  b.TensorInfo("w", {4}, kF32, 32).PadTo(64).Zeros(64);
  EXPECT_TRUE(Rejects(b, {"tensor 'w' offset 32 is not a multiple of the alignment 64", At(at)}));
}

TEST(GgufMalformed, OffsetPastEnd) {
  EXPECT_TRUE(Rejects(OneTensor({4}, kF32, 1024, 32),
                      {"tensor 'w' data offset 1024 is past the end of the data section (32 bytes)", At(24)}));
}

TEST(GgufMalformed, OffsetPlusSizePastEnd) {
  EXPECT_TRUE(Rejects(OneTensor({16}, kF32, 0, 32),
                      {"tensor 'w' data [0, +64) runs past the end of the data section (32 bytes)", At(24)}));
}

TEST(GgufMalformed, OffsetPlusSizeOverflows) {
  // (2^61 - 1) float64 elements take 2^64 - 8 bytes; offset 32 + that wraps around.
  EXPECT_TRUE(Rejects(OneTensor({(uint64_t{1} << 61) - 1}, kF64, 32, 64),
                      {"tensor 'w' data [32, +18446744073709551608) runs past the end of the data section (64 bytes)",
                       At(24)}));
}

TEST(GgufMalformed, DataSectionMissing) {
  Bytes b;
  b.Header(1, 0).TensorInfo("w", {4}, kF32, 0);  // ends at byte 57; the data would start at 64
  EXPECT_TRUE(Rejects(b, {"truncated file: no data section after the tensor infos", At(57)}));
}

TEST(GgufMalformed, DataSectionEmpty) {
  EXPECT_TRUE(Rejects(OneTensor({4}, kF32, 0, 0),
                      {"tensor 'w' data offset 0 is past the end of the data section (0 bytes)", At(24)}));
}

TEST(GgufMalformed, DuplicateTensorName) {
  Bytes b;
  b.Header(2, 0).TensorInfo("w", {4}, kF32, 0);
  const size_t at = b.size();
  b.TensorInfo("w", {4}, kF32, 32).PadTo(32).Zeros(64);
  EXPECT_TRUE(Rejects(b, {"duplicate tensor 'w'", At(at)}));
}

// ---- truncation at every section and every byte -------------------------------------------------

// A small valid file whose layout is known byte by byte:
//   [0,24) header, 2 tensors, 3 keys
//   [24,69) general.architecture = "llama"      [69,102) general.alignment = 32
//   [102,148) tok = ["a", "bc"]
//   [148,181) tensor w [8] F32 at 0             [181,222) tensor v [2,2] F32 at 32
//   [222,224) padding, [224,272) data
Bytes SmallValidFile() {
  Bytes b;
  b.Header(2, 3);
  b.Key("general.architecture", ValueType::kString).Str("llama");
  b.Key("general.alignment", ValueType::kUint32).U32(32);
  b.Key("tok", ValueType::kArray).ArrayHead(ValueType::kString, 2).Str("a").Str("bc");
  b.TensorInfo("w", {8}, kF32, 0);
  b.TensorInfo("v", {2, 2}, kF32, 32);
  b.PadTo(32);
  for (int i = 0; i < 12; ++i) b.Put(static_cast<float>(i));
  return b;
}

std::vector<uint8_t> Prefix(const std::vector<uint8_t>& b, size_t n) { return {b.begin(), b.begin() + n}; }

TEST(GgufMalformed, SmallValidFileParses) {
  const Bytes b = SmallValidFile();
  ASSERT_EQ(b.size(), 272u);
  std::vector<uint8_t> copy = b;
  auto f = File::Parse(copy.data(), copy.size(), "ok.gguf");
  EXPECT_EQ(f->metadata().size(), 3u);
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->data_offset(), 224u);
  EXPECT_EQ(f->tensors()[1].info_offset, 181u);
  float x;
  std::memcpy(&x, f->tensors()[1].data + 12, 4);
  EXPECT_EQ(x, 11.0f);
}

TEST(GgufMalformed, TruncatedAtEachSectionBoundary) {
  const Bytes b = SmallValidFile();
  const struct {
    size_t cut;
    std::vector<std::string> needles;
  } cases[] = {
      {0, {"shorter than the 4-byte magic", At(0)}},
      {4, {"truncated file: version needs 4 bytes, 0 remain", At(4)}},
      {8, {"truncated file: tensor count needs 8 bytes, 0 remain", At(8)}},
      {16, {"truncated file: metadata count needs 8 bytes, 0 remain", At(16)}},
      {24, {"metadata count 3 is larger than the file can hold", At(16)}},
      {69, {"tensor count 2 is larger than the file can hold", At(8)}},
      {102, {"truncated file: metadata key needs 8 bytes, 0 remain", At(102)}},
      {148, {"truncated file: tensor name needs 8 bytes, 0 remain", At(148)}},
      {181, {"truncated file: tensor name needs 8 bytes, 0 remain", At(181)}},
      {222, {"truncated file: no data section after the tensor infos", At(222)}},
      {224, {"tensor 'w' data offset 0 is past the end of the data section (0 bytes)", At(148)}},
      {256, {"tensor 'v' data offset 32 is past the end of the data section (32 bytes)", At(181)}},
      {271, {"tensor 'v' data [32, +16) runs past the end of the data section (47 bytes)", At(181)}},
  };
  for (const auto& c : cases) EXPECT_TRUE(Rejects(Prefix(b, c.cut), c.needles)) << "cut at " << c.cut;
}

// Every strict prefix of a valid file must be rejected with an Error naming a byte offset, quickly.
void ExpectEveryPrefixRejected(const std::vector<uint8_t>& full) {
  const auto start = std::chrono::steady_clock::now();
  for (size_t n = 0; n < full.size(); ++n)
    ASSERT_TRUE(Rejects(Prefix(full, n), {"(at byte offset "})) << "prefix of " << n << " bytes";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(120));  // hang guard only
}

TEST(GgufMalformed, EveryPrefixOfSmallFileRejected) { ExpectEveryPrefixRejected(SmallValidFile()); }

TEST(GgufMalformed, EveryPrefixOfWriterFileRejected) {
  // A writer-built file with every kind of value the writer emits and two tensors.
  Writer w;
  w.SetString("general.architecture", "llama");
  w.SetU32("u32", 7);
  w.SetI32("i32", -7);
  w.SetU64("u64", uint64_t{1} << 40);
  w.SetF32("f32", 0.5f);
  w.SetBool("yes", true);
  w.SetStringArray("strs", {"x", "", "yz"});
  w.SetF32Array("fs", {1, 2, 3});
  w.SetI32Array("is", {-1, 0, 1});
  static const float kData[6] = {1, 2, 3, 4, 5, 6};
  w.AddTensor("a", kF32, {2, 3}, kData, sizeof(kData));
  w.AddTensor("b", kF32, {1}, kData, 4);
  const std::string path = ::testing::TempDir() + "/gguf_prefix_test.gguf";
  w.Write(path);
  auto f = File::Open(path);
  std::vector<uint8_t> full(f->base(), f->base() + f->file_size());
  ExpectEveryPrefixRejected(full);
  std::remove(path.c_str());
}

TEST(GgufMalformed, EveryByteSmashedParsesOrRejects) {
  // Each byte in turn set to 0x00, 0x7f, 0x80 and 0xff: the parse either succeeds or throws Error.
  const Bytes b = SmallValidFile();
  for (size_t i = 0; i < b.size(); ++i) {
    for (uint8_t v : {0x00, 0x7f, 0x80, 0xff}) {
      std::vector<uint8_t> m = b;
      m[i] = v;
      try {
        ParseCopy(m);
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("(at byte offset "), std::string::npos) << e.what();
      }
    }
  }
}

// ---- no allocation the file size does not justify ---------------------------------------------

// Parses b with the allocation counter on; returns the bytes operator new handed out.
uint64_t BytesAllocatedByParse(const std::vector<uint8_t>& b) {
  auto buf = ExactCopy(b);
  g_tracked_bytes = 0;
  g_track = true;
  try {
    File::Parse(buf.get(), b.size(), "bad.gguf");
  } catch (const Error&) {
  }
  g_track = false;
  return g_tracked_bytes.load();
}

TEST(GgufMalformed, HugeCountsAllocateLittleAndFailFast) {
  std::vector<Bytes> files(6);
  SmallKv(files[0].Header(0, k2p60));
  files[1].Header(k2p60, 0).TensorInfo("w", {4}, kF32, 0);
  files[2].Header(0, 1).Key("a", ValueType::kArray).ArrayHead(ValueType::kUint8, k2p60).Zeros(64);
  files[3].Header(0, 1).Key("a", ValueType::kArray).ArrayHead(ValueType::kString, k2p60).Zeros(64);
  files[4].Header(0, 1).Key("a", ValueType::kArray).ArrayHead(ValueType::kArray, k2p60).Zeros(64);
  files[5].Header(0, 1).Key("a", ValueType::kString).U64(k2p60).Zeros(64);
  for (size_t i = 0; i < files.size(); ++i) {
    const auto start = std::chrono::steady_clock::now();
    const uint64_t allocated = BytesAllocatedByParse(files[i]);
    // The File object, its name and the error message: a few KiB at most.
    EXPECT_LT(allocated, 16u * 1024) << "file " << i;
    // A hang guard only (a loop over 2^60 elements would never end); the allocation bound above
    // is the real check.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60)) << "file " << i;
  }
}

TEST(GgufMalformed, CountsThatFitAllocateInProportion) {
  // The largest counts the bounds let through, with the entries missing: what is reserved up front
  // must stay within a small multiple of the file size.
  Bytes kv;
  kv.Header(0, 1000).Zeros(13 * 1000);
  Bytes tensors;
  tensors.Header(1000, 0).Zeros(32 * 1000);
  Bytes strings;
  strings.Header(0, 1).Key("a", ValueType::kArray).ArrayHead(ValueType::kString, 1000).Zeros(8 * 999).U64(1 << 20);
  for (const Bytes* b : {&kv, &tensors, &strings}) {
    const uint64_t allocated = BytesAllocatedByParse(*b);
    EXPECT_LT(allocated, 16 * b->size() + 16 * 1024) << "file of " << b->size() << " bytes";
  }
}

}  // namespace
}  // namespace origami::gguf
