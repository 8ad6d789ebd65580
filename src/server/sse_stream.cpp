// The streamed answer: server-sent events, one chunk per token (tool calls as OpenAI deltas when
// tools are active), an optional usage chunk, then [DONE].
#include <httplib.h>

#include <chrono>

#include "server/job.h"

namespace origami::server {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

std::string Sse(const json& j) { return "data: " + DumpJson(j) + "\n\n"; }

// Writes one job's events into a sink; returns false when the client is gone.
class SseWriter {
 public:
  SseWriter(ServerState& s, Job& job, httplib::DataSink& sink)
      : s_(s),
        job_(job),
        sink_(sink),
        chat_(job.req.endpoint == Endpoint::kChat),
        shape_(ShapeOf(job)),
        offsets_(job.choices.size(), 0) {}

  bool Chunk(const json& choices) {
    json j = Header(choices);
    if (job_.req.include_usage) j["usage"] = nullptr;
    return Write(Sse(j));
  }
  bool Write(const std::string& s) { return sink_.write(s.data(), s.size()); }
  json Header(const json& choices) const {
    return {{"id", job_.id},
            {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
            {"created", job_.created},
            {"model", s_.opt.model_id},
            {"system_fingerprint", "origami"},
            {"choices", choices}};
  }

  // Chunks for the text and logprobs of one pump's delta of choice c. Sets wrote when anything
  // went out; returns false when the client is gone.
  bool SendText(Choice& c, Delta& d, bool& wrote) {
    if (c.tools) {
      if (!SendToolDeltas(c, d, wrote)) return false;
    } else if (!d.text.empty() || !d.logprobs.empty()) {
      json ch = {{"index", c.index}, {"finish_reason", nullptr}};
      if (chat_) {
        ch["delta"] = {{"content", d.text}};
        ch["logprobs"] =
            shape_ == LogprobShape::kNone ? json(nullptr) : json{{"content", d.logprobs}};
      } else {
        ch["text"] = d.text;
        ch["logprobs"] = shape_ == LogprobShape::kNone
                             ? json(nullptr)
                             : CompletionLogprobs(d.logprobs, offsets_[c.index]);
        offsets_[c.index] += d.text.size();
      }
      if (!Chunk(json::array({ch}))) return false;
      wrote = true;
    }
    return true;
  }

  // The last chunk of choice c: its finish_reason and an empty delta.
  bool SendFinish(Choice& c, bool& wrote) {
    json ch = {{"index", c.index}, {"finish_reason", FinishReasonOf(c)}, {"logprobs", nullptr}};
    if (chat_)
      ch["delta"] = json::object();
    else
      ch["text"] = "";
    if (!Chunk(json::array({ch}))) return false;
    wrote = true;
    return true;
  }

 private:
  // Tools active: text goes through the tool-call parser; its deltas go out one chunk each, the
  // token's logprobs on the first (or on an empty delta while the parser holds the text back).
  bool SendToolDeltas(Choice& c, Delta& d, bool& wrote) {
    std::vector<json> deltas = c.tools->Push(d.text);
    if (d.finished)
      for (json& x : c.tools->Finish(c.finish == FinishReason::kLength))
        deltas.push_back(std::move(x));
    const bool with_logprobs = shape_ != LogprobShape::kNone && !d.logprobs.empty();
    if (deltas.empty() && with_logprobs) deltas.push_back(json::object());
    for (size_t i = 0; i < deltas.size(); ++i) {
      json ch = {{"index", c.index}, {"delta", std::move(deltas[i])}, {"finish_reason", nullptr}};
      ch["logprobs"] = i == 0 && with_logprobs ? json{{"content", d.logprobs}} : json(nullptr);
      if (!Chunk(json::array({ch}))) return false;
      wrote = true;
    }
    return true;
  }

  ServerState& s_;
  Job& job_;
  httplib::DataSink& sink_;
  const bool chat_;
  const LogprobShape shape_;
  std::vector<size_t> offsets_;  // completions: text offset per choice, for logprobs
};

}  // namespace

void SendEventStream(ServerState& s, std::shared_ptr<Job> job, httplib::Response& res) {
  // One SSE event per pump with news; a comment line now and then detects a client that went
  // away during a long prefill.
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [&s, job](size_t, httplib::DataSink& sink) {
        ++s.streams_open;
        struct Guard {
          std::atomic<int64_t>& n;
          ~Guard() { --n; }
        } guard{s.streams_open};
        SseWriter w(s, *job, sink);
        auto fail = [&] {
          job->CancelAll();
          return false;
        };
        if (job->req.endpoint == Endpoint::kChat) {
          for (auto& c : job->choices)
            if (!w.Chunk(json::array({{{"index", c->index},
                                       {"delta", {{"role", "assistant"}, {"content", ""}}},
                                       {"logprobs", nullptr},
                                       {"finish_reason", nullptr}}})))
              return fail();
        }
        const LogprobShape shape = ShapeOf(*job);
        auto last_write = std::chrono::steady_clock::now();
        for (;;) {
          bool all = true, wrote = false;
          for (auto& c : job->choices) {
            if (c->done) continue;
            for (Delta& d :
                 Pump(*c, s.tok, shape, milliseconds(job->choices.size() > 1 ? 5 : 100))) {
              if (!w.SendText(*c, d, wrote)) return fail();
              if (!d.finished) continue;
              if (c->finish == FinishReason::kError) {
                w.Write(
                    Sse(ErrorBody(500, "generation failed: " + c->error, "", "generation_error")));
                sink.done();
                return true;
              }
              if (!w.SendFinish(*c, wrote)) return fail();
            }
            all = all && c->done;
          }
          const auto now = std::chrono::steady_clock::now();
          if (wrote) {
            last_write = now;
          } else if (now - last_write > std::chrono::seconds(1)) {
            if (!w.Write(": ping\n\n")) return fail();
            last_write = now;
          }
          if (all) break;
        }
        if (job->req.include_usage) {
          json j = w.Header(json::array());
          j["usage"] = Usage(*job);
          if (!w.Write(Sse(j))) return fail();
        }
        if (!w.Write("data: [DONE]\n\n")) return fail();
        sink.done();
        return true;
      },
      [job](bool) { job->CancelAll(); });  // a dropped connection frees the sequences at once
}

}  // namespace origami::server
