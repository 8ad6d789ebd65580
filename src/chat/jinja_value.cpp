// Printing, JSON, equality and comparison of template values, written to match @huggingface/jinja
// (which runs on JS strings and numbers) byte for byte; plus the JS string helpers they need.
#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "util/error.h"

namespace origami::jinja {

// ---- ObjectMap ----------------------------------------------------------------------------------

const Value* ObjectMap::Find(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

Value* ObjectMap::Find(std::string_view key) {
  for (auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void ObjectMap::Set(std::string key, Value value) {
  if (Value* v = Find(key)) {
    *v = std::move(value);
    return;
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

bool ObjectMap::Erase(std::string_view key) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->first == key) {
      entries_.erase(it);
      return true;
    }
  }
  return false;
}

Value Value::Array(std::vector<Value> items, Kind kind) {
  Value v;
  v.kind = kind;
  v.arr = std::make_shared<std::vector<Value>>(std::move(items));
  return v;
}

Value Value::Object(ObjectMap m, Kind kind) {
  Value v;
  v.kind = kind;
  v.obj = std::make_shared<ObjectMap>(std::move(m));
  return v;
}

Value Value::Fn(Function f) {
  Value v;
  v.kind = Kind::kFunction;
  v.fn = std::make_shared<Function>(std::move(f));
  return v;
}

const char* TypeName(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return "UndefinedValue";
    case Kind::kNull: return "NullValue";
    case Kind::kBool: return "BooleanValue";
    case Kind::kInt: return "IntegerValue";
    case Kind::kFloat: return "FloatValue";
    case Kind::kString: return "StringValue";
    case Kind::kArray: return "ArrayValue";
    case Kind::kTuple: return "TupleValue";
    case Kind::kObject: return "ObjectValue";
    case Kind::kKwArgs: return "KeywordArgumentsValue";
    case Kind::kNamespace: return "NamespaceValue";
    case Kind::kFunction: return "FunctionValue";
  }
  return "?";
}

bool Truthy(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
    case Kind::kNull: return false;
    case Kind::kBool: return v.b;
    case Kind::kInt:
    case Kind::kFloat: return v.num != 0 && !std::isnan(v.num);
    case Kind::kString: return !v.str.empty();
    case Kind::kArray:
    case Kind::kTuple: return !v.arr->empty();
    case Kind::kObject:
    case Kind::kKwArgs: return v.obj->size() > 0;
    case Kind::kNamespace:
    case Kind::kFunction: return true;
  }
  return false;
}

// ---- numbers ------------------------------------------------------------------------------------

std::string JsNumberToString(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x == 0) return "0";
  std::string out;
  if (x < 0) {
    out = "-";
    x = -x;
  }
  // Shortest round-trip digits, as ECMAScript's Number::toString requires.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  std::string_view sci(buf, res.ptr - buf);
  size_t epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos)) {
    if (c != '.') digits += c;
  }
  int e = std::atoi(std::string(sci.substr(epos + 1)).c_str());
  int k = static_cast<int>(digits.size());
  int n = e + 1;
  if (k <= n && n <= 21) {
    out += digits + std::string(n - k, '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, n) + "." + digits.substr(n);
  } else if (-6 < n && n <= 0) {
    out += "0." + std::string(-n, '0') + digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{}", n - 1 >= 0 ? "+" : "-", std::abs(n - 1));
  }
  return out;
}

namespace {

std::string FloatDisplay(double x) {
  // FloatValue.toString: "-0.0" for negative zero, toFixed(1) for integral values, else toString.
  if (x == 0 && std::signbit(x)) return "-0.0";
  if (std::isfinite(x) && std::floor(x) == x) {
    if (std::fabs(x) < 1e21) return fmt::format("{:.1f}", x);
    return JsNumberToString(x);
  }
  return JsNumberToString(x);
}

uint32_t DecodeUtf8(std::string_view s, size_t pos, size_t* len) {
  auto c = static_cast<unsigned char>(s[pos]);
  int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || pos + n > s.size()) {
    *len = 1;
    return 0xFFFD;
  }
  uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (int i = 1; i < n; ++i) {
    auto cc = static_cast<unsigned char>(s[pos + i]);
    if ((cc >> 6) != 2) {
      *len = 1;
      return 0xFFFD;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  *len = n;
  return cp;
}

bool IsJsSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

}  // namespace

size_t Utf16Length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    uint32_t cp = DecodeUtf8(s, i, &len);
    n += cp > 0xFFFF ? 2 : 1;
    i += len;
  }
  return n;
}

