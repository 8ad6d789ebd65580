// What Ollama's model-listing endpoints (/api/tags, /api/show, /api/ps) say about the served
// GGUF: a card computed once at start from the file's metadata, and the JSON objects built from it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace origami::gguf {
class File;
}

namespace origami::server {

struct OllamaModelCard {
  std::string name;         // the served alias as Ollama spells it: "stories260K:latest"
  uint64_t size = 0;        // file bytes
  std::string digest;       // sha256 hex of the GGUF header and the file size (see DescribeGguf)
  std::string modified_at;  // the file's mtime, RFC 3339
  std::string path;
  std::string architecture;  // general.architecture; Ollama calls it the family too
  uint64_t parameter_count = 0;
  std::string parameter_size;      // "1.2B", "260K"
  std::string quantization_level;  // "Q4_0", "Q4_K_M", "F16"
  int64_t context_length = 0;      // <arch>.context_length (or the server's, when absent)
  int64_t embedding_length = 0;
  std::string license;
  // Ollama's model_info: every scalar metadata key verbatim, arrays as null (Ollama leaves them
  // out unless asked for verbose output), plus general.parameter_count.
  nlohmann::json model_info = nlohmann::json::object();
  // An embedding model (the GGUF names a pooling type). No embedding backend serves them yet;
  // the flag decides /api/embed's capability error and show's capabilities.
  bool embedding = false;
  // Fill-in-the-middle token texts, all three or none (tokenizer.ggml.fim_*_token_id).
  std::string fim_prefix, fim_suffix, fim_middle;
  bool has_fim() const { return !fim_prefix.empty(); }
};

// Reads the card from an open GGUF. Only the header is hashed (with the file size), so a 100 GB
// file costs no more than a small one; two files with the same header and size share a digest,
// which for GGUF means the same tensors at the same offsets. alias: the served model id.
OllamaModelCard DescribeGguf(const gguf::File& f, const std::string& alias, int64_t server_ctx);

// The name Ollama clients list and send: the alias with ":latest" unless it has a tag.
std::string OllamaName(std::string_view alias);
// True when `requested` names the model served as `alias`: the alias itself or its Ollama name,
// compared without regard to case (Ollama's names are case-insensitive).
bool OllamaNameMatches(std::string_view requested, std::string_view alias);

// Ollama's "1.2B" / "260K" / "7B" / "135.5M" spelling of a parameter count.
std::string HumanParameterCount(uint64_t n);
// The quantization name of a llama.cpp general.file_type value ("" when unknown).
std::string FileTypeName(int64_t file_type);

// details {parent_model, format, family, families, parameter_size, quantization_level}
nlohmann::json OllamaDetails(const OllamaModelCard& c);
// One entry of /api/tags' "models".
nlohmann::json OllamaTagEntry(const OllamaModelCard& c);
// Capabilities for /api/show: completion (or embedding), tools, thinking, insert.
std::vector<std::string> OllamaCapabilities(const OllamaModelCard& c,
                                            std::string_view chat_template);

std::string Sha256Hex(std::string_view data);

}  // namespace origami::server
