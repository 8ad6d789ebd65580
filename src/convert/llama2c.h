// Conversion of llama2.c checkpoints (legacy "version 0" .bin + tokenizer.bin) to GGUF, so they
// run through the same path as every other model.
#pragma once

#include <string>

namespace origami {

struct Llama2cConvertOptions {
  std::string checkpoint;  // model .bin
  std::string tokenizer;   // tokenizer .bin
  std::string output;      // .gguf to write
  std::string name;        // general.name (default: checkpoint file name)
};

// Throws origami::Error naming the field and offset on malformed input.
void ConvertLlama2c(const Llama2cConvertOptions& opt);

}  // namespace origami
