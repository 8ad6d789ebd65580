// Unigram (tokenizer.ggml.model = "t5"): the segmentation with the highest total piece score
// (Viterbi), after SentencePiece's whitespace handling (collapse runs, U+2581 for spaces, prefix).
// Characters no piece covers become <unk>, consecutive ones fused into one as SentencePiece does.
// Not yet applied: the precompiled_charsmap normalizer (NFKC-like rewrites); text it would change
// tokenizes differently from the reference.
#include <limits>

#include "tokenizer/model_common.h"
#include "tokenizer/vocab.h"

namespace origami::tok {
namespace {

class UnigramModel final : public Model {
 public:
  explicit UnigramModel(const Vocab& v) : v_(v) {
    float min_score = 0;
    for (int32_t i = 0; i < v.n_vocab(); ++i) {
      if (v.type[i] != TokenType::kNormal && v.type[i] != TokenType::kUserDefined) continue;
      max_len_ = std::max(max_len_, v.text[i].size());
      min_score = std::min(min_score, v.score[i]);
    }
    unk_score_ = min_score - 10.0f;  // SentencePiece's penalty for an unknown character
  }

  void Encode(std::string_view raw, bool first, std::vector<int32_t>& out) const override {
    std::string text;
    bool pending_space = v_.add_space_prefix && first;
    bool at_start = true;
    for (char c : raw) {
      if (c == ' ' && v_.remove_extra_whitespaces) {
        pending_space = pending_space || !at_start;
        continue;
      }
      if (pending_space) text += kMetaspace;
      pending_space = false;
      at_start = false;
      if (c == ' ')
        text += kMetaspace;
      else
        text += c;
    }
    if (pending_space && !v_.remove_extra_whitespaces) text += kMetaspace;
    if (text.empty()) return;

    // best[i]: best score of a segmentation of text[0, i) and the piece ending there.
    struct Node {
      double score = -std::numeric_limits<double>::infinity();
      int32_t id = -1;
      size_t start = 0;
    };
    std::vector<Node> best(text.size() + 1);
    best[0].score = 0;
    for (size_t i = 0; i < text.size(); i = i + Utf8CharLen(text, i)) {
      if (best[i].score == -std::numeric_limits<double>::infinity()) continue;
      const size_t ch = Utf8CharLen(text, i);
      bool single = false;
      for (size_t len = ch; i + len <= text.size() && len <= max_len_;
           len += Utf8CharLen(text, i + len)) {
        const int32_t id = v_.Find(std::string_view(text).substr(i, len));
        if (id >= 0 &&
            (v_.type[id] == TokenType::kNormal || v_.type[id] == TokenType::kUserDefined)) {
          const double s =
              best[i].score + (v_.type[id] == TokenType::kUserDefined ? 0.0 : v_.score[id]);
          if (s > best[i + len].score) best[i + len] = {s, id, i};
          if (len == ch) single = true;
        }
        if (i + len >= text.size()) break;
      }
      if (!single) {
        const double s = best[i].score + unk_score_;
        if (s > best[i + ch].score) best[i + ch] = {s, v_.unk, i};
      }
    }
    std::vector<int32_t> rev;
    for (size_t e = text.size(); e > 0; e = best[e].start) {
      const int32_t id = best[e].id;
      if (id == v_.unk && !rev.empty() && rev.back() == v_.unk) continue;  // fuse unknowns
      rev.push_back(id);
    }
    for (auto it = rev.rbegin(); it != rev.rend(); ++it)
      if (*it >= 0) out.push_back(*it);
  }

  std::string Piece(int32_t id) const override { return MetaspaceToSpaces(v_.text[id]); }

 private:
  const Vocab& v_;
  size_t max_len_ = 1;
  float unk_score_ = -10.0f;
};

}  // namespace

std::unique_ptr<Model> MakeUnigramModel(const Vocab& v) {
  return std::make_unique<UnigramModel>(v);
}

}  // namespace origami::tok
