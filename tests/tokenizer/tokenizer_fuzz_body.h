// Fuzz body for the tokenizer (tests/fuzz can call it from LLVMFuzzerTestOneInput): arbitrary bytes
// must encode without crashing, give ids inside the vocabulary, and decode/stream-decode to valid
// UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/utf8.h"

namespace origami::test {

// Returns false when an invariant is broken (the caller aborts or reports).
inline bool FuzzTokenizerOnce(const Tokenizer& tok, const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  EncodeOptions opt;
  opt.add_special = size > 0 && (data[0] & 1);
  opt.parse_special = size > 0 && (data[0] & 2);
  const auto ids = tok.Encode(text, opt);
  StreamDecoder sd(tok);
  std::string streamed;
  for (int32_t id : ids) {
    if (id < 0 || id >= tok.n_vocab()) return false;
    streamed += sd.Push(id);
  }
  streamed += sd.Flush();
  return IsValidUtf8(streamed) && IsValidUtf8(tok.Decode(ids, false));
}

}  // namespace origami::test
