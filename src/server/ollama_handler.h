// Ollama's native API on the server's port: the /api/* routes (called once from server.cpp).
#pragma once

namespace httplib {
class Server;
}

namespace origami::server {

struct ServerState;

// Registers /api/version, tags, show, ps, chat, generate, embed, embeddings and the model
// management routes (answered with an error: origami serves a local file). The card of the
// served model (digest, sizes) is computed here, once.
void RegisterOllamaRoutes(httplib::Server& http, ServerState& s);

}  // namespace origami::server
