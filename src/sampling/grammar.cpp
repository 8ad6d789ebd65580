// The grammar engine: building and checking grammars, advancing persistent stacks byte by byte,
// and the vocabulary-trie walk that computes a token mask.
#include "sampling/grammar.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_set>

#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace origami {

// ---- building -------------------------------------------------------------------------------

GrammarBuilder::Item GrammarBuilder::Lit(std::string_view s) {
  Item it;
  it.kind = GElemKind::kChars;
  it.text = std::string(s);
  return it;
}

GrammarBuilder::Item GrammarBuilder::Chars(const CharClass& c) {
  Item it;
  it.kind = GElemKind::kChars;
  it.cls = c;
  return it;
}

GrammarBuilder::Item GrammarBuilder::Repeat(const CharClass& c, uint32_t min, uint32_t max,
                                            bool utf8) {
  Item it;
  it.kind = GElemKind::kRepeat;
  it.cls = c;
  it.min = min;
  it.max = max;
  it.utf8 = utf8;
  return it;
}

GrammarBuilder::Item GrammarBuilder::Ref(uint32_t rule) {
  Item it;
  it.kind = GElemKind::kRef;
  it.rule = rule;
  return it;
}

GrammarBuilder::Item GrammarBuilder::Special(std::string_view token_text) {
  Item it;
  it.kind = GElemKind::kSpecial;
  it.text = std::string(token_text);
  return it;
}

uint32_t GrammarBuilder::NewRule(std::string name) {
  names_.push_back(std::move(name));
  alts_.emplace_back();
  return static_cast<uint32_t>(names_.size() - 1);
}

void GrammarBuilder::AddAlt(uint32_t rule, std::vector<Item> seq) {
  if (rule >= alts_.size()) FailKind(ErrorKind::kInternal, "grammar: no rule {}", rule);
  alts_[rule].push_back(std::move(seq));
}

