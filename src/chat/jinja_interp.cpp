// Statement and expression evaluation of the chat-template interpreter, mirroring
// @huggingface/jinja's Interpreter (scoping, loops, macros, call blocks, operators) and enforcing
// the step, depth and output-size limits.
#include "chat/jinja_interp.h"

#include <cmath>
#include <ctime>

#include "util/error.h"

namespace origami::jinja {
namespace {

struct BreakSignal {};
struct ContinueSignal {};

struct DepthGuard {
  DepthGuard(int* counter, int limit) : counter(counter) {
    if (++*counter > limit) {
      --*counter;
      Fail("template recursion depth limit exceeded ({} levels)", limit);
    }
  }
  ~DepthGuard() { --*counter; }
  int* counter;
};

bool NumericLike(const Value& v) { return v.IsNumber() || v.kind == Kind::kBool; }
double NumericValue(const Value& v) { return v.kind == Kind::kBool ? (v.b ? 1 : 0) : v.num; }

}  // namespace

Value Env::Lookup(const std::string& name) const {
  for (const Env* e = this; e; e = e->parent_.get()) {
    auto it = e->vars_.find(name);
    if (it != e->vars_.end()) return it->second;
  }
  return Value::Undefined();
}

void Interpreter::Step(uint64_t n) {
  steps_ += n;
  if (steps_ > limits_.max_steps) Fail("template step limit exceeded ({} steps)", limits_.max_steps);
}

void Interpreter::CheckSize(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    Fail("template output size limit exceeded ({} bytes)", limits_.max_output_bytes);
  }
}

void Interpreter::CheckItems(size_t items) const {
  // Lists count against the size limit at the size of their items, so a template cannot exhaust
  // memory by doubling a list faster than the step limit stops it.
  if (items > limits_.max_output_bytes / sizeof(Value)) {
    Fail("template output size limit exceeded ({} bytes; a list of {} items)", limits_.max_output_bytes, items);
  }
}

std::string Interpreter::Strftime(const std::string& format) const {
  std::tm tm{};
  if (now_unix_) {
    std::time_t t = static_cast<std::time_t>(*now_unix_);
    gmtime_r(&t, &tm);
  } else {
    std::time_t t = std::time(nullptr);
    localtime_r(&t, &tm);
  }
  static const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                  "July",    "August",   "September", "October", "November", "December"};
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out += format[i];
      continue;
    }
    char c = format[i + 1];
    switch (c) {
      case 'Y': out += std::to_string(tm.tm_year + 1900); break;
      case 'm': out += fmt::format("{:02}", tm.tm_mon + 1); break;
      case 'd': out += fmt::format("{:02}", tm.tm_mday); break;
      case 'b': out += std::string(kMonths[tm.tm_mon]).substr(0, 3); break;
      case 'B': out += kMonths[tm.tm_mon]; break;
      case 'H': out += fmt::format("{:02}", tm.tm_hour); break;
      case 'M': out += fmt::format("{:02}", tm.tm_min); break;
      case '%': out += '%'; break;
      default: out += '%'; out += c; break;
    }
    ++i;
  }
  return out;
}

