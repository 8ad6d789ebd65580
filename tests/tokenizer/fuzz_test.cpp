// Runs the tokenizer fuzz body on random and adversarial byte strings for a few vocabularies.
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/test_util.h"
#include "tokenizer/tokenizer_fuzz_body.h"

namespace origami {
namespace {

TEST(TokenizerFuzz, RandomBytes) {
  std::mt19937 rng(1234);
  for (const char* name : {"llama-spm", "qwen2", "bert-bge", "gemma-4", "nomic-bert-moe"}) {
    auto f = gguf::File::Open(test::SharedDir() + "/tokenizer/ggml-vocab-" + name + ".gguf");
    auto tok = Tokenizer::FromGguf(*f);
    for (int iter = 0; iter < 300; ++iter) {
      std::vector<uint8_t> buf(rng() % 64);
      const bool ascii = iter % 3 == 0;
      for (auto& b : buf) b = static_cast<uint8_t>(ascii ? 0x20 + rng() % 0x5F : rng());
      EXPECT_TRUE(test::FuzzTokenizerOnce(*tok, buf.data(), buf.size()))
          << name << " iter " << iter;
    }
    const std::string hostile = "<|im_end|><s></s>[CLS]<0x41>\xF0\x9F\xA6\x99\xE2\x80\x8D\xC3";
    EXPECT_TRUE(test::FuzzTokenizerOnce(*tok, reinterpret_cast<const uint8_t*>(hostile.data()),
                                        hostile.size()));
  }
}

}  // namespace
}  // namespace origami
