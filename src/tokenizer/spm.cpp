// SentencePiece BPE (tokenizer.ggml.model = "llama"): spaces become U+2581, the text is split into
// characters, and the adjacent pair whose concatenation is the vocabulary piece with the highest
// score is merged, leftmost first on ties, until no pair is a piece. Characters left outside the
// vocabulary become <0xHH> byte tokens (or <unk> when the vocabulary has no byte tokens).
#include <queue>

#include "tokenizer/model_common.h"
#include "tokenizer/vocab.h"

namespace origami::tok {
namespace {

struct Symbol {
  int32_t prev, next;
  uint32_t start, len;  // byte range in the escaped text; len 0 once merged away
};

struct Bigram {
  float score;
  int32_t left;
  uint32_t size;                           // combined length when queued: detects stale entries
  bool operator<(const Bigram& o) const {  // max-heap on score, then the leftmost
    return score < o.score || (score == o.score && left > o.left);
  }
};

bool Mergeable(TokenType t) { return t == TokenType::kNormal || t == TokenType::kUserDefined; }

class SpmModel final : public Model {
 public:
  explicit SpmModel(const Vocab& v) : v_(v) {}

  void Encode(std::string_view raw, bool first, std::vector<int32_t>& out) const override {
    const std::string text = SpacesToMetaspace(raw, v_.add_space_prefix && first);
    if (text.empty()) return;

    std::vector<Symbol> sym;
    sym.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      const size_t len = Utf8CharLen(text, i);
      sym.push_back({static_cast<int32_t>(sym.size()) - 1, static_cast<int32_t>(sym.size()) + 1,
                     static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
      i += len;
    }
    sym.back().next = -1;

    std::priority_queue<Bigram> queue;
    auto try_add = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0) return;
      const uint32_t size = sym[l].len + sym[r].len;
      const int32_t id = v_.Find(std::string_view(text).substr(sym[l].start, size));
      if (id < 0 || !Mergeable(v_.type[id])) return;
      queue.push({v_.score[id], l, size});
    };
    for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) try_add(i - 1, i);

    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& l = sym[b.left];
      if (l.len == 0 || l.next < 0) continue;
      Symbol& r = sym[l.next];
      if (l.len + r.len != b.size) continue;  // one side changed since this pair was queued
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) sym[r.next].prev = b.left;
      try_add(l.prev, b.left);
      try_add(b.left, l.next);
    }

    for (int32_t i = 0; i >= 0; i = sym[i].next) {
      const std::string_view piece = std::string_view(text).substr(sym[i].start, sym[i].len);
      const int32_t id = v_.Find(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      bool have_bytes = true;
      for (unsigned char c : piece) have_bytes = have_bytes && v_.byte_token[c] >= 0;
      if (have_bytes) {
        for (unsigned char c : piece) out.push_back(v_.byte_token[c]);
      } else if (v_.unk >= 0) {
        out.push_back(v_.unk);  // one <unk> per unknown character, as SentencePiece does
      }
    }
  }

  std::string Piece(int32_t id) const override { return MetaspaceToSpaces(v_.text[id]); }

 private:
  const Vocab& v_;
};

}  // namespace

std::unique_ptr<Model> MakeSpmModel(const Vocab& v) { return std::make_unique<SpmModel>(v); }

}  // namespace origami::tok
