// Table lookups (binary search over sorted generated arrays) and the NFD/NFC algorithms of UAX #15.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <iterator>

#include "tokenizer/vocab.h"

namespace origami::tok {
namespace {
#include "tokenizer/unicode_tables.inc"

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

template <typename T>
const T* FindCp(const T* begin, const T* end, uint32_t cp) {
  const T* it = std::lower_bound(begin, end, cp, [](const T& e, uint32_t c) { return e.cp < c; });
  return it != end && it->cp == cp ? it : nullptr;
}

uint8_t CategoryClass(uint32_t cp) {
  const CatRange* b = std::begin(kCat);
  const CatRange* e = std::end(kCat);
  const CatRange* it =
      std::upper_bound(b, e, cp, [](uint32_t c, const CatRange& r) { return c < r.lo; });
  if (it == b) return 0;
  --it;
  return cp <= it->hi ? it->cls : 0;
}

void DecomposeOne(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (const DecompEntry* d = FindCp(std::begin(kDecomp), std::end(kDecomp), cp)) {
    out.insert(out.end(), kDecompPool + d->offset, kDecompPool + d->offset + d->len);
    return;
  }
  out.push_back(cp);
}

uint32_t Compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const CompEntry* it =
      std::lower_bound(std::begin(kComp), std::end(kComp), std::pair<uint32_t, uint32_t>(a, b),
                       [](const CompEntry& e, const std::pair<uint32_t, uint32_t>& k) {
                         return e.a < k.first || (e.a == k.first && e.b < k.second);
                       });
  if (it != std::end(kComp) && it->a == a && it->b == b) return it->c;
  return 0;
}

}  // namespace

uint8_t CombiningClass(uint32_t cp) {
  const CccEntry* e = FindCp(std::begin(kCcc), std::end(kCcc), cp);
  return e ? e->ccc : 0;
}

std::vector<uint32_t> ToCodepoints(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out.push_back(NextCodepoint(s, i));
  return out;
}

std::string FromCodepoints(const std::vector<uint32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (uint32_t c : cps) AppendUtf8(out, c);
  return out;
}

std::vector<uint32_t> Nfd(const std::vector<uint32_t>& cps) {
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  for (uint32_t c : cps) DecomposeOne(c, out);
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < out.size();) {
    if (CombiningClass(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && CombiningClass(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + i, out.begin() + j,
                     [](uint32_t a, uint32_t b) { return CombiningClass(a) < CombiningClass(b); });
    i = j;
  }
  return out;
}

std::vector<uint32_t> Nfc(const std::vector<uint32_t>& cps) {
  std::vector<uint32_t> d = Nfd(cps);
  if (d.empty()) return d;
  std::vector<uint32_t> out;
  out.reserve(d.size());
  size_t starter = SIZE_MAX;  // index in out of the last starter
  int last_ccc = 0;           // combining class of the last code point appended
  for (uint32_t c : d) {
    const int ccc = CombiningClass(c);
    if (starter != SIZE_MAX) {
      // A character between the starter and c blocks them when it is a starter or not of a lower
      // class.
      const bool adjacent = out.size() - 1 == starter;
      const bool blocked = !adjacent && (last_ccc == 0 || last_ccc >= ccc);
      if (!blocked) {
        if (const uint32_t comp = Compose(out[starter], c)) {
          out[starter] = comp;
          continue;
        }
      }
    }
    if (ccc == 0) starter = out.size();
    out.push_back(c);
    last_ccc = ccc;
  }
  return out;
}

std::string NfcUtf8(std::string_view s) {
  // Fast path: ASCII is already NFC.
  bool ascii = true;
  for (char c : s) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return std::string(s);
  return FromCodepoints(Nfc(ToCodepoints(s)));
}

void AppendLower(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp < 0x80) {
    out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    return;
  }
  if (const LowerEntry* e = FindCp(std::begin(kLower), std::end(kLower), cp)) {
    out.insert(out.end(), kLowerPool + e->offset, kLowerPool + e->offset + e->len);
    return;
  }
  out.push_back(cp);
}

bool IsMark(uint32_t cp) { return CategoryClass(cp) == 1; }
bool IsPunctuation(uint32_t cp) { return CategoryClass(cp) == 2; }
bool IsOther(uint32_t cp) {
  const uint8_t c = CategoryClass(cp);
  return c == 3 || c == 4;
}
bool IsWhiteSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

}  // namespace origami::tok
