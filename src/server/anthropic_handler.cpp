// The /v1/messages and /v1/messages/count_tokens handlers: an Anthropic body runs as a chat job
// (anthropic_api.cpp translates), answered as one message object or as Anthropic's SSE events.
#include <fmt/format.h>
#include <httplib.h>

#include <chrono>

#include "chat/template.h"
#include "server/anthropic_api.h"
#include "server/anthropic_handler.h"
#include "server/job.h"
#include "util/error.h"

namespace origami::server {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {

void SendAnthropicError(httplib::Response& res, int status, const std::string& msg) {
  res.status = status;
  res.set_content(DumpJson(AnthropicErrorBody(status, msg)), "application/json");
}

// Chat-path errors rephrased the way Claude Code recognises (context overflow).
void SendApiError(ServerState& s, httplib::Response& res, const ApiError& e) {
  if (e.code == "context_length_exceeded") {
    // "This model's maximum context length is M tokens; the prompt has N tokens"
    const std::string w = e.what();
    const size_t a = w.rfind("has ");
    const std::string n = a == std::string::npos ? "?" : w.substr(a + 4, w.find(' ', a + 4) - a - 4);
    SendAnthropicError(res, 400,
                       fmt::format("prompt is too long: {} tokens > {} maximum", n,
                                   s.engine.max_seq_len()));
    return;
  }
  // A full queue: 503 with Retry-After, as the other APIs answer it. The body's overloaded_error
  // is what Anthropic clients recognise, and their SDK retries any 5xx after the header's delay
  // (Anthropic's own API uses 529 for the same condition).
  if (e.status == 503) SetRetryAfter(res, e.retry_after_s);
  SendAnthropicError(res, e.status, e.what());
}

json Message(const Choice& c) {
  return c.tools ? c.tools->Message() : json{{"role", "assistant"}, {"content", c.text}};
}

// stop_reason and stop_sequence: a matched stop string is Anthropic's "stop_sequence".
const char* StopReasonOf(const Choice& c) {
  if (c.stop.stopped() && !c.stop.matched().empty()) return "stop_sequence";
  return AnthropicStopReason(FinishReasonOf(c));
}
json StopSequenceOf(const Choice& c) {
  if (c.stop.stopped() && !c.stop.matched().empty()) return c.stop.matched();
  return nullptr;
}

json UsageOf(const Choice& c) {
  return {{"input_tokens", c.n_prompt - c.n_cached},
          {"output_tokens", c.n_generated},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", c.n_cached}};
}

std::string Event(const char* name, const json& data) {
  return fmt::format("event: {}\ndata: {}\n\n", name, DumpJson(data));
}

}  // namespace

void HandleAnthropicMessages(ServerState& s, const std::string& body, httplib::Response& res) {
  std::shared_ptr<Job> job;
  bool stream = false;
  try {
    AnthropicTranslation t = TranslateAnthropicRequest(body, false, s.opt.keep_billing_header);
    stream = t.stream;
    // Thinking becomes thinking blocks (tools or not) unless --reasoning-format none.
    job = StartJob(s, t.chat_body, Endpoint::kChat, s.opt.reasoning_auto && s.template_reasons);
  } catch (const ApiError& e) {
    SendApiError(s, res, e);
    return;
  } catch (const Error& e) {
    SendAnthropicError(res, 400, e.what());
    return;
  } catch (const std::exception& e) {
    SendAnthropicError(res, 400, e.what());
    return;
  }
  const std::string id = "msg_" + job->id;
  const std::string model = s.opt.model_id;
  if (!stream) {
    Choice& c = *job->choices[0];
    while (!c.done) Pump(c, s.tok, LogprobShape::kNone, milliseconds(100));
    if (c.finish == FinishReason::kError) {
      SendAnthropicError(res, 500, "generation failed: " + c.error);
      return;
    }
    if (c.tools) {
      c.tools->Push(c.text);
      c.tools->Finish(c.finish == FinishReason::kLength);
    }
    res.status = 200;
    res.set_content(DumpJson({{"id", id},
                              {"type", "message"},
                              {"role", "assistant"},
                              {"model", model},
                              {"content", AnthropicContent(Message(c))},
                              {"stop_reason", StopReasonOf(c)},
                              {"stop_sequence", StopSequenceOf(c)},
                              {"usage", UsageOf(c)}}),
                    "application/json");
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [&s, job, id, model](size_t, httplib::DataSink& sink) {
        Choice& c = *job->choices[0];
        auto w = [&](const std::string& x) { return sink.write(x.data(), x.size()); };
        auto fail = [&] {
          job->CancelAll();
          return false;
        };
        json start_usage = {{"input_tokens", c.n_prompt}, {"output_tokens", 0}};
        if (!w(Event("message_start",
                     {{"type", "message_start"},
                      {"message",
                       {{"id", id},
                        {"type", "message"},
                        {"role", "assistant"},
                        {"model", model},
                        {"content", json::array()},
                        {"stop_reason", nullptr},
                        {"stop_sequence", nullptr},
                        {"usage", start_usage}}}})))
          return fail();
        // Without tools the text streams as it comes; with tools the answer is split into
        // blocks by the tool-call parser once it is whole, then sent block by block.
        int index = 0;
        bool text_open = false;
        auto last = std::chrono::steady_clock::now();
        while (!c.done) {
          for (Delta& d : Pump(c, s.tok, LogprobShape::kNone, milliseconds(100))) {
            if (c.tools || d.text.empty()) continue;
            if (!text_open) {
              if (!w(Event("content_block_start",
                           {{"type", "content_block_start"},
                            {"index", index},
                            {"content_block", {{"type", "text"}, {"text", ""}}}})))
                return fail();
              text_open = true;
            }
            if (!w(Event("content_block_delta",
                         {{"type", "content_block_delta"},
                          {"index", index},
                          {"delta", {{"type", "text_delta"}, {"text", d.text}}}})))
              return fail();
            last = std::chrono::steady_clock::now();
          }
          if (std::chrono::steady_clock::now() - last > std::chrono::seconds(1)) {
            if (!w(Event("ping", {{"type", "ping"}}))) return fail();
            last = std::chrono::steady_clock::now();
          }
        }
        if (c.finish == FinishReason::kError) {
          w(Event("error", AnthropicErrorBody(500, "generation failed: " + c.error)));
          sink.done();
          return true;
        }
        if (text_open) {
          if (!w(Event("content_block_stop", {{"type", "content_block_stop"}, {"index", index}})))
            return fail();
          ++index;
        }
        if (c.tools) {
          c.tools->Push(c.text);
          c.tools->Finish(c.finish == FinishReason::kLength);
          for (const json& b : AnthropicContent(c.tools->Message())) {
            json startb = b, delta;
            const std::string ty = b["type"];
            if (ty == "text") {
              startb["text"] = "";
              delta = {{"type", "text_delta"}, {"text", b["text"]}};
            } else if (ty == "thinking") {
              startb["thinking"] = "";
              delta = {{"type", "thinking_delta"}, {"thinking", b["thinking"]}};
            } else {
              startb["input"] = json::object();
              delta = {{"type", "input_json_delta"}, {"partial_json", DumpJson(b["input"])}};
            }
            if (!w(Event("content_block_start", {{"type", "content_block_start"},
                                                 {"index", index},
                                                 {"content_block", startb}})) ||
                !w(Event("content_block_delta",
                         {{"type", "content_block_delta"}, {"index", index}, {"delta", delta}})) ||
                !w(Event("content_block_stop", {{"type", "content_block_stop"}, {"index", index}})))
              return fail();
            ++index;
          }
        }
        if (!w(Event("message_delta",
                     {{"type", "message_delta"},
                      {"delta",
                       {{"stop_reason", StopReasonOf(c)}, {"stop_sequence", StopSequenceOf(c)}}},
                      {"usage", UsageOf(c)}})) ||
            !w(Event("message_stop", {{"type", "message_stop"}})))
          return fail();
        sink.done();
        return true;
      },
      [job](bool) { job->CancelAll(); });
}

void HandleAnthropicCountTokens(ServerState& s, const std::string& body, httplib::Response& res) {
  try {
    AnthropicTranslation t = TranslateAnthropicRequest(body, true, s.opt.keep_billing_header);
    ApiRequest r = ParseRequest(t.chat_body, Endpoint::kChat, s.opt.max_n);
    std::string text;
    try {
      text = ApplyChatTemplate(s.chat_template, r.messages,
                               r.tool_choice == "none" ? nullptr : r.tools, true, s.bos_text,
                               s.eos_text, r.template_kwargs);
    } catch (const Error& e) {
      throw ApiError(400, std::string("the chat template rejected the messages: ") + e.what());
    }
    res.status = 200;
    res.set_content(DumpJson({{"input_tokens", s.Tokenize(text).size()}}), "application/json");
  } catch (const ApiError& e) {
    SendApiError(s, res, e);
  } catch (const std::exception& e) {
    SendAnthropicError(res, 400, e.what());
  }
}

}  // namespace origami::server
