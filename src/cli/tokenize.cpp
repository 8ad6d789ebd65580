// `origami tokenize` and `origami detokenize`: the model's tokenizer on its own.
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/utf8.h"

namespace origami::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  bool text_given = false;
  bool json = false;
  bool no_bos = false;
  bool no_special = false;
  bool parse_special = false;
  bool ids_only = false;
};

std::string ReadStdin() {
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

int Tokenize(const TokenizeOptions& o) {
  auto f = gguf::File::Open(o.model);
  auto tok = Tokenizer::FromGguf(*f);
  const std::string text = o.text_given ? o.text : ReadStdin();
  EncodeOptions eo;
  eo.add_special = !o.no_special;
  eo.parse_special = o.parse_special;
  std::vector<int32_t> ids = tok->Encode(text, eo);
  if (o.no_bos && !o.no_special && !ids.empty() && ids.front() == tok->bos_id()) ids.erase(ids.begin());
  if (o.json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(Tokenizer::SanitizeUtf8(tok->TokenText(id)));
    nlohmann::json j = {{"ids", ids}, {"pieces", pieces}, {"n_tokens", ids.size()}};
    std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (o.ids_only) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
    std::puts(s.c_str());
  } else {
    for (int32_t id : ids) fmt::print("{:>7} '{}'\n", id, EscapeForDisplay(tok->TokenText(id), 200));
    fmt::print(stderr, "{} tokens\n", ids.size());
  }
  return 0;
}

struct DetokenizeOptions {
  std::string model;
  std::vector<std::string> ids;
  bool keep_special = false;
};

int Detokenize(const DetokenizeOptions& o) {
  auto f = gguf::File::Open(o.model);
  auto tok = Tokenizer::FromGguf(*f);
  std::vector<std::string> words = o.ids;
  if (words.empty()) {
    std::istringstream in(ReadStdin());
    for (std::string w; in >> w;) words.push_back(w);
  }
  std::vector<int32_t> ids;
  for (std::string w : words) {
    for (char& c : w)
      if (c == ',' || c == '[' || c == ']') c = ' ';
    std::istringstream in(w);
    for (std::string part; in >> part;) {
      size_t used = 0;
      long v = -1;
      try {
        v = std::stol(part, &used);
      } catch (const std::exception&) {
      }
      if (used != part.size() || v < 0 || v >= tok->n_vocab())
        Fail("detokenize: '{}' is not a token id of this vocabulary (0..{})", part, tok->n_vocab() - 1);
      ids.push_back(static_cast<int32_t>(v));
    }
  }
  const std::string text = tok->Decode(ids, !o.keep_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace

void AddTokenizeCommand(CLI::App& app, Action& action) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* sub = app.add_subcommand("tokenize", "show the token ids and pieces of a text (stdin if no text)");
  sub->add_option("-m,--model", o->model, "model or vocabulary GGUF")->required();
  sub->add_option("text", o->text, "text to tokenize")->each([o](const std::string&) { o->text_given = true; });
  sub->add_flag("--json", o->json, "print {ids, pieces} as JSON");
  sub->add_flag("--ids", o->ids_only, "print only the ids, space-separated");
  sub->add_flag("--no-bos", o->no_bos, "do not add BOS");
  sub->add_flag("--no-special", o->no_special, "add no BOS/EOS/CLS/SEP at all");
  sub->add_flag("--parse-special", o->parse_special, "recognize special-token strings in the text");
  sub->callback([o, &action] { action = [o] { return Tokenize(*o); }; });

  auto d = std::make_shared<DetokenizeOptions>();
  CLI::App* det = app.add_subcommand("detokenize", "turn token ids back into text (stdin if none given)");
  det->add_option("-m,--model", d->model, "model or vocabulary GGUF")->required();
  det->add_option("ids", d->ids, "token ids (space or comma separated)");
  det->add_flag("--special", d->keep_special, "keep special tokens in the text");
  det->callback([d, &action] { action = [d] { return Detokenize(*d); }; });
}

}  // namespace origami::cli
