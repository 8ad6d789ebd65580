// The /v1/responses handlers: a Responses body runs as a chat job (responses_api.cpp translates),
// answered as one response object or as the Responses SSE events; finished responses are kept in
// ServerState::responses for previous_response_id, GET and DELETE.
#include "server/responses_handler.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>

#include "server/responses_api.h"
#include "util/error.h"

namespace origami::server {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

void SendError(httplib::Response& res, const ApiError& e) {
  if (e.status == 503) SetRetryAfter(res, e.retry_after_s);
  res.status = e.status;
  res.set_content(DumpJson(e.Body()), "application/json");
}

// The chat path names its own fields; a Responses client sent `input` and `text.format`.
ApiError AsResponsesError(const ApiError& e) {
  if (e.param == "messages") return ApiError(e.status, e.what(), "input", e.code, e.type);
  if (e.param == "response_format")
    return ApiError(e.status, e.what(), "text.format", e.code, e.type);
  return e;
}

// The chat deltas of a piece of text (plain content when no parser could be made).
std::vector<json> ChatDeltas(Choice& c, const std::string& text, bool finished) {
  std::vector<json> out;
  if (!c.tools) {
    if (!text.empty()) out.push_back({{"content", text}});
    return out;
  }
  out = c.tools->Push(text);
  if (finished)
    for (json& d : c.tools->Finish(c.finish == FinishReason::kLength)) out.push_back(std::move(d));
  return out;
}

json UsageOf(ServerState& s, const Choice& c, const ResponseBuilder& b) {
  // Reasoning tokens are counted by re-tokenizing the reasoning text: the engine does not tag
  // tokens by channel, and the markers around it are not counted.
  int n_reasoning = 0;
  if (!b.reasoning_text().empty()) {
    EncodeOptions eo;
    eo.add_special = false;
    n_reasoning = static_cast<int>(s.tok.Encode(b.reasoning_text(), eo).size());
  }
  return ResponsesUsage(c.n_prompt, c.n_cached, c.n_generated, n_reasoning);
}

void Store(ServerState& s, const ResponsesTranslation& t, const ResponseBuilder& b) {
  if (!t.store) return;
  json items = t.items;
  for (const json& it : b.response()["output"]) items.push_back(it);
  s.responses.Put(b.response()["id"], {b.response(), std::move(items)});
}

std::string Sse(const json& e) {
  return fmt::format("event: {}\ndata: {}\n\n", e["type"].get<std::string>(), DumpJson(e));
}

// How long the non-streamed handler waits before it commits to a 200 and starts keep-alive
// spaces (as json_response.cpp does for chat): a client that hung up is then noticed and its
// sequence freed instead of generating to the limit for nobody.
constexpr auto kWaitBeforeKeepAlive = std::chrono::seconds(10);

// The whole response once generated; the same builder as the stream, fed the whole answer.
json Finished(ServerState& s, Choice& c, const ResponsesTranslation& t, ResponseBuilder& b) {
  for (const json& d : ChatDeltas(c, c.text, true)) b.Push(d);
  b.Finish(FinishReasonOf(c), UsageOf(s, c, b));
  Store(s, t, b);
  return b.response();
}

void SendWhole(ServerState& s, std::shared_ptr<Job> job, std::shared_ptr<ResponsesTranslation> t,
               std::shared_ptr<ResponseBuilder> b, httplib::Response& res) {
  Choice& c = *job->choices[0];
  const auto until = std::chrono::steady_clock::now() + kWaitBeforeKeepAlive;
  while (!c.done && std::chrono::steady_clock::now() < until)
    Pump(c, s.tok, LogprobShape::kNone, milliseconds(100));
  if (c.done) {
    if (c.finish == FinishReason::kError) {
      SendError(res, ApiError(500, "generation failed: " + c.error, "", "server_error"));
      return;
    }
    res.status = 200;
    res.set_content(DumpJson(Finished(s, c, *t, *b)), "application/json");
    return;
  }
  res.set_chunked_content_provider(
      "application/json",
      [&s, job, t, b](size_t, httplib::DataSink& sink) {
        Choice& c = *job->choices[0];
        auto last = std::chrono::steady_clock::now();
        while (!c.done) {
          Pump(c, s.tok, LogprobShape::kNone, milliseconds(100));
          if (std::chrono::steady_clock::now() - last > std::chrono::seconds(1)) {
            if (!sink.write(" ", 1)) {  // JSON's leading whitespace
              job->CancelAll();
              return false;
            }
            last = std::chrono::steady_clock::now();
          }
        }
        // The 200 is sent: a failure now can only be told in the body.
        const std::string text =
            c.finish == FinishReason::kError
                ? DumpJson(ErrorBody(500, "generation failed: " + c.error, "", "server_error"))
                : DumpJson(Finished(s, c, *t, *b));
        if (!sink.write(text.data(), text.size())) return false;
        sink.done();
        return true;
      },
      [job](bool) { job->CancelAll(); });
}

}  // namespace

