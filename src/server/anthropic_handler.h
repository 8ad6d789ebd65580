// Handlers for the Anthropic Messages endpoints (called from server.cpp's routes).
#pragma once

#include <string>

#include "server/job.h"

namespace httplib {
struct Response;
}

namespace origami::server {

void HandleAnthropicMessages(ServerState& s, const std::string& body, httplib::Response& res);
void HandleAnthropicCountTokens(ServerState& s, const std::string& body, httplib::Response& res);

}  // namespace origami::server
