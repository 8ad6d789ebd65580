// Pre-tokenizers: the regex splits Hugging Face applies before BPE, as a data table keyed by the
// GGUF `tokenizer.ggml.pre` name, run with PCRE2 (UTF + UCP).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace origami::tok {

struct PreTokenizerSpec {
  std::string_view name;
  // Split patterns applied in sequence (each piece of one step is split again by the next; matches
  // and the gaps between them both become pieces, Hugging Face's "Isolated" behaviour).
  std::vector<std::string_view> regexes;
  bool ignore_merges = false;  // the BPE model emits a pre-token whole when it is a token
  bool nfc = false;            // the reference normalizes the text to NFC first (Qwen2 and later)
  bool add_bos = false;        // BOS is added when the file has no add_bos_token key (Llama 3)
};

// nullptr when the name is unknown. An empty name gives the GPT-2 default.
const PreTokenizerSpec* FindPreTokenizer(std::string_view name);
// All names in the table (for messages and tests).
std::vector<std::string_view> PreTokenizerNames();

// A compiled sequence of split patterns. Matching is thread-safe (match data is per call).
class RegexSplitter {
 public:
  explicit RegexSplitter(const std::vector<std::string>& patterns);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Splits valid UTF-8 text into consecutive non-empty pieces covering it exactly.
  std::vector<std::string_view> Split(std::string_view text) const;
  bool empty() const { return codes_.empty(); }

 private:
  std::vector<void*> codes_;  // pcre2_code_8*
};

// Rewrites \s and \S into explicit classes holding Unicode White_Space, the set the Rust `regex`
// crate (used by Hugging Face tokenizers) means by \s; PCRE2's UCP \s differs (e.g. U+180E).
std::string TranslateWhitespaceClasses(std::string_view pattern);

}  // namespace origami::tok
