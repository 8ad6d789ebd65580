// `origami convert`: bring other formats into GGUF (llama2.c checkpoints; Hugging Face tokenizers).
#include <fstream>
#include <iterator>
#include <memory>

#include "cli/commands.h"
#include "gguf/writer.h"
#include "convert/llama2c.h"
#include "convert/hf_convert.h"
#include "util/error.h"

namespace origami::cli {

namespace {

struct ConvertOptions {
  std::string hf_tokenizer;
  std::string tokenizer_config;
  std::string llama2c;
  std::string tokenizer;
  std::string output;
  std::string name;
};

int Convert(const ConvertOptions& o) {
  if (o.output.empty()) Fail("convert: -o/--output is required");
  if (!o.llama2c.empty()) {
    if (o.tokenizer.empty()) Fail("convert --llama2c needs --tokenizer TOKENIZER.bin");
    ConvertLlama2c({o.llama2c, o.tokenizer, o.output, o.name});
    fmt::print(stderr, "wrote {}\n", o.output);
    return 0;
  }
  if (!o.hf_tokenizer.empty()) {
    // A vocabulary-only GGUF: the tokenizer.* keys, no tensors (like llama.cpp's ggml-vocab files).
    auto read = [](const std::string& path) {
      std::ifstream in(path, std::ios::binary);
      if (!in) FailKind(ErrorKind::kIo, "cannot read '{}'", path);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    gguf::Writer w;
    w.SetString("general.architecture", "llama");
    w.SetString("general.name", o.name.empty() ? "tokenizer" : o.name);
    const HfTokenizerInfo info = ConvertHfTokenizer(
        read(o.hf_tokenizer), o.tokenizer_config.empty() ? std::string() : read(o.tokenizer_config), w);
    w.Write(o.output);
    fmt::print(stderr, "wrote {}: {} tokens, model '{}', pre-tokenizer '{}'\n", o.output, info.n_vocab, info.model,
               info.pre);
    return 0;
  }
  Fail("convert: nothing to convert (use --llama2c MODEL.bin --tokenizer TOKENIZER.bin, or --hf-tokenizer tokenizer.json)");
}

}  // namespace

void AddConvertCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<ConvertOptions>();
  CLI::App* sub = app.add_subcommand("convert", "convert a model or tokenizer to GGUF");
  sub->add_option("--hf-tokenizer", o->hf_tokenizer, "Hugging Face tokenizer.json -> a vocabulary-only GGUF");
  sub->add_option("--tokenizer-config", o->tokenizer_config, "tokenizer_config.json (special tokens, chat template)");
  sub->add_option("--llama2c", o->llama2c, "llama2.c checkpoint (.bin)");
  sub->add_option("--tokenizer", o->tokenizer, "llama2.c tokenizer (.bin) for --llama2c");
  sub->add_option("-o,--output", o->output, "GGUF file to write");
  sub->add_option("--name", o->name, "general.name of the output");
  sub->callback([o, &action] { action = [o] { return Convert(*o); }; });
}

}  // namespace origami::cli
