// Fuzz target: arbitrary bytes through four real vocabularies (SentencePiece, byte-level BPE,
// WordPiece, Gemma 4): no crash, ids always inside the vocabulary, decoding gives valid UTF-8.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_fuzz_body.h"

namespace {

struct Vocab {
  std::unique_ptr<origami::gguf::File> file;
  std::unique_ptr<origami::Tokenizer> tok;
};

const std::vector<Vocab>& Vocabs() {
  static const std::vector<Vocab> vocabs = [] {
    const char* env = std::getenv("ORIGAMI_SHARED_DIR");
    const std::string dir = std::string(env ? env : ORIGAMI_SHARED_DIR) + "/tokenizer/";
    std::vector<Vocab> v;
    for (const char* name : {"llama-spm", "llama-bpe", "bert-bge", "gemma-4"}) {
      Vocab x;
      x.file = origami::gguf::File::Open(dir + "ggml-vocab-" + name + ".gguf");
      x.tok = origami::Tokenizer::FromGguf(*x.file);
      v.push_back(std::move(x));
    }
    return v;
  }();
  return vocabs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > 4096) return 0;
  const auto& v = Vocabs();
  const auto& tok = *v[data[0] % v.size()].tok;
  try {
    if (!origami::test::FuzzTokenizerOnce(tok, data + 1, size - 1)) std::abort();
  } catch (const origami::Error&) {
    // A clear error is an acceptable answer to garbage; a crash is not.
  }
  return 0;
}