EnvPtr Interpreter::MakeGlobals() {
  auto env = std::make_shared<Env>(nullptr);
  env->Set("false", Value::Bool(false));
  env->Set("true", Value::Bool(true));
  env->Set("none", Value::Null());
  env->Set("False", Value::Bool(false));
  env->Set("True", Value::Bool(true));
  env->Set("None", Value::Null());
  env->Set("raise_exception", Value::Fn([](std::vector<Value>& args, const EnvPtr&) -> Value {
    throw Error(args.empty() ? std::string("raise_exception called") : RawToString(args[0]));
  }));
  env->Set("range", Value::Fn([this](std::vector<Value>& args, const EnvPtr&) -> Value {
    if (args.empty() || args.size() > 3) Fail("range() expects 1 to 3 arguments");
    for (const Value& a : args) {
      if (!a.IsNumber()) Fail("range() arguments must be numbers, got {}", TypeName(a));
    }
    double start = 0, stop = args[0].num, step = 1;
    if (args.size() >= 2) {
      start = args[0].num;
      stop = args[1].num;
    }
    if (args.size() == 3) step = args[2].num;
    if (step == 0) Fail("range() step must not be zero");
    double count = std::ceil((stop - start) / step);
    if (count > 0) {
      Step(static_cast<uint64_t>(std::min(count, 1e18)));
      CheckItems(static_cast<size_t>(count));
    }
    std::vector<Value> out;
    if (step > 0) {
      for (double i = start; i < stop; i += step) out.push_back(std::floor(i) == i ? Value::Int(i) : Value::Float(i));
    } else {
      for (double i = start; i > stop; i += step) out.push_back(std::floor(i) == i ? Value::Int(i) : Value::Float(i));
    }
    return Value::Array(std::move(out));
  }));
  env->Set("strftime_now", Value::Fn([this](std::vector<Value>& args, const EnvPtr&) -> Value {
    if (args.empty() || !args[0].IsString()) Fail("strftime_now() expects a format string");
    return Value::Str(Strftime(args[0].str));
  }));
  env->Set("namespace", Value::Fn([](std::vector<Value>& args, const EnvPtr&) -> Value {
    std::vector<Value> positional = args;
    std::shared_ptr<ObjectMap> kwargs;
    if (!positional.empty() && positional.back().kind == Kind::kKwArgs) {
      kwargs = positional.back().obj;
      positional.pop_back();
    }
    if (positional.size() > 1) Fail("namespace expected at most 1 argument, got {}", positional.size());
    ObjectMap entries;
    if (positional.size() == 1) {
      const Value& src = positional[0];
      if (src.IsObjectLike()) {
        for (const auto& [k, v] : src.obj->entries()) entries.Set(k, v);
      } else if (src.IsArrayLike()) {
        for (const Value& pair : *src.arr) {
          std::vector<Value> kv;
          if (pair.IsArrayLike()) kv = *pair.arr;
          if (pair.IsString()) {
            for (auto& c : CodePoints(pair.str)) kv.push_back(Value::Str(c));
          }
          if (kv.size() != 2) Fail("namespace expected an object or an iterable of [key, value] pairs");
          if (!kv[0].IsString()) Fail("namespace keys must be strings");
          entries.Set(kv[0].str, kv[1]);
        }
      } else {
        Fail("'{}' object is not iterable", TypeName(src));
      }
    }
    if (kwargs) {
      for (const auto& [k, v] : kwargs->entries()) entries.Set(k, v);
    }
    return Value::Object(std::move(entries), Kind::kNamespace);
  }));
  return env;
}

std::string Interpreter::Run(const std::vector<NodePtr>& program, const EnvPtr& env) {
  try {
    return EvalBlock(program, env);
  } catch (const BreakSignal&) {
    Fail("{{% break %}} outside of a loop");
  } catch (const ContinueSignal&) {
    Fail("{{% continue %}} outside of a loop");
  }
}

std::string Interpreter::EvalBlock(const std::vector<NodePtr>& body, const EnvPtr& env) {
  std::string out;
  for (const NodePtr& stmt : body) {
    Value v = Eval(*stmt, env);
    if (v.IsNull() || v.IsUndefined()) continue;
    if (v.IsString()) {
      out += v.str;
    } else {
      out += ToDisplay(v);
    }
    CheckSize(out.size());
  }
  return out;
}

