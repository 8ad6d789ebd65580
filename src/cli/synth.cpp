// `origami synth --arch ARCH [--preset tiny|small] [--type T] [--seed S] [--vocab V.gguf] -o FILE.gguf`:
// write a random-weight model of a supported family.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "convert/synth.h"

namespace origami::cli {

void AddSynthCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<SynthOptions>();
  CLI::App* sub = app.add_subcommand("synth", "write a random-weight GGUF model of a supported family");
  sub->add_option("--arch", o->arch, "llama, mixtral (llama with experts), qwen2, qwen3, qwen3moe, gemma3, gpt-oss, deepseek2, bert, nomic-bert (encoders)")
      ->required();
  sub->add_option("--preset", o->preset, "tiny (tests) or small (benchmarks); bert, nomic-bert: tiny or bert-base");
  sub->add_option("--type", o->type, "weight type of the matrices (F32, F16, Q8_0, ...; MXFP4: experts only)");
  sub->add_option("--seed", o->seed, "random seed");
  sub->add_option("--vocab", o->vocab, "vocabulary-only GGUF whose tokenizer is copied (default: byte vocabulary)");
  sub->add_option("--pooling-type", o->pooling_type,
                  "write <arch>.pooling_type (1 mean, 2 cls, 3 last: an embedding model; 4 rank: a reranker, bert/nomic-bert with a cls head or qwen3 with a yes/no head)");
  sub->add_option("-o,--output", o->output, "output GGUF")->required();
  sub->callback([o, &action] {
    action = [o] {
      WriteSynthModel(*o);
      std::fprintf(stderr, "wrote %s\n", o->output.c_str());
      return 0;
    };
  });
}

}  // namespace origami::cli