void HandleResponsesCreate(ServerState& s, const std::string& body, httplib::Response& res) {
  auto t = std::make_shared<ResponsesTranslation>();
  std::shared_ptr<Job> job;
  try {
    *t = TranslateResponsesRequest(body, [&s](const std::string& id) -> std::optional<json> {
      auto r = s.responses.Get(id);
      if (!r) return std::nullopt;
      return std::move(r->items);
    });
    // Always parsed: reasoning becomes its own output item, with or without tools.
    job = StartJob(s, t->chat_body, Endpoint::kChat, true);
  } catch (const ApiError& e) {
    SendError(res, AsResponsesError(e));
    return;
  } catch (const std::exception& e) {
    SendError(res, ApiError(400, e.what()));
    return;
  }
  const std::string id = s.NewId("resp_");
  auto b = std::make_shared<ResponseBuilder>(t->echo, id, job->created, s.opt.model_id);
  if (!t->stream) {
    SendWhole(s, job, t, b, res);
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [&s, job, t, b](size_t, httplib::DataSink& sink) {
        Choice& c = *job->choices[0];
        auto w = [&](const std::vector<json>& events) {
          for (const json& e : events) {
            const std::string x = Sse(e);
            if (!sink.write(x.data(), x.size())) return false;
          }
          return true;
        };
        auto fail = [&] {
          job->CancelAll();
          return false;
        };
        if (!w(b->Start())) return fail();
        auto last = std::chrono::steady_clock::now();
        while (!c.done) {
          for (Delta& d : Pump(c, s.tok, LogprobShape::kNone, milliseconds(100))) {
            for (const json& cd : ChatDeltas(c, d.text, false))
              if (!w(b->Push(cd))) return fail();
            last = std::chrono::steady_clock::now();
          }
          // An SSE comment now and then: a client that went away is noticed during a long prefill.
          if (std::chrono::steady_clock::now() - last > std::chrono::seconds(1)) {
            if (!sink.write(": keep-alive\n\n", 14)) return fail();
            last = std::chrono::steady_clock::now();
          }
        }
        if (c.finish == FinishReason::kError) {
          w(b->Fail("generation failed: " + c.error));
          sink.done();
          return true;
        }
        // A parser that held text back (a possible marker) gives it up now.
        if (c.tools)
          for (const json& cd : c.tools->Finish(c.finish == FinishReason::kLength))
            if (!w(b->Push(cd))) return fail();
        std::vector<json> end = b->Finish(FinishReasonOf(c), UsageOf(s, c, *b));
        Store(s, *t, *b);
        if (!w(end)) return fail();
        sink.done();
        return true;
      },
      [job](bool) { job->CancelAll(); });
}

void HandleResponsesGet(ResponseStore& store, const std::string& id, httplib::Response& res) {
  auto r = store.Get(id);
  if (!r) {
    SendError(res, ApiError(404, fmt::format("Response with id '{}' not found.", id), "", "",
                            "invalid_request_error"));
    return;
  }
  res.status = 200;
  res.set_content(DumpJson(r->response), "application/json");
}

void HandleResponsesDelete(ResponseStore& store, const std::string& id, httplib::Response& res) {
  if (!store.Erase(id)) {
    SendError(res, ApiError(404, fmt::format("Response with id '{}' not found.", id), "", "",
                            "invalid_request_error"));
    return;
  }
  res.status = 200;
  res.set_content(DumpJson({{"id", id}, {"object", "response.deleted"}, {"deleted", true}}),
                  "application/json");
}

void HandleResponsesInputItems(ResponseStore& store, const std::string& id,
                               const std::multimap<std::string, std::string>& query,
                               httplib::Response& res) {
  auto r = store.Get(id);
  if (!r) {
    SendError(res, ApiError(404, fmt::format("Response with id '{}' not found.", id), "", "",
                            "invalid_request_error"));
    return;
  }
  try {
    json page = InputItemsPage(*r, id, query);
    res.status = 200;
    res.set_content(DumpJson(page), "application/json");
  } catch (const ApiError& e) {
    SendError(res, AsResponsesError(e));
  }
}

}  // namespace origami::server
