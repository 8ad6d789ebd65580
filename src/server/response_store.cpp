// ResponseStore: an LRU map with a byte budget and a time-to-live (see response_store.h).
#include "server/response_store.h"

namespace origami::server {

void ResponseStore::Put(const std::string& id, StoredResponse r, Clock::time_point now) {
  // The size counted is the JSON text: close to what the entry holds and cheap to explain.
  const size_t bytes = r.response.dump().size() + r.items.dump().size() + id.size();
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(id); it != entries_.end()) EraseLocked(it);
  if (bytes > limits_.max_bytes || limits_.max_count == 0) return;
  lru_.push_front(id);
  entries_.emplace(id, Entry{std::move(r), bytes, now + limits_.ttl, lru_.begin()});
  bytes_ += bytes;
  EvictLocked(now);
}

std::optional<StoredResponse> ResponseStore::Get(const std::string& id, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    EraseLocked(it);
    return std::nullopt;
  }
  it->second.expires = now + limits_.ttl;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.value;
}

bool ResponseStore::Erase(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  EraseLocked(it);
  return true;
}

size_t ResponseStore::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

size_t ResponseStore::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

void ResponseStore::EraseLocked(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

// Expired entries first (from the cold end), then the least recently used until within bounds.
void ResponseStore::EvictLocked(Clock::time_point now) {
  for (auto l = lru_.end(); l != lru_.begin();) {
    --l;
    auto it = entries_.find(*l);
    if (it->second.expires <= now) {
      l = std::next(l);  // EraseLocked removes *l; continue from its successor
      EraseLocked(it);
    }
  }
  while (!lru_.empty() && (entries_.size() > limits_.max_count || bytes_ > limits_.max_bytes))
    EraseLocked(entries_.find(lru_.back()));
}

}  // namespace origami::server