std::shared_ptr<const Grammar> GrammarBuilder::Build(uint32_t root) const {
  auto g = std::make_shared<Grammar>();
  const size_t n = alts_.size();
  if (root >= n) FailKind(ErrorKind::kInternal, "grammar: root rule {} does not exist", root);
  g->rule_names_ = names_;
  // Rule r's k-th alternative is a synthetic rule for each kSpecial: special | literal bytes.
  // Specials are expanded into a private rule so the trie can match their spelled-out bytes.
  std::vector<std::vector<std::vector<Item>>> alts = alts_;
  std::vector<std::string> names = names_;
  std::unordered_map<std::string, uint32_t> special_rule;
  const size_t n_user = alts.size();
  for (size_t r = 0; r < n_user; ++r) {
    for (auto& alt : alts[r]) {
      for (auto& it : alt) {
        if (it.kind != GElemKind::kSpecial) continue;
        if (it.text.empty()) Fail("grammar: rule '{}' has an empty special token", names[r]);
        auto [pos, fresh] =
            special_rule.try_emplace(it.text, static_cast<uint32_t>(n_user + special_rule.size()));
        it = Ref(pos->second);
      }
    }
  }
  alts.resize(n_user + special_rule.size());
  names.resize(alts.size());
  for (const auto& [text, rule] : special_rule) {
    alts[rule] = {{Special(text)}, {Lit(text)}};
    names[rule] = "special_" + std::to_string(rule - n_user);
  }
  // The special rules now hold a kSpecial item with text; give those an index instead.
  g->rule_names_ = names;
  g->alt_begin_.push_back(0);
  for (size_t r = 0; r < alts.size(); ++r) {
    if (alts[r].empty()) Fail("grammar: rule '{}' has no alternatives", names[r]);
    for (const auto& alt : alts[r]) {
      g->alt_starts_.push_back(static_cast<uint32_t>(g->elems_.size()));
      for (const auto& it : alt) {
        if (it.kind == GElemKind::kChars && !it.text.empty()) {
          for (char c : it.text) {
            GElem e{GElemKind::kChars, false, static_cast<uint32_t>(g->classes_.size()), 0, 0};
            g->classes_.push_back(CharClass().Add(static_cast<uint8_t>(c)));
            g->elems_.push_back(e);
          }
        } else if (it.kind == GElemKind::kChars || it.kind == GElemKind::kRepeat) {
          if (it.kind == GElemKind::kRepeat && it.min > it.max)
            Fail("grammar: rule '{}' repeats {}..{} times", names[r], it.min, it.max);
          if (it.kind == GElemKind::kRepeat && it.max == 0) continue;  // matches nothing
          GElem e{it.kind, it.utf8, static_cast<uint32_t>(g->classes_.size()), it.min, it.max};
          if (it.kind == GElemKind::kChars) e.utf8 = false;
          g->classes_.push_back(it.cls);
          g->elems_.push_back(e);
        } else if (it.kind == GElemKind::kRef) {
          if (it.rule >= alts.size())
            Fail("grammar: rule '{}' refers to rule {}", names[r], it.rule);
          g->elems_.push_back(GElem{GElemKind::kRef, false, it.rule, 0, 0});
        } else if (it.kind == GElemKind::kSpecial) {
          g->elems_.push_back(
              GElem{GElemKind::kSpecial, false, static_cast<uint32_t>(g->specials_.size()), 0, 0});
          g->specials_.push_back(it.text);
        }
      }
      g->elems_.push_back(GElem{});  // kEnd
    }
    g->alt_begin_.push_back(static_cast<uint32_t>(g->alt_starts_.size()));
  }
  g->root_ = root;

  // Left recursion check: nullable rules first, then a cycle search over the rules an
  // alternative can reach before consuming a byte.
  std::vector<char> nullable(alts.size(), 0);
  auto elem_nullable = [&](const GElem& e) {
    switch (e.kind) {
      case GElemKind::kRepeat:
        return e.min == 0;
      case GElemKind::kRef:
        return nullable[e.arg] != 0;
      default:
        return false;
    }
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < alts.size(); ++r) {
      if (nullable[r]) continue;
      for (uint32_t start : g->alts(static_cast<uint32_t>(r))) {
        bool all = true;
        for (uint32_t i = start; g->elems_[i].kind != GElemKind::kEnd; ++i)
          if (!elem_nullable(g->elems_[i])) {
            all = false;
            break;
          }
        if (all) {
          nullable[r] = 1;
          changed = true;
          break;
        }
      }
    }
  }
  std::vector<uint8_t> color(alts.size(), 0);  // 0 new, 1 on the path, 2 done
  std::function<void(uint32_t)> visit = [&](uint32_t r) {
    color[r] = 1;
    for (uint32_t start : g->alts(r)) {
      for (uint32_t i = start; g->elems_[i].kind != GElemKind::kEnd; ++i) {
        const GElem& e = g->elems_[i];
        if (e.kind == GElemKind::kRef) {
          if (color[e.arg] == 1) Fail("grammar: rule '{}' is left-recursive", names[e.arg]);
          if (color[e.arg] == 0) visit(e.arg);
        }
        if (!elem_nullable(e)) break;
      }
    }
    color[r] = 2;
  };
  for (size_t r = 0; r < alts.size(); ++r)
    if (color[r] == 0) visit(static_cast<uint32_t>(r));
  return g;
}

std::string Grammar::ToString() const {
  auto cls_str = [&](const CharClass& c) {
    std::string s = "[";
    for (int b = 0; b < 256; ++b) {
      if (!c.Has(static_cast<uint8_t>(b))) continue;
      int e = b;
      while (e + 1 < 256 && c.Has(static_cast<uint8_t>(e + 1))) ++e;
      auto one = [](int x) {
        return (x >= 0x21 && x < 0x7f && x != ']' && x != '\\' && x != '-')
                   ? std::string(1, static_cast<char>(x))
                   : fmt::format("\\x{:02X}", x);
      };
      s += one(b);
      if (e > b) {
        s += '-';
        s += one(e);
      }
      b = e;
    }
    return s + "]";
  };
  std::string out;
  for (uint32_t r = 0; r < n_rules(); ++r) {
    out += rule_names_[r] + " ::=";
    bool first = true;
    for (uint32_t start : alts(r)) {
      out += first ? " " : " | ";
      first = false;
      if (elems_[start].kind == GElemKind::kEnd) out += "\"\"";
      for (uint32_t i = start; elems_[i].kind != GElemKind::kEnd; ++i) {
        const GElem& e = elems_[i];
        if (i != start) out += " ";
        switch (e.kind) {
          case GElemKind::kChars:
            out += cls_str(classes_[e.arg]);
            break;
          case GElemKind::kRepeat:
            out += cls_str(classes_[e.arg]) + (e.utf8 ? "u" : "") + "{" + std::to_string(e.min) +
                   "," + (e.max == kUnbounded ? std::string() : std::to_string(e.max)) + "}";
            break;
          case GElemKind::kRef:
            out += rule_names_[e.arg];
            break;
          case GElemKind::kSpecial:
            out += "<" + specials_[e.arg] + ">";
            break;
          case GElemKind::kEnd:
            break;
        }
      }
    }
    out += "\n";
  }
  return out;
}

