// Grammar-constrained decoding: a context-free grammar over bytes (built with GrammarBuilder), a
// pushdown state advanced byte by byte, and the token mask computed over a trie of the vocabulary.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace origami {

class Tokenizer;

// A set of bytes.
struct CharClass {
  std::array<uint64_t, 4> bits{};
  bool Has(uint8_t b) const { return (bits[b >> 6] >> (b & 63)) & 1; }
  CharClass& Add(uint8_t b) {
    bits[b >> 6] |= uint64_t{1} << (b & 63);
    return *this;
  }
  CharClass& AddRange(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) Add(static_cast<uint8_t>(b));
    return *this;
  }
  CharClass& AddAll(std::string_view chars) {
    for (char c : chars) Add(static_cast<uint8_t>(c));
    return *this;
  }
  CharClass Inverted() const {
    CharClass c;
    for (int i = 0; i < 4; ++i) c.bits[i] = ~bits[i];
    return c;
  }
  static CharClass Of(std::string_view chars) { return CharClass().AddAll(chars); }
  static CharClass Range(uint8_t lo, uint8_t hi) { return CharClass().AddRange(lo, hi); }
};

// One element of an alternative. kRepeat matches min..max items of `cls`; an item is one byte, or,
// with utf8, one well-formed UTF-8 sequence whose lead byte is in `cls` (continuation bytes are
// checked by the UTF-8 rules, not by `cls`). kSpecial matches one control token by its text.
enum class GElemKind : uint8_t { kEnd, kChars, kRepeat, kRef, kSpecial };

struct GElem {
  GElemKind kind = GElemKind::kEnd;
  bool utf8 = false;
  uint32_t arg = 0;  // class index (kChars, kRepeat), rule id (kRef), special index (kSpecial)
  uint32_t min = 0, max = 0;  // kRepeat bounds; max == kUnbounded for no upper bound
};

inline constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();

// A compiled grammar: flattened alternatives, each a run of elements ended by kEnd.
class Grammar {
 public:
  const GElem& elem(uint32_t i) const { return elems_[i]; }
  const CharClass& cls(uint32_t i) const { return classes_[i]; }
  const std::string& special(uint32_t i) const { return specials_[i]; }
  // Alternatives of rule r: alt_starts_[alt_begin_[r] .. alt_begin_[r + 1]).
  std::span<const uint32_t> alts(uint32_t r) const {
    return {alt_starts_.data() + alt_begin_[r], alt_begin_[r + 1] - alt_begin_[r]};
  }
  uint32_t root() const { return root_; }
  size_t n_rules() const { return rule_names_.size(); }
  const std::string& rule_name(uint32_t r) const { return rule_names_[r]; }
  // A readable GBNF-like dump, for debugging and error messages.
  std::string ToString() const;

 private:
  friend class GrammarBuilder;
  std::vector<GElem> elems_;
  std::vector<CharClass> classes_;
  std::vector<std::string> specials_;
  std::vector<uint32_t> alt_starts_;
  std::vector<uint32_t> alt_begin_;  // n_rules + 1 entries
  std::vector<std::string> rule_names_;
  uint32_t root_ = 0;
};

// Builds a Grammar rule by rule. Rules are referenced before they are defined; Build() checks that
// every rule has an alternative and that no rule is left-recursive (the state would not terminate).
class GrammarBuilder {
 public:
  struct Item {
    GElemKind kind = GElemKind::kChars;
    std::string text;  // literal bytes (kChars with text) or special token text
    CharClass cls;
    uint32_t min = 1, max = 1, rule = 0;
    bool utf8 = false;
  };
  static Item Lit(std::string_view s);  // the exact bytes
  static Item Chars(const CharClass& c);
  static Item Repeat(const CharClass& c, uint32_t min, uint32_t max, bool utf8 = false);
  static Item Ref(uint32_t rule);
  // A control token's text: matches that control token, or the same bytes spelled by text tokens.
  static Item Special(std::string_view token_text);

  uint32_t NewRule(std::string name);
  // Adds one alternative (an empty sequence is the empty string).
  void AddAlt(uint32_t rule, std::vector<Item> seq);
  size_t n_rules() const { return alts_.size(); }
  // Throws origami::Error naming the rule at fault.
  std::shared_ptr<const Grammar> Build(uint32_t root) const;

 private:
  std::vector<std::string> names_;
  std::vector<std::vector<std::vector<Item>>> alts_;
};

