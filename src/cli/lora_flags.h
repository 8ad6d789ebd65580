// The --lora FILE[:SCALE] flag of run, chat, bench and serve, and loading what it names onto a
// model.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace origami {
class Model;
}  // namespace origami

namespace origami::cli {

// --lora FILE[:SCALE], repeatable; adapters sum.
void AddLoraOption(CLI::App& sub, std::vector<std::string>& loras);

// Opens each adapter, checks it against the model and adds it at its scale (default 1). Prints one
// "lora: ..." line per adapter to stderr. Call after Model::Open and before the memory plan (which
// counts the adapters) and any decoding. Throws origami::Error naming the flag or the file.
void LoadAdapters(Model& model, const std::vector<std::string>& loras);

}  // namespace origami::cli