// ---- stacks -----------------------------------------------------------------------------------

const GNode* GNodeArena::New(uint32_t elem, uint32_t aux, const GNode* parent) {
  const size_t chunk = used_ / kChunk, off = used_ % kChunk;
  if (chunk == chunks_.size()) chunks_.push_back(std::make_unique<GNode[]>(kChunk));
  GNode* n = &chunks_[chunk][off];
  *n = GNode{elem, aux, parent};
  ++used_;
  return n;
}

namespace {

constexpr int kMaxExpandDepth = 2000;

// UTF-8 decoder states after a lead byte (Unicode 15, table 3-7): how many continuation bytes are
// still due and, for the second byte, its narrower range.
// 0 none; 1/2/3 that many of 80..BF; 4: A0..BF then 1; 5: 80..9F then 1; 6: 90..BF then 2;
// 7: 80..8F then 2.
int Utf8Lead(uint8_t b) {
  if (b < 0x80) return 0;
  if (b >= 0xC2 && b <= 0xDF) return 1;
  if (b == 0xE0) return 4;
  if (b == 0xED) return 5;
  if (b >= 0xE1 && b <= 0xEF) return 2;
  if (b == 0xF0) return 6;
  if (b >= 0xF1 && b <= 0xF3) return 3;
  if (b == 0xF4) return 7;
  return -1;
}

int Utf8Cont(int state, uint8_t b) {
  switch (state) {
    case 1:
      return (b >= 0x80 && b <= 0xBF) ? 0 : -1;
    case 2:
      return (b >= 0x80 && b <= 0xBF) ? 1 : -1;
    case 3:
      return (b >= 0x80 && b <= 0xBF) ? 2 : -1;
    case 4:
      return (b >= 0xA0 && b <= 0xBF) ? 1 : -1;
    case 5:
      return (b >= 0x80 && b <= 0x9F) ? 1 : -1;
    case 6:
      return (b >= 0x90 && b <= 0xBF) ? 2 : -1;
    case 7:
      return (b >= 0x80 && b <= 0x8F) ? 2 : -1;
    default:
      return -1;
  }
}

}  // namespace

// Expansion and advance over persistent stacks; nodes are allocated from `arena`.
struct GrammarWalker {
  const Grammar& g;
  GNodeArena& arena;
  // Optional: precomputed expansions of repeat nodes (node -> range in expansions), used when a
  // byte leaves a repeat node unchanged, which is most bytes of a string.
  const std::vector<std::pair<const GNode*, std::pair<uint32_t, uint32_t>>>* cache = nullptr;
  const std::vector<const GNode*>* expansions = nullptr;

  const GNode* Cont(uint32_t elem, const GNode* parent) {
    if (g.elem(elem).kind == GElemKind::kEnd) return parent;  // tail call: skip finished alts
    return arena.New(elem, 0, parent);
  }

  static bool RepeatCanTake(const GElem& e, uint32_t aux) {
    return (aux & 7) != 0 || e.max == kUnbounded || (aux >> 3) < e.max;
  }
  static bool RepeatCanExit(const GElem& e, uint32_t aux) {
    return (aux & 7) == 0 && (aux >> 3) >= e.min;
  }

