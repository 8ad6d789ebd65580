// Ollama's native API on the server's port: the /api/* routes (called once from server.cpp).
#pragma once

#include <memory>

namespace httplib {
class Server;
}

namespace origami::server {

struct ServerState;
struct OllamaService;
class ModelRegistry;

// Registers /api/version, tags, show, ps, chat, generate, embed, embeddings and the model
// management routes (answered with an error: origami serves local files). Model routes resolve
// the body's model through the registry, with its keep_alive.
void RegisterOllamaRoutes(httplib::Server& http, ModelRegistry& reg);

// The card of a loaded model (digest, sizes, capabilities), computed once when it is loaded.
std::shared_ptr<OllamaService> MakeOllamaService(ServerState& s);

}  // namespace origami::server
