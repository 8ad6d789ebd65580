// Tokenizer: splits special tokens off the text, hands the plain fragments to the vocabulary's
// algorithm, adds BOS/EOS; decoding maps ids back to bytes.
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "tokenizer/vocab.h"
#include "util/error.h"

namespace origami {
namespace tok {

size_t Utf8CharLen(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 1;
  if (i + len > s.size()) return 1;
  for (size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  return len;
}

// Decodes one code point; a byte that does not start a well-formed sequence gives U+FFFD and
// advances by the maximal ill-formed subpart, as the WHATWG (and JavaScript TextDecoder) rule says.
uint32_t NextCodepoint(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  const unsigned char c = p[i];
  if (c < 0x80) {
    ++i;
    return c;
  }
  int need;
  uint32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    ++i;
    return 0xFFFD;
  }
  size_t j = i + 1;
  for (int k = 0; k < need; ++k, ++j) {
    if (j >= n || p[j] < lo || p[j] > hi) {
      i = j;
      return 0xFFFD;
    }
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (p[j] & 0x3F);
  }
  i = j;
  return cp;
}

}  // namespace tok

namespace {

// Replaces ill-formed UTF-8 with U+FFFD, which is what the reference tokenizers see (they take
// Unicode strings). Returns nullopt-like empty flag via the bool when nothing changed.
bool SanitizeInto(std::string_view in, std::string& out) {
  size_t i = 0;
  bool changed = false;
  while (i < in.size()) {
    const size_t start = i;
    const uint32_t cp = tok::NextCodepoint(in, i);
    if (cp == 0xFFFD && !(i - start == 3 && in.compare(start, 3, "\xEF\xBF\xBD") == 0)) {
      if (!changed) out.assign(in.substr(0, start));
      changed = true;
      out += "\xEF\xBF\xBD";
    } else if (changed) {
      out.append(in.substr(start, i - start));
    }
  }
  return changed;
}

struct Fragment {
  int32_t token;  // -1 for text
  std::string_view text;
};

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<tok::Vocab> vocab, std::unique_ptr<tok::Model> model)
    : vocab_(std::move(vocab)), model_(std::move(model)) {
  specials_by_byte_.resize(256);
  for (int32_t id = 0; id < vocab_->n_vocab(); ++id) {
    const TokenType t = vocab_->type[id];
    if (t != TokenType::kControl && t != TokenType::kUserDefined && t != TokenType::kUnknown)
      continue;
    const std::string& s = vocab_->text[id];
    if (s.empty()) continue;
    specials_by_byte_[static_cast<unsigned char>(s[0])].push_back(id);
  }
  for (auto& list : specials_by_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
      return vocab_->text[a].size() > vocab_->text[b].size();
    });
  }
}

Tokenizer::~Tokenizer() = default;

std::string Tokenizer::SanitizeUtf8(std::string_view s) {
  std::string out;
  return SanitizeInto(s, out) ? out : std::string(s);
}