  // Appends to `out` the stacks reachable from n without consuming a byte, each topped by a
  // terminal element (or nullptr for a complete sentence).
  void Expand(const GNode* n, std::vector<const GNode*>& out, int depth = 0) {
    if (depth > kMaxExpandDepth) Fail("grammar: expansion deeper than {} rules", kMaxExpandDepth);
    if (n == nullptr) {
      out.push_back(nullptr);
      return;
    }
    const GElem& e = g.elem(n->elem);
    switch (e.kind) {
      case GElemKind::kEnd:
        Expand(n->parent, out, depth + 1);
        return;
      case GElemKind::kChars:
      case GElemKind::kSpecial:
        out.push_back(n);
        return;
      case GElemKind::kRepeat:
        if (RepeatCanTake(e, n->aux)) out.push_back(n);
        if (RepeatCanExit(e, n->aux)) Expand(Cont(n->elem + 1, n->parent), out, depth + 1);
        return;
      case GElemKind::kRef: {
        const GNode* cont = Cont(n->elem + 1, n->parent);
        for (uint32_t start : g.alts(e.arg)) Expand(Cont(start, cont), out, depth + 1);
        return;
      }
    }
  }

  // Appends the expanded stacks after `n` (an expanded stack) consumes byte b.
  void Advance(const GNode* n, uint8_t b, std::vector<const GNode*>& out) {
    if (n == nullptr) return;
    const GElem& e = g.elem(n->elem);
    if (e.kind == GElemKind::kChars) {
      if (g.cls(e.arg).Has(b)) Expand(Cont(n->elem + 1, n->parent), out);
      return;
    }
    if (e.kind != GElemKind::kRepeat) return;
    uint32_t count = n->aux >> 3;
    int u = static_cast<int>(n->aux & 7);
    if (u != 0) {
      u = Utf8Cont(u, b);
      if (u < 0) return;
      if (u == 0) ++count;
    } else {
      if (!g.cls(e.arg).Has(b)) return;
      if (e.max != kUnbounded && count >= e.max) return;
      if (e.utf8) {
        u = Utf8Lead(b);
        if (u < 0) return;
      }
      if (u == 0) ++count;
    }
    if (e.max == kUnbounded && count > e.min) count = e.min;  // keeps the node shared
    const uint32_t aux = (count << 3) | static_cast<uint32_t>(u);
    if (cache != nullptr) {
      for (const auto& [node, range] : *cache) {
        if (node->elem != n->elem || node->aux != aux || node->parent != n->parent) continue;
        out.insert(out.end(), expansions->begin() + range.first,
                   expansions->begin() + range.second);
        return;
      }
    }
    Expand(aux == n->aux ? n : arena.New(n->elem, aux, n->parent), out);
  }
};

// ---- state ------------------------------------------------------------------------------------

