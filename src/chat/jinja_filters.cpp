// Filters (`x | tojson`, `x | join(", ")`, ...), attribute access and the built-in methods of
// strings and objects (`s.strip()`, `d.items()`, ...), with exactly the set and the behaviour that
// @huggingface/jinja implements: what it rejects, origami rejects too.
#include <algorithm>
#include <cmath>

#include "chat/jinja_interp.h"
#include "util/error.h"

namespace origami::jinja {
namespace {

// JS truthiness of a runtime value's raw `.value` (arrays and maps are objects: always true).
bool RawTruthy(const Value& v) {
  if (v.IsArrayLike() || v.IsAttrContainer() || v.kind == Kind::kFunction) return true;
  return Truthy(v);
}

// Array.prototype.join over the raw values: null and undefined become "".
std::string JoinRaw(const std::vector<Value>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    if (!items[i].IsNull() && !items[i].IsUndefined()) out += RawToString(items[i]);
  }
  return out;
}

std::string TitleCase(const std::string& s) {
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::string out = s;
  for (size_t i = 0; i < s.size(); ++i) {
    if (word(s[i]) && (i == 0 || !word(s[i - 1]))) out[i] = static_cast<char>(std::toupper(s[i]));
  }
  return out;
}

std::string Capitalize(const std::string& s) {
  if (s.empty()) return s;
  std::vector<std::string> cps = CodePoints(s);
  return JsToUpper(cps[0]) + s.substr(cps[0].size());
}

// String.prototype.at over UTF-16 units (a unit inside a surrogate pair yields the whole char).
Value StringAt(const std::string& s, double index) {
  std::vector<std::string> cps = CodePoints(s);
  std::vector<size_t> unit_to_cp;
  for (size_t i = 0; i < cps.size(); ++i) {
    unit_to_cp.push_back(i);
    if (cps[i].size() == 4) unit_to_cp.push_back(i);
  }
  double n = static_cast<double>(unit_to_cp.size());
  double i = std::trunc(index);
  if (i < 0) i += n;
  if (i < 0 || i >= n) return Value::Undefined();
  return Value::Str(cps[unit_to_cp[static_cast<size_t>(i)]]);
}

std::string Indent(const std::string& s, size_t width, bool first, bool blank) {
  std::string pad(width, ' '), out;
  size_t start = 0, line = 0;
  while (true) {
    size_t nl = s.find('\n', start);
    std::string x = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (line > 0) out += '\n';
    out += ((!first && line == 0) || (!blank && x.empty())) ? x : pad + x;
    if (nl == std::string::npos) break;
    start = nl + 1;
    ++line;
  }
  return out;
}

// The reference's replace(): count null or negative means all; an empty needle matches at every
// code point boundary.
std::string Replace(const std::string& s, const std::string& from, const std::string& to, double count) {
  if (count == 0) return s;
  double remaining = count < 0 ? INFINITY : count;
  std::string out;
  if (from.empty()) {
    for (const std::string& cp : CodePoints(s)) {
      if (remaining > 0) {
        out += to;
        --remaining;
      }
      out += cp;
    }
    if (remaining > 0) out += to;
    return out;
  }
  size_t pos = 0;
  while (true) {
    size_t hit = remaining > 0 ? s.find(from, pos) : std::string::npos;
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
    --remaining;
  }
  out.append(s, pos);
  return out;
}

Value PairsOf(const Value& o) {
  std::vector<Value> items;
  for (const auto& [k, v] : o.obj->entries()) items.push_back(Value::Array({Value::Str(k), v}));
  return Value::Array(std::move(items));
}

// getAttributeValue: a dotted path through objects and array indices.
Value AttributePath(const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (v.IsAttrContainer()) {
      const Value* x = v.obj->Find(part);
      v = x ? *x : Value::Undefined();
    } else if (v.IsArrayLike()) {
      double idx = JsParseInt(part);
      if (std::isnan(idx) || idx < 0 || idx >= static_cast<double>(v.arr->size())) return Value::Undefined();
      v = (*v.arr)[static_cast<size_t>(idx)];
    } else {
      return Value::Undefined();
    }
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

// Positional argument i, else keyword `name`, else null.
const Value* ArgOr(const std::vector<Value>& args, size_t i, const ObjectMap& kw, const char* name) {
  if (i < args.size()) return &args[i];
  return kw.Find(name);
}

}  // namespace

Value Interpreter::StringMethod(const Value& s, const std::string& name) {
  if (name == "length") return Value::Int(static_cast<double>(Utf16Length(s.str)));
  std::string str = s.str;
  auto fn = [](auto f) { return Value::Fn(std::move(f)); };
  if (name == "upper") return fn([str](std::vector<Value>&, const EnvPtr&) { return Value::Str(JsToUpper(str)); });
  if (name == "lower") return fn([str](std::vector<Value>&, const EnvPtr&) { return Value::Str(JsToLower(str)); });
  if (name == "strip") return fn([str](std::vector<Value>&, const EnvPtr&) { return Value::Str(JsTrim(str, true, true)); });
  if (name == "lstrip") return fn([str](std::vector<Value>&, const EnvPtr&) { return Value::Str(JsTrim(str, true, false)); });
  if (name == "rstrip") return fn([str](std::vector<Value>&, const EnvPtr&) { return Value::Str(JsTrim(str, false, true)); });
  if (name == "title") return fn([str](std::vector<Value>&, const EnvPtr&) { return Value::Str(TitleCase(str)); });
  if (name == "capitalize") return fn([str](std::vector<Value>&, const EnvPtr&) { return Value::Str(Capitalize(str)); });
  if (name == "startswith" || name == "endswith") {
    bool starts = name == "startswith";
    return fn([str, starts, name](std::vector<Value>& args, const EnvPtr&) {
      if (args.empty()) Fail("{}() requires at least one argument", name);
      auto test = [&](const std::string& p) {
        if (p.size() > str.size()) return false;
        return starts ? str.compare(0, p.size(), p) == 0 : str.compare(str.size() - p.size(), p.size(), p) == 0;
      };
      if (args[0].IsString()) return Value::Bool(test(args[0].str));
      if (args[0].IsArrayLike()) {
        for (const Value& x : *args[0].arr) {
          if (!x.IsString()) Fail("{}() tuple elements must be strings", name);
          if (test(x.str)) return Value::Bool(true);
        }
        return Value::Bool(false);
      }
      Fail("{}() argument must be a string or tuple of strings", name);
    });
  }
  if (name == "split") {
    return fn([str](std::vector<Value>& args, const EnvPtr&) {
      Value sep = args.size() > 0 ? args[0] : Value::Null();
      if (!sep.IsString() && !sep.IsNull()) Fail("sep argument must be a string or null");
      Value maxsplit = args.size() > 1 ? args[1] : Value::Int(-1);
      if (maxsplit.kind != Kind::kInt) Fail("maxsplit argument must be a number");
      std::vector<Value> out;
      if (sep.IsNull()) {
        std::string text = JsTrim(str, true, false);
        size_t i = 0;
        while (i < text.size()) {
          while (size_t n = JsSpaceAt(text, i)) i += n;
          if (i >= text.size()) break;
          size_t j = i;
          while (j < text.size() && !JsSpaceAt(text, j)) ++j;
          if (maxsplit.num != -1 && static_cast<double>(out.size()) >= maxsplit.num) {
            out.push_back(Value::Str(text.substr(i)));
            break;
          }
          out.push_back(Value::Str(text.substr(i, j - i)));
          i = j;
        }
      } else {
        if (sep.str.empty()) Fail("empty separator");
        std::vector<std::string> parts;
        size_t pos = 0;
        while (true) {
          size_t hit = str.find(sep.str, pos);
          if (hit == std::string::npos) break;
          parts.push_back(str.substr(pos, hit - pos));
          pos = hit + sep.str.size();
        }
        parts.push_back(str.substr(pos));
        if (maxsplit.num != -1 && static_cast<double>(parts.size()) > maxsplit.num) {
          size_t keep = static_cast<size_t>(std::max(0.0, maxsplit.num));
          std::string rest;
          for (size_t i = keep; i < parts.size(); ++i) rest += (i > keep ? sep.str : "") + parts[i];
          parts.resize(keep);
          parts.push_back(rest);
        }
        for (auto& p : parts) out.push_back(Value::Str(std::move(p)));
      }
      return Value::Array(std::move(out));
    });
  }
  if (name == "replace") {
    return fn([this, str](std::vector<Value>& args, const EnvPtr&) {
      if (args.size() < 2) Fail("replace() requires at least two arguments");
      if (!args[0].IsString() || !args[1].IsString()) Fail("replace() arguments must be strings");
      Value count = Value::Null();
      if (args.size() > 2) {
        if (args[2].kind == Kind::kKwArgs) {
          const Value* c = args[2].obj->Find("count");
          if (c) count = *c;
        } else {
          count = args[2];
        }
      }
      if (count.kind != Kind::kInt && !count.IsNull()) Fail("replace() count argument must be a number or null");
      std::string r = Replace(str, args[0].str, args[1].str, count.IsNull() ? -1 : count.num);
      CheckSize(r.size());
      return Value::Str(std::move(r));
    });
  }
  return Value::Undefined();
}

Value Interpreter::ObjectMethod(const Value& o, const std::string& name) {
  auto obj = o.obj;
  auto fn = [](auto f) { return Value::Fn(std::move(f)); };
  if (name == "get") {
    return fn([obj](std::vector<Value>& args, const EnvPtr&) {
      if (args.empty() || !args[0].IsString()) {
        Fail("Object key must be a string: got {}", args.empty() ? "undefined" : TypeName(args[0]));
      }
      if (const Value* v = obj->Find(args[0].str)) return *v;
      return args.size() > 1 ? args[1] : Value::Null();
    });
  }
  if (name == "items") return fn([o](std::vector<Value>&, const EnvPtr&) { return PairsOf(o); });
  if (name == "keys") {
    return fn([obj](std::vector<Value>&, const EnvPtr&) {
      std::vector<Value> out;
      for (const auto& [k, v] : obj->entries()) out.push_back(Value::Str(k));
      return Value::Array(std::move(out));
    });
  }
  if (name == "values") {
    return fn([obj](std::vector<Value>&, const EnvPtr&) {
      std::vector<Value> out;
      for (const auto& [k, v] : obj->entries()) out.push_back(v);
      return Value::Array(std::move(out));
    });
  }
  if (name == "dictsort") {
    return fn([o](std::vector<Value>& args, const EnvPtr&) {
      ObjectMap kw;
      std::vector<Value> pos;
      for (const Value& a : args) {
        if (a.kind == Kind::kKwArgs) {
          kw = *a.obj;
        } else {
          pos.push_back(a);
        }
      }
      const Value* cs = ArgOr(pos, 0, kw, "case_sensitive");
      if (cs && cs->kind != Kind::kBool) Fail("case_sensitive must be a boolean");
      const Value* by = ArgOr(pos, 1, kw, "by");
      if (by && !by->IsString()) Fail("by must be a string");
      if (by && by->str != "key" && by->str != "value") Fail("by must be either 'key' or 'value'");
      const Value* rev = ArgOr(pos, 2, kw, "reverse");
      if (rev && rev->kind != Kind::kBool) Fail("reverse must be a boolean");
      size_t index = (by && by->str == "value") ? 1 : 0;
      bool case_sensitive = cs && cs->b, reverse = rev && rev->b;
      std::vector<Value> items = *PairsOf(o).arr;
      std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
        int r = CompareValues((*a.arr)[index], (*b.arr)[index], case_sensitive);
        return (reverse ? -r : r) < 0;
      });
      return Value::Array(std::move(items));
    });
  }
  return Value::Undefined();
}