Value Interpreter::Eval(const Node& n, const EnvPtr& env) {
  Step();
  DepthGuard guard(&eval_depth_, kMaxEvalDepth);
  switch (n.kind) {
    case NodeKind::kIf: {
      bool test = Truthy(Eval(*n.x, env));
      return Value::Str(EvalBlock(test ? n.a : n.b, env));
    }
    case NodeKind::kFor: return EvalFor(n, env);
    case NodeKind::kBreak: throw BreakSignal{};
    case NodeKind::kContinue: throw ContinueSignal{};
    case NodeKind::kSet: return EvalSet(n, env);
    case NodeKind::kMacro: env->Set(n.str, MakeMacro(n)); return Value::Null();
    case NodeKind::kCallBlock: return EvalCallBlock(n, env);
    case NodeKind::kFilterBlock: return ApplyFilter(Value::Str(EvalBlock(n.a, env)), *n.x, env);
    case NodeKind::kComment: return Value::Null();
    case NodeKind::kInt: return Value::Int(n.num);
    case NodeKind::kFloat: return Value::Float(n.num);
    case NodeKind::kString: return Value::Str(n.str);
    case NodeKind::kIdent: return env->Lookup(n.str);
    case NodeKind::kArray:
    case NodeKind::kTuple: {
      std::vector<Value> items;
      for (const NodePtr& c : n.a) items.push_back(Eval(*c, env));
      return Value::Array(std::move(items), n.kind == NodeKind::kArray ? Kind::kArray : Kind::kTuple);
    }
    case NodeKind::kObject: {
      ObjectMap m;
      for (size_t i = 0; i < n.a.size(); ++i) {
        Value key = Eval(*n.a[i], env);
        if (!key.IsString()) Fail("Object keys must be strings: got {}", TypeName(key));
        m.Set(key.str, Eval(*n.b[i], env));
      }
      return Value::Object(std::move(m));
    }
    case NodeKind::kMember: return EvalMember(n, env);
    case NodeKind::kCall: return EvalCall(n, env);
    case NodeKind::kUnaryOp: return EvalUnary(n, env);
    case NodeKind::kBinary: return EvalBinary(n, env);
    case NodeKind::kFilter: return ApplyFilter(Eval(*n.x, env), *n.y, env);
    case NodeKind::kTest: return EvalTest(n, env);
    case NodeKind::kSelect: {
      if (!Truthy(Eval(*n.y, env))) return Value::Undefined();
      return Eval(*n.x, env);
    }
    case NodeKind::kTernary: return Truthy(Eval(*n.x, env)) ? Eval(*n.y, env) : Eval(*n.z, env);
    case NodeKind::kSlice:
    case NodeKind::kKwArg:
    case NodeKind::kSpread:
    case NodeKind::kKwSpread: Fail("unexpected expression at offset {}", n.offset);
  }
  Fail("unknown node at offset {}", n.offset);
}

Value Interpreter::EvalFor(const Node& n, const EnvPtr& env) {
  auto scope = std::make_shared<Env>(env);
  const Node* test = nullptr;
  Value iterable;
  if (n.y->kind == NodeKind::kSelect) {
    iterable = Eval(*n.y->x, scope);
    test = n.y->y.get();
  } else {
    iterable = Eval(*n.y, scope);
  }
  std::vector<Value> source;
  if (iterable.IsArrayLike()) {
    source = *iterable.arr;
  } else if (iterable.IsObjectLike()) {
    for (const auto& [k, v] : iterable.obj->entries()) source.push_back(Value::Str(k));
  } else {
    Fail("Expected iterable or object type in for loop: got {}", TypeName(iterable));
  }
  const Node& var = *n.x;
  auto bind = [&](const EnvPtr& s, const Value& current) {
    if (var.kind == NodeKind::kIdent) {
      s->Set(var.str, current);
      return;
    }
    if (current.kind != Kind::kArray) Fail("Cannot unpack non-iterable type: {}", TypeName(current));
    if (var.a.size() != current.arr->size()) {
      Fail("Too {} items to unpack", var.a.size() > current.arr->size() ? "few" : "many");
    }
    for (size_t j = 0; j < var.a.size(); ++j) {
      if (var.a[j]->kind != NodeKind::kIdent) Fail("Cannot unpack non-identifier type");
      s->Set(var.a[j]->str, (*current.arr)[j]);
    }
  };
  std::vector<Value> items;
  for (const Value& current : source) {
    Step();
    if (test) {
      auto loop_scope = std::make_shared<Env>(scope);
      bind(loop_scope, current);
      if (!Truthy(Eval(*test, loop_scope))) continue;
    } else if (var.kind != NodeKind::kIdent) {
      // The reference checks unpacking while collecting the items.
      if (current.kind != Kind::kArray) Fail("Cannot unpack non-iterable type: {}", TypeName(current));
      if (var.a.size() != current.arr->size()) {
        Fail("Too {} items to unpack", var.a.size() > current.arr->size() ? "few" : "many");
      }
    }
    items.push_back(current);
  }
  std::string result;
  bool no_iteration = true;
  const double len = static_cast<double>(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    Step();
    ObjectMap loop;
    double d = static_cast<double>(i);
    loop.Set("index", Value::Int(d + 1));
    loop.Set("index0", Value::Int(d));
    loop.Set("revindex", Value::Int(len - d));
    loop.Set("revindex0", Value::Int(len - d - 1));
    loop.Set("first", Value::Bool(i == 0));
    loop.Set("last", Value::Bool(i + 1 == items.size()));
    loop.Set("length", Value::Int(len));
    loop.Set("previtem", i > 0 ? items[i - 1] : Value::Undefined());
    loop.Set("nextitem", i + 1 < items.size() ? items[i + 1] : Value::Undefined());
    scope->Set("loop", Value::Object(std::move(loop)));
    bind(scope, items[i]);
    try {
      result += EvalBlock(n.a, scope);
      CheckSize(result.size());
    } catch (const ContinueSignal&) {
      continue;
    } catch (const BreakSignal&) {
      break;
    }
    no_iteration = false;
  }
  if (no_iteration) {
    result += EvalBlock(n.b, scope);
    CheckSize(result.size());
  }
  return Value::Str(std::move(result));
}

