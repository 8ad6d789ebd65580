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
      c.tools->Finish(c.finish == FinishReason::kLength);
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

namespace {

// Pumps every unfinished choice once; true when all have finished.
bool PumpAll(ServerState& s, Job& job, LogprobShape shape, std::vector<json>& logprobs) {
  bool all = true;
  for (auto& c : job.choices) {
    if (c->done) continue;
    for (Delta& d : Pump(*c, s.tok, shape, milliseconds(50)))
      for (auto& e : d.logprobs) logprobs[c->index].push_back(std::move(e));
    all = all && c->done;
  }
  return all;
}

// The finished answer, or the error of a choice that failed (with its HTTP status).
json Body(ServerState& s, Job& job, LogprobShape shape, std::vector<json>& logprobs, int* status) {
  json choices = json::array();
  for (auto& c : job.choices) {
    if (c->finish == FinishReason::kError) {
      *status = 500;
      return ErrorBody(500, "generation failed: " + c->error, "", "generation_error", "server_error");
    }
    choices.push_back(ChoiceJson(job, *c, logprobs[c->index], shape));
  }
  *status = 200;
  return {{"id", job.id},
          {"object", job.req.endpoint == Endpoint::kChat ? "chat.completion" : "text_completion"},
          {"created", job.created},
          {"model", s.opt.model_id},
          {"system_fingerprint", "origami"},
          {"choices", choices},
          {"usage", Usage(job)}};
}

// How long the handler waits for the answer before it commits to a 200 and starts the keep-alive
// spaces: an answer (or a failure, such as a lost pipeline rank) within this time gets its own
// status; a client that hangs up sooner is noticed once the spaces start.
constexpr auto kWaitBeforeKeepAlive = std::chrono::seconds(10);

}  // namespace

void SendJsonResponse(ServerState& s, std::shared_ptr<Job> job, httplib::Response& res) {
  const LogprobShape shape = ShapeOf(*job);
  auto logprobs = std::make_shared<std::vector<json>>(job->choices.size(), json::array());
  const auto until = std::chrono::steady_clock::now() + kWaitBeforeKeepAlive;
  bool all = false;
  while (!(all = PumpAll(s, *job, shape, *logprobs)) && std::chrono::steady_clock::now() < until) {
  }
  if (all) {
    int status = 200;
    const json body = Body(s, *job, shape, *logprobs, &status);
    res.status = status;
    res.set_content(DumpJson(body), "application/json");
    return;
  }
  // Still generating: the JSON body is written once generation ends. Until then a space (JSON's
  // leading whitespace) goes out every second, so a client that hung up is noticed and its
  // sequences freed; httplib has no other way to see a closed connection mid-handler.
  res.set_chunked_content_provider(
      "application/json",
      [&s, job, shape, logprobs](size_t, httplib::DataSink& sink) {
        auto last_write = std::chrono::steady_clock::now();
        while (!PumpAll(s, *job, shape, *logprobs)) {
          if (std::chrono::steady_clock::now() - last_write > std::chrono::seconds(1)) {
            if (!sink.write(" ", 1)) {
              job->CancelAll();
              return false;
            }
            last_write = std::chrono::steady_clock::now();
          }
        }
        int status = 200;  // already sent: a failure now can only be told in the body
        const std::string text = DumpJson(Body(s, *job, shape, *logprobs, &status));
        if (!sink.write(text.data(), text.size())) return false;
        sink.done();
        return true;
      },
      [job](bool) { job->CancelAll(); });
}

}  // namespace origami::server
