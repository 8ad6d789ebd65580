// The subcommands of the `origami` binary. Each file adds its subcommand to the app and sets
// `action` to what runs when that subcommand is chosen (returning the exit code).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "util/thread_pool.h"

namespace origami::cli {

using origami::KvTypes;
using origami::SamplerParams;

using Action = std::function<int()>;

void AddRunCommand(CLI::App& app, Action& action);
void AddInfoCommand(CLI::App& app, Action& action);
void AddConvertCommand(CLI::App& app, Action& action);
void AddBenchCommand(CLI::App& app, Action& action);
void AddQuantizeCommand(CLI::App& app, Action& action);
void AddServeCommand(CLI::App& app, Action& action);
void AddSynthCommand(CLI::App& app, Action& action);
void AddTokenizeCommand(CLI::App& app, Action& action);  // tokenize and detokenize
void AddChatCommand(CLI::App& app, Action& action);

// Shared option: -t/--threads with the default of one thread per physical core.
void AddThreadsOption(CLI::App& sub, int& threads);
// Shared option: --device (the backend the model runs on; cpu is the one this build has).
void AddDeviceOption(CLI::App& sub, std::string& device);
// The backend `device` names, over `pool`, with the kernel table ORIGAMI_ISA forces (if any).
std::unique_ptr<Backend> OpenBackend(const std::string& device, ThreadPool& pool);
// Rewrites the model's weights into the backend's layouts (unless ORIGAMI_REPACK=0); what was done.
const Model::Prepared& PrepareWeights(Model& model, const Backend& backend);
// Shared KV cache flags: -ctk/--cache-type-k and -ctv/--cache-type-v (f16 by default, as llama.cpp).
struct KvTypeFlags {
  std::string k = "f16", v = "f16";
  KvTypes Resolve() const;  // parsed; throws origami::Error naming the flag
};
void AddKvTypeOptions(CLI::App& sub, KvTypeFlags& flags);
// Shared sampling flags in llama.cpp spelling (--temp, --top-k, --top-p, --min-p, ...).
void AddSamplingOptions(CLI::App* sub, SamplerParams& s);

}  // namespace origami::cli
