// `origami convert`: bring other formats into GGUF (llama2.c checkpoints; Hugging Face tokenizers).
#include <memory>

#include "cli/commands.h"
#include "model/llama2c.h"
#include "util/error.h"

namespace origami::cli {

namespace {

struct ConvertOptions {
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
  Fail("convert: nothing to convert (use --llama2c MODEL.bin --tokenizer TOKENIZER.bin)");
}

}  // namespace

void AddConvertCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<ConvertOptions>();
  CLI::App* sub = app.add_subcommand("convert", "convert a model or tokenizer to GGUF");
  sub->add_option("--llama2c", o->llama2c, "llama2.c checkpoint (.bin)");
  sub->add_option("--tokenizer", o->tokenizer, "llama2.c tokenizer (.bin) for --llama2c");
  sub->add_option("-o,--output", o->output, "GGUF file to write");
  sub->add_option("--name", o->name, "general.name of the output");
  sub->callback([o, &action] { action = [o] { return Convert(*o); }; });
}

}  // namespace origami::cli