size_t JsSpaceAt(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  size_t len;
  uint32_t cp = DecodeUtf8(s, pos, &len);
  return IsJsSpace(cp) ? len : 0;
}

size_t JsSpaceBefore(std::string_view s, size_t end) {
  if (end == 0) return 0;
  size_t start = end - 1;
  while (start > 0 && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  size_t len;
  uint32_t cp = DecodeUtf8(s, start, &len);
  return (start + len == end && IsJsSpace(cp)) ? len : 0;
}

std::string JsTrim(std::string_view s, bool start, bool end) {
  size_t b = 0, e = s.size();
  if (start) {
    while (size_t n = JsSpaceAt(s, b)) b += n;
  }
  if (end) {
    while (e > b) {
      size_t n = JsSpaceBefore(s, e);
      if (n == 0) break;
      e -= n;
    }
  }
  return std::string(s.substr(b, e - b));
}

namespace {

// Simple case mappings for ASCII, Latin-1, Greek and Cyrillic; other scripts pass through.
uint32_t UpperCp(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0x80) return c;
  if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c == 0xB5) return 0x39C;
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

uint32_t LowerCp(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0x80) return c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

template <typename F>
std::string MapCase(std::string_view s, F f, bool upper) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      out += static_cast<char>(f(static_cast<unsigned char>(s[i])));
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp = DecodeUtf8(s, i, &len);
    if (cp == 0xFFFD && len == 1) {
      out += s[i];
    } else if (upper && cp == 0xDF) {
      out += "SS";
    } else {
      AppendUtf8(out, f(cp));
    }
    i += len;
  }
  return out;
}

}  // namespace

std::string JsToUpper(std::string_view s) { return MapCase(s, UpperCp, true); }
std::string JsToLower(std::string_view s) { return MapCase(s, LowerCp, false); }

std::vector<std::string> CodePoints(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    DecodeUtf8(s, i, &len);
    out.emplace_back(s.substr(i, len));
    i += len;
  }
  return out;
}

namespace {

// Length of the longest prefix of s that is a StrDecimalLiteral (digits, fraction, exponent).
size_t DecimalPrefix(std::string_view s, size_t i) {
  size_t start = i;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (s.substr(i, 8) == "Infinity") return i + 8 - start;
  size_t d0 = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  bool int_digits = i > d0;
  bool frac_digits = false;
  if (i < s.size() && s[i] == '.') {
    size_t f0 = i + 1, j = f0;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    frac_digits = j > f0;
    if (int_digits || frac_digits) i = j;
  }
  if (!int_digits && !frac_digits) return 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t e0 = j;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j > e0) i = j;
  }
  return i - start;
}

double ParseDecimal(std::string_view s) {
  std::string t(s);
  bool neg = !t.empty() && t[0] == '-';
  std::string_view body = t;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
  if (body == "Infinity") return neg ? -INFINITY : INFINITY;
  return std::strtod(t.c_str(), nullptr);
}

}  // namespace

double JsStringToNumber(std::string_view s) {
  std::string t = JsTrim(s, true, true);
  if (t.empty()) return 0;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X' || t[1] == 'b' || t[1] == 'B' ||
                                      t[1] == 'o' || t[1] == 'O')) {
    int base = (t[1] == 'x' || t[1] == 'X') ? 16 : (t[1] == 'b' || t[1] == 'B') ? 2 : 8;
    double v = 0;
    for (size_t i = 2; i < t.size(); ++i) {
      int d = std::isdigit(static_cast<unsigned char>(t[i])) ? t[i] - '0'
              : std::isalpha(static_cast<unsigned char>(t[i])) ? (std::tolower(t[i]) - 'a' + 10)
                                                               : 99;
      if (d >= base) return NAN;
      v = v * base + d;
    }
    return v;
  }
  size_t n = DecimalPrefix(t, 0);
  if (n != t.size()) return NAN;
  return ParseDecimal(t);
}

