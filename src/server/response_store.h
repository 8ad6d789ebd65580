// The in-memory store behind the Responses API's previous_response_id: finished responses and the
// conversation items that led to them, bounded by count, bytes and age, evicted least recently
// used.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>

namespace origami::server {

struct ResponseStoreLimits {
  size_t max_count = 1000;         // responses kept
  size_t max_bytes = 256u << 20;   // their JSON text, summed
  std::chrono::seconds ttl{3600};  // since last stored or read
};

struct StoredResponse {
  nlohmann::json response;  // the response object as the client got it
  nlohmann::json items;     // every input item of the conversation, then this response's output
};

// Thread-safe: HTTP handlers put and read concurrently.
class ResponseStore {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ResponseStore(ResponseStoreLimits limits) : limits_(limits) {}

  // Keeps a response; one larger than max_bytes alone is not kept (a later lookup is a 404).
  void Put(const std::string& id, StoredResponse r, Clock::time_point now = Clock::now());
  // A copy of the entry (it is the most recently used afterwards), or nothing when unknown or
  // expired.
  std::optional<StoredResponse> Get(const std::string& id, Clock::time_point now = Clock::now());
  bool Erase(const std::string& id);
  size_t size() const;
  size_t bytes() const;

 private:
  struct Entry {
    StoredResponse value;
    size_t bytes = 0;
    Clock::time_point expires;
    std::list<std::string>::iterator lru;  // position in lru_ (front: most recent)
  };
  void EraseLocked(std::unordered_map<std::string, Entry>::iterator it);
  void EvictLocked(Clock::time_point now);

  const ResponseStoreLimits limits_;
  mutable std::mutex mu_;
  std::list<std::string> lru_;
  std::unordered_map<std::string, Entry> entries_;
  size_t bytes_ = 0;
};

// One page of GET /v1/responses/{id}/input_items: the items the response was generated from
// (the conversation before its own output, earlier turns of a previous_response_id chain
// included), as {"object":"list","data","first_id","last_id","has_more"}. Query: limit (1-100,
// default 20), order (asc|desc, default desc), after / before (an item id: the page starts after
// it, or ends before it, in that order). Items the client sent without an id get a stable one
// from the response id and their position. Throws ApiError(400) naming a bad parameter.
nlohmann::json InputItemsPage(const StoredResponse& r, const std::string& response_id,
                              const std::multimap<std::string, std::string>& query);

}  // namespace origami::server