std::unique_ptr<Tokenizer> Tokenizer::FromGguf(const gguf::File& f) {
  auto vocab = tok::LoadVocab(f);
  std::unique_ptr<tok::Model> model;
  switch (vocab->kind) {
    case tok::ModelKind::kSpm:
      model = tok::MakeSpmModel(*vocab);
      break;
    case tok::ModelKind::kBpe:
      model = tok::MakeBpeModel(*vocab);
      break;
    case tok::ModelKind::kWordPiece:
      model = tok::MakeWordPieceModel(*vocab);
      break;
    case tok::ModelKind::kUnigram:
      model = tok::MakeUnigramModel(*vocab);
      break;
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(vocab), std::move(model)));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view input, const EncodeOptions& opt) const {
  std::string sanitized;
  const std::string_view text =
      SanitizeInto(input, sanitized) ? std::string_view(sanitized) : input;

  // Split off special tokens: user-defined tokens always (Hugging Face matches added tokens in any
  // text), control and unknown tokens only when asked to parse specials. Leftmost, then longest.
  std::vector<Fragment> frags;
  size_t text_start = 0;
  for (size_t i = 0; i < text.size();) {
    int32_t hit = -1;
    for (int32_t id : specials_by_byte_[static_cast<unsigned char>(text[i])]) {
      if (!opt.parse_special && vocab_->type[id] != TokenType::kUserDefined) continue;
      const std::string& s = vocab_->text[id];
      if (text.compare(i, s.size(), s) == 0) {
        hit = id;
        break;
      }
    }
    if (hit < 0) {
      ++i;
      continue;
    }
    if (i > text_start) frags.push_back({-1, text.substr(text_start, i - text_start)});
    frags.push_back({hit, {}});
    i += vocab_->text[hit].size();
    text_start = i;
  }
  if (text_start < text.size()) frags.push_back({-1, text.substr(text_start)});

  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (opt.add_special && vocab_->add_bos) out.push_back(vocab_->bos);
  bool first = true;
  for (const Fragment& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
      first = true;
    } else {
      model_->Encode(f.text, first, out);
      first = false;
    }
  }
  if (opt.add_special && vocab_->add_eos) out.push_back(vocab_->eos);
  return out;
}

void Tokenizer::CheckId(int32_t id) const {
  if (id < 0 || id >= vocab_->n_vocab())
    Fail("token id {} is outside the vocabulary (0..{})", id, vocab_->n_vocab() - 1);
}

std::string Tokenizer::TokenToPiece(int32_t id) const {
  CheckId(id);
  switch (vocab_->type[id]) {
    case TokenType::kByte:
      for (int b = 0; b < 256; ++b)
        if (vocab_->byte_token[b] == id) return std::string(1, static_cast<char>(b));
      return vocab_->text[id];
    case TokenType::kControl:
    case TokenType::kUnknown:
      return vocab_->text[id];
    case TokenType::kUserDefined:
      // Added tokens pass through the reference decoder too: U+2581 still means a space there.
      return vocab_->spaces_as_metaspace ? model_->Piece(id) : vocab_->text[id];
    default:
      return model_->Piece(id);
  }
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  bool strip_space = vocab_->kind == tok::ModelKind::kWordPiece ||
                     (vocab_->spaces_as_metaspace && vocab_->add_space_prefix);
  for (int32_t id : ids) {
    CheckId(id);
    const TokenType t = vocab_->type[id];
    if (skip_special && (t == TokenType::kControl || t == TokenType::kUnknown)) continue;
    std::string piece = TokenToPiece(id);
    // The encoder put a space before the first word; the reference decoder (Strip) removes it.
    if (strip_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    if (t != TokenType::kControl) strip_space = false;
    out += piece;
  }
  return out;
}

const std::string& Tokenizer::TokenText(int32_t id) const {
  CheckId(id);
  return vocab_->text[id];
}
int32_t Tokenizer::n_vocab() const { return vocab_->n_vocab(); }
int32_t Tokenizer::bos_id() const { return vocab_->bos; }
int32_t Tokenizer::eos_id() const { return vocab_->eos; }
int32_t Tokenizer::eot_id() const { return vocab_->eot; }
int32_t Tokenizer::unk_id() const { return vocab_->unk; }
bool Tokenizer::add_bos() const { return vocab_->add_bos; }
bool Tokenizer::add_eos() const { return vocab_->add_eos; }
bool Tokenizer::add_space_prefix() const { return vocab_->add_space_prefix; }
const std::string& Tokenizer::model_name() const { return vocab_->model_name; }
const std::string& Tokenizer::pre_name() const { return vocab_->pre_name; }
int32_t Tokenizer::TokenId(std::string_view text) const { return vocab_->Find(text); }
bool Tokenizer::IsEog(int32_t id) const {
  return std::binary_search(vocab_->eog.begin(), vocab_->eog.end(), id);
}
TokenType Tokenizer::GetTokenType(int32_t id) const {
  CheckId(id);
  return vocab_->type[id];
}

}  // namespace origami
