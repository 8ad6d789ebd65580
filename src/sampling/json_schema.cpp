// JSON Schema compiler: one grammar rule per schema node, primitives (strings, numbers, any value)
// shared, $refs memoized so recursive schemas give recursive rules.
#include "sampling/json_schema.h"

#include <array>
#include <functional>
#include <map>
#include <set>

#include "util/error.h"

namespace origami {

// ordered_json keeps "properties" in the order the schema lists them, which is the order the
// grammar asks for (models follow it best; OpenAI strict mode does the same).
using json = nlohmann::ordered_json;
using B = GrammarBuilder;

namespace {

constexpr uint32_t kMaxCount = 4096;  // largest minItems/maxItems/minLength/maxLength we expand

// Keywords we cannot enforce; a schema using them is rejected rather than silently loosened.
const std::set<std::string> kRejected = {"pattern",
                                         "patternProperties",
                                         "not",
                                         "if",
                                         "then",
                                         "else",
                                         "dependentRequired",
                                         "dependentSchemas",
                                         "dependencies",
                                         "propertyNames",
                                         "contains",
                                         "minContains",
                                         "maxContains",
                                         "unevaluatedProperties",
                                         "unevaluatedItems",
                                         "minProperties",
                                         "maxProperties",
                                         "multipleOf",
                                         "$dynamicRef",
                                         "$recursiveRef"};

const std::set<std::string> kTypes = {"object",  "array",   "string", "number",
                                      "integer", "boolean", "null"};

CharClass Digits() { return CharClass::Range('0', '9'); }
CharClass HexDigits() { return CharClass::Range('0', '9').AddRange('a', 'f').AddRange('A', 'F'); }

}  // namespace

struct JsonSchemaCompiler::Impl {
  GrammarBuilder& b;
  const json* root = nullptr;
  std::string root_name;
  std::map<std::string, uint32_t> refs;  // root_name + "\n" + ref -> rule
  std::map<std::string, uint32_t> prims;
  int n_rules = 0;

  explicit Impl(GrammarBuilder& builder) : b(builder) {}

  uint32_t NewRule(const std::string& hint) {
    return b.NewRule(root_name + "-" + hint + "-" + std::to_string(n_rules++));
  }

  // A shared primitive, created on first use.
  template <typename F>
  uint32_t Prim(const std::string& name, F&& define) {
    auto it = prims.find(name);
    if (it != prims.end()) return it->second;
    const uint32_t r = b.NewRule(name);
    prims.emplace(name, r);
    define(r);
    return r;
  }

  // What a serializer writes between tokens: nothing, one space (", " and ": "), or one newline and
  // an indent. A free run of whitespace let small models fill max_tokens with newlines inside a
  // forced call, so runs are bounded by shape, not only by length.
  uint32_t Ws() {
    return Prim("ws", [&](uint32_t r) {
      b.AddAlt(r, {});
      b.AddAlt(r, {B::Lit(" ")});
      b.AddAlt(r, {B::Lit("\n"), B::Repeat(CharClass::Of(" \t"), 0, kJsonMaxIndent)});
    });
  }

  uint32_t Escape() {
    return Prim("escape", [&](uint32_t r) {
      // \uXXXX without surrogates: a lone surrogate is not valid JSON text for strict parsers.
      const uint32_t hex4 = b.NewRule("hex4");
      const CharClass h = HexDigits();
      b.AddAlt(hex4, {B::Chars(CharClass::Range('0', '9').AddRange('a', 'c').AddRange('A', 'C')),
                      B::Repeat(h, 3, 3)});
      b.AddAlt(hex4, {B::Chars(CharClass::Of("dD")), B::Chars(CharClass::Range('0', '7')),
                      B::Repeat(h, 2, 2)});
      b.AddAlt(hex4, {B::Chars(CharClass::Of("eEfF")), B::Repeat(h, 3, 3)});
      b.AddAlt(r, {B::Lit("\\"), B::Chars(CharClass::Of("\"\\/bfnrt"))});
      b.AddAlt(r, {B::Lit("\\u"), B::Ref(hex4)});
    });
  }

