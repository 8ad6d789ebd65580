// StopFilter: holds back generated text that may be the start of a stop string, so a stop string
// is never sent to the client, even when it arrives split over several tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace origami::server {

class StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  // Adds a piece of text; returns what is now safe to emit. After a stop string is found,
  // returns the text before it and stopped() is true (later pieces are dropped).
  std::string Push(std::string_view piece);
  // The text still held back (at the end of generation, when no stop string completed).
  std::string Flush();
  bool stopped() const { return stopped_; }
  // The stop string that ended the text (Anthropic reports it as stop_sequence).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  std::string matched_;
  bool stopped_ = false;
};

}  // namespace origami::server