Value Interpreter::EvalSet(const Node& n, const EnvPtr& env) {
  Value rhs = n.y ? Eval(*n.y, env) : Value::Str(EvalBlock(n.a, env));
  const Node& target = *n.x;
  if (target.kind == NodeKind::kIdent) {
    env->Set(target.str, std::move(rhs));
  } else if (target.kind == NodeKind::kTuple) {
    if (!rhs.IsArrayLike()) Fail("Cannot unpack non-iterable type in set: {}", TypeName(rhs));
    if (rhs.arr->size() != target.a.size()) {
      Fail("Too {} items to unpack in set", target.a.size() > rhs.arr->size() ? "few" : "many");
    }
    for (size_t i = 0; i < target.a.size(); ++i) {
      if (target.a[i]->kind != NodeKind::kIdent) Fail("Cannot unpack to non-identifier in set");
      env->Set(target.a[i]->str, (*rhs.arr)[i]);
    }
  } else if (target.kind == NodeKind::kMember) {
    Value object = Eval(*target.x, env);
    if (object.kind != Kind::kNamespace) Fail("cannot assign attribute on non-namespace object");
    if (target.y->kind != NodeKind::kIdent || target.flag) Fail("Cannot assign to member with non-identifier property");
    object.obj->Set(target.y->str, std::move(rhs));
  } else {
    Fail("Invalid left-hand side of an assignment at offset {}", target.offset);
  }
  return Value::Null();
}

void Interpreter::BindMacroArguments(const std::string& display_name, const Node& def,
                                     const std::vector<NodePtr>& params, std::vector<Value> args,
                                     const EnvPtr& scope) {
  ObjectMap kwargs;
  if (!args.empty() && args.back().kind == Kind::kKwArgs) {
    kwargs = *args.back().obj;
    args.pop_back();
  }
  std::vector<const NodePtr*> pending;
  for (size_t i = 0; i < params.size(); ++i) {
    const Node& p = *params[i];
    const std::string& name = p.str;
    std::optional<Value> value;
    if (i < args.size()) value = args[i];
    if (!value) {
      if (const Value* kv = kwargs.Find(name)) {
        value = *kv;
        kwargs.Erase(name);
      }
    }
    if (!value && p.kind == NodeKind::kKwArg) pending.push_back(&params[i]);
    scope->Set(name, value ? *value : Value::Undefined());
  }
  if (def.uses_kwargs) {
    scope->Set("kwargs", Value::Object(kwargs));
  } else if (kwargs.size() > 0) {
    Fail("macro {} takes no keyword argument '{}'", display_name, kwargs.entries()[0].first);
  }
  if (def.uses_varargs) {
    std::vector<Value> rest;
    for (size_t i = params.size(); i < args.size(); ++i) rest.push_back(args[i]);
    scope->Set("varargs", Value::Array(std::move(rest)));
  } else if (args.size() > params.size()) {
    Fail("macro {} takes not more than {} argument(s)", display_name, params.size());
  }
  for (const NodePtr* p : pending) scope->Set((*p)->str, Eval(*(*p)->x, scope));
}