double JsParseInt(std::string_view s) {
  size_t i = 0;
  while (size_t n = JsSpaceAt(s, i)) i += n;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  size_t d0 = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  if (i == d0) return NAN;
  double v = std::strtod(std::string(s.substr(d0, i - d0)).c_str(), nullptr);
  return neg ? -v : v;
}

double JsParseFloat(std::string_view s) {
  size_t i = 0;
  while (size_t n = JsSpaceAt(s, i)) i += n;
  size_t n = DecimalPrefix(s, i);
  if (n == 0) return NAN;
  return ParseDecimal(s.substr(i, n));
}

// ---- printing -----------------------------------------------------------------------------------

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

namespace {

// makeAsciiSafe: every UTF-16 unit from 0x7f up becomes \uXXXX.
std::string AsciiSafe(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    uint32_t cp = DecodeUtf8(s, i, &len);
    if (cp < 0x7F) {
      out += static_cast<char>(cp);
    } else if (cp <= 0xFFFF) {
      out += fmt::format("\\u{:04x}", cp);
    } else {
      uint32_t v = cp - 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
    }
    i += len;
  }
  return out;
}

// An approximation of String.prototype.localeCompare for keys (ICU root collation): punctuation
// before digits before letters, letters case-insensitively first, lower case before upper on ties.
int LocaleCompare(const std::string& a, const std::string& b) {
  auto cls = [](unsigned char c) { return std::isalpha(c) ? 2 : std::isdigit(c) ? 1 : 0; };
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    int cx = cls(x), cy = cls(y);
    if (cx != cy) return cx < cy ? -1 : 1;
    int lx = std::tolower(x), ly = std::tolower(y);
    if (lx != ly) return lx < ly ? -1 : 1;
  }
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return std::islower(static_cast<unsigned char>(a[i])) ? -1 : 1;
  }
  return 0;
}

}  // namespace

std::string ToJson(const Value& v, const JsonOptions& opts, int depth, bool undefined_to_null) {
  std::string item_sep = opts.has_separators ? opts.item_sep : opts.indent ? "," : ", ";
  std::string key_sep = opts.has_separators ? opts.key_sep : ": ";
  if (depth > 512) Fail("tojson: value nested too deeply");
  switch (v.kind) {
    case Kind::kNull: return "null";
    case Kind::kUndefined: return undefined_to_null ? "null" : "undefined";
    case Kind::kBool: return v.b ? "true" : "false";
    case Kind::kInt:
    case Kind::kFloat: return std::isfinite(v.num) ? JsNumberToString(v.num) : "null";
    case Kind::kString: {
      std::string q = JsonQuote(v.str);
      return opts.ensure_ascii ? AsciiSafe(q) : q;
    }
    case Kind::kArray:
    case Kind::kObject:
    case Kind::kNamespace: {
      std::string indent_str(opts.indent > 0 ? opts.indent : 0, ' ');
      std::string base = "\n";
      for (int i = 0; i < depth; ++i) base += indent_str;
      std::string child = base + indent_str;
      std::string out;
      if (v.kind == Kind::kArray) {
        out = "[";
        bool first = true;
        for (const Value& x : *v.arr) {
          if (!first) out += item_sep;
          if (opts.indent) out += child;
          out += ToJson(x, opts, depth + 1, undefined_to_null);
          first = false;
        }
        if (opts.indent && !v.arr->empty()) out += base;
        return out + "]";
      }
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& e : v.obj->entries()) entries.push_back(&e);
      if (opts.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](auto* a, auto* b) { return LocaleCompare(a->first, b->first) < 0; });
      }
      out = "{";
      bool first = true;
      for (const auto* e : entries) {
        if (!first) out += item_sep;
        if (opts.indent) out += child;
        std::string key = JsonQuote(e->first);
        out += opts.ensure_ascii ? AsciiSafe(key) : key;
        out += key_sep;
        out += ToJson(e->second, opts, depth + 1, undefined_to_null);
        first = false;
      }
      if (opts.indent && !entries.empty()) out += base;
      return out + "}";
    }
    default: Fail("Cannot convert to JSON: {}", TypeName(v));
  }
}

