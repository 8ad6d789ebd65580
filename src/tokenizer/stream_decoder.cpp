// StreamDecoder: turns ids into text as they are generated, holding back a UTF-8 sequence until it
// is complete so that no caller ever sees half a character.
#include "tokenizer/vocab.h"

namespace origami {
namespace {

// Number of trailing bytes of s that form the start of a UTF-8 sequence still waiting for bytes.
size_t IncompleteTail(const std::string& s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const size_t need = (c & 0xE0) == 0xC0   ? 2
                        : (c & 0xF0) == 0xE0 ? 3
                        : (c & 0xF8) == 0xF0 ? 4
                                             : 1;
    return need > back ? back : 0;
  }
  return 0;
}

// Valid UTF-8 with every ill-formed part replaced by U+FFFD.
std::string Clean(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const uint32_t cp = tok::NextCodepoint(s, i);
    if (cp == 0xFFFD)
      out += "\xEF\xBF\xBD";
    else
      out.append(s.substr(start, i - start));
  }
  return out;
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool skip_special)
    : tok_(tok), skip_special_(skip_special) {}

std::string StreamDecoder::Push(int32_t id) {
  const TokenType t = tok_.GetTokenType(id);
  const int32_t prev = prev_;
  prev_ = id;
  if (skip_special_ && (t == TokenType::kControl || t == TokenType::kUnknown)) return {};
  std::string piece = tok_.TokenToPiece(id);
  // llama2.c: a piece right after BOS loses its leading space (the encoder's space prefix).
  if (tok_.vocab().spaces_as_metaspace && tok_.add_space_prefix() && prev >= 0 &&
      prev == tok_.bos_id() && !piece.empty() && piece[0] == ' ')
    piece.erase(0, 1);
  pending_ += piece;
  const size_t keep = IncompleteTail(pending_);
  std::string out = Clean(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::Flush() {
  std::string out = Clean(pending_);
  pending_.clear();
  return out;
}

}  // namespace origami