Value Interpreter::MakeMacro(const Node& n) {
  const Node* def = &n;
  return Value::Fn([this, def](std::vector<Value>& args, const EnvPtr& caller_env) -> Value {
    DepthGuard guard(&call_depth_, limits_.max_depth);
    auto scope = std::make_shared<Env>(caller_env);
    BindMacroArguments("'" + def->str + "'", *def, def->a, args, scope);
    return Value::Str(EvalBlock(def->b, scope));
  });
}

Value Interpreter::EvalCallBlock(const Node& n, const EnvPtr& env) {
  const Node* def = &n;
  Value caller = Value::Fn([this, def, env](std::vector<Value>& args, const EnvPtr&) -> Value {
    DepthGuard guard(&call_depth_, limits_.max_depth);
    auto scope = std::make_shared<Env>(env);
    BindMacroArguments("None", *def, def->a, args, scope);
    return Value::Str(EvalBlock(def->b, scope));
  });
  std::vector<Value> args;
  ObjectMap kwargs;
  EvalArguments(n.x->a, env, &args, &kwargs);
  args.push_back(Value::Object(std::move(kwargs), Kind::kKwArgs));
  Value fn = Eval(*n.x->x, env);
  if (fn.kind != Kind::kFunction) Fail("Cannot call something that is not a function: got {}", TypeName(fn));
  auto call_env = std::make_shared<Env>(env);
  call_env->Set("caller", caller);
  return (*fn.fn)(args, call_env);
}

void Interpreter::EvalArguments(const std::vector<NodePtr>& args, const EnvPtr& env, std::vector<Value>* positional,
                                ObjectMap* keywords) {
  for (const NodePtr& a : args) {
    if (a->kind == NodeKind::kSpread) {
      Value v = Eval(*a->x, env);
      if (!v.IsArrayLike()) Fail("Cannot unpack non-iterable type: {}", TypeName(v));
      for (const Value& x : *v.arr) positional->push_back(x);
    } else if (a->kind != NodeKind::kKwArg && a->kind != NodeKind::kKwSpread) {
      positional->push_back(Eval(*a, env));
    }
  }
  auto add = [&](const std::string& key, Value v) {
    if (keywords->Find(key)) Fail("Got multiple values for keyword argument '{}'", key);
    keywords->Set(key, std::move(v));
  };
  for (const NodePtr& a : args) {
    if (a->kind == NodeKind::kKwArg) {
      add(a->str, Eval(*a->x, env));
    } else if (a->kind == NodeKind::kKwSpread) {
      Value v = Eval(*a->x, env);
      if (!v.IsObjectLike()) Fail("Argument after ** must be a mapping, not {}", TypeName(v));
      for (const auto& [k, x] : v.obj->entries()) add(k, x);
    }
  }
}

Value Interpreter::EvalCall(const Node& n, const EnvPtr& env) {
  std::vector<Value> args;
  ObjectMap kwargs;
  EvalArguments(n.a, env, &args, &kwargs);
  if (kwargs.size() > 0) args.push_back(Value::Object(std::move(kwargs), Kind::kKwArgs));
  Value fn = Eval(*n.x, env);
  if (fn.kind != Kind::kFunction) Fail("Cannot call something that is not a function: got {}", TypeName(fn));
  return (*fn.fn)(args, env);
}

Value Interpreter::EvalMember(const Node& n, const EnvPtr& env) {
  Value object = Eval(*n.x, env);
  Value property;
  if (n.flag) {
    if (n.y->kind == NodeKind::kSlice) return EvalSlice(object, *n.y, env);
    property = Eval(*n.y, env);
  } else if (n.y->kind == NodeKind::kInt) {
    property = Value::Int(n.y->num);
  } else {
    property = Value::Str(n.y->str);
  }
  return Attribute(object, property);
}