std::string ToDisplay(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return "undefined";
    case Kind::kNull: return "null";
    case Kind::kBool: return v.b ? "true" : "false";
    case Kind::kInt: return JsNumberToString(v.num);
    case Kind::kFloat: return FloatDisplay(v.num);
    case Kind::kString: return v.str;
    case Kind::kFunction: Fail("cannot print a function");
    default: return ToJson(v, {}, 0, false);
  }
}

std::string RawToString(const Value& v) {
  switch (v.kind) {
    case Kind::kInt:
    case Kind::kFloat: return JsNumberToString(v.num);
    case Kind::kArray:
    case Kind::kTuple: {
      std::string out;
      for (size_t i = 0; i < v.arr->size(); ++i) {
        if (i) out += ',';
        out += ToDisplay((*v.arr)[i]);
      }
      return out;
    }
    case Kind::kObject:
    case Kind::kKwArgs:
    case Kind::kNamespace: return "[object Map]";
    default: return ToDisplay(v);
  }
}

// ---- equality and order -------------------------------------------------------------------------

bool StrictEquals(const Value& a, const Value& b) {
  if (a.IsNumber() && b.IsNumber()) return a.num == b.num;
  if (a.kind != b.kind) {
    // Arrays and tuples, objects and kwargs share JS representations.
    if (a.IsArrayLike() && b.IsArrayLike()) return a.arr == b.arr;
    if (a.IsAttrContainer() && b.IsAttrContainer()) return a.obj == b.obj;
    return false;
  }
  switch (a.kind) {
    case Kind::kUndefined:
    case Kind::kNull: return true;
    case Kind::kBool: return a.b == b.b;
    case Kind::kString: return a.str == b.str;
    case Kind::kArray:
    case Kind::kTuple: return a.arr == b.arr;
    case Kind::kFunction: return a.fn == b.fn;
    default: return a.obj == b.obj;
  }
}

bool LooseEquals(const Value& a, const Value& b) {
  bool a_nullish = a.IsNull() || a.IsUndefined(), b_nullish = b.IsNull() || b.IsUndefined();
  if (a_nullish || b_nullish) return a_nullish && b_nullish;
  bool a_ref = a.IsArrayLike() || a.IsAttrContainer() || a.kind == Kind::kFunction;
  bool b_ref = b.IsArrayLike() || b.IsAttrContainer() || b.kind == Kind::kFunction;
  if (a_ref && b_ref) return StrictEquals(a, b);
  // A reference compared with a primitive is first turned into its string form.
  if (a_ref) return LooseEquals(Value::Str(RawToString(a)), b);
  if (b_ref) return LooseEquals(a, Value::Str(RawToString(b)));
  if (a.IsString() && b.IsString()) return a.str == b.str;
  auto to_num = [](const Value& v) {
    return v.kind == Kind::kBool ? (v.b ? 1.0 : 0.0) : v.IsString() ? JsStringToNumber(v.str) : v.num;
  };
  if (a.kind == Kind::kBool && b.kind == Kind::kBool) return a.b == b.b;
  return to_num(a) == to_num(b);
}

int CompareValues(const Value& a, const Value& b, bool case_sensitive) {
  if (a.IsNull() && b.IsNull()) return 0;
  if (a.IsNull() || b.IsNull()) Fail("Cannot compare {} with {}", TypeName(a), TypeName(b));
  if (a.IsUndefined() && b.IsUndefined()) return 0;
  if (a.IsUndefined() || b.IsUndefined()) Fail("Cannot compare {} with {}", TypeName(a), TypeName(b));
  auto numeric = [](const Value& v) { return v.IsNumber() || v.kind == Kind::kBool; };
  if (numeric(a) && numeric(b)) {
    double x = a.kind == Kind::kBool ? a.b : a.num, y = b.kind == Kind::kBool ? b.b : b.num;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind != b.kind) Fail("Cannot compare different types: {} and {}", TypeName(a), TypeName(b));
  if (a.kind != Kind::kString) Fail("Cannot compare type: {}", TypeName(a));
  if (case_sensitive) return a.str < b.str ? -1 : a.str > b.str ? 1 : 0;
  std::string x = JsToLower(a.str), y = JsToLower(b.str);
  return x < y ? -1 : x > y ? 1 : 0;
}

}  // namespace origami::jinja
