// Grammar engine: acceptance of byte strings, left-recursion checks, and the trie mask against a
// brute-force oracle (every token's bytes fed to a copy of the state) on a real vocabulary.
#include "sampling/grammar.h"

#include <gtest/gtest.h>
#include <time.h>

#include <cmath>
#include <cstdio>

#include "gguf/gguf.h"
#include "sampling/json_schema.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace origami {
namespace {

using B = GrammarBuilder;

std::string SharedDir() { return ORIGAMI_SHARED_DIR; }

bool Matches(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  GrammarState st(g);
  return st.AcceptBytes(s) && st.IsComplete();
}

bool IsPrefix(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  GrammarState st(g);
  return st.AcceptBytes(s);
}

// greeting ::= "hi" [!]{0,3} | "ho" name ; name ::= [a-z]{1,} (utf8)
std::shared_ptr<const Grammar> Small() {
  B b;
  const uint32_t root = b.NewRule("root");
  const uint32_t name = b.NewRule("name");
  b.AddAlt(root, {B::Lit("hi"), B::Repeat(CharClass::Of("!"), 0, 3)});
  b.AddAlt(root, {B::Lit("ho "), B::Ref(name)});
  b.AddAlt(name, {B::Repeat(CharClass::Range('a', 'z').AddRange(0x80, 0xFF), 1, kUnbounded, true)});
  return b.Build(root);
}

TEST(Grammar, AcceptsAndRejects) {
  auto g = Small();
  EXPECT_TRUE(Matches(g, "hi"));
  EXPECT_TRUE(Matches(g, "hi!!!"));
  EXPECT_FALSE(Matches(g, "hi!!!!"));
  EXPECT_TRUE(Matches(g, "ho bob"));
  EXPECT_TRUE(Matches(g,
                      "ho b\xC3\xA9"
                      "b"));
  EXPECT_FALSE(Matches(g, "ho "));
  EXPECT_TRUE(IsPrefix(g, "ho "));
  EXPECT_FALSE(IsPrefix(g, "ho B"));
  EXPECT_FALSE(IsPrefix(g, "ho \xC3("));         // bad continuation byte
  EXPECT_FALSE(IsPrefix(g, "ho \xED\xA0\x80"));  // surrogate
  EXPECT_FALSE(IsPrefix(g, "ho \xC0\xAF"));      // overlong
  EXPECT_FALSE(Matches(g, "ho \xC3"));           // incomplete sequence
  GrammarState st(g);
  EXPECT_FALSE(st.AcceptBytes("hx"));
  EXPECT_TRUE(st.AcceptBytes("h"));  // a failed AcceptBytes leaves the state as it was
  EXPECT_FALSE(st.IsComplete());
  EXPECT_TRUE(st.AcceptBytes("i"));
  EXPECT_TRUE(st.IsComplete());
  EXPECT_TRUE(st.CanContinue());
}

TEST(Grammar, RejectsLeftRecursionAndEmptyRules) {
  {
    B b;
    const uint32_t a = b.NewRule("a");
    b.AddAlt(a, {B::Ref(a), B::Lit("x")});
    b.AddAlt(a, {B::Lit("x")});
    EXPECT_THROW(b.Build(a), Error);
  }
  {
    B b;
    const uint32_t a = b.NewRule("a");
    const uint32_t c = b.NewRule("c");
    b.AddAlt(a, {B::Repeat(CharClass::Of(" "), 0, 2), B::Ref(c)});
    b.AddAlt(c, {B::Ref(a)});
    EXPECT_THROW(b.Build(a), Error);
  }
  {
    B b;
    const uint32_t a = b.NewRule("a");
    b.NewRule("never-defined");
    b.AddAlt(a, {B::Ref(1)});
    EXPECT_THROW(b.Build(a), Error);
  }
}

TEST(Grammar, RightRecursionIsFlat) {
  // list ::= "x" list | "" : deep inputs must not grow the stacks (tail calls).
  B b;
  const uint32_t l = b.NewRule("list");
  b.AddAlt(l, {B::Lit("x"), B::Ref(l)});
  b.AddAlt(l, {});
  auto g = b.Build(l);
  GrammarState st(g);
  for (int i = 0; i < 200000; ++i) ASSERT_TRUE(st.AcceptByte('x'));
  EXPECT_TRUE(st.IsComplete());
}

TEST(Grammar, SpecialTokens) {
  B b;
  const uint32_t root = b.NewRule("root");
  b.AddAlt(root, {B::Special("<|channel|>"), B::Lit("x")});
  auto g = b.Build(root);
  GrammarState a(g);
  EXPECT_TRUE(a.AcceptSpecial("<|channel|>"));
  EXPECT_TRUE(a.AcceptBytes("x"));
  EXPECT_TRUE(a.IsComplete());
  GrammarState c(g);
  EXPECT_TRUE(c.AcceptBytes("<|channel|>x"));  // spelled out by text tokens
  GrammarState d(g);
  EXPECT_FALSE(d.AcceptSpecial("<|message|>"));
  EXPECT_NE(g->ToString().find("<<|channel|>>"), std::string::npos);
}

struct Vocab {
  std::unique_ptr<gguf::File> file;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<GrammarVocab> gv;
};

const Vocab& LlamaBpe() {
  static Vocab v = [] {
    Vocab x;
    x.file = gguf::File::Open(SharedDir() + "/tokenizer/ggml-vocab-llama-bpe.gguf");
    x.tok = Tokenizer::FromGguf(*x.file);
    x.gv = std::make_unique<GrammarVocab>(*x.tok);
    return x;
  }();
  return v;
}

// The trie mask equals feeding every token to a copy of the state.
void ExpectMaskMatchesOracle(const Vocab& v, const GrammarState& st) {
  std::vector<float> logits(static_cast<size_t>(v.tok->n_vocab()), 0.0f);
  ApplyGrammarMask(*v.gv, st, logits);
  int allowed = 0;
  for (int32_t id = 0; id < v.tok->n_vocab(); ++id) {
    GrammarState copy(st);
    const bool ok = Accept(copy, *v.tok, id);
    const bool masked_ok = std::isfinite(logits[id]);
    // Empty-piece tokens and unused ones are never allowed by the mask.
    if (v.gv->kind(id) == GrammarVocab::kNever) {
      EXPECT_FALSE(masked_ok);
      continue;
    }
    ASSERT_EQ(ok, masked_ok) << "token " << id << " '" << v.tok->TokenToPiece(id) << "'";
    allowed += ok;
  }
  EXPECT_GT(allowed, 0);
}

TEST(GrammarMask, MatchesOracleOnLlama3Vocab) {
  const Vocab& v = LlamaBpe();
  auto g = JsonSchemaGrammar(nlohmann::json::parse(R"({
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                   "tags": {"type": "array", "items": {"enum": ["a", "b c"]}, "maxItems": 2}},
    "required": ["name"], "additionalProperties": false})"));
  for (const char* prefix : {"", "{", "{\"", "{\"age\": 1", "{\"age\": 12, \"name\": \"Bo",
                             "{\"name\": \"x\", \"tags\": [", "{\"name\": \"x\"}"}) {
    GrammarState st(g);
    ASSERT_TRUE(st.AcceptBytes(prefix)) << prefix;
    SCOPED_TRACE(prefix);
    ExpectMaskMatchesOracle(v, st);
  }
}

