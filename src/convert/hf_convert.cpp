// Hugging Face tokenizer.json -> GGUF tokenizer metadata. Byte-level BPE becomes "gpt2" with the
// pre-tokenizer named by matching its Split regex against our table; SentencePiece-style BPE
// (U+2581, byte fallback) becomes "llama" with its merges kept, so ids stay exactly those of the
// merge ranks.
#include "convert/hf_convert.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace origami {
namespace {

using nlohmann::json;

json ParseJson(std::string_view text, const char* what) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    Fail("{}: invalid JSON: {}", what, e.what());
  }
}

// Every object of the normalizer / pre_tokenizer / decoder trees, flattened (Sequence members too).
void Collect(const json& node, std::vector<const json*>& out) {
  if (!node.is_object()) return;
  out.push_back(&node);
  for (const char* k : {"normalizers", "pretokenizers", "decoders"})
    if (node.contains(k) && node[k].is_array())
      for (const auto& c : node[k]) Collect(c, out);
}

bool HasType(const std::vector<const json*>& nodes, std::string_view type) {
  for (const json* n : nodes)
    if (n->value("type", "") == type) return true;
  return false;
}

std::string TokenString(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return {};
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return {};
}

std::string ReadText(const std::string& path, bool required) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    if (required) FailKind(ErrorKind::kIo, "cannot open {}", path);
    return {};
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

