// Public tokenizer API: text <-> token ids for the vocabularies GGUF files carry (SentencePiece
// BPE, byte-level BPE, WordPiece, Unigram), with ids equal to the model's reference (Hugging Face)
// tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"

namespace origami {

enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct EncodeOptions {
  bool add_special =
      true;  // add BOS/EOS (or CLS/SEP) as the vocabulary's add_bos/add_eos flags say
  bool parse_special = false;  // recognize special/control token strings in the text
};

namespace tok {
struct Vocab;
class Model;
}  // namespace tok

class Tokenizer {
 public:
  // Reads the tokenizer.ggml.* metadata. Throws origami::Error on bad or unsupported metadata.
  static std::unique_ptr<Tokenizer> FromGguf(const gguf::File& f);
  virtual ~Tokenizer();

  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& opt = {}) const;
  // The bytes this token contributes when decoded (byte tokens -> the byte; "▁" -> space), with no
  // leading-space stripping. Control tokens give their text.
  std::string TokenToPiece(int32_t id) const;
  // Concatenated pieces; with skip_special, control tokens are left out. For SentencePiece
  // vocabularies with a space prefix, the space the encoder added before the first word is removed.
  std::string Decode(const std::vector<int32_t>& ids, bool skip_special = true) const;
  const std::string& TokenText(int32_t id) const;  // the vocabulary string as stored
  int32_t n_vocab() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  bool add_bos() const;
  bool add_eos() const;
  bool IsEog(int32_t id) const;
  TokenType GetTokenType(int32_t id) const;

  // Extras used by the engine and tests.
  int32_t eot_id() const;
  int32_t unk_id() const;
  int32_t TokenId(std::string_view text) const;  // exact vocabulary lookup, -1 if absent
  bool add_space_prefix() const;
  const std::string& model_name() const;  // tokenizer.ggml.model
  const std::string& pre_name() const;    // tokenizer.ggml.pre ("" if absent)
  const tok::Vocab& vocab() const { return *vocab_; }
  // Ill-formed UTF-8 replaced by U+FFFD per maximal subpart (what the reference tokenizers, which
  // take Unicode strings, see). Encode applies it to its input.
  static std::string SanitizeUtf8(std::string_view s);

 protected:
  Tokenizer(std::unique_ptr<tok::Vocab> vocab, std::unique_ptr<tok::Model> model);

 private:
  void CheckId(int32_t id) const;
  std::unique_ptr<tok::Vocab> vocab_;
  std::unique_ptr<tok::Model> model_;
  // Special-token ids by the first byte of their text, longest first (for splitting them off text).
  std::vector<std::vector<int32_t>> specials_by_byte_;
};

// Streaming detokenizer: feeds ids one at a time and returns only complete UTF-8 text, never a
// split sequence. For SentencePiece vocabularies the leading space of the piece right after BOS is
// dropped, as llama2.c's decoder does.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special = true);
  std::string Push(int32_t id);
  std::string Flush();  // whatever remains (incomplete UTF-8 as U+FFFD)

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  int32_t prev_ = -1;
  std::string pending_;  // bytes of an incomplete UTF-8 sequence
};

}  // namespace origami
