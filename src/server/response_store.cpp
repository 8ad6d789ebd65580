// ResponseStore: an LRU map with a byte budget and a time-to-live (see response_store.h).
#include "server/response_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "server/api.h"

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

namespace {

[[noreturn]] void BadQuery(const std::string& param, const std::string& msg) {
  throw ApiError(400, fmt::format("{}: {}", param, msg), param, "invalid_value",
                 "invalid_request_error");
}

const std::string* QueryValue(const std::multimap<std::string, std::string>& q,
                              const std::string& key) {
  auto it = q.find(key);
  return it == q.end() ? nullptr : &it->second;
}

}  // namespace

nlohmann::json InputItemsPage(const StoredResponse& r, const std::string& response_id,
                              const std::multimap<std::string, std::string>& query) {
  using nlohmann::json;
  int limit = 20;
  if (const std::string* v = QueryValue(query, "limit")) {
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), limit);
    if (ec != std::errc() || end != v->data() + v->size() || limit < 1 || limit > 100)
      BadQuery("limit", "must be an integer from 1 to 100");
  }
  bool desc = true;
  if (const std::string* v = QueryValue(query, "order")) {
    if (*v != "asc" && *v != "desc") BadQuery("order", "must be 'asc' or 'desc'");
    desc = *v == "desc";
  }
  const std::string* after = QueryValue(query, "after");
  const std::string* before = QueryValue(query, "before");
  if (after && before) BadQuery("before", "cannot be given with 'after'");

  const json& all = r.items;
  const size_t n_output = r.response.contains("output") && r.response["output"].is_array()
                              ? r.response["output"].size()
                              : 0;
  const size_t n_input = all.is_array() && all.size() >= n_output ? all.size() - n_output : 0;
  // Items in the asked order, each with an id (and, for messages, a status as OpenAI lists them).
  std::vector<json> items;
  items.reserve(n_input);
  for (size_t k = 0; k < n_input; ++k) {
    const size_t i = desc ? n_input - 1 - k : k;
    json it = all[i].is_object() ? all[i] : json{{"type", "message"}, {"content", all[i]}};
    if (!it.contains("id") || !it["id"].is_string())
      it["id"] = fmt::format("msg_{}_{}", response_id, i);
    if (it.value("type", "message") == "message") {
      // A message given as a plain string is listed as OpenAI stores it: one text part.
      if (it.contains("content") && it["content"].is_string()) {
        const char* part = it.value("role", "user") == "assistant" ? "output_text" : "input_text";
        it["content"] = json::array({{{"type", part}, {"text", it["content"]}}});
      }
      if (!it.contains("status")) it["status"] = "completed";
    }
    items.push_back(std::move(it));
  }
  auto find = [&](const std::string& id, const char* param) {
    for (size_t k = 0; k < items.size(); ++k)
      if (items[k]["id"] == id) return k;
    BadQuery(param, fmt::format("no input item '{}' in response '{}'", id, response_id));
  };
  size_t first = 0, last = items.size();  // [first, last) of items, then cut to limit
  if (after) first = find(*after, "after") + 1;
  if (before) {
    last = find(*before, "before");
    first = last > static_cast<size_t>(limit) ? last - limit : 0;
  }
  const size_t end = std::min(last, first + static_cast<size_t>(limit));
  json data = json::array();
  for (size_t k = first; k < end; ++k) data.push_back(items[k]);
  return {{"object", "list"},
          {"data", data},
          {"first_id", data.empty() ? json(nullptr) : data.front()["id"]},
          {"last_id", data.empty() ? json(nullptr) : data.back()["id"]},
          {"has_more", before ? first > 0 : end < items.size()}};
}

}  // namespace origami::server
