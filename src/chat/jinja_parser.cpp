// The chat-template parser: a recursive-descent parser over Tokenize()'s tokens with
// @huggingface/jinja's grammar and precedence (ternary < or < and < not < comparison/in <
// + - ~ < * / // % < ** < is-tests < filters < unary sign < call/member < primary).
#include <functional>
#include <set>

#include "chat/jinja_ast.h"
#include "util/error.h"

namespace origami::jinja {
namespace {

// Nesting deeper than this is refused, so hostile input cannot overflow the stack while parsing
// (and the tree stays shallow enough to evaluate recursively).
constexpr int kMaxParseDepth = 128;

NodePtr MakeNode(NodeKind kind, size_t offset) {
  auto n = std::make_unique<Node>();
  n->kind = kind;
  n->offset = offset;
  return n;
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& t) : t_(t) {}

  std::vector<NodePtr> Run() {
    std::vector<NodePtr> body;
    while (cur_ < t_.size()) body.push_back(ParseAny());
    return body;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p(p) {
      if (++p->depth_ > kMaxParseDepth) p->Error(fmt::format("nesting deeper than {}", kMaxParseDepth));
    }
    ~DepthGuard() { --p->depth_; }
    Parser* p;
  };

  [[noreturn]] void Error(std::string_view what) const {
    size_t off = cur_ < t_.size() ? t_[cur_].offset : (t_.empty() ? 0 : t_.back().offset);
    Fail("template syntax error near offset {}: {}", off, what);
  }
  const Token& Peek() const {
    if (cur_ >= t_.size()) Error("unexpected end of template");
    return t_[cur_];
  }
  const Token& Next() {
    const Token& t = Peek();
    ++cur_;
    return t;
  }
  const Token& Expect(Tok type, std::string_view what) {
    if (cur_ >= t_.size() || t_[cur_].type != type) Error(what);
    return t_[cur_++];
  }
  bool Is(Tok type) const { return cur_ < t_.size() && t_[cur_].type == type; }
  bool Is2(Tok a, Tok b) const { return cur_ + 1 < t_.size() && t_[cur_].type == a && t_[cur_ + 1].type == b; }
  bool IsIdent(std::string_view name, size_t ahead = 0) const {
    return cur_ + ahead < t_.size() && t_[cur_ + ahead].type == Tok::kIdent && t_[cur_ + ahead].value == name;
  }
  bool IsStatement(std::initializer_list<std::string_view> names) const {
    if (!Is2(Tok::kOpenStatement, Tok::kIdent)) return false;
    for (auto n : names) {
      if (t_[cur_ + 1].value == n) return true;
    }
    return false;
  }
  void ExpectIdent(std::string_view name) {
    if (!IsIdent(name)) Error(fmt::format("Expected {}", name));
    ++cur_;
  }
  void ExpectEnd(std::string_view name) {
    Expect(Tok::kOpenStatement, fmt::format("Expected {{% {} %}}", name));
    ExpectIdent(name);
    Expect(Tok::kCloseStatement, "Expected %}");
  }
  std::vector<NodePtr> BodyUntil(std::initializer_list<std::string_view> names) {
    std::vector<NodePtr> body;
    while (!IsStatement(names)) {
      if (cur_ >= t_.size()) Error(fmt::format("missing {{% {} %}}", *names.begin()));
      body.push_back(ParseAny());
    }
    return body;
  }

  NodePtr ParseAny() {
    DepthGuard g(this);
    const Token& t = Peek();
    switch (t.type) {
      case Tok::kComment: {
        ++cur_;
        return MakeNode(NodeKind::kComment, t.offset);
      }
      case Tok::kText: {
        auto n = MakeNode(NodeKind::kString, t.offset);
        n->str = Next().value;
        return n;
      }
      case Tok::kOpenStatement: return ParseStatement();
      case Tok::kOpenExpression: {
        ++cur_;
        NodePtr e = ParseExpression();
        Expect(Tok::kCloseExpression, "Expected }}");
        return e;
      }
      default: Error(fmt::format("Unexpected token '{}'", t.value));
    }
  }

