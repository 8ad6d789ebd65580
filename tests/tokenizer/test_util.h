// Helpers shared by the tokenizer tests: file reading and the llama.cpp .inp/.out vector format.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace origami::test {

inline std::string SharedDir() { return ORIGAMI_SHARED_DIR; }
inline std::string DataDir() { return ORIGAMI_TEST_DATA_DIR; }

inline bool ReadFile(const std::string& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

// .inp: inputs each followed by "\n__ggml_vocab_test__\n"; the last piece counts only if non-empty.
inline std::vector<std::string> SplitInputs(const std::string& all) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t k = all.find(sep, pos);
    if (k == std::string::npos) {
      if (pos < all.size()) out.push_back(all.substr(pos));
      break;
    }
    out.push_back(all.substr(pos, k - pos));
    pos = k + sep.size();
  }
  return out;
}

// .out: one line per input, ids separated by spaces.
inline std::vector<std::vector<int32_t>> ParseOutputs(const std::string& all) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream lines(all);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<int32_t> ids;
    std::istringstream ls(line);
    long long v;
    while (ls >> v) ids.push_back(static_cast<int32_t>(v));
    out.push_back(std::move(ids));
  }
  return out;
}

}  // namespace origami::test