namespace {

bool SameStack(const GNode* a, const GNode* b) {
  while (a != b) {
    if (a == nullptr || b == nullptr || a->elem != b->elem || a->aux != b->aux) return false;
    a = a->parent;
    b = b->parent;
  }
  return true;
}

size_t StackHash(const GNode* a) {
  size_t h = 1469598103934665603ull;
  for (; a != nullptr; a = a->parent) h = (h ^ (a->elem * 2654435761u + a->aux)) * 1099511628211ull;
  return h;
}

void Dedup(std::vector<const GNode*>& stacks) {
  if (stacks.size() < 2) return;
  std::vector<std::pair<size_t, const GNode*>> keyed;
  keyed.reserve(stacks.size());
  for (const GNode* s : stacks) keyed.emplace_back(StackHash(s), s);
  std::sort(keyed.begin(), keyed.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  stacks.clear();
  for (size_t i = 0; i < keyed.size(); ++i) {
    bool dup = false;
    for (size_t j = i; j-- > 0 && keyed[j].first == keyed[i].first;)
      if (SameStack(keyed[j].second, keyed[i].second)) {
        dup = true;
        break;
      }
    if (!dup) stacks.push_back(keyed[i].second);
  }
}

}  // namespace

GrammarState::GrammarState(std::shared_ptr<const Grammar> g) : g_(std::move(g)) {
  if (!g_) FailKind(ErrorKind::kInternal, "GrammarState: null grammar");
  GrammarWalker w{*g_, arena_};
  for (uint32_t start : g_->alts(g_->root())) w.Expand(w.Cont(start, nullptr), stacks_);
  Dedup(stacks_);
}

GrammarState::GrammarState(const GrammarState& o) : g_(o.g_) {
  stacks_ = o.stacks_;
  // Copy the live nodes into our own arena so the two states are independent.
  std::unordered_map<const GNode*, const GNode*> map;
  std::function<const GNode*(const GNode*)> copy = [&](const GNode* n) -> const GNode* {
    if (n == nullptr) return nullptr;
    auto it = map.find(n);
    if (it != map.end()) return it->second;
    const GNode* p = copy(n->parent);
    const GNode* c = arena_.New(n->elem, n->aux, p);
    map.emplace(n, c);
    return c;
  };
  for (auto& s : stacks_) s = copy(s);
}

GrammarState& GrammarState::operator=(const GrammarState& o) {
  if (this != &o) {
    GrammarState tmp(o);
    g_ = tmp.g_;
    stacks_.swap(tmp.stacks_);
    std::swap(arena_, tmp.arena_);
  }
  return *this;
}

void GrammarState::Compact() {
  GrammarState fresh(*this);  // copies only the live nodes
  stacks_.swap(fresh.stacks_);
  std::swap(arena_, fresh.arena_);
}

bool GrammarState::AcceptByte(uint8_t b) {
  return AcceptBytes(std::string_view(reinterpret_cast<const char*>(&b), 1));
}

bool GrammarState::AcceptBytes(std::string_view s) {
  GrammarWalker w{*g_, arena_};
  const std::vector<const GNode*> saved = stacks_;
  const size_t mark = arena_.Mark();
  std::vector<const GNode*> next;
  for (char c : s) {
    next.clear();
    for (const GNode* st : stacks_) w.Advance(st, static_cast<uint8_t>(c), next);
    if (next.empty()) {
      stacks_ = saved;
      arena_.Rollback(mark);
      return false;
    }
    Dedup(next);
    stacks_.swap(next);
  }
  // Nodes of dead stacks pile up in the arena; copy the live ones out now and then.
  if (arena_.size() > compact_at_) {
    Compact();
    compact_at_ = std::max<size_t>(65536, 4 * arena_.size());
  }
  return true;
}

bool GrammarState::AcceptSpecial(std::string_view text) {
  GrammarWalker w{*g_, arena_};
  std::vector<const GNode*> next;
  for (const GNode* s : stacks_) {
    if (s == nullptr) continue;
    const GElem& e = g_->elem(s->elem);
    if (e.kind == GElemKind::kSpecial && g_->special(e.arg) == text)
      w.Expand(w.Cont(s->elem + 1, s->parent), next);
  }
  if (next.empty()) return false;
  Dedup(next);
  stacks_.swap(next);
  return true;
}

bool GrammarState::IsComplete() const {
  return std::find(stacks_.begin(), stacks_.end(), nullptr) != stacks_.end();
}

bool GrammarState::CanContinue() const {
  return std::any_of(stacks_.begin(), stacks_.end(), [](const GNode* s) { return s != nullptr; });
}

// ---- vocabulary and mask ----------------------------------------------------------------------

GrammarVocab::GrammarVocab(const Tokenizer& tok) {
  const int32_t n = tok.n_vocab();
  pieces_.resize(static_cast<size_t>(n));
  kind_.resize(static_cast<size_t>(n));
  std::vector<std::pair<std::string_view, int32_t>> sorted;
  sorted.reserve(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    pieces_[id] = tok.TokenToPiece(id);
    const TokenType t = tok.GetTokenType(id);
    Kind k = kText;
    if (tok.IsEog(id))
      k = kEog;
    else if (t == TokenType::kControl)
      k = kControl;
    else if (t == TokenType::kUnknown || t == TokenType::kUnused || pieces_[id].empty())
      k = kNever;
    kind_[id] = k;
    if (k == kControl || k == kEog) control_by_text_.emplace(pieces_[id], id);
    if (k == kText) sorted.emplace_back(pieces_[id], id);
  }
  std::sort(sorted.begin(), sorted.end());
  trie_.emplace_back();
  BuildTrie(sorted, 0, sorted.size(), 0, 0);
}

// Fills trie_[slot] from sorted[lo, hi), which all share their first `depth` bytes.
uint32_t GrammarVocab::BuildTrie(std::vector<std::pair<std::string_view, int32_t>>& sorted,
                                 size_t lo, size_t hi, size_t depth, uint32_t slot) {
  size_t i = lo;
  trie_[slot].tok_begin = static_cast<uint32_t>(toks_.size());
  while (i < hi && sorted[i].first.size() == depth) toks_.push_back(sorted[i++].second);
  trie_[slot].tok_end = static_cast<uint32_t>(toks_.size());
  // Group the rest by their byte at `depth`; children take consecutive slots.
  std::vector<std::pair<size_t, size_t>> groups;
  while (i < hi) {
    const char c = sorted[i].first[depth];
    size_t j = i;
    while (j < hi && sorted[j].first[depth] == c) ++j;
    groups.emplace_back(i, j);
    i = j;
  }
  const uint32_t first = static_cast<uint32_t>(trie_.size());
  trie_[slot].child_begin = first;
  trie_[slot].n_children = static_cast<uint32_t>(groups.size());
  trie_.resize(trie_.size() + groups.size());
  for (size_t k = 0; k < groups.size(); ++k) {
    trie_[first + k].byte = static_cast<uint8_t>(sorted[groups[k].first].first[depth]);
    BuildTrie(sorted, groups[k].first, groups[k].second, depth + 1,
              first + static_cast<uint32_t>(k));
  }
  return slot;
}

int32_t GrammarVocab::ControlId(std::string_view text) const {
  auto it = control_by_text_.find(std::string(text));
  return it == control_by_text_.end() ? -1 : it->second;
}

namespace {

// Depth-first walk of the trie: the stacks at a node are those after its bytes; a subtree is cut
// as soon as no stack survives. Inside strings nearly every token survives, so the walk memoizes:
// a stack set built without allocating (from the state's nodes and the precomputed repeat
// expansions) is "stable" and interned, and its successor per byte is remembered. Most trie
// nodes then cost one table lookup.
struct MaskWalk {
  static constexpr int kMaxSets = 32;
  static constexpr int32_t kUnknown = -2, kDead = -1, kUncacheable = -3;
  const GrammarVocab& vocab;
  GrammarWalker w;
  std::vector<const GNode*>& buf;
  std::vector<uint8_t>& allowed;
  std::vector<std::vector<const GNode*>> sets;  // interned stable sets
  std::vector<std::array<int32_t, 256>> next;   // successor set per byte

