// Converts a Hugging Face tokenizer (tokenizer.json + optional tokenizer_config.json) into GGUF
// tokenizer.ggml.* metadata, for `origami convert --hf-tokenizer`.
#pragma once

#include <string>
#include <string_view>

#include "gguf/writer.h"

namespace origami {

struct HfTokenizerInfo {
  std::string model;  // the tokenizer.ggml.model written ("gpt2", "llama")
  std::string pre;    // the tokenizer.ggml.pre written
  int32_t n_vocab = 0;
};

// Parses the JSON texts and adds the tokenizer keys to `w`. `config_json` may be empty.
// Throws origami::Error on malformed JSON or a tokenizer we cannot represent exactly.
HfTokenizerInfo ConvertHfTokenizer(std::string_view tokenizer_json, std::string_view config_json,
                                   gguf::Writer& w);
// Same from files: `dir` holds tokenizer.json and, optionally, tokenizer_config.json.
HfTokenizerInfo ConvertHfTokenizerDir(const std::string& dir, gguf::Writer& w);

}  // namespace origami