  NodePtr ParseStatement() {
    size_t off = Next().offset;  // {%
    if (!Is(Tok::kIdent)) Error("Unknown statement");
    std::string name = Next().value;
    if (name == "set") return ParseSet(off);
    if (name == "if") {
      NodePtr n = ParseIf(off);
      ExpectEnd("endif");
      return n;
    }
    if (name == "macro") {
      auto n = MakeNode(NodeKind::kMacro, off);
      NodePtr id = ParsePrimary();
      if (id->kind != NodeKind::kIdent) Error("Expected identifier following macro statement");
      n->str = id->str;
      n->a = ParseArgs(true);
      Expect(Tok::kCloseStatement, "Expected %}");
      n->b = BodyUntil({"endmacro"});
      ExpectEnd("endmacro");
      MarkSpecialArguments(n.get());
      return n;
    }
    if (name == "for") {
      NodePtr n = ParseFor(off);
      ExpectEnd("endfor");
      return n;
    }
    if (name == "call") {
      auto n = MakeNode(NodeKind::kCallBlock, off);
      if (Is(Tok::kOpenParen)) n->a = ParseArgs(true);
      NodePtr callee = ParsePrimary();
      if (callee->kind != NodeKind::kIdent) Error("Expected identifier following call statement");
      auto call = MakeNode(NodeKind::kCall, off);
      call->x = std::move(callee);
      call->a = ParseArgs(false);
      n->x = std::move(call);
      Expect(Tok::kCloseStatement, "Expected %}");
      n->b = BodyUntil({"endcall"});
      ExpectEnd("endcall");
      MarkSpecialArguments(n.get());
      return n;
    }
    if (name == "break" || name == "continue") {
      Expect(Tok::kCloseStatement, "Expected %}");
      return MakeNode(name == "break" ? NodeKind::kBreak : NodeKind::kContinue, off);
    }
    if (name == "filter") {
      auto n = MakeNode(NodeKind::kFilterBlock, off);
      NodePtr f = ParsePrimary();
      if (f->kind == NodeKind::kIdent && Is(Tok::kOpenParen)) f = ParseCall(std::move(f));
      n->x = std::move(f);
      Expect(Tok::kCloseStatement, "Expected %}");
      n->a = BodyUntil({"endfilter"});
      ExpectEnd("endfilter");
      return n;
    }
    Error(fmt::format("Unknown statement type: {}", name));
  }

  NodePtr ParseSet(size_t off) {
    auto n = MakeNode(NodeKind::kSet, off);
    n->x = ParseSequence(false);
    if (Is(Tok::kEquals)) {
      ++cur_;
      n->y = ParseSequence(false);
    } else {
      Expect(Tok::kCloseStatement, "Expected %}");
      n->a = BodyUntil({"endset"});
      Expect(Tok::kOpenStatement, "Expected {%");
      ExpectIdent("endset");
    }
    Expect(Tok::kCloseStatement, "Expected %}");
    return n;
  }

  NodePtr ParseIf(size_t off) {
    DepthGuard g(this);
    auto n = MakeNode(NodeKind::kIf, off);
    n->x = ParseExpression();
    Expect(Tok::kCloseStatement, "Expected %}");
    n->a = BodyUntil({"elif", "else", "endif"});
    if (IsStatement({"elif"})) {
      size_t o = Peek().offset;
      cur_ += 2;
      n->b.push_back(ParseIf(o));
    } else if (IsStatement({"else"})) {
      cur_ += 2;
      Expect(Tok::kCloseStatement, "Expected %}");
      n->b = BodyUntil({"endif"});
    }
    return n;
  }

  NodePtr ParseFor(size_t off) {
    auto n = MakeNode(NodeKind::kFor, off);
    n->x = ParseSequence(true);
    if (n->x->kind != NodeKind::kIdent && n->x->kind != NodeKind::kTuple) {
      Error("Expected identifier/tuple for the loop variable");
    }
    if (!IsIdent("in")) Error("Expected `in` keyword following loop variable");
    ++cur_;
    n->y = ParseExpression();
    Expect(Tok::kCloseStatement, "Expected %}");
    n->a = BodyUntil({"endfor", "else"});
    if (IsStatement({"else"})) {
      cur_ += 2;
      Expect(Tok::kCloseStatement, "Expected %}");
      n->b = BodyUntil({"endfor"});
    }
    return n;
  }

  NodePtr ParseSequence(bool primary) {
    size_t off = Peek().offset;
    NodePtr first = primary ? ParsePrimary() : ParseExpression();
    if (!Is(Tok::kComma)) return first;
    auto t = MakeNode(NodeKind::kTuple, off);
    t->a.push_back(std::move(first));
    while (Is(Tok::kComma)) {
      ++cur_;
      t->a.push_back(primary ? ParsePrimary() : ParseExpression());
    }
    return t;
  }

