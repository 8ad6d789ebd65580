// Reads tokenizer.ggml.* metadata into a Vocab, checking every count and id against the vocabulary.
#include "tokenizer/vocab.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "tokenizer/pretokenizer.h"
#include "util/error.h"

namespace origami::tok {
namespace {

// Per tokenizer.ggml.model: the algorithm and the defaults the reference applies when a flag is
// absent.
struct ModelDefaults {
  std::string_view name;
  ModelKind kind;
  bool add_bos, add_eos, add_space_prefix, byte_fallback, metaspace;
};
constexpr std::array<ModelDefaults, 5> kModels = {{
    {"llama", ModelKind::kSpm, true, false, true, true, true},
    {"gpt2", ModelKind::kBpe, false, false, false, false, false},
    // Gemma 4: BPE over U+2581-joined text with merges and byte fallback, no byte-level mapping.
    {"gemma4", ModelKind::kBpe, true, false, false, true, true},
    {"bert", ModelKind::kWordPiece, true, true, false, false, false},
    {"t5", ModelKind::kUnigram, false, true, true, false, true},
}};

// Control tokens that end generation in the chat formats we know, besides the ids the file names.
constexpr std::array<std::string_view, 16> kEogTexts = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<|return|>",
    "<|call|>",
    "<|END_OF_TURN_TOKEN|>",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
    "<|end_of_turn|>",
    "<turn|>",
};

int32_t ReadId(const gguf::File& f, std::string_view key, int32_t n_vocab) {
  const auto v = f.GetUint(key);
  if (!v) return -1;
  // Files use 0xFFFFFFFF (and sometimes other out-of-range values) for "none"; the reference
  // ignores them.
  if (*v >= static_cast<uint64_t>(n_vocab)) return -1;
  return static_cast<int32_t>(*v);
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::unique_ptr<Vocab> LoadVocab(const gguf::File& f) {
  auto v = std::make_unique<Vocab>();
  const auto model = f.GetString("tokenizer.ggml.model");
  if (!model) Fail("{}: tokenizer.ggml.model is missing", f.path());
  v->model_name = std::string(*model);
  const ModelDefaults* defaults = nullptr;
  for (const auto& m : kModels)
    if (m.name == *model) defaults = &m;
  if (!defaults)
    FailKind(ErrorKind::kUnsupported, "{}: tokenizer model '{}' is not supported", f.path(),
             *model);
  v->kind = defaults->kind;
  v->pre_name = std::string(f.GetString("tokenizer.ggml.pre").value_or(""));

  const gguf::Value* tokens = f.GetArray("tokenizer.ggml.tokens", gguf::ValueType::kString);
  if (!tokens || tokens->strings.empty())
    Fail("{}: tokenizer.ggml.tokens is missing or empty", f.path());
  if (tokens->strings.size() > static_cast<size_t>(INT32_MAX / 2))
    Fail("{}: tokenizer.ggml.tokens has {} entries", f.path(), tokens->strings.size());
  const int32_t n = static_cast<int32_t>(tokens->strings.size());
  v->text.reserve(n);
  for (auto s : tokens->strings) v->text.emplace_back(s);

  v->score = f.GetFloatArray("tokenizer.ggml.scores");
  if (v->score.empty()) v->score.assign(n, 0.0f);
  if (static_cast<int32_t>(v->score.size()) != n)
    Fail("{}: tokenizer.ggml.scores has {} entries for {} tokens", f.path(), v->score.size(), n);

  const std::vector<int32_t> types = f.GetInt32Array("tokenizer.ggml.token_type");
  if (!types.empty() && static_cast<int32_t>(types.size()) != n)
    Fail("{}: tokenizer.ggml.token_type has {} entries for {} tokens", f.path(), types.size(), n);
  v->type.assign(n, TokenType::kNormal);
  for (int32_t i = 0; i < static_cast<int32_t>(types.size()); ++i) {
    if (types[i] < 0 || types[i] > 6) Fail("{}: token {} has type {}", f.path(), i, types[i]);
    v->type[i] = static_cast<TokenType>(types[i]);
  }

  {
    // The table is a few MiB, hit at random: each slot is prefetched some inserts ahead.
    v->to_id.Reserve(static_cast<size_t>(n));
    std::vector<uint64_t> hash(n);
    for (int32_t i = 0; i < n; ++i) hash[i] = HashBytes(v->text[i]);
    constexpr int32_t kAhead = 16;
    for (int32_t i = 0; i < n; ++i) {
      if (i + kAhead < n) v->to_id.PrefetchSlot(hash[i + kAhead]);
      v->to_id.Insert(std::string_view(v->text[i]), i, hash[i]);  // first id wins
    }
  }

  std::fill(std::begin(v->byte_token), std::end(v->byte_token), -1);
  for (int32_t i = 0; i < n; ++i) {
    const std::string& t = v->text[i];
    if (v->type[i] == TokenType::kByte && t.size() == 6 && t.compare(0, 3, "<0x") == 0 &&
        t[5] == '>') {
      const int hi = HexVal(t[3]), lo = HexVal(t[4]);
      if (hi >= 0 && lo >= 0 && v->byte_token[hi * 16 + lo] < 0) v->byte_token[hi * 16 + lo] = i;
    }
  }

  if (const gguf::Value* merges = f.GetArray("tokenizer.ggml.merges", gguf::ValueType::kString)) {
    v->merges.Reserve(merges->strings.size());
    // Three vocabulary lookups and one insert per merge, all at random in tables of several MiB:
    // done a batch at a time, with every table access of the batch prefetched before it is made.
    const std::vector<std::string_view>& all = merges->strings;
    constexpr size_t kBatch = 32;
    struct Pending {
      std::string_view part[3];  // left, right, and their concatenation
      uint64_t hash[3];
      uint64_t key;
      int32_t rank, result;
    };
    Pending batch[kBatch];
    std::string joined;  // the concatenations of the batch
    for (size_t base = 0; base < all.size(); base += kBatch) {
      const size_t end = std::min(all.size(), base + kBatch);
      size_t count = 0;
      joined.clear();
      size_t joined_at[kBatch];
      for (size_t i = base; i < end; ++i) {
        const std::string_view m = all[i];
        const size_t sp = m.find(' ', 1);
        if (sp == std::string_view::npos) continue;  // malformed merge: it can never fire
        Pending& p = batch[count];
        p.rank = static_cast<int32_t>(i);
        p.part[0] = m.substr(0, sp);
        p.part[1] = m.substr(sp + 1);
        joined_at[count++] = joined.size();
        joined.append(p.part[0]);
        joined.append(p.part[1]);
      }
      for (size_t k = 0; k < count; ++k) {
        Pending& p = batch[k];
        p.part[2] = std::string_view(joined).substr(joined_at[k], p.part[0].size() + p.part[1].size());
        for (int s = 0; s < 3; ++s) {
          p.hash[s] = HashBytes(p.part[s]);
          v->to_id.PrefetchSlot(p.hash[s]);
        }
      }
      for (size_t k = 0; k < count; ++k)
        for (int s = 0; s < 3; ++s) v->to_id.PrefetchText(batch[k].hash[s]);
      size_t kept = 0;
      for (size_t k = 0; k < count; ++k) {
        Pending& p = batch[k];
        const int32_t a = v->to_id.Find(p.part[0], p.hash[0]), b = v->to_id.Find(p.part[1], p.hash[1]);
        const int32_t c = a < 0 || b < 0 ? -1 : v->to_id.Find(p.part[2], p.hash[2]);
        if (c < 0) continue;
        Pending& q = batch[kept++];  // kept <= k: compacting in place keeps the rank order
        q.key = Vocab::PairKey(a, b);
        q.rank = p.rank;
        q.result = c;
        v->merges.PrefetchSlot(q.key);
      }
      for (size_t k = 0; k < kept; ++k)  // in rank order: the first (lowest) rank wins
        v->merges.Insert(batch[k].key, Vocab::Merge{batch[k].rank, batch[k].result});
    }
  } else if (v->kind == ModelKind::kBpe) {
    Fail("{}: BPE tokenizer without tokenizer.ggml.merges", f.path());
  }

  v->bos = ReadId(f, "tokenizer.ggml.bos_token_id", n);
  v->eos = ReadId(f, "tokenizer.ggml.eos_token_id", n);
  v->unk = ReadId(f, "tokenizer.ggml.unknown_token_id", n);
  v->eot = ReadId(f, "tokenizer.ggml.eot_token_id", n);
  v->eom = ReadId(f, "tokenizer.ggml.eom_token_id", n);
  v->sep = ReadId(f, "tokenizer.ggml.seperator_token_id", n);
  v->pad = ReadId(f, "tokenizer.ggml.padding_token_id", n);
  v->cls = ReadId(f, "tokenizer.ggml.cls_token_id", n);
  v->mask = ReadId(f, "tokenizer.ggml.mask_token_id", n);
  if (v->kind == ModelKind::kSpm) {
    if (v->unk < 0 && n > 0 && v->type[0] == TokenType::kUnknown) v->unk = 0;
  }
  if (v->kind == ModelKind::kWordPiece) {
    // BERT: the sequence is [CLS] ... [SEP]; the files name them as cls/sep.
    if (v->bos < 0) v->bos = v->cls >= 0 ? v->cls : v->Find("[CLS]");
    if (v->eos < 0) v->eos = v->sep >= 0 ? v->sep : v->Find("[SEP]");
    if (v->unk < 0) v->unk = v->Find("[UNK]");
  }

  v->add_bos = f.GetBool("tokenizer.ggml.add_bos_token").value_or(defaults->add_bos);
  v->add_eos = f.GetBool("tokenizer.ggml.add_eos_token").value_or(defaults->add_eos);
  v->add_sep = f.GetBool("tokenizer.ggml.add_sep_token").value_or(false);
  if (v->kind == ModelKind::kWordPiece && v->add_sep) v->add_eos = true;
  v->add_space_prefix =
      f.GetBool("tokenizer.ggml.add_space_prefix").value_or(defaults->add_space_prefix);
  v->remove_extra_whitespaces =
      f.GetBool("tokenizer.ggml.remove_extra_whitespaces").value_or(false);
  v->byte_fallback = defaults->byte_fallback;
  if (v->kind == ModelKind::kSpm && !v->merges.empty()) {
    // A SentencePiece-style vocabulary that carries merges (converted from a Hugging Face BPE
    // tokenizer.json): merge ranks, not scores, decide, exactly as the reference BPE model does.
    v->kind = ModelKind::kBpe;
  }
  v->spaces_as_metaspace = defaults->metaspace;
  if (v->add_bos && v->bos < 0) v->add_bos = false;
  if (v->add_eos && v->eos < 0) v->add_eos = false;

  if (v->kind == ModelKind::kBpe && !v->spaces_as_metaspace) {
    const PreTokenizerSpec* pre = FindPreTokenizer(v->pre_name);
    if (!pre)
      FailKind(ErrorKind::kUnsupported, "{}: pre-tokenizer '{}' is not supported", f.path(),
               v->pre_name);
    for (auto r : pre->regexes) v->pre_regexes.emplace_back(r);
    v->ignore_merges = pre->ignore_merges;
    v->nfc = pre->nfc;
    if (pre->add_bos && !f.Has("tokenizer.ggml.add_bos_token")) v->add_bos = v->bos >= 0;
  }
  if (const gguf::Value* cm =
          f.GetArray("tokenizer.ggml.precompiled_charsmap", gguf::ValueType::kUint8))
    v->precompiled_charsmap.assign(cm->raw, cm->raw + cm->count);

  for (int32_t id : {v->eos, v->eot, v->eom})
    if (id >= 0) v->eog.push_back(id);
  for (std::string_view t : kEogTexts) {
    const int32_t id = v->Find(t);
    if (id >= 0 && (v->type[id] == TokenType::kControl || v->type[id] == TokenType::kUserDefined))
      v->eog.push_back(id);
  }
  std::sort(v->eog.begin(), v->eog.end());
  v->eog.erase(std::unique(v->eog.begin(), v->eog.end()), v->eog.end());
  return v;
}

}  // namespace origami::tok
