// Byte-level BPE (tokenizer.ggml.model = "gpt2"): the pre-tokenizer regexes cut the text into
// words, each word's bytes are mapped to printable code points (GPT-2's byte-to-unicode table), and
// merges are applied lowest rank first (leftmost on ties) until none applies. The "gemma4"
// vocabulary uses the same merge loop on U+2581-joined text without pre-splitting or byte mapping,
// with <0xHH> fallback.
#include <array>
#include <queue>

#include "tokenizer/model_common.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace origami::tok {
namespace {

// GPT-2's byte <-> code point map: printable Latin-1 bytes stand for themselves, the other 68 bytes
// take the code points 256, 257, ... in byte order.
struct ByteMap {
  std::array<uint32_t, 256> to_cp{};
  std::array<std::string, 256> to_utf8;
  ByteMap() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable =
          (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      AppendUtf8(to_utf8[b], to_cp[b]);
    }
  }
  // Inverse: -1 when the code point is not one of the 256.
  int ToByte(uint32_t cp) const {
    if (cp < 256) return to_cp[cp] == cp ? static_cast<int>(cp) : -1;
    if (cp < 256 + 68) {
      for (int b = 0; b < 256; ++b)
        if (to_cp[b] == cp) return b;
    }
    return -1;
  }
};

const ByteMap& Bytes() {
  static const ByteMap m;
  return m;
}

struct Sym {
  int32_t prev, next;
  int32_t id;  // -1: a character outside the vocabulary
  uint32_t start, len;
};

struct Candidate {
  int32_t rank, left, right, left_id, right_id, result;
  bool operator<(const Candidate& o) const {  // min-heap on rank, then the leftmost
    return rank > o.rank || (rank == o.rank && left > o.left);
  }
};

class BpeModel final : public Model {
 public:
  explicit BpeModel(const Vocab& v) : v_(v), splitter_(v.pre_regexes) {}

  void Encode(std::string_view raw, bool first, std::vector<int32_t>& out) const override {
    std::string normalized;
    std::string_view text = raw;
    if (v_.nfc) {
      normalized = NfcUtf8(raw);
      text = normalized;
    }
    if (v_.spaces_as_metaspace) {
      EncodeWord(SpacesToMetaspace(text, v_.add_space_prefix && first), out);
      return;
    }
    const ByteMap& bm = Bytes();
    std::string word;
    for (std::string_view piece : splitter_.Split(text)) {
      word.clear();
      for (unsigned char c : piece) word += bm.to_utf8[c];
      EncodeWord(word, out);
    }
  }

  std::string Piece(int32_t id) const override {
    const std::string& t = v_.text[id];
    if (v_.spaces_as_metaspace) return MetaspaceToSpaces(t);
    std::string out;
    const ByteMap& bm = Bytes();
    for (size_t i = 0; i < t.size();) {
      const size_t start = i;
      const uint32_t cp = NextCodepoint(t, i);
      const int b = bm.ToByte(cp);
      if (b >= 0)
        out += static_cast<char>(b);
      else
        out.append(t, start, i - start);  // not a byte-level character: keep as is
    }
    return out;
  }

 private:
  void EncodeWord(std::string_view word, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (v_.ignore_merges) {
      const int32_t id = v_.Find(word);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    std::vector<Sym> sym;
    sym.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      const size_t len = Utf8CharLen(word, i);
      const int32_t n = static_cast<int32_t>(sym.size());
      sym.push_back({n - 1, n + 1, v_.Find(word.substr(i, len)), static_cast<uint32_t>(i),
                     static_cast<uint32_t>(len)});
      i += len;
    }
    sym.back().next = -1;

    std::priority_queue<Candidate> queue;
    auto try_add = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0) return;
      const Vocab::Merge* m = v_.merges.Find(Vocab::PairKey(sym[l].id, sym[r].id));
      if (!m) return;
      queue.push({m->rank, l, r, sym[l].id, sym[r].id, m->result});
    };
    for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Sym& l = sym[c.left];
      if (l.len == 0 || l.next != c.right || l.id != c.left_id || sym[c.right].id != c.right_id)
        continue;
      Sym& r = sym[c.right];
      l.id = c.result;
      l.len += r.len;
      l.next = r.next;
      r.len = 0;
      r.id = -1;
      if (l.next >= 0) sym[l.next].prev = c.left;
      try_add(l.prev, c.left);
      try_add(c.left, l.next);
    }

    for (int32_t i = 0; i >= 0; i = sym[i].next) {
      if (sym[i].id >= 0) {
        out.push_back(sym[i].id);
        continue;
      }
      const std::string_view ch = word.substr(sym[i].start, sym[i].len);
      bool have_bytes = v_.byte_fallback;
      for (unsigned char b : ch) have_bytes = have_bytes && v_.byte_token[b] >= 0;
      if (have_bytes) {
        for (unsigned char b : ch) out.push_back(v_.byte_token[b]);
      } else if (v_.unk >= 0) {
        out.push_back(v_.unk);
      }
    }
  }

  const Vocab& v_;
  RegexSplitter splitter_;
};

}  // namespace

std::unique_ptr<Model> MakeBpeModel(const Vocab& v) { return std::make_unique<BpeModel>(v); }

}  // namespace origami::tok