  NodePtr ParseExpression() {
    DepthGuard g(this);
    size_t off = Peek().offset;
    NodePtr a = ParseOr();
    if (IsIdent("if")) {
      ++cur_;
      NodePtr test = ParseOr();
      if (IsIdent("else")) {
        ++cur_;
        auto n = MakeNode(NodeKind::kTernary, off);
        n->x = std::move(test);
        n->y = std::move(a);
        n->z = ParseExpression();
        return n;
      }
      auto n = MakeNode(NodeKind::kSelect, off);
      n->x = std::move(a);
      n->y = std::move(test);
      return n;
    }
    return a;
  }

  NodePtr Binary(std::string op, NodePtr l, NodePtr r) {
    auto n = MakeNode(NodeKind::kBinary, l->offset);
    n->str = std::move(op);
    n->x = std::move(l);
    n->y = std::move(r);
    return n;
  }

  NodePtr ParseOr() {
    NodePtr l = ParseAnd();
    while (IsIdent("or")) {
      ++cur_;
      l = Binary("or", std::move(l), ParseAnd());
    }
    return l;
  }
  NodePtr ParseAnd() {
    NodePtr l = ParseNot();
    while (IsIdent("and")) {
      ++cur_;
      l = Binary("and", std::move(l), ParseNot());
    }
    return l;
  }
  NodePtr ParseNot() {
    if (IsIdent("not")) {
      DepthGuard g(this);
      auto n = MakeNode(NodeKind::kUnaryOp, Next().offset);
      n->str = "not";
      n->x = ParseNot();
      return n;
    }
    return ParseComparison();
  }
  NodePtr ParseComparison() {
    NodePtr l = ParseAdditive();
    while (true) {
      std::string op;
      if (IsIdent("not") && IsIdent("in", 1)) {
        op = "not in";
        cur_ += 2;
      } else if (IsIdent("in") || Is(Tok::kComparison)) {
        op = Next().value;
      } else {
        break;
      }
      l = Binary(op, std::move(l), ParseAdditive());
    }
    return l;
  }
  NodePtr ParseAdditive() {
    NodePtr l = ParseMultiplicative();
    while (Is(Tok::kAdditive)) {
      std::string op = Next().value;
      l = Binary(op, std::move(l), ParseMultiplicative());
    }
    return l;
  }
  NodePtr ParseMultiplicative() {
    NodePtr l = ParsePower();
    while (Is(Tok::kMultiplicative)) {
      std::string op = Next().value;
      l = Binary(op, std::move(l), ParsePower());
    }
    return l;
  }
  NodePtr ParsePower() {
    NodePtr l = ParseTest();
    while (Is(Tok::kPower)) {
      ++cur_;
      l = Binary("**", std::move(l), ParseTest());
    }
    return l;
  }
  NodePtr ParseTest() {
    NodePtr operand = ParseFilter();
    while (IsIdent("is")) {
      ++cur_;
      bool negate = IsIdent("not");
      if (negate) ++cur_;
      NodePtr test = ParsePrimary();
      if (test->kind != NodeKind::kIdent) Error("Expected identifier for the test");
      auto n = MakeNode(NodeKind::kTest, operand->offset);
      n->x = std::move(operand);
      n->str = test->str;
      n->flag = negate;
      operand = std::move(n);
    }
    return operand;
  }
  NodePtr ParseFilter() {
    NodePtr operand = ParseUnarySign();
    while (Is(Tok::kPipe)) {
      ++cur_;
      NodePtr f = ParsePrimary();
      if (f->kind != NodeKind::kIdent) Error("Expected identifier for the filter");
      if (Is(Tok::kOpenParen)) f = ParseCall(std::move(f));
      auto n = MakeNode(NodeKind::kFilter, operand->offset);
      n->x = std::move(operand);
      n->y = std::move(f);
      operand = std::move(n);
    }
    return operand;
  }
  NodePtr ParseUnarySign() {
    if ((Is(Tok::kUnary) || Is(Tok::kAdditive)) && (Peek().value == "-" || Peek().value == "+")) {
      DepthGuard g(this);
      auto n = MakeNode(NodeKind::kUnaryOp, Peek().offset);
      n->str = Next().value;
      n->x = ParseUnarySign();
      return n;
    }
    NodePtr m = ParseMember(ParsePrimary());
    if (Is(Tok::kOpenParen)) return ParseCall(std::move(m));
    return m;
  }
  NodePtr ParseCall(NodePtr callee) {
    DepthGuard g(this);
    auto n = MakeNode(NodeKind::kCall, callee->offset);
    n->x = std::move(callee);
    n->a = ParseArgs(false);
    NodePtr e = ParseMember(std::move(n));
    if (Is(Tok::kOpenParen)) return ParseCall(std::move(e));
    return e;
  }

