// The table of architecture families: general.architecture -> the function that builds its spec.
#pragma once

#include <string_view>

#include "model/model.h"

namespace origami {

using ArchBuilder = void (*)(const gguf::File& f, DecoderSpec& spec);

struct ArchEntry {
  const char* name;
  ArchBuilder build;
};

// nullptr when the architecture is not supported.
const ArchEntry* FindArch(std::string_view name);
// Comma-separated list for error messages.
std::string SupportedArchs();

// One per family file.
void BuildLlama(const gguf::File& f, DecoderSpec& spec);
void BuildQwen2(const gguf::File& f, DecoderSpec& spec);
void BuildQwen3(const gguf::File& f, DecoderSpec& spec);
void BuildQwen3Moe(const gguf::File& f, DecoderSpec& spec);
void BuildGemma3(const gguf::File& f, DecoderSpec& spec);
void BuildGptOss(const gguf::File& f, DecoderSpec& spec);
void BuildDeepseek2(const gguf::File& f, DecoderSpec& spec);
void BuildBert(const gguf::File& f, DecoderSpec& spec);
void BuildNomicBert(const gguf::File& f, DecoderSpec& spec);

}  // namespace origami