  int32_t Find(const GNode* const* p, size_t n) const {
    for (size_t i = 0; i < sets.size(); ++i)
      if (sets[i].size() == n && std::equal(p, p + n, sets[i].begin()))
        return static_cast<int32_t>(i);
    return kUncacheable;
  }

  int32_t Intern(const GNode* const* p, size_t n) {
    for (size_t i = 0; i < sets.size(); ++i)
      if (sets[i].size() == n && std::equal(p, p + n, sets[i].begin()))
        return static_cast<int32_t>(i);
    if (sets.size() >= kMaxSets) return kUncacheable;
    sets.emplace_back(p, p + n);
    next.emplace_back();
    next.back().fill(kUnknown);
    return static_cast<int32_t>(sets.size() - 1);
  }

  void MarkTokens(uint32_t c) {
    const auto& trie = vocab.trie();
    const auto& toks = vocab.trie_tokens();
    for (uint32_t t = trie[c].tok_begin; t < trie[c].tok_end; ++t) allowed[toks[t]] = 1;
  }

  // The stacks after the bytes of `node` are data[0, n); set_id >= 0 when they form an interned
  // set. levels[d] holds the computed (not interned) stacks at depth d, so the stacks of every
  // node on the current path stay put while deeper levels are filled.
  std::vector<std::vector<const GNode*>> levels;

