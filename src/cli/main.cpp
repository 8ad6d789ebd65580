// origami: the command-line entry point. Errors from anywhere below arrive here as origami::Error
// and become one line on stderr and exit code 1.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace origami::cli {

void AddThreadsOption(CLI::App& sub, int& threads) {
  threads = ThreadPool::DefaultThreads();
  sub.add_option("-t,--threads", threads, "threads to use (default: physical cores)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
}

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
    app.parse(argc, argv);
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
