// The chat-template interpreter: evaluates the syntax tree over Values in nested environments,
// following @huggingface/jinja's semantics (including its dynamic scoping of macros), and stops
// hostile templates at the step, depth and output-size limits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"

namespace origami::jinja {

struct Limits {
  uint64_t max_steps = 10'000'000;
  int max_depth = 256;
  size_t max_output_bytes = 16u << 20;
};

class Env {
 public:
  explicit Env(EnvPtr parent) : parent_(std::move(parent)) {}
  // The variable as seen from here (inner scopes first); undefined when nowhere.
  Value Lookup(const std::string& name) const;
  void Set(const std::string& name, Value v) { vars_[name] = std::move(v); }
  bool HasOwn(const std::string& name) const { return vars_.count(name) != 0; }

 private:
  EnvPtr parent_;
  std::unordered_map<std::string, Value> vars_;
};

class Interpreter {
 public:
  // now_unix: the instant strftime_now formats (in UTC); nullopt means the current local time.
  Interpreter(const Limits& limits, std::optional<int64_t> now_unix) : limits_(limits), now_unix_(now_unix) {}

  // A root environment with the reference's globals (true/false/none, range, namespace, ...).
  EnvPtr MakeGlobals();
  std::string Run(const std::vector<NodePtr>& program, const EnvPtr& env);

 private:
  friend struct FilterImpl;

  Value Eval(const Node& n, const EnvPtr& env);
  std::string EvalBlock(const std::vector<NodePtr>& body, const EnvPtr& env);
  Value EvalFor(const Node& n, const EnvPtr& env);
  Value EvalSet(const Node& n, const EnvPtr& env);
  Value EvalCallBlock(const Node& n, const EnvPtr& env);
  Value EvalMember(const Node& n, const EnvPtr& env);
  Value EvalSlice(const Value& object, const Node& slice, const EnvPtr& env);
  Value EvalBinary(const Node& n, const EnvPtr& env);
  Value EvalUnary(const Node& n, const EnvPtr& env);
  Value EvalTest(const Node& n, const EnvPtr& env);
  Value EvalCall(const Node& n, const EnvPtr& env);
  // Positional arguments (with *spread) and keyword arguments (with **spread).
  void EvalArguments(const std::vector<NodePtr>& args, const EnvPtr& env, std::vector<Value>* positional,
                     ObjectMap* keywords);
  Value MakeMacro(const Node& n);
  void BindMacroArguments(const std::string& display_name, const Node& def, const std::vector<NodePtr>& params,
                          std::vector<Value> args, const EnvPtr& scope);

  // jinja_filters.cpp
  Value ApplyFilter(const Value& operand, const Node& filter, const EnvPtr& env);
  Value Attribute(const Value& object, const Value& property);  // obj.prop / obj[prop]
  Value StringMethod(const Value& s, const std::string& name);
  Value ObjectMethod(const Value& o, const std::string& name);

  void Step(uint64_t n = 1);
  void CheckSize(size_t bytes) const;
  void CheckItems(size_t items) const;
  std::string Strftime(const std::string& format) const;

  Limits limits_;
  std::optional<int64_t> now_unix_;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;
};

// The `is` tests (`defined`, `none`, `string`, `mapping`, `equalto`, ...); arg is the value a
// test compares with (selectattr passes one), or null. Throws Error on an unknown test.
bool ApplyTest(const std::string& name, const Value& v, const Value* arg);

// How deep evaluation may nest in C++ frames (expressions inside macro calls inside loops...):
// past this the template is stopped with the depth-limit error instead of overflowing the stack.
constexpr int kMaxEvalDepth = 1500;

}  // namespace origami::jinja
