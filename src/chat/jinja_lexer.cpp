// The chat-template lexer: HF's preprocessing (trailing newline, lstrip_blocks, trim_blocks,
// {% generation %} removal) and tokenization with `-` whitespace control, mirroring
// @huggingface/jinja's tokenize() so that the same bytes come out of every text block.
#include <cctype>
#include <string>

#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"
#include "util/error.h"

namespace origami::jinja {
namespace {

bool IsLineTerminatorAt(std::string_view s, size_t i, size_t* len) {
  if (s[i] == '\n' || s[i] == '\r') {
    *len = 1;
    return true;
  }
  if (s.substr(i, 3) == "\xE2\x80\xA8" || s.substr(i, 3) == "\xE2\x80\xA9") {
    *len = 3;
    return true;
  }
  return false;
}

// lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1" (note the reference also strips before "{-").
std::string LstripBlocks(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  bool line_start = true;
  while (i < s.size()) {
    if (line_start) {
      size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j + 1 < s.size() && s[j] == '{' && (s[j + 1] == '#' || s[j + 1] == '%' || s[j + 1] == '-')) {
        i = j;
      }
      line_start = false;
    }
    size_t len;
    if (IsLineTerminatorAt(s, i, &len)) {
      out.append(s.substr(i, len));
      i += len;
      line_start = true;
      continue;
    }
    out += s[i++];
  }
  return out;
}

// trim_blocks: /([#%-]})\n/g -> "$1".
std::string TrimBlocks(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (i + 2 < s.size() && (s[i] == '#' || s[i] == '%' || s[i] == '-') && s[i + 1] == '}' && s[i + 2] == '\n') {
      out += s[i];
      out += '}';
      i += 3;
      continue;
    }
    out += s[i++];
  }
  return out;
}

size_t SkipSpaces(std::string_view s, size_t i) {
  while (size_t n = JsSpaceAt(s, i)) i += n;
  return i;
}

// Matches "{%-? \s* (end)?generation \s* -?%}" at i; returns the end or npos.
size_t MatchGenerationTag(std::string_view s, size_t i, bool* lstrip, bool* rstrip) {
  if (s.substr(i, 2) != "{%") return std::string_view::npos;
  i += 2;
  *lstrip = i < s.size() && s[i] == '-';
  if (*lstrip) ++i;
  i = SkipSpaces(s, i);
  if (s.substr(i, 3) == "end") i += 3;
  if (s.substr(i, 10) != "generation") return std::string_view::npos;
  i = SkipSpaces(s, i + 10);
  *rstrip = i < s.size() && s[i] == '-';
  if (*rstrip) ++i;
  if (s.substr(i, 2) != "%}") return std::string_view::npos;
  return i + 2;
}

// /(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs -> (lstrip ? "" : before) + (rstrip ? "" : after)
std::string RemoveGenerationTags(std::string_view s) {
  if (s.find("generation") == std::string_view::npos) return std::string(s);
  std::string out;
  size_t last_end = 0;
  size_t p = s.find("{%");
  while (p != std::string_view::npos) {
    bool lstrip = false, rstrip = false;
    size_t tag_end = MatchGenerationTag(s, p, &lstrip, &rstrip);
    if (tag_end == std::string_view::npos) {
      p = s.find("{%", p + 1);
      continue;
    }
    size_t before = p;
    while (before > last_end) {
      size_t n = JsSpaceBefore(s, before);
      if (n == 0 || before - n < last_end) break;
      before -= n;
    }
    size_t after = SkipSpaces(s, tag_end);
    out.append(s.substr(last_end, before - last_end));
    if (!lstrip) out.append(s.substr(before, p - before));
    if (!rstrip) out.append(s.substr(tag_end, after - tag_end));
    last_end = after;
    p = s.find("{%", after);
  }
  out.append(s.substr(last_end));
  return out;
}

