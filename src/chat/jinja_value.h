// Runtime values of the chat-template interpreter. They mirror @huggingface/jinja's runtime types
// (IntegerValue, FloatValue, StringValue, ArrayValue, TupleValue, ObjectValue, NamespaceValue, ...)
// because rendering must be byte-identical to it, including how values print and compare.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/utf8.h"

namespace origami::jinja {

struct Value;
class Env;
using EnvPtr = std::shared_ptr<Env>;

// Insertion-ordered string map with JS Map semantics (re-setting a key keeps its position).
class ObjectMap {
 public:
  const Value* Find(std::string_view key) const;
  Value* Find(std::string_view key);
  void Set(std::string key, Value value);
  bool Erase(std::string_view key);
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, Value>> entries_;
};

// A callable: positional arguments (a trailing kKwArgs value carries keyword arguments, as in the
// reference) and the environment of the call site (macros are dynamically scoped there).
using Function = std::function<Value(std::vector<Value>& args, const EnvPtr& caller_env)>;

enum class Kind : uint8_t {
  kUndefined,
  kNull,
  kBool,
  kInt,    // a JS number tagged integer (the reference's IntegerValue): printed without ".0"
  kFloat,  // a JS number tagged float: integral values print with ".0"
  kString,
  kArray,
  kTuple,
  kObject,
  kKwArgs,  // keyword arguments passed to a call; an object for most purposes
  kNamespace,
  kFunction,
};

struct Value {
  Kind kind = Kind::kUndefined;
  bool b = false;
  double num = 0;  // JS numbers are doubles; integers too
  std::string str;
  std::shared_ptr<std::vector<Value>> arr;  // kArray, kTuple (shared: JS reference semantics)
  std::shared_ptr<ObjectMap> obj;           // kObject, kKwArgs, kNamespace
  std::shared_ptr<Function> fn;

  static Value Undefined() { return {}; }
  static Value Null() { Value v; v.kind = Kind::kNull; return v; }
  static Value Bool(bool x) { Value v; v.kind = Kind::kBool; v.b = x; return v; }
  static Value Int(double x) { Value v; v.kind = Kind::kInt; v.num = x; return v; }
  static Value Float(double x) { Value v; v.kind = Kind::kFloat; v.num = x; return v; }
  static Value Str(std::string s) { Value v; v.kind = Kind::kString; v.str = std::move(s); return v; }
  static Value Array(std::vector<Value> items, Kind kind = Kind::kArray);
  static Value Object(ObjectMap m, Kind kind = Kind::kObject);
  static Value Fn(Function f);

  bool IsUndefined() const { return kind == Kind::kUndefined; }
  bool IsNull() const { return kind == Kind::kNull; }
  bool IsNumber() const { return kind == Kind::kInt || kind == Kind::kFloat; }
  bool IsString() const { return kind == Kind::kString; }
  bool IsArrayLike() const { return kind == Kind::kArray || kind == Kind::kTuple; }  // instanceof ArrayValue
  bool IsObjectLike() const { return kind == Kind::kObject || kind == Kind::kKwArgs; }  // instanceof ObjectValue
  bool IsAttrContainer() const { return IsObjectLike() || kind == Kind::kNamespace; }
};

// The reference's type names, used in error messages ("StringValue", "ArrayValue", ...).
const char* TypeName(const Value& v);

// Python-ish truthiness as the reference defines __bool__ (a namespace is always true).
bool Truthy(const Value& v);

// RuntimeValue.toString(): how `{{ v }}` prints.
std::string ToDisplay(const Value& v);
// JS `String(v.value)`: what `~` and string `+` concatenate (floats print without ".0", maps as
// "[object Map]", arrays as their items' display joined by ",").
std::string RawToString(const Value& v);

struct JsonOptions {
  int indent = 0;  // 0: none
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_separators = false;
  std::string item_sep, key_sep;
};
// The reference's toJSON(): `tojson`, and how arrays and objects print.
std::string ToJson(const Value& v, const JsonOptions& opts, int depth = 0, bool undefined_to_null = true);

// JS Number.prototype.toString (shortest round trip, exponent above 1e21 and below 1e-6).
std::string JsNumberToString(double x);
// JS JSON.stringify of a string.
std::string JsonQuote(std::string_view s);

// JS `a == b` (loose) and `a === b` (strict) applied to the reference's `.value` fields.
bool LooseEquals(const Value& a, const Value& b);
bool StrictEquals(const Value& a, const Value& b);
// The reference's compareRuntimeValues (sort, dictsort): throws Error on mixed types.
int CompareValues(const Value& a, const Value& b, bool case_sensitive);

// JS string helpers over UTF-8 text (JS strings are UTF-16; these keep the results identical for
// any valid UTF-8 input).
size_t Utf16Length(std::string_view s);
size_t JsSpaceAt(std::string_view s, size_t pos);       // bytes of a JS \s char at pos, else 0
size_t JsSpaceBefore(std::string_view s, size_t end);   // bytes of a JS \s char ending at end, else 0
std::string JsTrim(std::string_view s, bool start, bool end);
std::string JsToUpper(std::string_view s);
std::string JsToLower(std::string_view s);
std::vector<std::string> CodePoints(std::string_view s);  // Array.from(str)
double JsStringToNumber(std::string_view s);             // Number(str)
double JsParseInt(std::string_view s);                   // parseInt(str, 10) (NaN when none)
double JsParseFloat(std::string_view s);                 // parseFloat(str)

}  // namespace origami::jinja
