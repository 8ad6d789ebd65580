// Open-addressing hash tables for the tokenizer's load path: string -> id over views of strings
// that outlive the table, and uint64 -> value, both thin wrappers over one probing core. Linear
// probing, at most half full, no erase; both keep the first value inserted for a key. Prefetch
// hooks let a bulk loader overlap cache misses.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace origami {

// A cheap hash for short byte strings (token texts): 8 bytes at a time, then a final mix.
inline uint64_t HashBytes(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
  }
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 29;
  return h;
}

namespace flat_hash_internal {

inline void Prefetch(const void* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p);
#else
  (void)p;
#endif
}

// The core both maps below share: a power-of-two array of slots kept at most half full, searched by
// linear probing from `hash & mask`, never erased from. `Policy` says how a slot holds its key:
//   using Key;                                      // what lookups pass, by value (it is small)
//   static Key KeyOf(const Slot&);
//   static uint64_t Hash(Key);
//   static bool IsEmpty(const Slot&);
//   static bool Matches(const Slot&, Key);          // Claim asks it of full slots only
//   static constexpr bool kMatchFirst;              // Find tests Matches before IsEmpty (one
//                                                   // test less per hit), for maps where no key
//                                                   // looked up can match an empty slot
// Everything is inline and resolved at compile time, so the maps probe as hand-written loops would.
template <typename Slot, typename Policy>
class ProbeTable {
 public:
  using Key = typename Policy::Key;

  // Room for n keys without rehashing.
  void Reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    if (cap <= slots_.size()) return;
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    size_ = 0;
    for (const Slot& e : old) {
      if (Policy::IsEmpty(e)) continue;
      const Key key = Policy::KeyOf(e);
      if (Slot* s = Claim(key, Policy::Hash(key))) *s = e;
    }
  }
  // The empty slot `key` belongs in, already counted in size(), for the caller to fill; nullptr
  // when `key` is present (its first value stays). `hash` is Policy::Hash(key); it is recomputed
  // after growth, as the maps always did.
  Slot* Claim(Key key, uint64_t hash) {
    if (2 * (size_ + 1) > slots_.size()) {
      Reserve(2 * (size_ + 1));
      hash = Policy::Hash(key);
    }
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      Slot& e = slots_[i];
      if (Policy::IsEmpty(e)) {
        ++size_;
        return &e;
      }
      if (Policy::Matches(e, key)) return nullptr;
    }
  }
  // found(slot) for the slot holding `key`, else `missing`. Handing back the result rather than a
  // Slot* keeps the loop's returns as direct as a hand-written map's: returning a Slot* cost a
  // reload per hit, 1.5% more instructions in Unigram encoding (cachegrind).
  template <typename R, typename Found>
  R Find(Key key, uint64_t hash, R missing, Found found) const {
    if (slots_.empty()) return missing;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& e = slots_[i];
      if constexpr (Policy::kMatchFirst) {
        if (Policy::Matches(e, key)) return found(e);
        if (Policy::IsEmpty(e)) return missing;
      } else {
        if (Policy::IsEmpty(e)) return missing;
        if (Policy::Matches(e, key)) return found(e);
      }
    }
  }
  // The first slot probed for `hash` (nullptr before the first insert or Reserve): what a bulk
  // loader prefetches.
  const Slot* Home(uint64_t hash) const { return slots_.empty() ? nullptr : &slots_[hash & mask_]; }
  size_t size() const { return size_; }

 private:
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

}  // namespace flat_hash_internal

// String -> id over views of strings that outlive it. Insert keeps the first id of a string.
class StringIdMap {
 public:
  // Room for n strings without rehashing.
  void Reserve(size_t n) { table_.Reserve(n); }
  // Returns false (and keeps the old id) when `s` is already present. `hash` is HashBytes(s).
  bool Insert(std::string_view s, int32_t id) { return Insert(s, id, HashBytes(s)); }
  bool Insert(std::string_view s, int32_t id, uint64_t hash) {
    Slot* e = table_.Claim(s, hash);
    if (!e) return false;
    *e = {s.data(), static_cast<uint32_t>(s.size()), id};
    return true;
  }
  int32_t Find(std::string_view s) const { return Find(s, HashBytes(s)); }
  int32_t Find(std::string_view s, uint64_t hash) const {
    return table_.Find(s, hash, int32_t{-1}, [](const Slot& e) { return e.id; });
  }
  // Loading many keys: start fetching the first slot a key hashes to (step 1), then, once it is
  // in cache, the bytes of the string stored there (step 2), so that Find waits less.
  void PrefetchSlot(uint64_t hash) const {
    if (const Slot* e = table_.Home(hash)) flat_hash_internal::Prefetch(e);
  }
  void PrefetchText(uint64_t hash) const {
    const Slot* e = table_.Home(hash);
    if (e && e->id >= 0) flat_hash_internal::Prefetch(e->data);
  }
  size_t size() const { return table_.size(); }
  bool empty() const { return table_.size() == 0; }

 private:
  struct Slot {
    const char* data = nullptr;
    uint32_t len = 0;
    int32_t id = -1;  // -1: empty
  };
  struct Policy {
    using Key = std::string_view;
    static constexpr bool kMatchFirst = false;  // "" matches an empty slot
    static Key KeyOf(const Slot& e) { return Key(e.data, e.len); }
    static uint64_t Hash(Key s) { return HashBytes(s); }
    static bool IsEmpty(const Slot& e) { return e.id < 0; }
    static bool Matches(const Slot& e, Key s) {
      return e.len == s.size() && (s.empty() || std::memcmp(e.data, s.data(), s.size()) == 0);
    }
  };
  flat_hash_internal::ProbeTable<Slot, Policy> table_;
};

// uint64 key -> T. The all-ones key is reserved as "empty". Insert keeps the first value of a key.
template <typename T>
class U64Map {
 public:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  // Room for n keys without rehashing.
  void Reserve(size_t n) { table_.Reserve(n); }
  bool Insert(uint64_t key, const T& value) {
    Slot* e = table_.Claim(key, Policy::Hash(key));
    if (!e) return false;
    *e = {key, value};
    return true;
  }
  // Loading many keys: start fetching the slot `key` hashes to.
  void PrefetchSlot(uint64_t key) const {
    if (const Slot* e = table_.Home(Policy::Hash(key))) flat_hash_internal::Prefetch(e);
  }
  // nullptr when absent.
  const T* Find(uint64_t key) const {
    if (key == kEmpty) return nullptr;
    return table_.Find(key, Policy::Hash(key), static_cast<const T*>(nullptr),
                       [](const Slot& e) { return &e.value; });
  }
  size_t size() const { return table_.size(); }
  bool empty() const { return table_.size() == 0; }

 private:
  struct Slot {
    uint64_t key = kEmpty;
    T value{};
  };
  struct Policy {
    using Key = uint64_t;
    static constexpr bool kMatchFirst = true;  // Find returns before looking up kEmpty
    static Key KeyOf(const Slot& e) { return e.key; }
    static uint64_t Hash(Key key) {
      const uint64_t h = key * 0x9E3779B97F4A7C15ull;
      return h ^ (h >> 29);
    }
    static bool IsEmpty(const Slot& e) { return e.key == kEmpty; }
    static bool Matches(const Slot& e, Key key) { return e.key == key; }
  };
  flat_hash_internal::ProbeTable<Slot, Policy> table_;
};

}  // namespace origami