  // Arguments of a call (parameters == false) or parameters of a macro / call block.
  std::vector<NodePtr> ParseArgs(bool parameters) {
    Expect(Tok::kOpenParen, "Expected (");
    std::vector<NodePtr> args;
    std::set<std::string> names;
    bool saw_keyword = false, saw_spread = false;
    while (!Is(Tok::kCloseParen)) {
      if (cur_ >= t_.size()) Error("Expected )");
      bool kw_spread = Is(Tok::kPower);
      bool pos_spread = Is(Tok::kMultiplicative) && Peek().value == "*";
      if (parameters && (kw_spread || pos_spread)) Error("Argument unpacking is not allowed in parameters");
      if (kw_spread) {
        auto n = MakeNode(NodeKind::kKwSpread, Next().offset);
        n->x = ParseExpression();
        args.push_back(std::move(n));
        if (Is(Tok::kComma)) ++cur_;
        if (!Is(Tok::kCloseParen)) Error("`**` must be applied to the final argument");
        break;
      }
      NodePtr arg;
      if (pos_spread) {
        if (saw_spread) Error("Only one `*` argument unpacking is allowed");
        saw_spread = true;
        arg = MakeNode(NodeKind::kSpread, Next().offset);
        arg->x = ParseExpression();
      } else {
        arg = ParseExpression();
        if (Is(Tok::kEquals)) {
          ++cur_;
          if (arg->kind != NodeKind::kIdent) Error("Expected identifier for keyword argument");
          auto kw = MakeNode(NodeKind::kKwArg, arg->offset);
          kw->str = arg->str;
          kw->x = ParseExpression();
          arg = std::move(kw);
        }
        if (parameters) {
          if (arg->kind != NodeKind::kIdent && arg->kind != NodeKind::kKwArg) {
            Error("Expected identifier for parameter declaration");
          }
          if (!names.insert(arg->str).second) Error(fmt::format("Duplicate parameter name: {}", arg->str));
        }
        if (arg->kind == NodeKind::kKwArg) {
          saw_keyword = true;
        } else if (saw_keyword) {
          Error(parameters ? "Non-default argument follows default argument"
                           : "Positional arguments must come before keyword arguments");
        } else if (saw_spread) {
          Error("Positional arguments must not follow `*` argument unpacking");
        }
      }
      args.push_back(std::move(arg));
      if (Is(Tok::kComma)) ++cur_;
    }
    Expect(Tok::kCloseParen, "Expected )");
    return args;
  }

  NodePtr ParseMember(NodePtr object) {
    while (Is(Tok::kDot) || Is(Tok::kOpenBracket)) {
      DepthGuard g(this);
      bool computed = Next().type == Tok::kOpenBracket;
      auto n = MakeNode(NodeKind::kMember, object->offset);
      n->flag = computed;
      n->x = std::move(object);
      if (computed) {
        n->y = ParseSubscript();
        Expect(Tok::kCloseBracket, "Expected ]");
      } else {
        n->y = ParsePrimary();
        if (n->y->kind != NodeKind::kIdent && n->y->kind != NodeKind::kInt) {
          Error("Expected identifier or integer following dot operator");
        }
      }
      object = std::move(n);
    }
    return object;
  }

  NodePtr ParseSubscript() {
    std::vector<NodePtr> parts;
    bool is_slice = false;
    size_t off = Peek().offset;
    while (!Is(Tok::kCloseBracket)) {
      if (cur_ >= t_.size()) Error("Expected ]");
      if (Is(Tok::kColon)) {
        parts.push_back(nullptr);
        ++cur_;
        is_slice = true;
      } else {
        parts.push_back(ParseExpression());
        if (Is(Tok::kColon)) {
          ++cur_;
          is_slice = true;
        }
      }
    }
    if (parts.empty()) Error("Expected at least one argument for member/slice expression");
    if (!is_slice) return std::move(parts[0]);
    if (parts.size() > 3) Error("Expected 0-3 arguments for slice expression");
    auto n = MakeNode(NodeKind::kSlice, off);
    n->x = std::move(parts[0]);
    if (parts.size() > 1) n->y = std::move(parts[1]);
    if (parts.size() > 2) n->z = std::move(parts[2]);
    return n;
  }

