// The architecture table. Adding a family is one row here and one small file in arch/.
#include "model/arch/registry.h"

#include <string>

namespace origami {

namespace {
constexpr ArchEntry kArchs[] = {
    {"llama", BuildLlama},         {"qwen2", BuildQwen2},   {"qwen3", BuildQwen3},
    {"qwen3moe", BuildQwen3Moe},   {"gemma3", BuildGemma3}, {"gpt-oss", BuildGptOss},
    {"deepseek2", BuildDeepseek2}, {"bert", BuildBert},
    {"nomic-bert", BuildNomicBert},
};
}  // namespace

const ArchEntry* FindArch(std::string_view name) {
  for (const auto& a : kArchs)
    if (name == a.name) return &a;
  return nullptr;
}

std::string SupportedArchs() {
  std::string s;
  for (const auto& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

}  // namespace origami
