// What the SentencePiece-style models (SPM, Unigram, gemma4's BPE) share: U+2581 stands for ' ' in
// their token texts, on the way in and out. Inline, as encoding runs it on every fragment.
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/vocab.h"

namespace origami::tok {

// `text` with every ' ' replaced by U+2581, after one more U+2581 when `prefix` (SentencePiece's
// add_space_prefix, which applies to the first fragment only).
inline std::string SpacesToMetaspace(std::string_view text, bool prefix) {
  std::string out;
  out.reserve(text.size() + 8);
  if (prefix) out += kMetaspace;
  for (char c : text) {
    if (c == ' ')
      out += kMetaspace;
    else
      out += c;
  }
  return out;
}

// The decoded bytes of a token text that spells spaces as U+2581: each U+2581 becomes ' ', all
// else is kept.
inline std::string MetaspaceToSpaces(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    if (t.compare(i, kMetaspace.size(), kMetaspace) == 0) {
      out += ' ';
      i += kMetaspace.size() - 1;
    } else {
      out += t[i];
    }
  }
  return out;
}

}  // namespace origami::tok
