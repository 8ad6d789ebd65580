// The vocabulary as read from GGUF tokenizer.ggml.* metadata, and the interface every tokenization
// algorithm (SentencePiece BPE, byte-level BPE, WordPiece, Unigram) implements. Internal to the
// layer.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "util/flat_hash.h"
#include "util/utf8.h"

namespace origami::tok {

enum class ModelKind { kSpm, kBpe, kWordPiece, kUnigram };


struct Vocab {
  Vocab() = default;
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  ModelKind kind = ModelKind::kSpm;
  std::string model_name;  // tokenizer.ggml.model
  std::string pre_name;    // tokenizer.ggml.pre

  std::vector<std::string> text;  // [n_vocab]
  std::vector<float> score;       // [n_vocab]; 0 when the file has none
  std::vector<TokenType> type;    // [n_vocab]
  // Views into `text`; built once `text` is final and never touched again. The first id of a
  // duplicated string wins.
  StringIdMap to_id;

  // BPE merges: (left id, right id) -> rank and merged id. Only merges whose three strings are all
  // in the vocabulary are kept (a merge producing an unknown string could never fire).
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  U64Map<Merge> merges;  // keyed by PairKey(left, right)

  int32_t bos = -1, eos = -1, unk = -1, eot = -1, eom = -1, sep = -1, pad = -1, cls = -1, mask = -1;
  bool add_bos = false, add_eos = false, add_sep = false;
  bool add_space_prefix = false;          // SentencePiece: prefix " " to the first text fragment
  bool remove_extra_whitespaces = false;  // Unigram normalizer
  bool byte_fallback = false;             // unknown characters become <0xHH> tokens
  bool spaces_as_metaspace = false;       // replace " " by U+2581 before the model (SPM, gemma4)
  bool ignore_merges = false;            // BPE: a pre-token that is itself a token is emitted whole
  bool nfc = false;                      // normalize text fragments to NFC before the model
  std::vector<std::string> pre_regexes;  // pre-tokenizer split patterns, applied in sequence
  std::vector<uint8_t> precompiled_charsmap;  // Unigram normalizer (SentencePiece format)

  int32_t byte_token[256];   // <0xHH> token ids (-1 when absent)
  std::vector<int32_t> eog;  // end-of-generation ids, sorted

  int32_t Find(std::string_view s) const { return to_id.Find(s); }
  int32_t n_vocab() const { return static_cast<int32_t>(text.size()); }
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
};

std::unique_ptr<Vocab> LoadVocab(const gguf::File& f);

// One tokenization algorithm working on a fragment of plain text (special tokens already split
// off).
class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of `text`. `first` is true for the first fragment of the input or a fragment
  // right after a special token (SentencePiece puts its space prefix there).
  virtual void Encode(std::string_view text, bool first, std::vector<int32_t>& out) const = 0;
  // The decoded bytes of one non-special token.
  virtual std::string Piece(int32_t id) const = 0;
};

std::unique_ptr<Model> MakeSpmModel(const Vocab& v);
std::unique_ptr<Model> MakeBpeModel(const Vocab& v);
std::unique_ptr<Model> MakeWordPieceModel(const Vocab& v);
std::unique_ptr<Model> MakeUnigramModel(const Vocab& v);

// UTF-8 helpers shared by the models.
// Length of the UTF-8 sequence at s[i], 1 for an invalid or truncated sequence.
size_t Utf8CharLen(std::string_view s, size_t i);
// Decodes the code point at s[i] and advances i; invalid bytes give U+FFFD and advance by one.
uint32_t NextCodepoint(std::string_view s, size_t& i);

inline constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

}  // namespace origami::tok
