// --lora FILE[:SCALE]: parsing and loading.
#include "cli/lora_flags.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <string_view>

#include "model/model.h"
#include "util/error.h"

namespace origami::cli {

namespace {

struct LoraFlag {
  std::string path;
  float scale = 1.0f;
};

// FILE or FILE:SCALE. The text after the last ':' is the scale when it reads as a number (and the
// whole text names no file), so a path that itself holds a ':' still works without a scale.
bool Exists(const std::string& path) {
  std::error_code ec;  // the non-throwing form: a path we may not stat is just "not there"
  return std::filesystem::exists(path, ec);
}

LoraFlag ParseLora(const std::string& s) {
  LoraFlag f{s, 1.0f};
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos && !Exists(s)) {
    const std::string_view tail = std::string_view(s).substr(colon + 1);
    float v = 0;
    const auto [end, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), v);
    if (!tail.empty() && ec == std::errc() && end == tail.data() + tail.size())
      f = {s.substr(0, colon), v};
    else if (Exists(s.substr(0, colon)))
      Fail("--lora '{}': '{}' is not a scale (FILE[:SCALE], e.g. adapter.gguf:0.5)", s, tail);
  }
  if (f.path.empty()) Fail("--lora '{}': no file named", s);
  return f;
}

}  // namespace

void AddLoraOption(CLI::App& sub, std::vector<std::string>& loras) {
  sub.add_option(
         "--lora", loras,
         "LoRA adapter (GGUF, as llama.cpp's convert_lora_to_gguf.py writes it) with an optional "
         "scale, FILE[:SCALE] (default 1); repeat to sum several")
      ->expected(1)  // one value per --lora, so `--lora a.gguf prompt` never takes the prompt
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

void LoadAdapters(Model& model, const std::vector<std::string>& loras) {
  for (const std::string& s : loras) {
    const LoraFlag f = ParseLora(s);
    auto adapter = LoraAdapter::Open(f.path, model.spec());
    int64_t rank = 0;
    for (const auto& p : adapter->pairs()) rank = std::max(rank, p.rank);
    std::fprintf(stderr, "lora:       %s: %zu matrices, rank %lld, alpha %g, scale %g (%.1f KiB)\n",
                 f.path.c_str(), adapter->pairs().size(), static_cast<long long>(rank),
                 adapter->alpha(), f.scale, adapter->bytes() / 1024.0);
    model.AddAdapter(std::move(adapter), f.scale);
  }
}

}  // namespace origami::cli
