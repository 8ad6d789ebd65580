// SentencePiece BPE against llama2.c's golden ids for stories260K (tok512 vocabulary), plus
// decoding.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tokenizer/test_util.h"
#include "tokenizer/tokenizer.h"

namespace origami {
namespace {

std::unique_ptr<gguf::File> OpenStories() {
  return gguf::File::Open(test::SharedDir() + "/models/stories260K.gguf");
}

TEST(Spm, Tok512EncodeGolden) {
  std::string js;
  ASSERT_TRUE(test::ReadFile(test::SharedDir() + "/golden/stories260K_tok512_encode.json", js));
  const auto j = nlohmann::json::parse(js);
  auto f = OpenStories();
  auto tok = Tokenizer::FromGguf(*f);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_TRUE(tok->add_bos());
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"];
    const auto want = c["token_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->Encode(text), want) << text;
    // Decoding drops BOS and the space prefix.
    EXPECT_EQ(tok->Decode(want), text) << text;
  }
}

TEST(Spm, GenerationGoldens) {
  auto f = OpenStories();
  auto tok = Tokenizer::FromGguf(*f);
  for (const char* name : {"once_upon_a_time", "the_little_dog", "empty_prompt"}) {
    std::string js;
    ASSERT_TRUE(test::ReadFile(test::SharedDir() + "/golden/stories260K_" + name + ".json", js));
    const auto j = nlohmann::json::parse(js);
    const std::string prompt = j["prompt"];
    EXPECT_EQ(tok->Encode(prompt), j["prompt_token_ids"].get<std::vector<int32_t>>()) << name;
    // Streaming the prompt and the continuation reproduces run.c's output.
    StreamDecoder sd(*tok);
    std::string text;
    for (int32_t id : j["prompt_token_ids"].get<std::vector<int32_t>>()) text += sd.Push(id);
    const std::string prompt_text = text;
    for (int32_t id : j["generated_token_ids"].get<std::vector<int32_t>>()) text += sd.Push(id);
    text += sd.Flush();
    EXPECT_EQ(text.substr(prompt_text.size()), j["generated_text"].get<std::string>()) << name;
    EXPECT_EQ(text, j["run_c_stdout"].get<std::string>()) << name;
  }
}

TEST(Spm, ByteFallbackAndPieces) {
  auto f = OpenStories();
  auto tok = Tokenizer::FromGguf(*f);
  EncodeOptions raw;
  raw.add_special = false;
  const auto ids =
      tok->Encode("\xF0\x9F\x98\x80", raw);  // an emoji outside the 512-token vocabulary
  ASSERT_FALSE(ids.empty());
  std::string bytes;
  for (int32_t id : ids) bytes += tok->TokenToPiece(id);
  EXPECT_EQ(bytes, " \xF0\x9F\x98\x80");
  EXPECT_EQ(tok->TokenToPiece(13), "\n");
  EXPECT_EQ(tok->Encode(""), std::vector<int32_t>{1});
  EXPECT_TRUE(tok->Encode("", raw).empty());
  EXPECT_TRUE(tok->IsEog(2));
  EXPECT_FALSE(tok->IsEog(1));
}

TEST(Spm, StreamDecoderHoldsPartialUtf8) {
  auto f = OpenStories();
  auto tok = Tokenizer::FromGguf(*f);
  StreamDecoder sd(*tok);
  // U+00E9 as two byte tokens (byte value + 3).
  EXPECT_EQ(sd.Push(0xC3 + 3), "");
  EXPECT_EQ(sd.Push(0xA9 + 3), "\xC3\xA9");
  EXPECT_EQ(sd.Push(0xE2 + 3), "");
  EXPECT_EQ(sd.Flush(), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace origami