  static CharClass Plain() {
    CharClass c = CharClass::Range(0x20, 0xFF);
    c.bits[0x22 >> 6] &= ~(uint64_t{1} << 0x22);
    c.bits[0x5C >> 6] &= ~(uint64_t{1} << (0x5C & 63));
    return c;
  }

  // One character of a JSON string: a UTF-8 sequence or an escape.
  uint32_t StrChar() {
    return Prim("char", [&](uint32_t r) {
      b.AddAlt(r, {B::Repeat(Plain(), 1, 1, true)});
      b.AddAlt(r, {B::Ref(Escape())});
    });
  }

  uint32_t String() {
    return Prim("string", [&](uint32_t r) {
      // chars ::= plain* tail; tail ::= escape chars | "": unambiguous, and the common case (no
      // escapes) is one repeat element that stays the same stack node byte after byte.
      const uint32_t chars = b.NewRule("string-chars");
      const uint32_t tail = b.NewRule("string-tail");
      b.AddAlt(chars, {B::Repeat(Plain(), 0, kUnbounded, true), B::Ref(tail)});
      b.AddAlt(tail, {B::Ref(Escape()), B::Ref(chars)});
      b.AddAlt(tail, {});
      b.AddAlt(r, {B::Lit("\""), B::Ref(chars), B::Lit("\"")});
    });
  }

  // -?(0|[1-9][0-9]{0,15}); `nonneg` drops the sign, `positive` also the lone 0.
  uint32_t IntPart(bool nonneg, bool positive) {
    const std::string name = positive ? "int-pos" : nonneg ? "int-nonneg" : "int";
    return Prim(name, [&](uint32_t r) {
      std::vector<B::Item> head;
      if (!nonneg) head.push_back(B::Repeat(CharClass::Of("-"), 0, 1));
      auto zero = head, many = head;
      zero.push_back(B::Lit("0"));
      many.push_back(B::Chars(CharClass::Range('1', '9')));
      many.push_back(B::Repeat(Digits(), 0, 15));
      if (!positive) b.AddAlt(r, zero);
      b.AddAlt(r, many);
    });
  }

  uint32_t Number(bool nonneg) {
    return Prim(nonneg ? "number-nonneg" : "number", [&](uint32_t r) {
      const uint32_t frac = b.NewRule("frac");
      b.AddAlt(frac, {B::Lit("."), B::Repeat(Digits(), 1, 16)});
      b.AddAlt(frac, {});
      const uint32_t exp = b.NewRule("exp");
      // Two exponent digits: 16 digits times 1e99 stays within a double (1.8e308), which strict
      // parsers (nlohmann, Python's json with floats) require; three allowed 1e941.
      b.AddAlt(exp, {B::Chars(CharClass::Of("eE")), B::Repeat(CharClass::Of("+-"), 0, 1),
                     B::Repeat(Digits(), 1, 2)});
      b.AddAlt(exp, {});
      b.AddAlt(r, {B::Ref(IntPart(nonneg, false)), B::Ref(frac), B::Ref(exp)});
    });
  }

  uint32_t AnyValue() {
    return Prim("value", [&](uint32_t r) {
      b.AddAlt(r, {B::Ref(AnyObject())});
      b.AddAlt(r, {B::Ref(AnyArray())});
      b.AddAlt(r, {B::Ref(String())});
      b.AddAlt(r, {B::Ref(Number(false))});
      b.AddAlt(r, {B::Lit("true")});
      b.AddAlt(r, {B::Lit("false")});
      b.AddAlt(r, {B::Lit("null")});
    });
  }

  // "{" ws ( "}" | member ws more ), more ::= "}" | "," ws member ws more.
  uint32_t ObjectOf(uint32_t value_rule, const std::string& name) {
    const uint32_t r = b.NewRule(name);
    const uint32_t member = b.NewRule(name + "-member");
    const uint32_t more = b.NewRule(name + "-more");
    b.AddAlt(member,
             {B::Ref(String()), B::Ref(Ws()), B::Lit(":"), B::Ref(Ws()), B::Ref(value_rule)});
    b.AddAlt(more, {B::Lit("}")});
    b.AddAlt(more, {B::Lit(","), B::Ref(Ws()), B::Ref(member), B::Ref(Ws()), B::Ref(more)});
    const uint32_t body = b.NewRule(name + "-body");
    b.AddAlt(body, {B::Lit("}")});
    b.AddAlt(body, {B::Ref(member), B::Ref(Ws()), B::Ref(more)});
    b.AddAlt(r, {B::Lit("{"), B::Ref(Ws()), B::Ref(body)});
    return r;
  }

