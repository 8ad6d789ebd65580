// Pump: engine tokens to text, stop strings and logprobs.
#include "server/generation.h"

namespace origami::server {

using nlohmann::json;

const char* OpenAiFinishReason(FinishReason r) {
  switch (r) {
    case FinishReason::kLength:
      return "length";
    default:
      return "stop";
  }
}

namespace {

json Bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char ch : s) b.push_back(static_cast<int>(ch));
  return b;
}

std::string TokenText(const Tokenizer& tok, int32_t id) { return tok.Decode({id}, false); }

}  // namespace

std::vector<Delta> Pump(Choice& c, const Tokenizer& tok, LogprobShape shape,
                        std::chrono::milliseconds timeout) {
  std::vector<Delta> out_deltas;
  if (c.done) return out_deltas;
  StreamEvent ev;
  if (!c.stream->Next(ev, timeout)) return out_deltas;
  for (const GeneratedToken& t : ev.tokens) {
    if (c.stop.stopped()) break;
    Delta& d = out_deltas.emplace_back();
    ++c.n_generated;
    const std::string out = c.stop.Push(c.dec.Push(t.token));
    d.text += out;
    if (shape == LogprobShape::kChat) {
      const std::string s = TokenText(tok, t.token);
      json top = json::array();
      for (const auto& a : t.top) {
        const std::string as = TokenText(tok, a.token);
        top.push_back({{"token", as}, {"logprob", a.logprob}, {"bytes", Bytes(as)}});
      }
      d.logprobs.push_back(
          {{"token", s}, {"logprob", t.logprob}, {"bytes", Bytes(s)}, {"top_logprobs", top}});
    } else if (shape == LogprobShape::kCompletions) {
      json top = json::object();
      for (const auto& a : t.top) top[TokenText(tok, a.token)] = a.logprob;
      d.logprobs.push_back(
          {{"token", TokenText(tok, t.token)}, {"logprob", t.logprob}, {"top", top}});
    }
    if (c.stop.stopped()) {
      c.stream->Cancel();  // frees the sequence at the engine's next step
      c.finish = FinishReason::kStop;
    }
    c.text += d.text;
  }
  if (ev.finish != FinishReason::kNone) {
    Delta& d = out_deltas.emplace_back();
    c.n_cached = ev.n_cached;
    if (!c.stop.stopped()) {
      d.text += c.stop.Push(c.dec.Flush());
      d.text += c.stop.Flush();
      c.finish = ev.finish == FinishReason::kCancelled && c.stop.stopped() ? FinishReason::kStop
                                                                           : ev.finish;
      if (c.stop.stopped()) c.finish = FinishReason::kStop;
    }
    if (ev.finish == FinishReason::kError) {
      c.finish = FinishReason::kError;
      c.error = ev.error;
    }
    c.done = true;
    d.finished = true;
    c.text += d.text;
  }
  return out_deltas;
}

}  // namespace origami::server