Value Interpreter::EvalSlice(const Value& object, const Node& slice, const EnvPtr& env) {
  if (!object.IsArrayLike() && !object.IsString()) Fail("Slice object must be an array or string");
  auto bound = [&](const NodePtr& p, const char* what) -> std::optional<double> {
    Value v = p ? Eval(*p, env) : Value::Undefined();
    if (v.IsUndefined()) return std::nullopt;
    if (v.kind != Kind::kInt) Fail("Slice {} must be numeric or undefined", what);
    return v.num;
  };
  std::optional<double> start = bound(slice.x, "start"), stop = bound(slice.y, "stop"), step = bound(slice.z, "step");
  std::vector<std::string> chars;
  if (object.IsString()) chars = CodePoints(object.str);
  const double len = object.IsString() ? static_cast<double>(chars.size()) : static_cast<double>(object.arr->size());
  double st = step.value_or(1);
  double dir = st > 0 ? 1 : st < 0 ? -1 : 0;
  double b, e;
  if (dir >= 0) {
    b = start.value_or(0);
    b = b < 0 ? std::max(len + b, 0.0) : std::min(b, len);
    e = stop.value_or(len);
    e = e < 0 ? std::max(len + e, 0.0) : std::min(e, len);
  } else {
    b = start.value_or(len - 1);
    b = b < 0 ? std::max(len + b, -1.0) : std::min(b, len - 1);
    e = stop.value_or(-1);
    e = e < -1 ? std::max(len + e, -1.0) : std::min(e, len - 1);
  }
  std::vector<Value> items;
  std::string str;
  for (double i = b; dir * i < dir * e; i += st) {
    Step();
    auto idx = static_cast<size_t>(i);
    if (object.IsString()) {
      str += chars[idx];
    } else {
      items.push_back((*object.arr)[idx]);
    }
  }
  if (object.IsString()) return Value::Str(std::move(str));
  return Value::Array(std::move(items));
}

Value Interpreter::EvalUnary(const Node& n, const EnvPtr& env) {
  Value arg = Eval(*n.x, env);
  if (n.str == "not") return Value::Bool(!Truthy(arg));
  if (!NumericLike(arg)) Fail("Unknown operator \"{}\" for {}", n.str, TypeName(arg));
  double r = (n.str == "-" ? -1.0 : 1.0) * NumericValue(arg);
  return arg.kind == Kind::kFloat ? Value::Float(r) : Value::Int(r);
}