Value Interpreter::Attribute(const Value& object, const Value& property) {
  if (object.IsAttrContainer()) {
    if (!property.IsString()) Fail("Cannot access property with non-string: got {}", TypeName(property));
    if (const Value* v = object.obj->Find(property.str)) return *v;
    return object.IsObjectLike() ? ObjectMethod(object, property.str) : Value::Undefined();
  }
  if (object.IsArrayLike() || object.IsString()) {
    if (property.kind == Kind::kInt) {
      if (object.IsString()) return StringAt(object.str, property.num);
      double n = static_cast<double>(object.arr->size());
      double i = std::trunc(property.num);
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::Undefined();
      return (*object.arr)[static_cast<size_t>(i)];
    }
    if (property.IsString()) {
      if (object.IsString()) return StringMethod(object, property.str);
      if (property.str == "length") return Value::Int(static_cast<double>(object.arr->size()));
      return Value::Undefined();
    }
    Fail("Cannot access property with non-string/non-number: got {}", TypeName(property));
  }
  if (!property.IsString()) Fail("Cannot access property with non-string: got {}", TypeName(property));
  return Value::Undefined();
}

Value Interpreter::ApplyFilter(const Value& operand, const Node& filter, const EnvPtr& env) {
  if (filter.kind == NodeKind::kIdent) {
    const std::string& f = filter.str;
    if (f == "safe") return operand;
    if (f == "tojson") {
      std::string s = ToJson(operand, {});
      CheckSize(s.size());
      return Value::Str(std::move(s));
    }
    if (operand.IsArrayLike()) {
      const auto& a = *operand.arr;
      if (f == "list") return operand;
      if (f == "first") return a.empty() ? Value::Undefined() : a.front();
      if (f == "last") return a.empty() ? Value::Undefined() : a.back();
      if (f == "length") return Value::Int(static_cast<double>(a.size()));
      if (f == "reverse") return Value::Array(std::vector<Value>(a.rbegin(), a.rend()));
      if (f == "sort") {
        std::vector<Value> items = a;
        std::stable_sort(items.begin(), items.end(),
                         [](const Value& x, const Value& y) { return CompareValues(x, y, false) < 0; });
        return Value::Array(std::move(items));
      }
      if (f == "join") return Value::Str(JoinRaw(a, ""));
      if (f == "string") return Value::Str(ToJson(operand, {}, 0, false));
      if (f == "unique") {
        std::vector<Value> out;
        for (const Value& x : a) {
          bool seen = false;
          for (const Value& y : out) {
            if (StrictEquals(x, y) || (x.IsNumber() && y.IsNumber() && std::isnan(x.num) && std::isnan(y.num))) {
              seen = true;
              break;
            }
          }
          if (!seen) out.push_back(x);
          Step(out.size());
        }
        return Value::Array(std::move(out));
      }
      Fail("Unknown ArrayValue filter: {}", f);
    }
    if (operand.IsString()) {
      const std::string& s = operand.str;
      if (f == "length") return Value::Int(static_cast<double>(Utf16Length(s)));
      if (f == "upper") return Value::Str(JsToUpper(s));
      if (f == "lower") return Value::Str(JsToLower(s));
      if (f == "title") return Value::Str(TitleCase(s));
      if (f == "capitalize") return Value::Str(Capitalize(s));
      if (f == "trim") return Value::Str(JsTrim(s, true, true));
      if (f == "indent") return Value::Str(Indent(s, 4, false, false));
      if (f == "join" || f == "string") return operand;
      if (f == "int") {
        double v = JsParseInt(s);
        return Value::Int(std::isnan(v) ? 0 : v);
      }
      if (f == "float") {
        double v = JsParseFloat(s);
        return Value::Float(std::isnan(v) ? 0 : v);
      }
      Fail("Unknown StringValue filter: {}", f);
    }
    if (operand.IsNumber()) {
      if (f == "abs") return operand.kind == Kind::kInt ? Value::Int(std::fabs(operand.num)) : Value::Float(std::fabs(operand.num));
      if (f == "int") return Value::Int(std::floor(operand.num));
      if (f == "float") return Value::Float(operand.num);
      if (f == "string") return Value::Str(ToDisplay(operand));
      Fail("Unknown NumericValue filter: {}", f);
    }
    if (operand.IsObjectLike()) {
      if (f == "items") return PairsOf(operand);
      if (f == "length") return Value::Int(static_cast<double>(operand.obj->size()));
      Value m = ObjectMethod(operand, f);
      if (m.kind == Kind::kFunction) {
        std::vector<Value> no_args;
        return (*m.fn)(no_args, env);
      }
      Fail("Unknown ObjectValue filter: {}", f);
    }
    if (operand.kind == Kind::kBool) {
      if (f == "bool") return operand;
      if (f == "int") return Value::Int(operand.b ? 1 : 0);
      if (f == "float") return Value::Float(operand.b ? 1 : 0);
      if (f == "string") return Value::Str(operand.b ? "true" : "false");
      Fail("Unknown BooleanValue filter: {}", f);
    }
    Fail("Cannot apply filter \"{}\" to type: {}", f, TypeName(operand));
  }
  if (filter.kind != NodeKind::kCall || filter.x->kind != NodeKind::kIdent) Fail("Unknown filter");
  const std::string& f = filter.x->str;
  std::vector<Value> args;
  ObjectMap kw;
  auto eval_args = [&] { EvalArguments(filter.a, env, &args, &kw); };
  if (f == "tojson") {
    eval_args();
    JsonOptions o;
    const Value* indent = kw.Find("indent");
    if (indent && indent->kind != Kind::kInt && !indent->IsNull()) Fail("If set, indent must be a number");
    if (indent && indent->kind == Kind::kInt) {
      if (indent->num < 0 || indent->num > 64) Fail("tojson indent out of range");
      o.indent = static_cast<int>(indent->num);
    }
    const Value* ascii = kw.Find("ensure_ascii");
    if (ascii && ascii->kind != Kind::kBool) Fail("If set, ensure_ascii must be a boolean");
    o.ensure_ascii = ascii && ascii->b;
    const Value* sort = kw.Find("sort_keys");
    if (sort && sort->kind != Kind::kBool) Fail("If set, sort_keys must be a boolean");
    o.sort_keys = sort && sort->b;
    const Value* seps = kw.Find("separators");
    if (seps && seps->IsArrayLike()) {
      if (seps->arr->size() != 2 || !(*seps->arr)[0].IsString() || !(*seps->arr)[1].IsString()) {
        Fail("separators must be a tuple of two strings");
      }
      o.has_separators = true;
      o.item_sep = (*seps->arr)[0].str;
      o.key_sep = (*seps->arr)[1].str;
    } else if (seps && !seps->IsNull()) {
      Fail("If set, separators must be a tuple of two strings");
    }
    std::string s = ToJson(operand, o);
    CheckSize(s.size());
    return Value::Str(std::move(s));
  }
  if (f == "join") {
    std::vector<Value> items;
    if (operand.IsString()) {
      for (auto& c : CodePoints(operand.str)) items.push_back(Value::Str(std::move(c)));
    } else if (operand.IsArrayLike()) {
      items = *operand.arr;
    } else {
      Fail("Cannot apply filter \"{}\" to type: {}", f, TypeName(operand));
    }
    eval_args();
    const Value* sep = ArgOr(args, 0, kw, "separator");
    if (sep && !sep->IsString()) Fail("separator must be a string");
    std::string s = JoinRaw(items, sep ? sep->str : "");
    CheckSize(s.size());
    return Value::Str(std::move(s));
  }
  if (f == "int" || f == "float") {
    eval_args();
    bool is_int = f == "int";
    const Value* dflt = ArgOr(args, 0, kw, "default");
    Value def = dflt ? *dflt : (is_int ? Value::Int(0) : Value::Float(0));
    if (operand.IsString()) {
      double v = is_int ? JsParseInt(operand.str) : JsParseFloat(operand.str);
      if (std::isnan(v)) return def;
      return is_int ? Value::Int(v) : Value::Float(v);
    }
    if (operand.IsNumber()) return operand;
    if (operand.kind == Kind::kBool) return is_int ? Value::Int(operand.b) : Value::Float(operand.b);
    Fail("Cannot apply filter \"{}\" to type: {}", f, TypeName(operand));
  }
  if (f == "default") {
    eval_args();
    Value def = args.size() > 0 ? args[0] : Value::Str("");
    const Value* boolean = ArgOr(args, 1, kw, "boolean");
    if (boolean && boolean->kind != Kind::kBool) Fail("`default` filter flag must be a boolean");
    if (operand.IsUndefined() || (boolean && boolean->b && !Truthy(operand))) return def;
    return operand;
  }
  if (operand.IsArrayLike()) {
    const auto& a = *operand.arr;
    if (f == "sort") {
      eval_args();
      const Value* rev = ArgOr(args, 0, kw, "reverse");
      if (rev && rev->kind != Kind::kBool) Fail("reverse must be a boolean");
      const Value* cs = ArgOr(args, 1, kw, "case_sensitive");
      if (cs && cs->kind != Kind::kBool) Fail("case_sensitive must be a boolean");
      const Value* attr = ArgOr(args, 2, kw, "attribute");
      if (attr && !attr->IsString() && attr->kind != Kind::kInt && !attr->IsNull()) {
        Fail("attribute must be a string, integer, or null");
      }
      bool reverse = rev && rev->b, case_sensitive = cs && cs->b;
      auto key = [&](const Value& v) {
        if (!attr || attr->IsNull()) return v;
        return AttributePath(v, attr->IsString() ? attr->str : JsNumberToString(attr->num));
      };
      std::vector<Value> items = a;
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        int r = CompareValues(key(x), key(y), case_sensitive);
        return (reverse ? -r : r) < 0;
      });
      return Value::Array(std::move(items));
    }
    if (f == "selectattr" || f == "rejectattr") {
      bool select = f == "selectattr";
      for (const Value& item : a) {
        if (!item.IsAttrContainer()) Fail("`{}` can only be applied to array of objects", f);
      }
      for (const NodePtr& x : filter.a) {
        if (x->kind != NodeKind::kString) Fail("arguments of `{}` must be strings", f);
      }
      std::vector<std::string> sargs;
      for (const NodePtr& x : filter.a) sargs.push_back(x->str);
      if (sargs.empty()) Fail("`{}` needs an attribute name", f);
      std::optional<Value> value;
      if (sargs.size() > 2) value = Value::Str(sargs[2]);
      std::vector<Value> out;
      for (const Value& item : a) {
        Step();
        const Value* attr = item.obj->Find(sargs[0]);
        bool result = false;
        if (attr) result = sargs.size() > 1 ? ApplyTest(sargs[1], *attr, value ? &*value : nullptr) : Truthy(*attr);
        if (result == select) out.push_back(item);
      }
      return Value::Array(std::move(out));
    }
    if (f == "map") {
      eval_args();
      const Value* attr = kw.Find("attribute");
      if (!attr) Fail("`map` expressions without `attribute` set are not currently supported.");
      if (!attr->IsString()) Fail("attribute must be a string");
      const Value* dflt = kw.Find("default");
      std::vector<Value> out;
      for (const Value& item : a) {
        Step();
        if (!item.IsAttrContainer()) Fail("items in map must be an object");
        Value v = AttributePath(item, attr->str);
        out.push_back(v.IsUndefined() && dflt ? *dflt : v);
      }
      return Value::Array(std::move(out));
    }
    Fail("Unknown ArrayValue filter: {}", f);
  }
  if (operand.IsString()) {
    if (f == "indent") {
      eval_args();
      const Value* width = ArgOr(args, 0, kw, "width");
      if (width && width->kind != Kind::kInt) Fail("width must be a number");
      double w = width ? width->num : 4;
      if (w < 0 || w > 1024) Fail("indent width out of range");
      const Value* first = ArgOr(args, 1, kw, "first");
      const Value* blank = ArgOr(args, 2, kw, "blank");
      std::string s = Indent(operand.str, static_cast<size_t>(w), first && RawTruthy(*first), blank && RawTruthy(*blank));
      CheckSize(s.size());
      return Value::Str(std::move(s));
    }
    if (f == "replace") {
      eval_args();
      args.push_back(Value::Object(kw, Kind::kKwArgs));  // the reference always passes them
      Value m = StringMethod(operand, "replace");
      return (*m.fn)(args, env);
    }
    Fail("Unknown StringValue filter: {}", f);
  }
  if (operand.IsObjectLike()) {
    Value m = ObjectMethod(operand, f);
    if (m.kind == Kind::kFunction) {
      eval_args();
      if (kw.size() > 0) args.push_back(Value::Object(kw, Kind::kKwArgs));
      return (*m.fn)(args, env);
    }
    Fail("Unknown ObjectValue filter: {}", f);
  }
  Fail("Cannot apply filter \"{}\" to type: {}", f, TypeName(operand));
}

}  // namespace origami::jinja
