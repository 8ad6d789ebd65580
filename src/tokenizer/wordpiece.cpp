// WordPiece (tokenizer.ggml.model = "bert"), following Hugging Face's BertNormalizer (clean text,
// space around CJK ideographs, strip accents, lowercase), BertPreTokenizer (split on whitespace,
// isolate each punctuation character) and greedy longest-match-first WordPiece. GGUF stores
// word-initial pieces with a U+2581 prefix and continuation pieces bare (Hugging Face's "##" prefix
// removed).
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace origami::tok {
namespace {

constexpr size_t kMaxCharsPerWord = 100;

bool IsCjk(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool IsBertPunct(uint32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
         (c >= 123 && c <= 126) || IsPunctuation(c);
}

class WordPieceModel final : public Model {
 public:
  explicit WordPieceModel(const Vocab& v) : v_(v) {}

  void Encode(std::string_view text, bool /*first*/, std::vector<int32_t>& out) const override {
    // BertNormalizer.
    std::vector<uint32_t> cleaned;
    for (uint32_t c : ToCodepoints(text)) {
      if (c == 0 || c == 0xFFFD) continue;
      if (c == '\t' || c == '\n' || c == '\r' || IsWhiteSpace(c)) {
        cleaned.push_back(' ');
      } else if (IsOther(c)) {
        continue;
      } else if (IsCjk(c)) {
        cleaned.push_back(' ');
        cleaned.push_back(c);
        cleaned.push_back(' ');
      } else {
        cleaned.push_back(c);
      }
    }
    std::vector<uint32_t> norm;
    for (uint32_t c : Nfd(cleaned)) {
      if (IsMark(c)) continue;
      AppendLower(c, norm);
    }
    // BertPreTokenizer, then WordPiece on each word.
    std::vector<uint32_t> word;
    auto flush = [&] {
      if (!word.empty()) EncodeWord(word, out);
      word.clear();
    };
    for (uint32_t c : norm) {
      if (IsWhiteSpace(c)) {
        flush();
      } else if (IsBertPunct(c)) {
        flush();
        word.push_back(c);
        flush();
      } else {
        word.push_back(c);
      }
    }
    flush();
  }

  std::string Piece(int32_t id) const override {
    const std::string& t = v_.text[id];
    if (t.compare(0, kMetaspace.size(), kMetaspace) == 0) return " " + t.substr(kMetaspace.size());
    return t;
  }

 private:
  void EncodeWord(const std::vector<uint32_t>& word, std::vector<int32_t>& out) const {
    if (word.size() > kMaxCharsPerWord) {
      if (v_.unk >= 0) out.push_back(v_.unk);
      return;
    }
    // Byte offsets of each character in the UTF-8 form, so candidates are substrings.
    std::string s(kMetaspace);
    std::vector<size_t> off;
    for (uint32_t c : word) {
      off.push_back(s.size());
      AppendUtf8(s, c);
    }
    off.push_back(s.size());
    const size_t n_before = out.size();
    size_t start = 0;
    while (start < word.size()) {
      int32_t found = -1;
      size_t end = word.size();
      for (; end > start; --end) {
        const size_t b = start == 0 ? 0 : off[start];  // the first piece carries the U+2581 prefix
        found = v_.Find(std::string_view(s).substr(b, off[end] - b));
        if (found >= 0) break;
      }
      if (found < 0) {
        out.resize(n_before);
        if (v_.unk >= 0) out.push_back(v_.unk);
        return;
      }
      out.push_back(found);
      start = end;
    }
  }

  const Vocab& v_;
};

}  // namespace

std::unique_ptr<Model> MakeWordPieceModel(const Vocab& v) {
  return std::make_unique<WordPieceModel>(v);
}

}  // namespace origami::tok
