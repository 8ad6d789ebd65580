// llama.cpp's upstream tokenizer vectors: every input of each NAME.gguf.inp must encode to the ids
// of NAME.gguf.out with add_special = false, parse_special = false.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "tokenizer/test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/utf8.h"

namespace origami {
namespace {

class VectorTest : public ::testing::TestWithParam<const char*> {};

TEST_P(VectorTest, MatchesReference) {
  const std::string base = test::SharedDir() + "/tokenizer/ggml-vocab-" + GetParam() + ".gguf";
  std::string inp, outp;
  if (!test::ReadFile(base + ".inp", inp) || !test::ReadFile(base + ".out", outp))
    GTEST_SKIP() << "no " << base;
  auto file = gguf::File::Open(base);
  auto tok = Tokenizer::FromGguf(*file);
  const auto inputs = test::SplitInputs(inp);
  const auto expected = test::ParseOutputs(outp);
  ASSERT_EQ(inputs.size(), expected.size()) << base;
  EncodeOptions opt;
  opt.add_special = false;
  opt.parse_special = false;
  int pass = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto got = tok->Encode(inputs[i], opt);
    if (got == expected[i]) {
      ++pass;
    } else {
      ADD_FAILURE() << GetParam() << " case " << i << " \"" << EscapeForDisplay(inputs[i], 80)
                    << "\"\n  want " << fmt::format("{}", fmt::join(expected[i], " "))
                    << "\n  got  " << fmt::format("{}", fmt::join(got, " "));
    }
  }
  std::printf("%s: %d/%zu\n", GetParam(), pass, inputs.size());
}

INSTANTIATE_TEST_SUITE_P(Upstream, VectorTest,
                         ::testing::Values("llama-spm", "phi-3", "llama-bpe", "qwen2", "qwen35",
                                           "gpt-2", "falcon", "mpt", "starcoder", "refact",
                                           "deepseek-coder", "deepseek-llm", "command-r", "gemma-4",
                                           "bert-bge"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace origami