  uint32_t AnyObject() {
    auto it = prims.find("object");
    if (it != prims.end()) return it->second;
    // Reserve the name first: AnyValue refers back to the object rule.
    const uint32_t r = b.NewRule("object");
    prims.emplace("object", r);
    b.AddAlt(r, {B::Ref(ObjectOf(AnyValue(), "object-any"))});
    return r;
  }

  uint32_t AnyArray() {
    auto it = prims.find("array");
    if (it != prims.end()) return it->second;
    const uint32_t r = b.NewRule("array");
    prims.emplace("array", r);
    b.AddAlt(r, {B::Ref(ArrayOf({}, AnyValue(), 0, kUnbounded, "array-any"))});
    return r;
  }

  // "[" ws M(0), where M(k) follows k items and the whitespace after them:
  // M(k) ::= "]" (if k >= min) | ("," ws)? item_k ws M(k+1) (if k < max).
  // From K0 = max(#prefix, min, 1) on, every M(k) is the same rule (unbounded max).
  uint32_t ArrayOf(const std::vector<uint32_t>& prefix, int64_t item, uint32_t min, uint32_t max,
                   const std::string& name) {
    if (item < 0) max = std::min<uint32_t>(max, static_cast<uint32_t>(prefix.size()));
    if (min > max)
      Fail("json_schema: {}: minItems {} cannot be met (at most {} items)", name, min, max);
    const uint32_t k0 = std::max<uint32_t>({static_cast<uint32_t>(prefix.size()), min, 1});
    std::vector<int64_t> m;
    auto get = [&](uint32_t k) -> uint32_t {
      if (max == kUnbounded && k > k0) k = k0;
      while (m.size() <= k) m.push_back(-1);
      if (m[k] < 0) m[k] = b.NewRule(name + "-m" + std::to_string(k));
      return static_cast<uint32_t>(m[k]);
    };
    const uint32_t last = max == kUnbounded ? k0 : max;
    for (uint32_t k = 0; k <= last; ++k) {
      const uint32_t rk = get(k);
      if (k >= min) b.AddAlt(rk, {B::Lit("]")});
      if (k < max) {
        const uint32_t it_rule = k < prefix.size() ? prefix[k] : static_cast<uint32_t>(item);
        std::vector<B::Item> seq;
        if (k > 0) {
          seq.push_back(B::Lit(","));
          seq.push_back(B::Ref(Ws()));
        }
        seq.push_back(B::Ref(it_rule));
        seq.push_back(B::Ref(Ws()));
        seq.push_back(B::Ref(get(k + 1)));
        b.AddAlt(rk, seq);
      }
    }
    const uint32_t r = b.NewRule(name);
    b.AddAlt(r, {B::Lit("["), B::Ref(Ws()), B::Ref(get(0))});
    return r;
  }

  // min..max repetitions of a rule (no separator): C(k) ::= "" (k >= min) | item C(k+1) (k < max).
  uint32_t Counted(uint32_t item, uint32_t min, uint32_t max, const std::string& name) {
    std::vector<int64_t> c;
    const uint32_t k0 = min;
    auto get = [&](uint32_t k) -> uint32_t {
      if (max == kUnbounded && k > k0) k = k0;
      while (c.size() <= k) c.push_back(-1);
      if (c[k] < 0) c[k] = b.NewRule(name + "-c" + std::to_string(k));
      return static_cast<uint32_t>(c[k]);
    };
    const uint32_t last = max == kUnbounded ? k0 : max;
    for (uint32_t k = 0; k <= last; ++k) {
      const uint32_t rk = get(k);
      if (k >= min) b.AddAlt(rk, {});
      if (k < max) b.AddAlt(rk, {B::Ref(item), B::Ref(get(k + 1))});
    }
    return get(0);
  }