  NodePtr ParsePrimary() {
    DepthGuard g(this);
    const Token& t = Next();
    switch (t.type) {
      case Tok::kNumber: {
        bool is_float = t.value.find('.') != std::string::npos;
        auto n = MakeNode(is_float ? NodeKind::kFloat : NodeKind::kInt, t.offset);
        n->num = std::strtod(t.value.c_str(), nullptr);
        return n;
      }
      case Tok::kString: {
        auto n = MakeNode(NodeKind::kString, t.offset);
        n->str = t.value;
        while (Is(Tok::kString)) n->str += Next().value;  // adjacent literals concatenate
        return n;
      }
      case Tok::kIdent: {
        auto n = MakeNode(NodeKind::kIdent, t.offset);
        n->str = t.value;
        return n;
      }
      case Tok::kOpenParen: {
        NodePtr e = ParseSequence(false);
        Expect(Tok::kCloseParen, "Expected )");
        return e;
      }
      case Tok::kOpenBracket: {
        auto n = MakeNode(NodeKind::kArray, t.offset);
        while (!Is(Tok::kCloseBracket)) {
          if (cur_ >= t_.size()) Error("Expected ]");
          n->a.push_back(ParseExpression());
          if (Is(Tok::kComma)) ++cur_;
        }
        ++cur_;
        return n;
      }
      case Tok::kOpenCurly: {
        auto n = MakeNode(NodeKind::kObject, t.offset);
        while (!Is(Tok::kCloseCurly)) {
          if (cur_ >= t_.size()) Error("Expected }");
          n->a.push_back(ParseExpression());
          Expect(Tok::kColon, "Expected colon between key and value in object literal");
          n->b.push_back(ParseExpression());
          if (Is(Tok::kComma)) ++cur_;
        }
        ++cur_;
        return n;
      }
      default: Error(fmt::format("Unexpected token: '{}'", t.value));
    }
  }

  // Which of the special names `kwargs` / `varargs` a macro body reads without declaring them
  // (the reference binds them only then, and rejects extra arguments otherwise).
  static void MarkSpecialArguments(Node* macro) {
    std::set<std::string> declared;
    bool kwargs = false, varargs = false;
    auto special = [](const std::string& s) { return s == "kwargs" || s == "varargs"; };
    auto declare_param = [&](const Node& p) {
      if (special(p.str)) declared.insert(p.str);
    };
    std::function<void(const Node*)> visit;
    std::function<void(const Node*)> declare_target = [&](const Node* t) {
      if (t->kind == NodeKind::kIdent && special(t->str)) declared.insert(t->str);
      if (t->kind == NodeKind::kTuple) {
        for (auto& c : t->a) declare_target(c.get());
      }
    };
    auto visit_list = [&](const std::vector<NodePtr>& l) {
      for (auto& c : l) visit(c.get());
    };
    auto visit_defaults = [&](const std::vector<NodePtr>& params) {
      for (auto& p : params) {
        if (p->kind == NodeKind::kKwArg) visit(p->x.get());
      }
    };
    visit = [&](const Node* n) {
      if (!n) return;
      switch (n->kind) {
        case NodeKind::kIdent:
          if (special(n->str) && !declared.count(n->str)) (n->str == "kwargs" ? kwargs : varargs) = true;
          return;
        case NodeKind::kFor:
          declare_target(n->x.get());
          visit(n->y.get());
          visit_list(n->a);
          visit_list(n->b);
          return;
        case NodeKind::kSet:
          declare_target(n->x.get());
          visit(n->y.get());
          visit_list(n->a);
          return;
        case NodeKind::kMacro:
          for (auto& p : n->a) declare_param(*p);
          visit_defaults(n->a);
          visit_list(n->b);
          return;
        case NodeKind::kCallBlock:
          visit(n->x.get());
          for (auto& p : n->a) declare_param(*p);
          visit_defaults(n->a);
          visit_list(n->b);
          return;
        case NodeKind::kFilterBlock:
          visit_list(n->a);
          if (n->x->kind == NodeKind::kCall) visit_list(n->x->a);
          return;
        case NodeKind::kMember:
          visit(n->x.get());
          if (n->flag) visit(n->y.get());
          return;
        case NodeKind::kFilter:
          visit(n->x.get());
          if (n->y->kind == NodeKind::kCall) visit_list(n->y->a);
          return;
        case NodeKind::kTest: visit(n->x.get()); return;
        default:
          visit(n->x.get());
          visit(n->y.get());
          visit(n->z.get());
          visit_list(n->a);
          visit_list(n->b);
      }
    };
    for (auto& p : macro->a) declare_param(*p);
    if (macro->kind == NodeKind::kCallBlock) {
      // The reference visits the call expression of a nested call block, not of this one.
    }
    visit_list(macro->b);
    macro->uses_kwargs = kwargs;
    macro->uses_varargs = varargs;
  }

  const std::vector<Token>& t_;
  size_t cur_ = 0;
  int depth_ = 0;
};

}  // namespace

std::vector<NodePtr> Parse(const std::vector<Token>& tokens) { return Parser(tokens).Run(); }

}  // namespace origami::jinja
