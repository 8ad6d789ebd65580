// Open-addressing hash tables for the tokenizer's load path: string -> id over views of strings
// that outlive the table, and uint64 -> value. Linear probing, at most half full, no erase; both
// keep the first value inserted for a key. Prefetch hooks let a bulk loader overlap cache misses.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
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

// String -> id over views of strings that outlive it (open addressing, linear probing, at most
// half full). Insert keeps the first id of a string.
class StringIdMap {
 public:
  // Room for n strings without rehashing.
  void Reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    if (cap <= slots_.size()) return;
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    size_ = 0;
    for (const Slot& e : old)
      if (e.id >= 0) Insert(std::string_view(e.data, e.len), e.id);
  }
  // Returns false (and keeps the old id) when `s` is already present. `hash` is HashBytes(s).
  bool Insert(std::string_view s, int32_t id) { return Insert(s, id, HashBytes(s)); }
  bool Insert(std::string_view s, int32_t id, uint64_t hash) {
    if (2 * (size_ + 1) > slots_.size()) {
      Reserve(2 * (size_ + 1));
      hash = HashBytes(s);
    }
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      Slot& e = slots_[i];
      if (e.id < 0) {
        e = {s.data(), static_cast<uint32_t>(s.size()), id};
        ++size_;
        return true;
      }
      if (Equal(e, s)) return false;
    }
  }
  int32_t Find(std::string_view s) const { return Find(s, HashBytes(s)); }
  int32_t Find(std::string_view s, uint64_t hash) const {
    if (slots_.empty()) return -1;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& e = slots_[i];
      if (e.id < 0) return -1;
      if (Equal(e, s)) return e.id;
    }
  }
  // Loading many keys: start fetching the first slot a key hashes to (step 1), then, once it is
  // in cache, the bytes of the string stored there (step 2), so that Find waits less.
  void PrefetchSlot(uint64_t hash) const {
#if defined(__GNUC__)
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_]);
#else
    (void)hash;
#endif
  }
  void PrefetchText(uint64_t hash) const {
#if defined(__GNUC__)
    if (slots_.empty()) return;
    const Slot& e = slots_[hash & mask_];
    if (e.id >= 0) __builtin_prefetch(e.data);
#else
    (void)hash;
#endif
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  struct Slot {
    const char* data = nullptr;
    uint32_t len = 0;
    int32_t id = -1;
  };
  static bool Equal(const Slot& e, std::string_view s) {
    return e.len == s.size() && (s.empty() || std::memcmp(e.data, s.data(), s.size()) == 0);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

// uint64 key -> T (open addressing, linear probing, at most half full). The all-ones key is
// reserved as "empty". Insert keeps the first value of a key.
template <typename T>
class U64Map {
 public:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  // Room for n keys without rehashing.
  void Reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    if (cap <= slots_.size()) return;
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    size_ = 0;
    for (const Slot& e : old)
      if (e.key != kEmpty) Insert(e.key, e.value);
  }
  bool Insert(uint64_t key, const T& value) {
    if (2 * (size_ + 1) > slots_.size()) Reserve(2 * (size_ + 1));
    for (size_t i = Slot0(key);; i = (i + 1) & mask_) {
      Slot& e = slots_[i];
      if (e.key == kEmpty) {
        e = {key, value};
        ++size_;
        return true;
      }
      if (e.key == key) return false;
    }
  }
  // Loading many keys: start fetching the slot `key` hashes to.
  void PrefetchSlot(uint64_t key) const {
#if defined(__GNUC__)
    if (!slots_.empty()) __builtin_prefetch(&slots_[Slot0(key)]);
#else
    (void)key;
#endif
  }
  // nullptr when absent.
  const T* Find(uint64_t key) const {
    if (slots_.empty() || key == kEmpty) return nullptr;
    for (size_t i = Slot0(key);; i = (i + 1) & mask_) {
      const Slot& e = slots_[i];
      if (e.key == key) return &e.value;
      if (e.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  struct Slot {
    uint64_t key = kEmpty;
    T value{};
  };
  size_t Slot0(uint64_t key) const {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(h ^ (h >> 29)) & mask_;
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

}  // namespace origami