  static uint32_t CountField(const json& s, const char* key, uint32_t dflt,
                             const std::string& path) {
    if (!s.contains(key)) return dflt;
    const json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      Fail("json_schema: {} at {} must be a non-negative integer", key, path);
    const int64_t n = v.get<int64_t>();
    if (n > kMaxCount)
      FailKind(ErrorKind::kUnsupported, "json_schema: {} = {} at {} is above the supported {}", key,
               n, path, kMaxCount);
    return static_cast<uint32_t>(n);
  }

  uint32_t Literal(const json& v) {
    const uint32_t r = NewRule("lit");
    b.AddAlt(r, {B::Lit(v.dump())});
    return r;
  }

  void CheckKeywords(const json& s, const std::string& path) {
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (kRejected.count(it.key())) {
        if (it.key() == "uniqueItems" && it.value() == false) continue;
        FailKind(ErrorKind::kUnsupported, "json_schema: keyword '{}' at {} is not supported",
                 it.key(), path);
      }
    }
    if (s.contains("uniqueItems") && s["uniqueItems"] == true)
      FailKind(ErrorKind::kUnsupported, "json_schema: keyword 'uniqueItems' at {} is not supported",
               path);
  }

  const json& ResolveRef(const std::string& ref, const std::string& path) {
    if (ref == "#") return *root;
    if (ref.rfind("#/", 0) != 0)
      FailKind(ErrorKind::kUnsupported,
               "json_schema: $ref '{}' at {} is not supported (only local refs starting with #/)",
               ref, path);
    try {
      const json::json_pointer ptr(ref.substr(1));
      if (!root->contains(ptr)) Fail("json_schema: $ref '{}' at {} points nowhere", ref, path);
      return root->at(ptr);
    } catch (const json::exception&) {
      Fail("json_schema: $ref '{}' at {} is not a valid JSON pointer", ref, path);
    }
  }

  uint32_t Ref(const json& refv, const std::string& path) {
    if (!refv.is_string()) Fail("json_schema: $ref at {} must be a string", path);
    const std::string ref = refv.get<std::string>();
    const std::string key = root_name + "\n" + ref;
    auto it = refs.find(key);
    if (it != refs.end()) return it->second;
    const uint32_t r = NewRule("ref");
    refs.emplace(key, r);  // before compiling: recursive schemas refer back to r
    const json& target = ResolveRef(ref, path);
    b.AddAlt(r, {B::Ref(Compile(target, ref))});
    return r;
  }

  // allOf: shallow merge (properties merged, required united, other keywords: later wins).
  json MergeAllOf(const json& s, const std::string& path) {
    json out = s;
    out.erase("allOf");
    if (!s["allOf"].is_array() || s["allOf"].empty())
      Fail("json_schema: allOf at {} must be a non-empty array", path);
    for (const json& sub0 : s["allOf"]) {
      json sub = sub0;
      int guard = 0;
      while (sub.is_object() && sub.contains("$ref")) {
        if (++guard > 32) Fail("json_schema: $ref cycle in allOf at {}", path);
        sub = ResolveRef(sub["$ref"].get<std::string>(), path);
      }
      if (!sub.is_object()) Fail("json_schema: allOf items at {} must be schemas", path);
      if (sub.contains("allOf")) sub = MergeAllOf(sub, path);
      for (auto it = sub.begin(); it != sub.end(); ++it) {
        if (it.key() == "properties" && out.contains("properties")) {
          for (auto p = it.value().begin(); p != it.value().end(); ++p)
            out["properties"][p.key()] = p.value();
        } else if (it.key() == "required" && out.contains("required")) {
          for (const auto& n : it.value()) out["required"].push_back(n);
        } else {
          out[it.key()] = it.value();
        }
      }
    }
    return out;
  }

