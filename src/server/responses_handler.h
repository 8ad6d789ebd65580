// Handlers for the OpenAI Responses endpoints (called from server.cpp's routes).
#pragma once

#include <map>
#include <string>

#include "server/job.h"

namespace httplib {
struct Response;
}

namespace origami::server {

// POST /v1/responses
void HandleResponsesCreate(ServerState& s, const std::string& body, httplib::Response& res);
// GET /v1/responses/{id}
void HandleResponsesGet(ResponseStore& store, const std::string& id, httplib::Response& res);
// DELETE /v1/responses/{id}
void HandleResponsesDelete(ResponseStore& store, const std::string& id, httplib::Response& res);
// GET /v1/responses/{id}/input_items?limit=&order=&after=&before=
void HandleResponsesInputItems(ResponseStore& store, const std::string& id,
                               const std::multimap<std::string, std::string>& query,
                               httplib::Response& res);

}  // namespace origami::server
