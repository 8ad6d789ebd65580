// Vocabularies without upstream vectors (and all the others): they load, and decode(encode(x)) == x
// on plain texts each of them can represent. Also a guard against quadratic behaviour on long
// input.
#include <gtest/gtest.h>

#include <chrono>

#include "tokenizer/test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/utf8.h"

namespace origami {
namespace {

class RoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(RoundTrip, DecodeEncodeIsIdentity) {
  const std::string path = test::SharedDir() + "/tokenizer/ggml-vocab-" + GetParam() + ".gguf";
  auto f = gguf::File::Open(path);
  auto tok = Tokenizer::FromGguf(*f);
  const std::string model = tok->model_name();
  std::vector<std::string> texts = {"Hello world", "Once upon a time, there was a little dog.",
                                    "The year 2024 had 366 days.", "a-b_c.d,e;f:g!h?i"};
  if (model != "bert") {  // WordPiece lowercases and drops spacing: not invertible
    if (model != "t5") {  // Unigram (T5) collapses whitespace runs and has no newline piece
      texts.push_back("def f(x):\n    return x * 2\n");
      texts.push_back("  two  spaces\tand\ttabs\n\n");
    }
  }
  for (const auto& t : texts) {
    const auto ids = tok->Encode(t);
    EXPECT_FALSE(ids.empty()) << t;
    std::string want = t;
    if (model == "bert")
      for (char& c : want) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string got = tok->Decode(ids);
    if (model == "bert") {  // WordPiece decoding puts spaces around punctuation
      std::string a, b;
      for (char c : got)
        if (c != ' ') a += c;
      for (char c : want)
        if (c != ' ') b += c;
      got = a;
      want = b;
    }
    EXPECT_EQ(got, want) << GetParam() << ": " << EscapeForDisplay(t, 80);
  }
  EXPECT_GT(tok->n_vocab(), 1000);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, RoundTrip,
                         ::testing::Values("baichuan", "gpt-neox", "aquila", "nomic-bert-moe",
                                           "llama-spm", "phi-3", "llama-bpe", "qwen2", "gpt-2",
                                           "falcon", "command-r", "gemma-4", "bert-bge"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// Long inputs (one 1 MB "word" and 1 MB of prose) must stay far from quadratic.
TEST(Speed, LongInputsAreFast) {
  for (const char* name : {"llama-spm", "llama-bpe", "gemma-4"}) {
    auto f = gguf::File::Open(test::SharedDir() + "/tokenizer/ggml-vocab-" + name + ".gguf");
    auto tok = Tokenizer::FromGguf(*f);
    std::string prose;
    while (prose.size() < (1 << 20))
      prose += "The quick brown fox jumps over the lazy dog, 12345 times. ";
    const std::string word(1 << 20, 'a');
    for (const std::string* s : std::initializer_list<const std::string*>{&prose, &word}) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto ids = tok->Encode(*s);
      const double sec =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      // A guard against quadratic merging (which would take hours on 1 MB), not a speed claim:
      // the limit is two orders of magnitude above the measured time, sanitizers included.
      EXPECT_LT(sec, 120.0) << name;
      EXPECT_EQ(tok->Decode(ids), *s) << name;
      std::printf("%s: %zu bytes -> %zu ids in %.3f s\n", name, s->size(), ids.size(), sec);
    }
  }
}

}  // namespace
}  // namespace origami