  uint32_t Compile(const json& s, const std::string& path) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return AnyValue();
      Fail("json_schema: schema at {} is false: no value can match", path);
    }
    if (!s.is_object()) Fail("json_schema: schema at {} must be an object or a boolean", path);
    CheckKeywords(s, path);
    if (s.contains("$ref")) return Ref(s["$ref"], path);
    if (s.contains("allOf")) return Compile(MergeAllOf(s, path), path);
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!s.contains(key)) continue;
      const json& list = s[key];
      if (!list.is_array() || list.empty())
        Fail("json_schema: {} at {} must be a non-empty array", key, path);
      json base = s;
      base.erase(key);
      static const std::set<std::string> kAnnotations = {"title",       "description", "default",
                                                         "examples",    "$comment",    "$defs",
                                                         "definitions", "$schema",     "$id"};
      bool plain = true;
      for (auto it = base.begin(); it != base.end(); ++it)
        if (!kAnnotations.count(it.key())) plain = false;
      const uint32_t r = NewRule(key);
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string sub_path = fmt::format("{}/{}/{}", path, key, i);
        if (plain || !list[i].is_object()) {
          b.AddAlt(r, {B::Ref(Compile(list[i], sub_path))});
        } else {
          json merged = base;
          for (auto it = list[i].begin(); it != list[i].end(); ++it) merged[it.key()] = it.value();
          b.AddAlt(r, {B::Ref(Compile(merged, sub_path))});
        }
      }
      return r;
    }
    if (s.contains("const")) return Literal(s["const"]);
    if (s.contains("enum")) {
      const json& list = s["enum"];
      if (!list.is_array() || list.empty())
        Fail("json_schema: enum at {} must be a non-empty array", path);
      const uint32_t r = NewRule("enum");
      for (const json& v : list) b.AddAlt(r, {B::Lit(v.dump())});
      return r;
    }
    if (s.value("nullable", false)) {
      json rest = s;
      rest.erase("nullable");
      const uint32_t r = NewRule("nullable");
      b.AddAlt(r, {B::Lit("null")});
      b.AddAlt(r, {B::Ref(Compile(rest, path))});
      return r;
    }
    if (s.contains("type")) {
      const json& t = s["type"];
      if (t.is_array()) {
        if (t.empty()) Fail("json_schema: type at {} is an empty array", path);
        const uint32_t r = NewRule("types");
        for (const json& one : t) {
          json sub = s;
          sub["type"] = one;
          b.AddAlt(r, {B::Ref(Compile(sub, path))});
        }
        return r;
      }
      if (!t.is_string() || !kTypes.count(t.get<std::string>()))
        Fail(
            "json_schema: type {} at {} is not one of object, array, string, number, integer, "
            "boolean, null",
            t.dump(), path);
      return CompileType(t.get<std::string>(), s, path);
    }
    // No type: infer it from the keywords present.
    if (s.contains("properties") || s.contains("required") || s.contains("additionalProperties"))
      return CompileType("object", s, path);
    if (s.contains("items") || s.contains("prefixItems") || s.contains("minItems") ||
        s.contains("maxItems"))
      return CompileType("array", s, path);
    if (s.contains("minLength") || s.contains("maxLength") || s.contains("format"))
      return CompileType("string", s, path);
    return AnyValue();
  }

  uint32_t CompileType(const std::string& t, const json& s, const std::string& path) {
    if (t == "null") return Literal(nullptr);
    if (t == "boolean") {
      return Prim("boolean", [&](uint32_t r) {
        b.AddAlt(r, {B::Lit("true")});
        b.AddAlt(r, {B::Lit("false")});
      });
    }
    auto num_at_least = [&](const char* key, double v) {
      return s.contains(key) && s[key].is_number() && s[key].get<double>() >= v;
    };
    if (t == "integer") {
      const bool positive = num_at_least("minimum", 1) || num_at_least("exclusiveMinimum", 0);
      const bool nonneg = positive || num_at_least("minimum", 0);
      return IntPart(nonneg, positive);
    }
    if (t == "number")
      return Number(num_at_least("minimum", 0) || num_at_least("exclusiveMinimum", 0));
    if (t == "string") return CompileString(s, path);
    if (t == "array") return CompileArray(s, path);
    return CompileObject(s, path);
  }

  uint32_t CompileString(const json& s, const std::string& path) {
    if (s.contains("format") && s["format"].is_string()) {
      const std::string f = s["format"].get<std::string>();
      if (f == "date" || f == "time" || f == "date-time" || f == "uuid") return Format(f);
    }
    const uint32_t min = CountField(s, "minLength", 0, path);
    const uint32_t max = s.contains("maxLength") ? CountField(s, "maxLength", 0, path) : kUnbounded;
    if (min > max) Fail("json_schema: minLength > maxLength at {}", path);
    if (min == 0 && max == kUnbounded) return String();
    const uint32_t r = NewRule("string-len");
    b.AddAlt(r, {B::Lit("\""), B::Ref(Counted(StrChar(), min, max, root_name + "-strlen")),
                 B::Lit("\"")});
    return r;
  }

  uint32_t Format(const std::string& f) {
    return Prim("format-" + f, [&](uint32_t r) {
      const CharClass d = Digits();
      auto two = [&](const std::string& name, std::vector<std::vector<B::Item>> alts) {
        const uint32_t x = b.NewRule(name);
        for (auto& a : alts) b.AddAlt(x, a);
        return x;
      };
      auto date = [&] {
        const uint32_t month = two("month", {{B::Lit("0"), B::Chars(CharClass::Range('1', '9'))},
                                             {B::Lit("1"), B::Chars(CharClass::Range('0', '2'))}});
        const uint32_t day = two("day", {{B::Lit("0"), B::Chars(CharClass::Range('1', '9'))},
                                         {B::Chars(CharClass::Of("12")), B::Chars(d)},
                                         {B::Lit("3"), B::Chars(CharClass::Of("01"))}});
        return std::vector<B::Item>{B::Repeat(d, 4, 4), B::Lit("-"), B::Ref(month), B::Lit("-"),
                                    B::Ref(day)};
      };
      auto time = [&] {
        const uint32_t hour = two("hour", {{B::Chars(CharClass::Of("01")), B::Chars(d)},
                                           {B::Lit("2"), B::Chars(CharClass::Range('0', '3'))}});
        const uint32_t frac = two("time-frac", {{B::Lit("."), B::Repeat(d, 1, 6)}, {}});
        const uint32_t tz = two("tz", {{B::Lit("Z")},
                                       {B::Chars(CharClass::Of("+-")), B::Ref(hour), B::Lit(":"),
                                        B::Chars(CharClass::Range('0', '5')), B::Chars(d)}});
        return std::vector<B::Item>{
            B::Ref(hour), B::Lit(":"),  B::Chars(CharClass::Range('0', '5')),
            B::Chars(d),  B::Lit(":"),  B::Chars(CharClass::Range('0', '5')),
            B::Chars(d),  B::Ref(frac), B::Ref(tz)};
      };
      std::vector<B::Item> seq{B::Lit("\"")};
      auto append = [&](std::vector<B::Item> v) { seq.insert(seq.end(), v.begin(), v.end()); };
      if (f == "date") append(date());
      if (f == "time") append(time());
      if (f == "date-time") {
        append(date());
        seq.push_back(B::Lit("T"));
        append(time());
      }
      if (f == "uuid") {
        const CharClass h = CharClass::Range('0', '9').AddRange('a', 'f');
        for (uint32_t n : {8u, 4u, 4u, 4u}) {
          seq.push_back(B::Repeat(h, n, n));
          seq.push_back(B::Lit("-"));
        }
        seq.push_back(B::Repeat(h, 12, 12));
      }
      seq.push_back(B::Lit("\""));
      b.AddAlt(r, seq);
    });
  }

  uint32_t CompileArray(const json& s, const std::string& path) {
    std::vector<uint32_t> prefix;
    int64_t item = -2;  // -2: any value, -1: no items beyond the prefix
    const json* prefix_list = nullptr;
    if (s.contains("prefixItems")) prefix_list = &s["prefixItems"];
    if (s.contains("items") && s["items"].is_array()) prefix_list = &s["items"];  // draft 4 tuples
    if (prefix_list) {
      if (!prefix_list->is_array()) Fail("json_schema: prefixItems at {} must be an array", path);
      for (size_t i = 0; i < prefix_list->size(); ++i)
        prefix.push_back(Compile((*prefix_list)[i], fmt::format("{}/prefixItems/{}", path, i)));
    }
    const json* rest = nullptr;
    if (s.contains("items") && !s["items"].is_array())
      rest = &s["items"];
    else if (prefix_list && s.contains("additionalItems"))
      rest = &s["additionalItems"];
    if (rest) {
      if (rest->is_boolean() && !rest->get<bool>())
        item = -1;
      else
        item = Compile(*rest, path + "/items");
    }
    if (item == -2) item = AnyValue();
    const uint32_t min = CountField(s, "minItems", 0, path);
    const uint32_t max = s.contains("maxItems") ? CountField(s, "maxItems", 0, path) : kUnbounded;
    if (min > max) Fail("json_schema: minItems > maxItems at {}", path);
    return ArrayOf(prefix, item, min, max, root_name + "-arr" + std::to_string(n_rules++));
  }

  uint32_t CompileObject(const json& s, const std::string& path) {
    static const json kEmpty = json::object();
    const json& props = s.contains("properties") ? s["properties"] : kEmpty;
    if (!props.is_object()) Fail("json_schema: properties at {} must be an object", path);
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) Fail("json_schema: required at {} must be an array", path);
      for (const json& n : s["required"]) {
        if (!n.is_string()) Fail("json_schema: required at {} must hold strings", path);
        required.insert(n.get<std::string>());
      }
    }
    int64_t extra = -1;  // rule for values of undeclared properties, -1: none
    bool addl_given = s.contains("additionalProperties");
    if (addl_given) {
      const json& a = s["additionalProperties"];
      if (a.is_boolean()) {
        if (a.get<bool>()) extra = AnyValue();
      } else {
        extra = Compile(a, path + "/additionalProperties");
      }
    }
    if (props.empty() && required.empty()) {
      if (!addl_given) return AnyObject();
      if (extra < 0) {
        const uint32_t r = NewRule("empty-object");
        b.AddAlt(r, {B::Lit("{"), B::Ref(Ws()), B::Lit("}")});
        return r;
      }
      return ObjectOf(static_cast<uint32_t>(extra), root_name + "-map" + std::to_string(n_rules++));
    }
    struct Prop {
      std::string name;
      uint32_t value;
      bool required;
    };
    std::vector<Prop> list;
    for (auto it = props.begin(); it != props.end(); ++it)
      list.push_back({it.key(), Compile(it.value(), path + "/properties/" + it.key()),
                      required.count(it.key()) > 0});
    for (const std::string& n : required)
      if (!props.contains(n)) list.push_back({n, AnyValue(), true});

    // R(i, first): the members from i on; `first` when no member has been written yet.
    const std::string base = root_name + "-obj" + std::to_string(n_rules++);
    std::vector<std::array<int64_t, 2>> memo(list.size() + 1, {-1, -1});
    uint32_t extra_more = 0;
    if (extra >= 0) {
      // After the declared members: more ::= "}" | "," ws string ws ":" ws extra ws more.
      extra_more = b.NewRule(base + "-extra");
      b.AddAlt(extra_more, {B::Lit("}")});
      b.AddAlt(extra_more, {B::Lit(","), B::Ref(Ws()), B::Ref(String()), B::Ref(Ws()), B::Lit(":"),
                            B::Ref(Ws()), B::Ref(static_cast<uint32_t>(extra)), B::Ref(Ws()),
                            B::Ref(extra_more)});
    }
    std::function<uint32_t(size_t, bool)> R = [&](size_t i, bool first) -> uint32_t {
      int64_t& slot = memo[i][first ? 1 : 0];
      if (slot >= 0) return static_cast<uint32_t>(slot);
      const uint32_t r = b.NewRule(base + "-r" + std::to_string(i) + (first ? "f" : ""));
      slot = r;
      if (i == list.size()) {
        if (extra < 0) {
          b.AddAlt(r, {B::Lit("}")});
        } else if (first) {
          b.AddAlt(r, {B::Lit("}")});
          b.AddAlt(r, {B::Ref(String()), B::Ref(Ws()), B::Lit(":"), B::Ref(Ws()),
                       B::Ref(static_cast<uint32_t>(extra)), B::Ref(Ws()), B::Ref(extra_more)});
        } else {
          b.AddAlt(r, {B::Ref(extra_more)});
        }
        return r;
      }
      const Prop& p = list[i];
      std::vector<B::Item> seq;
      if (!first) {
        seq.push_back(B::Lit(","));
        seq.push_back(B::Ref(Ws()));
      }
      seq.push_back(B::Lit(json(p.name).dump()));
      seq.push_back(B::Ref(Ws()));
      seq.push_back(B::Lit(":"));
      seq.push_back(B::Ref(Ws()));
      seq.push_back(B::Ref(p.value));
      seq.push_back(B::Ref(Ws()));
      seq.push_back(B::Ref(R(i + 1, false)));
      b.AddAlt(r, seq);
      if (!p.required) b.AddAlt(r, {B::Ref(R(i + 1, first))});
      return r;
    };
    const uint32_t r = b.NewRule(base);
    b.AddAlt(r, {B::Lit("{"), B::Ref(Ws()), B::Ref(R(0, true))});
    return r;
  }
};