  void Visit(uint32_t node, size_t depth, const GNode* const* data, size_t n, int32_t set_id) {
    const auto& trie = vocab.trie();
    const GrammarVocab::TrieNode& tn = trie[node];
    if (levels.size() <= depth + 1) levels.resize(depth + 2);
    for (uint32_t c = tn.child_begin; c < tn.child_begin + tn.n_children; ++c) {
      const uint8_t b = trie[c].byte;
      if (set_id >= 0 && next[set_id][b] != kUnknown && next[set_id][b] != kUncacheable) {
        const int32_t to = next[set_id][b];
        if (to == kDead) continue;
        MarkTokens(c);
        if (trie[c].n_children > 0) Visit(c, depth + 1, sets[to].data(), sets[to].size(), to);
        continue;
      }
      std::vector<const GNode*>& out = levels[depth + 1];
      out.clear();
      const size_t mark = w.arena.Mark();
      for (size_t i = 0; i < n; ++i) w.Advance(data[i], b, out);
      int32_t to = kUncacheable;
      if (w.arena.Mark() == mark) {
        if (set_id >= 0) {  // nothing allocated from a stable set: the result is stable
          to = out.empty() ? kDead : Intern(out.data(), out.size());
          next[set_id][b] = to;
        } else if (!out.empty()) {  // e.g. back in a string after a multi-byte character
          to = Find(out.data(), out.size());
        }
      }
      if (!out.empty()) {
        MarkTokens(c);
        if (trie[c].n_children > 0) {
          if (to >= 0)
            Visit(c, depth + 1, sets[to].data(), sets[to].size(), to);
          else
            Visit(c, depth + 1, out.data(), out.size(), to);
        }
      }
      // (`out` may dangle here: deeper levels can grow `levels`; its buffer was not touched.)
      w.arena.Rollback(mark);
    }
  }
};

}  // namespace

void ApplyGrammarMask(const GrammarVocab& vocab, const GrammarState& state,
                      std::span<float> logits) {
  const size_t n = std::min(logits.size(), static_cast<size_t>(vocab.n_vocab()));
  auto& allowed = state.scratch_allowed_;
  allowed.assign(static_cast<size_t>(vocab.n_vocab()), 0);
  auto& buf = state.scratch_stacks_;
  buf.clear();
  bool complete = false;
  state.scratch_arena_.Clear();
  GrammarWalker w{*state.g_, state.scratch_arena_};
  std::vector<std::pair<const GNode*, std::pair<uint32_t, uint32_t>>> cache;
  std::vector<const GNode*> expansions;
  for (const GNode* s : state.stacks_) {
    if (s == nullptr) {
      complete = true;
      continue;
    }
    buf.push_back(s);
    const GElem& e = state.g_->elem(s->elem);
    if (e.kind == GElemKind::kSpecial) {
      const int32_t id = vocab.ControlId(state.g_->special(e.arg));
      if (id >= 0) allowed[id] = 1;
    }
    if (e.kind == GElemKind::kRepeat && (s->aux & 7) == 0) {
      const uint32_t from = static_cast<uint32_t>(expansions.size());
      w.Expand(s, expansions);
      cache.push_back({s, {from, static_cast<uint32_t>(expansions.size())}});
      if (e.utf8) {  // the nodes inside a multi-byte character expand to themselves
        for (uint32_t u = 1; u < 8; ++u) {
          cache.push_back({state.scratch_arena_.New(s->elem, s->aux | u, s->parent),
                           {static_cast<uint32_t>(expansions.size()),
                            static_cast<uint32_t>(expansions.size() + 1)}});
          expansions.push_back(cache.back().first);
        }
      }
    }
  }
  w.cache = &cache;
  w.expansions = &expansions;
  MaskWalk walk{vocab, w, buf, allowed, {}, {}, {}};
  walk.levels.resize(64);
  const int32_t base = walk.Intern(buf.data(), buf.size());
  walk.Visit(0, 0, walk.sets[base].data(), walk.sets[base].size(), base);
  for (size_t id = 0; id < n; ++id) {
    const auto k = vocab.kind(static_cast<int32_t>(id));
    const bool ok = k == GrammarVocab::kEog ? complete : allowed[id] != 0;
    if (!ok) logits[id] = -INFINITY;
  }
  for (size_t id = n; id < logits.size(); ++id) logits[id] = -INFINITY;
}

bool Accept(GrammarState& state, const GrammarVocab& vocab, int32_t token) {
  if (token < 0 || token >= vocab.n_vocab()) return false;
  switch (vocab.kind(token)) {
    case GrammarVocab::kEog:
      return state.IsComplete();
    case GrammarVocab::kControl:
      return state.AcceptSpecial(vocab.piece(token));
    case GrammarVocab::kNever:
      return false;
    case GrammarVocab::kText:
      return state.AcceptBytes(vocab.piece(token));
  }
  return false;
}

bool Accept(GrammarState& state, const Tokenizer& tok, int32_t token) {
  if (token < 0 || token >= tok.n_vocab()) return false;
  if (tok.IsEog(token)) return state.IsComplete();
  const std::string piece = tok.TokenToPiece(token);
  const TokenType type = tok.GetTokenType(token);
  if (type == TokenType::kControl) return state.AcceptSpecial(piece);
  if (type == TokenType::kUnknown || type == TokenType::kUnused) return false;  // as GrammarVocab
  if (piece.empty()) return false;
  return state.AcceptBytes(piece);
}

}  // namespace origami