struct Mapping {
  const char* seq;
  Tok type;
};
// Order matters: two-character sequences before their one-character prefixes.
constexpr Mapping kMappings[] = {
    {"{%", Tok::kOpenStatement}, {"%}", Tok::kCloseStatement}, {"{{", Tok::kOpenExpression},
    {"}}", Tok::kCloseExpression}, {"(", Tok::kOpenParen},     {")", Tok::kCloseParen},
    {"{", Tok::kOpenCurly},        {"}", Tok::kCloseCurly},    {"[", Tok::kOpenBracket},
    {"]", Tok::kCloseBracket},     {",", Tok::kComma},         {".", Tok::kDot},
    {":", Tok::kColon},            {"|", Tok::kPipe},          {"<=", Tok::kComparison},
    {">=", Tok::kComparison},      {"==", Tok::kComparison},   {"!=", Tok::kComparison},
    {"<", Tok::kComparison},       {">", Tok::kComparison},    {"+", Tok::kAdditive},
    {"-", Tok::kAdditive},         {"~", Tok::kAdditive},      {"**", Tok::kPower},
    {"*", Tok::kMultiplicative},   {"//", Tok::kMultiplicative}, {"/", Tok::kMultiplicative},
    {"%", Tok::kMultiplicative},   {"=", Tok::kEquals},
};

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string src) : s_(std::move(src)) {}

  std::vector<Token> Run() {
    while (i_ < s_.size()) Step();
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void Error(std::string_view what) const {
    Fail("template syntax error at offset {}: {}", i_, what);
  }

  bool LastIs(std::initializer_list<Tok> types) const {
    if (tokens_.empty()) return false;
    for (Tok t : types) {
      if (tokens_.back().type == t) return true;
    }
    return false;
  }
  void Push(Tok type, std::string value, size_t at) { tokens_.push_back({type, std::move(value), at}); }
  bool At(std::string_view seq) const { return std::string_view(s_).substr(i_, seq.size()) == seq; }

  // consumeWhile: running into the end of the source is an error, as in the reference.
  template <typename Pred>
  std::string ConsumeWhile(Pred pred) {
    std::string out;
    while (i_ < s_.size() && pred(s_[i_])) {
      if (s_[i_] == '\\') {
        ++i_;
        if (i_ >= s_.size()) Error("Unexpected end of input");
        char e = s_[i_++];
        if (e == 'x' || e == 'u') {
          size_t n = e == 'x' ? 2 : 4;
          std::string hex = s_.substr(i_, n);
          if (hex.size() != n || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
            Error("Invalid hexadecimal escape sequence");
          }
          AppendUtf8(out, static_cast<uint32_t>(std::stoul(hex, nullptr, 16)));
          i_ += n;
          continue;
        }
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'v': out += '\v'; break;
          case '\'': out += '\''; break;
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          default: Error(fmt::format("Unexpected escaped character: {}", e));
        }
        continue;
      }
      out += s_[i_++];
      if (i_ >= s_.size()) Error("Unexpected end of input");
    }
    return out;
  }

  void StripTrailingWhitespace() {
    if (!tokens_.empty() && tokens_.back().type == Tok::kText) {
      tokens_.back().value = JsTrim(tokens_.back().value, false, true);
      if (tokens_.back().value.empty()) tokens_.pop_back();
    }
  }

  void Step() {
    if (tokens_.empty() || LastIs({Tok::kCloseStatement, Tok::kCloseExpression, Tok::kComment})) {
      size_t start = i_;
      while (i_ < s_.size() &&
             !(s_[i_] == '{' && i_ + 1 < s_.size() && (s_[i_ + 1] == '%' || s_[i_ + 1] == '{' || s_[i_ + 1] == '#'))) {
        ++i_;
      }
      if (i_ > start) {
        Push(Tok::kText, s_.substr(start, i_ - start), start);
        return;
      }
    }
    if (At("{#")) {
      size_t start = i_;
      i_ += 2;
      bool strip_before = i_ < s_.size() && s_[i_] == '-';
      if (strip_before) ++i_;
      std::string comment;
      while (!(i_ + 1 < s_.size() && s_[i_] == '#' && s_[i_ + 1] == '}')) {
        if (i_ + 2 >= s_.size()) Error("Missing end of comment tag");
        comment += s_[i_++];
      }
      bool strip_after = !comment.empty() && comment.back() == '-';
      if (strip_after) comment.pop_back();
      if (strip_before) StripTrailingWhitespace();
      Push(Tok::kComment, std::move(comment), start);
      i_ += 2;
      if (strip_after) i_ = SkipSpaces(s_, i_);
      return;
    }
    if (At("{%-")) {
      StripTrailingWhitespace();
      Push(Tok::kOpenStatement, "{%", i_);
      i_ += 3;
      return;
    }
    if (At("{{-")) {
      StripTrailingWhitespace();
      Push(Tok::kOpenExpression, "{{", i_);
      curly_depth_ = 0;
      i_ += 3;
      return;
    }
    while (size_t n = JsSpaceAt(s_, i_)) {
      i_ += n;
      if (i_ >= s_.size()) Error("Unexpected end of input");
    }
    if (At("-%}")) {
      Push(Tok::kCloseStatement, "%}", i_);
      i_ = SkipSpaces(s_, i_ + 3);
      return;
    }
    if (At("-}}")) {
      Push(Tok::kCloseExpression, "}}", i_);
      i_ = SkipSpaces(s_, i_ + 3);
      return;
    }
    char c = s_[i_];
    if (c == '-' || c == '+') {
      if (tokens_.empty() || LastIs({Tok::kText})) Error(fmt::format("Unexpected character: {}", c));
      if (!LastIs({Tok::kIdent, Tok::kNumber, Tok::kString, Tok::kCloseParen, Tok::kCloseBracket})) {
        size_t start = i_++;
        std::string num = ConsumeWhile(IsDigit);
        if (!num.empty() && s_[i_] == '.' && i_ + 1 < s_.size() && IsDigit(s_[i_ + 1])) {
          ++i_;
          num += "." + ConsumeWhile(IsDigit);
        }
        Push(num.empty() ? Tok::kUnary : Tok::kNumber, std::string(1, c) + num, start);
        return;
      }
    }
    for (const Mapping& m : kMappings) {
      std::string_view seq = m.seq;
      if (seq == "}}" && curly_depth_ > 0) continue;
      if (At(seq)) {
        Push(m.type, std::string(seq), i_);
        if (m.type == Tok::kOpenExpression) curly_depth_ = 0;
        if (m.type == Tok::kOpenCurly) ++curly_depth_;
        if (m.type == Tok::kCloseCurly) --curly_depth_;
        i_ += seq.size();
        return;
      }
    }
    if (c == '\'' || c == '"') {
      size_t start = i_++;
      std::string str = ConsumeWhile([c](char x) { return x != c; });
      if (i_ >= s_.size()) Error("Unexpected end of input");
      Push(Tok::kString, std::move(str), start);
      ++i_;
      return;
    }
    if (IsDigit(c)) {
      size_t start = i_;
      std::string num = ConsumeWhile(IsDigit);
      if (!LastIs({Tok::kDot}) && s_[i_] == '.' && i_ + 1 < s_.size() && IsDigit(s_[i_ + 1])) {
        ++i_;
        num += "." + ConsumeWhile(IsDigit);
      }
      Push(Tok::kNumber, std::move(num), start);
      return;
    }
    if (IsWordChar(c)) {
      size_t start = i_;
      Push(Tok::kIdent, ConsumeWhile(IsWordChar), start);
      return;
    }
    Error(fmt::format("Unexpected character: {}", c));
  }

  std::string s_;
  size_t i_ = 0;
  int curly_depth_ = 0;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> Tokenize(std::string_view source) {
  std::string s(source);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  s = RemoveGenerationTags(TrimBlocks(LstripBlocks(s)));
  return Lexer(std::move(s)).Run();
}

}  // namespace origami::jinja
