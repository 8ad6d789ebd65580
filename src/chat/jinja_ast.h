// Tokens and the syntax tree of the chat-template language, and the lexer and parser that make
// them. The grammar (operator precedence, whitespace control, trim_blocks/lstrip_blocks) follows
// @huggingface/jinja, so templates parse exactly as they do there.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace origami::jinja {

enum class Tok {
  kText,
  kNumber,
  kString,
  kIdent,
  kEquals,
  kOpenParen,
  kCloseParen,
  kOpenStatement,
  kCloseStatement,
  kOpenExpression,
  kCloseExpression,
  kOpenBracket,
  kCloseBracket,
  kOpenCurly,
  kCloseCurly,
  kComma,
  kDot,
  kColon,
  kPipe,
  kAdditive,        // + - ~
  kMultiplicative,  // * / // %
  kPower,           // **
  kComparison,      // < > <= >= == !=
  kUnary,           // a sign with no number after it
  kComment,
};

struct Token {
  Tok type;
  std::string value;
  size_t offset;  // byte offset in the preprocessed source, for error messages
};

// Applies HF's preprocessing (drop one trailing newline, lstrip_blocks, trim_blocks, remove
// {% generation %} tags) and tokenizes. Throws origami::Error on malformed input.
std::vector<Token> Tokenize(std::string_view source);

enum class NodeKind {
  // statements
  kIf,         // x: test, a: body, b: alternate
  kFor,        // x: loop variable (identifier or tuple), y: iterable, a: body, b: else block
  kBreak,
  kContinue,
  kSet,        // x: assignee, y: value (or null: block set with body a)
  kMacro,      // str: name, a: parameters, b: body
  kCallBlock,  // x: call expression, a: caller parameters, b: body
  kFilterBlock,  // x: filter (identifier or call), a: body
  kComment,
  // expressions
  kInt,       // num
  kFloat,     // num
  kString,    // str (text between tags is a string literal too)
  kIdent,     // str
  kArray,     // a: items
  kTuple,     // a: items
  kObject,    // a: keys, b: values
  kMember,    // x: object, y: property, flag: computed (x[y] rather than x.y)
  kCall,      // x: callee, a: arguments
  kUnaryOp,   // str: operator, x: operand
  kBinary,    // str: operator, x, y
  kFilter,    // x: operand, y: filter (identifier or call)
  kTest,      // x: operand, str: test name, flag: negated
  kSelect,    // x: value, y: condition ("a if b" without else)
  kTernary,   // x: condition, y: if true, z: if false
  kSlice,     // x: start, y: stop, z: step (each may be null)
  kKwArg,     // str: name, x: value
  kSpread,    // x (*args)
  kKwSpread,  // x (**kwargs)
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Node {
  NodeKind kind;
  std::string str;
  double num = 0;
  bool flag = false;
  bool uses_kwargs = false, uses_varargs = false;  // macros and call blocks
  NodePtr x, y, z;
  std::vector<NodePtr> a, b;
  size_t offset = 0;
};

// Parses a token stream into the top-level statement list.
std::vector<NodePtr> Parse(const std::vector<Token>& tokens);

}  // namespace origami::jinja
