// Random-weight GGUF models of every supported family, with the GGUF keys and tensor names that
// llama.cpp's converters write, for tests and benchmarks (`origami synth`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace origami {

struct SynthOptions {
  std::string arch;             // llama, mixtral (llama with experts), qwen2, qwen3, qwen3moe, gemma3, gpt-oss
  // tiny (tests: n_embd 64), small (n_embd 1024), or gpt-oss-2g / qwen3moe-2g (benchmarks: the real
  // layer widths with fewer layers, 2-3 GB)
  std::string preset = "tiny";
  std::string type = "F32";     // weight type of the matrices (MXFP4: the experts only, rest F32)
  uint64_t seed = 1;
  // A vocabulary-only GGUF whose tokenizer.* keys are copied; empty: a built-in byte vocabulary
  // (SentencePiece-style: <unk>, <s>, </s> and the 256 byte tokens).
  std::string vocab;
  std::string output;
  // <arch>.pooling_type to write (llama.cpp's numbering: 1 mean, 2 cls, 3 last, 4 rank; -1: no
  // key, a generative model); an embedding model such as Qwen3-Embedding names one.
  int pooling_type = -1;
};

// The architectures WriteSynthModel accepts.
std::vector<std::string> SynthArchs();
// Writes the model; throws origami::Error on a bad option or an I/O failure.
void WriteSynthModel(const SynthOptions& o);

}  // namespace origami