// Node of a persistent stack: the next element to match, its repeat/UTF-8 progress, and the
// continuation to return to once this alternative ends (nullptr: the sentence is complete).
struct GNode {
  uint32_t elem;
  uint32_t aux;  // kRepeat: (count << 3) | pending UTF-8 state
  const GNode* parent;
};

// Bump allocator for GNodes with LIFO rollback; node addresses stay valid until rolled back.
class GNodeArena {
 public:
  const GNode* New(uint32_t elem, uint32_t aux, const GNode* parent);
  size_t Mark() const { return used_; }
  void Rollback(size_t mark) { used_ = mark; }
  void Clear() { used_ = 0; }
  size_t size() const { return used_; }

 private:
  static constexpr size_t kChunk = 4096;
  std::vector<std::unique_ptr<GNode[]>> chunks_;
  size_t used_ = 0;
};

// The vocabulary as the mask needs it: each token's bytes, its kind, and a trie over the text
// tokens. Build one per model (it costs one TokenToPiece per token) and share it.
class GrammarVocab {
 public:
  explicit GrammarVocab(const Tokenizer& tok);
  int32_t n_vocab() const { return static_cast<int32_t>(kind_.size()); }
  enum Kind : uint8_t { kText, kControl, kEog, kNever };
  Kind kind(int32_t id) const { return static_cast<Kind>(kind_[id]); }
  const std::string& piece(int32_t id) const { return pieces_[id]; }
  int32_t ControlId(std::string_view text) const;  // -1 if no control token has this text
  size_t n_trie_nodes() const { return trie_.size(); }

  struct TrieNode {
    uint32_t child_begin = 0, n_children = 0;  // children are trie_[child_begin ..)
    uint32_t tok_begin = 0, tok_end = 0;       // tokens whose bytes end here: toks_[..)
    uint8_t byte = 0;                          // the edge byte from the parent
  };
  const std::vector<TrieNode>& trie() const { return trie_; }
  const std::vector<int32_t>& trie_tokens() const { return toks_; }

 private:
  uint32_t BuildTrie(std::vector<std::pair<std::string_view, int32_t>>& sorted, size_t lo,
                     size_t hi, size_t depth, uint32_t slot);
  std::vector<std::string> pieces_;
  std::vector<uint8_t> kind_;
  std::vector<TrieNode> trie_;  // trie_[0] is the root
  std::vector<int32_t> toks_;
  std::unordered_map<std::string, int32_t> control_by_text_;
};

// Where a grammar stands after the bytes accepted so far: the set of stacks that can continue
// (each topped by a terminal element), plus nullptr when the text so far is a complete sentence.
// One state per sequence; not thread-safe (the mask uses scratch space inside the state).
class GrammarState {
 public:
  explicit GrammarState(std::shared_ptr<const Grammar> g);
  GrammarState(const GrammarState& o);
  GrammarState& operator=(const GrammarState& o);

  // False (and the state unchanged) when the byte cannot continue any valid prefix.
  bool AcceptByte(uint8_t b);
  bool AcceptBytes(std::string_view s);
  // Matches one control token with this text where a kSpecial element expects it.
  bool AcceptSpecial(std::string_view text);
  bool IsComplete() const;   // the bytes so far form a whole sentence
  bool CanContinue() const;  // some longer sentence has the bytes so far as a prefix
  const Grammar& grammar() const { return *g_; }

 private:
  friend void ApplyGrammarMask(const GrammarVocab&, const GrammarState&, std::span<float>);
  friend struct GrammarWalker;
  void Compact();
  std::shared_ptr<const Grammar> g_;
  std::vector<const GNode*> stacks_;
  GNodeArena arena_;
  size_t compact_at_ = 65536;
  // Scratch for the mask, reused across calls.
  mutable GNodeArena scratch_arena_;
  mutable std::vector<const GNode*> scratch_stacks_;
  mutable std::vector<uint8_t> scratch_allowed_;
};

// Sets logits of tokens that cannot continue a valid prefix to -inf. End-of-generation tokens stay
// allowed only when the grammar is complete; control tokens only where a kSpecial expects them.
void ApplyGrammarMask(const GrammarVocab& vocab, const GrammarState& state,
                      std::span<float> logits);

// Advances the state by one sampled token. False (state unchanged) if the token was not allowed.
// An end-of-generation token is accepted (as a no-op) only when the grammar is complete.
bool Accept(GrammarState& state, const GrammarVocab& vocab, int32_t token);
bool Accept(GrammarState& state, const Tokenizer& tok, int32_t token);

}  // namespace origami