Value Interpreter::EvalBinary(const Node& n, const EnvPtr& env) {
  const std::string& op = n.str;
  Value left = Eval(*n.x, env);
  if (op == "and") return Truthy(left) ? Eval(*n.y, env) : left;
  if (op == "or") return Truthy(left) ? left : Eval(*n.y, env);
  Value right = Eval(*n.y, env);
  if (op == "==") return Value::Bool(LooseEquals(left, right));
  if (op == "!=") return Value::Bool(!LooseEquals(left, right));
  bool is_in = op == "in" || op == "not in";
  if (left.IsUndefined() || right.IsUndefined()) {
    if (right.IsUndefined() && is_in) return Value::Bool(op == "not in");
    Fail("Cannot perform operation {} on undefined values", op);
  }
  if (left.IsNull() || right.IsNull()) Fail("Cannot perform operation on null values");
  if (op == "~") {
    std::string s = RawToString(left) + RawToString(right);
    CheckSize(s.size());
    return Value::Str(std::move(s));
  }
  if (op == "**" && NumericLike(left) && NumericLike(right)) {
    double a = NumericValue(left), b = NumericValue(right);
    if (a == 0 && b < 0) Fail("0.0 cannot be raised to a negative power");
    double r = std::pow(a, b);
    if (!std::isfinite(r)) Fail("Exponentiation result is not a finite real number");
    bool is_float = left.kind == Kind::kFloat || right.kind == Kind::kFloat || b < 0;
    return is_float ? Value::Float(r) : Value::Int(r);
  }
  if (left.IsNumber() && right.IsNumber()) {
    double a = left.num, b = right.num;
    bool is_float = left.kind == Kind::kFloat || right.kind == Kind::kFloat;
    auto num = [&](double r) { return is_float ? Value::Float(r) : Value::Int(r); };
    if (op == "+") return num(a + b);
    if (op == "-") return num(a - b);
    if (op == "*") return num(a * b);
    if (op == "/") return Value::Float(a / b);
    if (op == "//") return num(std::floor(a / b));
    if (op == "%") return num(std::fmod(a, b));
    if (op == "<") return Value::Bool(a < b);
    if (op == ">") return Value::Bool(a > b);
    if (op == ">=") return Value::Bool(a >= b);
    if (op == "<=") return Value::Bool(a <= b);
  } else if (left.IsArrayLike() && right.IsArrayLike()) {
    if (op == "+") {
      CheckItems(left.arr->size() + right.arr->size());
      Step(left.arr->size() + right.arr->size());
      std::vector<Value> items = *left.arr;
      items.insert(items.end(), right.arr->begin(), right.arr->end());
      return Value::Array(std::move(items));
    }
  } else if (right.IsArrayLike()) {
    if (is_in) {
      bool member = false;
      for (const Value& x : *right.arr) {
        if (StrictEquals(x, left)) {
          member = true;
          break;
        }
      }
      return Value::Bool(member == (op == "in"));
    }
  }
  if ((left.IsString() || right.IsString()) && op == "+") {
    std::string s = RawToString(left) + RawToString(right);
    CheckSize(s.size());
    return Value::Str(std::move(s));
  }
  if (left.IsString() && right.IsString() && is_in) {
    return Value::Bool((right.str.find(left.str) != std::string::npos) == (op == "in"));
  }
  if (left.IsString() && right.IsObjectLike() && is_in) {
    return Value::Bool((right.obj->Find(left.str) != nullptr) == (op == "in"));
  }
  Fail("Unknown operator \"{}\" between {} and {}", op, TypeName(left), TypeName(right));
}

bool ApplyTest(const std::string& t, const Value& v, const Value* arg) {
  bool r;
  if (t == "boolean") {
    r = v.kind == Kind::kBool;
  } else if (t == "callable") {
    r = v.kind == Kind::kFunction;
  } else if (t == "odd" || t == "even") {
    if (v.kind != Kind::kInt) Fail("cannot {} on {}", t, TypeName(v));
    bool odd = std::fmod(v.num, 2) != 0;
    r = t == "odd" ? odd : !odd;
  } else if (t == "false" || t == "true") {
    r = v.kind == Kind::kBool && v.b == (t == "true");
  } else if (t == "none") {
    r = v.IsNull();
  } else if (t == "string") {
    r = v.IsString();
  } else if (t == "number") {
    r = v.IsNumber();
  } else if (t == "integer") {
    r = v.kind == Kind::kInt;
  } else if (t == "iterable") {
    r = v.kind == Kind::kArray || v.IsString();
  } else if (t == "mapping") {
    r = v.IsObjectLike();
  } else if (t == "sequence") {
    r = v.IsArrayLike() || v.IsObjectLike() || v.IsString();
  } else if (t == "lower") {
    r = v.IsString() && v.str == JsToLower(v.str);
  } else if (t == "upper") {
    r = v.IsString() && v.str == JsToUpper(v.str);
  } else if (t == "defined") {
    r = !v.IsUndefined();
  } else if (t == "undefined") {
    r = v.IsUndefined();
  } else if (t == "equalto" || t == "eq") {
    if (!arg) Fail("test '{}' needs a value to compare with", t);
    r = StrictEquals(v, *arg);
  } else {
    Fail("Unknown test: {}", t);
  }
  return r;
}

Value Interpreter::EvalTest(const Node& n, const EnvPtr& env) {
  Value v = Eval(*n.x, env);
  bool r = ApplyTest(n.str, v, nullptr);
  return Value::Bool(n.flag ? !r : r);
}

}  // namespace origami::jinja