TEST(GrammarMask, EogOnlyWhenComplete) {
  const Vocab& v = LlamaBpe();
  auto g = JsonObjectGrammar();
  GrammarState st(g);
  std::vector<float> logits(static_cast<size_t>(v.tok->n_vocab()), 0.0f);
  ApplyGrammarMask(*v.gv, st, logits);
  const int32_t eot = v.tok->TokenId("<|eot_id|>");
  ASSERT_GE(eot, 0);
  EXPECT_FALSE(std::isfinite(logits[eot]));
  EXPECT_FALSE(std::isfinite(logits[v.tok->TokenId("<|start_header_id|>")]));
  ASSERT_TRUE(st.AcceptBytes("{}"));
  std::fill(logits.begin(), logits.end(), 0.0f);
  ApplyGrammarMask(*v.gv, st, logits);
  EXPECT_TRUE(std::isfinite(logits[eot]));
  int finite = 0;
  for (float l : logits) finite += std::isfinite(l);
  EXPECT_EQ(finite, [&] {
    int n = 0;
    for (int32_t id = 0; id < v.tok->n_vocab(); ++id) n += v.tok->IsEog(id);
    return n;
  }());
  EXPECT_TRUE(Accept(st, *v.gv, eot));
}

// Mask cost inside a JSON string (the worst common state: nearly every token survives) across
// vocabulary sizes: SentencePiece 32K, Qwen2 152K, Gemma 262K.
TEST(GrammarMask, TimingAcrossVocabularies) {
  auto g = JsonSchemaGrammar(
      nlohmann::json::parse(R"({"type":"object","properties":{"t":{"type":"string"}}})"));
  for (const char* name : {"llama-spm", "qwen2", "gemma-4"}) {
    auto file = gguf::File::Open(SharedDir() + "/tokenizer/ggml-vocab-" + name + ".gguf");
    auto tok = Tokenizer::FromGguf(*file);
    GrammarVocab gv(*tok);
    GrammarState st(g);
    ASSERT_TRUE(st.AcceptBytes("{\"t\": \"some text"));
    std::vector<float> logits(static_cast<size_t>(tok->n_vocab()), 0.0f);
    timespec a{}, b{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    const int reps = 10;
    for (int i = 0; i < reps; ++i) ApplyGrammarMask(gv, st, logits);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    const double ms = ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) * 1e-6) / reps;
    std::printf("mask in string, %-10s n_vocab %6d: %6.3f ms (%zu trie nodes)\n", name,
                tok->n_vocab(), ms, gv.n_trie_nodes());
    // Printed, not asserted: timings are benchmarks, and CI machines vary (docs/PERFORMANCE.md).
  }
}