JsonSchemaCompiler::JsonSchemaCompiler(GrammarBuilder& b) : impl_(std::make_unique<Impl>(b)) {}
JsonSchemaCompiler::~JsonSchemaCompiler() = default;

uint32_t JsonSchemaCompiler::CompileRoot(const json& schema, const std::string& name) {
  impl_->root = &schema;
  impl_->root_name = name;
  const uint32_t r = impl_->Compile(schema, "#");
  impl_->root = nullptr;
  return r;
}

uint32_t JsonSchemaCompiler::CompileRoot(const nlohmann::json& schema, const std::string& name) {
  const json ordered = schema;
  return CompileRoot(ordered, name);
}

uint32_t JsonSchemaCompiler::AnyValue() { return impl_->AnyValue(); }
uint32_t JsonSchemaCompiler::AnyObject() { return impl_->AnyObject(); }
uint32_t JsonSchemaCompiler::Ws() { return impl_->Ws(); }

std::shared_ptr<const Grammar> JsonObjectGrammar() {
  GrammarBuilder b;
  JsonSchemaCompiler c(b);
  const uint32_t root = b.NewRule("root");
  b.AddAlt(root, {B::Ref(c.AnyObject())});
  return b.Build(root);
}

std::shared_ptr<const Grammar> JsonSchemaGrammar(const json& schema) {
  GrammarBuilder b;
  JsonSchemaCompiler c(b);
  const uint32_t root = b.NewRule("root");
  b.AddAlt(root, {B::Ref(c.CompileRoot(schema, "schema"))});
  return b.Build(root);
}

std::shared_ptr<const Grammar> JsonSchemaGrammar(const nlohmann::json& schema) {
  return JsonSchemaGrammar(json(schema));
}

std::shared_ptr<const Grammar> ResponseFormatGrammar(const nlohmann::json& rf) {
  return ResponseFormatGrammar(json(rf));
}

std::shared_ptr<const Grammar> ResponseFormatGrammar(const json& rf) {
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
    Fail("response_format must be an object with a string 'type'");
  const std::string type = rf["type"].get<std::string>();
  if (type == "text") return nullptr;
  if (type == "json_object") return JsonObjectGrammar();
  if (type != "json_schema")
    Fail("response_format.type '{}' is not one of text, json_object, json_schema", type);
  if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
    Fail("response_format.json_schema must be an object");
  const json& js = rf["json_schema"];
  if (!js.contains("schema")) return JsonObjectGrammar();  // OpenAI: schema is optional
  try {
    return JsonSchemaGrammar(js["schema"]);
  } catch (const Error& e) {
    throw Error(std::string("response_format.json_schema.schema: ") + e.what(), e.kind());
  }
}

}  // namespace origami
