// Real Hugging Face tokenizers: each tokenizer.json is converted to GGUF metadata in memory and
// must give exactly the ids transformers.js gave on a 2000+ text corpus
// (tests/data/tokenizer/hf_*.json, made by tools/tokenizer_reference/make_reference.mjs; no npm
// needed here).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "gguf/writer.h"
#include "convert/hf_convert.h"
#include "tokenizer/test_util.h"
#include "tokenizer/tokenizer.h"
#include "util/utf8.h"

namespace origami {
namespace {

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// The text the reference saw: ill-formed UTF-8 replaced by U+FFFD (maximal subparts, like
// TextDecoder).
std::string ReferenceText(const std::string& bytes) { return Tokenizer::SanitizeUtf8(bytes); }

class HfTest : public ::testing::TestWithParam<const char*> {};

TEST_P(HfTest, MatchesTransformersJs) {
  const std::string name = GetParam();
  const std::string dir = test::SharedDir() + "/hf-tokenizers/" + name;
  std::string tj, cfg, corpus_text, ref_text;
  if (!test::ReadFile(dir + "/tokenizer.json", tj)) GTEST_SKIP() << "no " << dir;
  test::ReadFile(dir + "/tokenizer_config.json", cfg);
  ASSERT_TRUE(test::ReadFile(test::DataDir() + "/tokenizer/hf_corpus.json", corpus_text));
  ASSERT_TRUE(test::ReadFile(test::DataDir() + "/tokenizer/hf_" + name + ".json", ref_text));

  gguf::Writer w;
  const HfTokenizerInfo info = ConvertHfTokenizer(tj, cfg, w);
  const std::vector<uint8_t> bytes = w.HeaderBytes();
  auto file = gguf::File::Parse(bytes.data(), bytes.size(), "hf:" + name);
  auto tok = Tokenizer::FromGguf(*file);
  EXPECT_EQ(tok->n_vocab(), info.n_vocab);

  const auto corpus = nlohmann::json::parse(corpus_text)["texts"];
  const auto ref = nlohmann::json::parse(ref_text);
  const auto& ids = ref["ids"];
  const std::string roundtrip = ref["roundtrip"];
  ASSERT_EQ(corpus.size(), ids.size());
  // Hugging Face splits special tokens out of the text by default, so compare with parse_special.
  EncodeOptions opt;
  opt.add_special = false;
  opt.parse_special = true;
  int pass = 0, rt_checked = 0, rt_pass = 0, shown = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string text =
        corpus[i].contains("hex") ? FromHex(corpus[i]["hex"]) : corpus[i]["t"].get<std::string>();
    std::vector<int32_t> want;
    std::istringstream ss(ids[i].get<std::string>());
    for (int v; ss >> v;) want.push_back(v);
    const auto got = tok->Encode(text, opt);
    if (got == want) {
      ++pass;
    } else if (shown++ < 8) {
      std::string g, e;
      for (int32_t id : got) g += " " + std::to_string(id);
      for (int32_t id : want) e += " " + std::to_string(id);
      ADD_FAILURE() << name << " text " << i << " \"" << EscapeForDisplay(text, 100) << "\"\n  want"
                    << e << "\n  got " << g;
    }
    if (roundtrip[i] == '1') {
      ++rt_checked;
      const std::string back = tok->Decode(got, /*skip_special=*/false);
      if (back == ReferenceText(text))
        ++rt_pass;
      else if (shown++ < 8)
        ADD_FAILURE() << name << " round trip " << i << " \"" << EscapeForDisplay(text, 100)
                      << "\" -> \"" << EscapeForDisplay(back, 100) << "\"";
    }
  }
  EXPECT_EQ(pass, static_cast<int>(corpus.size()));
  EXPECT_EQ(rt_pass, rt_checked);
  std::printf("hf %s (%s/%s): ids %d/%zu, round trip %d/%d\n", name.c_str(), info.model.c_str(),
              info.pre.c_str(), pass, corpus.size(), rt_pass, rt_checked);
  // BOS as the tokenizer's own settings add it.
  const auto with_special = ref["hello_with_special"].get<std::vector<int32_t>>();
  EXPECT_EQ(tok->Encode("Hello", EncodeOptions{true, true}), with_special);
}

INSTANTIATE_TEST_SUITE_P(Hf, HfTest,
                         ::testing::Values("llama2", "llama3", "qwen3", "gemma3", "gptoss"));

}  // namespace
}  // namespace origami