// Mask cost on the 128K Llama 3 vocabulary in the states a JSON answer spends its time in.
TEST(GrammarMask, Timing) {
  const Vocab& v = LlamaBpe();
  auto g = JsonSchemaGrammar(nlohmann::json::parse(R"({
    "type": "object", "properties": {"text": {"type": "string"}, "n": {"type": "number"},
    "any": {}}, "required": ["text", "n", "any"]})"));
  std::vector<float> logits(static_cast<size_t>(v.tok->n_vocab()));
  // nlohmann::json keeps keys sorted, so the grammar asks for "any", "n", "text" in that order.
  for (const char* prefix :
       {"{", "{\"any\": ", "{\"any\": {\"k\": [1, \"x", "{\"any\": 1, \"n\": 3",
        "{\"any\": 1, \"n\": 3, \"text\": \"hello wor"}) {
    GrammarState st(g);
    ASSERT_TRUE(st.AcceptBytes(prefix));
    const int reps = 20;
    // Thread CPU time: the test machines are shared, and wall time would count other processes.
    auto cpu_ms = [] {
      timespec ts{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
    };
    const double t0 = cpu_ms();
    for (int i = 0; i < reps; ++i) {
      std::fill(logits.begin(), logits.end(), 0.0f);
      ApplyGrammarMask(*v.gv, st, logits);
    }
    const double ms = (cpu_ms() - t0) / reps;
    int finite = 0;
    for (float l : logits) finite += std::isfinite(l);
    std::printf("mask %-45s %7.3f ms  (%d of %d allowed, %zu trie nodes)\n", prefix, ms, finite,
                v.tok->n_vocab(), v.gv->n_trie_nodes());
  }
}

}  // namespace
}  // namespace origami