HfTokenizerInfo ConvertHfTokenizer(std::string_view tokenizer_json, std::string_view config_json,
                                   gguf::Writer& w) {
  const json tj = ParseJson(tokenizer_json, "tokenizer.json");
  const json cfg =
      config_json.empty() ? json::object() : ParseJson(config_json, "tokenizer_config.json");
  if (!tj.is_object() || !tj.contains("model") || !tj["model"].is_object())
    Fail("tokenizer.json: no model object");
  const json& model = tj["model"];
  const std::string type = model.value("type", "");
  if (type != "BPE")
    FailKind(ErrorKind::kUnsupported, "tokenizer.json: model type '{}' is not supported", type);
  if (!model.contains("vocab") || !model["vocab"].is_object())
    Fail("tokenizer.json: model.vocab is not an object");

  // Vocabulary: model.vocab plus added_tokens (which may extend it); holes become unused pads.
  std::map<int64_t, std::string> by_id;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_integer())
      Fail("tokenizer.json: vocab entry '{}' has no integer id", it.key());
    by_id[it.value().get<int64_t>()] = it.key();
  }
  std::map<int64_t, bool> added;  // id -> special
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
    for (const auto& a : tj["added_tokens"]) {
      if (!a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string())
        Fail("tokenizer.json: malformed added_tokens entry");
      by_id[a["id"].get<int64_t>()] = a["content"].get<std::string>();
      added[a["id"].get<int64_t>()] = a.value("special", false);
    }
  }
  if (by_id.empty() || by_id.begin()->first < 0 || by_id.rbegin()->first >= (int64_t{1} << 24))
    Fail("tokenizer.json: token ids out of range");
  const int32_t n = static_cast<int32_t>(by_id.rbegin()->first + 1);
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n, static_cast<int32_t>(TokenType::kNormal));
  std::map<std::string, int32_t> to_id;
  for (int32_t i = 0; i < n; ++i) {
    auto it = by_id.find(i);
    if (it == by_id.end()) {
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      types[i] = static_cast<int32_t>(TokenType::kUnused);
    } else {
      tokens[i] = it->second;
    }
    to_id.emplace(tokens[i], i);
  }
  const bool byte_fallback = model.value("byte_fallback", false);
  for (int32_t i = 0; i < n; ++i) {
    const std::string& t = tokens[i];
    if (byte_fallback && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>')
      types[i] = static_cast<int32_t>(TokenType::kByte);
    auto a = added.find(i);
    if (a != added.end())
      types[i] = static_cast<int32_t>(a->second ? TokenType::kControl : TokenType::kUserDefined);
  }

  // Merges: either "a b" strings or [a, b] pairs.
  std::vector<std::string> merges;
  if (model.contains("merges") && model["merges"].is_array()) {
    for (const auto& m : model["merges"]) {
      if (m.is_string())
        merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
        merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      else
        Fail("tokenizer.json: malformed merge entry");
    }
  }

  std::vector<const json*> nodes;
  for (const char* k : {"normalizer", "pre_tokenizer", "decoder"})
    if (tj.contains(k)) Collect(tj[k], nodes);

  HfTokenizerInfo info;
  info.n_vocab = n;
  const bool byte_level = HasType(nodes, "ByteLevel");
  bool add_space_prefix = false;
  if (byte_level) {
    info.model = "gpt2";
    // Name the pre-tokenizer by its Split regex.
    std::vector<std::string> regexes;
    for (const json* node : nodes)
      if (node->value("type", "") == "Split" && node->contains("pattern") &&
          (*node)["pattern"].contains("Regex"))
        regexes.push_back((*node)["pattern"]["Regex"].get<std::string>());
    bool byte_level_regex = false;
    for (const json* node : nodes)
      if (node->value("type", "") == "ByteLevel" && node->value("use_regex", false))
        byte_level_regex = true;
    for (std::string_view name : tok::PreTokenizerNames()) {
      const tok::PreTokenizerSpec* spec = tok::FindPreTokenizer(name);
      std::vector<std::string> want(spec->regexes.begin(), spec->regexes.end());
      std::vector<std::string> have = regexes;
      if (byte_level_regex && regexes.empty())
        have.push_back(std::string(tok::FindPreTokenizer("gpt-2")->regexes[0]));
      if (have == want) {
        info.pre = std::string(name);
        break;
      }
    }
    if (info.pre.empty())
      FailKind(ErrorKind::kUnsupported,
               "tokenizer.json: pre-tokenizer regex not in origami's table: {}",
               regexes.empty() ? std::string("(none)") : regexes[0]);
  } else {
    // SentencePiece-style: U+2581 for spaces, optional prepended U+2581 (add_space_prefix).
    info.model = "llama";
    info.pre = "default";
    for (const json* node : nodes) {
      if (node->value("type", "") == "Prepend" && node->value("prepend", "") == "\xE2\x96\x81")
        add_space_prefix = true;
      if (node->value("type", "") == "Metaspace") {
        const std::string scheme = node->value("prepend_scheme", "always");
        add_space_prefix = add_space_prefix || scheme != "never";
      }
    }
  }

  w.SetString("tokenizer.ggml.model", info.model);
  w.SetString("tokenizer.ggml.pre", info.pre);
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetStringArray("tokenizer.ggml.merges", merges);
  if (info.model == "llama") {
    // SentencePiece consumers merge by score: a token made by merge r scores -r, so score order is
    // rank order; tokens no merge makes score lower than every merge.
    std::vector<float> scores(n, -1e9f);
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string& m = merges[r];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) continue;
      auto it = to_id.find(m.substr(0, sp) + m.substr(sp + 1));
      if (it != to_id.end() && scores[it->second] == -1e9f)
        scores[it->second] = -static_cast<float>(r);
    }
    w.SetF32Array("tokenizer.ggml.scores", scores);
    w.SetBool("tokenizer.ggml.add_space_prefix", add_space_prefix);
  }

  auto set_id = [&](const char* key, const std::string& text) {
    if (text.empty()) return;
    auto it = to_id.find(text);
    if (it != to_id.end()) w.SetU32(key, static_cast<uint32_t>(it->second));
  };
  std::string bos = TokenString(cfg, "bos_token"), eos = TokenString(cfg, "eos_token");
  std::string unk = TokenString(cfg, "unk_token");
  if (unk.empty() && model.contains("unk_token") && model["unk_token"].is_string())
    unk = model["unk_token"];
  set_id("tokenizer.ggml.bos_token_id", bos);
  set_id("tokenizer.ggml.eos_token_id", eos);
  set_id("tokenizer.ggml.unknown_token_id", unk);
  set_id("tokenizer.ggml.padding_token_id", TokenString(cfg, "pad_token"));

  // add_bos/add_eos: the config's flags, else what the post-processor template puts around the
  // text.
  bool add_bos = false, add_eos = false;
  if (tj.contains("post_processor") && tj["post_processor"].is_object() &&
      tj["post_processor"].value("type", "") == "TemplateProcessing" &&
      tj["post_processor"].contains("single")) {
    bool seen_seq = false;
    for (const auto& item : tj["post_processor"]["single"]) {
      if (item.contains("Sequence"))
        seen_seq = true;
      else if (item.contains("SpecialToken"))
        (seen_seq ? add_eos : add_bos) = true;
    }
  }
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
    add_bos = cfg["add_bos_token"];
  if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean())
    add_eos = cfg["add_eos_token"];
  w.SetBool("tokenizer.ggml.add_bos_token", add_bos && !bos.empty());
  w.SetBool("tokenizer.ggml.add_eos_token", add_eos && !eos.empty());

  if (cfg.contains("chat_template")) {
    const json& ct = cfg["chat_template"];
    if (ct.is_string()) {
      w.SetString("tokenizer.chat_template", ct.get<std::string>());
    } else if (ct.is_array()) {
      for (const auto& t : ct)
        if (t.value("name", "") == "default" && t.contains("template") && t["template"].is_string())
          w.SetString("tokenizer.chat_template", t["template"].get<std::string>());
    }
  }
  return info;
}

HfTokenizerInfo ConvertHfTokenizerDir(const std::string& dir, gguf::Writer& w) {
  const std::string tj = ReadText(dir + "/tokenizer.json", true);
  const std::string cfg = ReadText(dir + "/tokenizer_config.json", false);
  return ConvertHfTokenizer(tj, cfg, w);
}

}  // namespace origami
