// origami: the command-line entry point. Errors from anywhere below arrive here as origami::Error
// and become one line on stderr and exit code 1.
#include <cstdio>
#include <algorithm>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/environment.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace origami::cli {

void AddThreadsOption(CLI::App& sub, int& threads) {
  threads = ThreadPool::DefaultThreads();
  sub.add_option("-t,--threads", threads, "threads to use (default: physical cores)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
}

void AddDeviceOption(CLI::App& sub, std::string& device) {
  std::string names;
  for (const std::string& n : BackendNames()) names += (names.empty() ? "" : ", ") + n;
  sub.add_option("--device", device, "backend to run on (this build: " + names + ")")->capture_default_str();
}

std::unique_ptr<Backend> OpenBackend(const std::string& device, ThreadPool& pool) {
  return MakeBackend({device, &pool, Env().isa});
}

const Model::Prepared& PrepareWeights(Model& model, const Backend& backend) {
  return Env().repack ? model.PrepareWeights(backend) : model.prepared();
}

KvTypes KvTypeFlags::Resolve() const {
  return {ParseKvType(k, "-ctk/--cache-type-k"), ParseKvType(v, "-ctv/--cache-type-v")};
}

void AddKvTypeOptions(CLI::App& sub, KvTypeFlags& flags) {
  // -ctk / -ctv reach CLI11 as their long forms (see LlamaSpellings).
  sub.add_option("--cache-type-k", flags.k, "KV cache type of K: f16, bf16, q8_0, q4_0 or f32 (exact)")
      ->capture_default_str();
  sub.add_option("--cache-type-v", flags.v, "KV cache type of V: f16, bf16, q8_0, q4_0 or f32 (exact)")
      ->capture_default_str();
}

namespace {
// llama.cpp spells some flags as several letters after one dash (-ctk), which CLI11 reads as a
// bundle of one-letter flags; they are renamed to their long forms before parsing.
std::vector<std::string> LlamaSpellings(int argc, char** argv) {
  static constexpr std::pair<std::string_view, std::string_view> kLong[] = {
      {"-ctk", "--cache-type-k"},
      {"-ctv", "--cache-type-v"},
      {"-md", "--model-draft"},
      {"-td", "--threads-draft"},
      {"-ctkd", "--cache-type-k-draft"},
      {"-ctvd", "--cache-type-v-draft"},
  };
  std::vector<std::string> args(argv, argv + argc);
  for (auto& a : args)
    for (auto [from, to] : kLong)
      if (a == from) a = to;
  return args;
}
}  // namespace

}  // namespace origami::cli

int main(int argc, char** argv) {
  using namespace origami::cli;
  CLI::App app{"origami: run large language models from GGUF files on your own machine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "origami 0.1.0");
  Action action;
  // The command table: one line per subcommand.
  using AddFn = void (*)(CLI::App&, Action&);
  const AddFn commands[] = {
      AddRunCommand,
      AddChatCommand,
      AddInfoCommand,
      AddTokenizeCommand,
      AddConvertCommand,
      AddQuantizeCommand,
      AddBenchCommand,
      AddServeCommand,
      AddSynthCommand,
  };
  for (AddFn add : commands) add(app, action);
  try {
    std::vector<std::string> args = LlamaSpellings(argc, argv);
    std::reverse(args.begin() + 1, args.end());  // CLI11's vector form takes the arguments reversed
    args.erase(args.begin());
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;  // help and --version exit 0; any usage error exits 1
  }
  try {
    return action ? action() : 0;
  } catch (const origami::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
