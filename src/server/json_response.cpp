// The non-streamed answer: one JSON body (chat.completion or text_completion) written when every
// choice has finished.
#include <httplib.h>

#include <chrono>

#include "server/job.h"

namespace origami::server {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

json ChoiceJson(const Job& job, Choice& c, json& logprobs, LogprobShape shape) {
  json ch = {{"index", c.index}};
  if (job.req.endpoint == Endpoint::kChat) {
    json msg;
    if (c.tools) {
      // The same builder as the stream, fed the whole answer: both give one message.
      c.tools->Push(c.text);
      c.tools->Finish();
      msg = c.tools->Message();
    } else {
      msg = {{"role", "assistant"}, {"content", c.text}};
    }
    ch["message"] = msg;
    ch["logprobs"] = shape == LogprobShape::kNone ? json(nullptr) : json{{"content", logprobs}};
  } else {
    const std::string echo = job.req.echo ? job.echo[c.index / job.req.n] : "";
    ch["text"] = echo + c.text;
    ch["logprobs"] =
        shape == LogprobShape::kNone ? json(nullptr) : CompletionLogprobs(logprobs, echo.size());
  }
  ch["finish_reason"] = FinishReasonOf(c);
  return ch;
}

}  // namespace

void SendJsonResponse(ServerState& s, std::shared_ptr<Job> job, httplib::Response& res) {
  // The JSON body is written once generation ends. Until then a space (JSON's leading
  // whitespace) goes out every second, so a client that hung up is noticed and its sequences
  // freed; httplib has no other way to see a closed connection mid-handler.
  const LogprobShape shape = ShapeOf(*job);
  res.set_chunked_content_provider(
      "application/json",
      [&s, job, shape](size_t, httplib::DataSink& sink) {
        std::vector<json> logprobs(job->choices.size(), json::array());
        auto last_write = std::chrono::steady_clock::now();
        for (bool all = false; !all;) {
          all = true;
          for (auto& c : job->choices) {
            if (c->done) continue;
            for (Delta& d : Pump(*c, s.tok, shape, milliseconds(50)))
              for (auto& e : d.logprobs) logprobs[c->index].push_back(std::move(e));
            all = all && c->done;
          }
          if (!all && std::chrono::steady_clock::now() - last_write > std::chrono::seconds(1)) {
            if (!sink.write(" ", 1)) {
              job->CancelAll();
              return false;
            }
            last_write = std::chrono::steady_clock::now();
          }
        }
        json body;
        json choices = json::array();
        for (auto& c : job->choices) {
          if (c->finish == FinishReason::kError) {
            body = ErrorBody(500, "generation failed: " + c->error, "", "generation_error",
                             "server_error");
            break;
          }
          choices.push_back(ChoiceJson(*job, *c, logprobs[c->index], shape));
        }
        if (body.is_null())
          body = {{"id", job->id},
                  {"object",
                   job->req.endpoint == Endpoint::kChat ? "chat.completion" : "text_completion"},
                  {"created", job->created},
                  {"model", s.opt.model_id},
                  {"system_fingerprint", "origami"},
                  {"choices", choices},
                  {"usage", Usage(*job)}};
        const std::string text = DumpJson(body);
        if (!sink.write(text.data(), text.size())) return false;
        sink.done();
        return true;
      },
      [job](bool) { job->CancelAll(); });
}

}  // namespace origami::server
