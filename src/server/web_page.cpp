// The chat page served at "/": one self-contained HTML file (no CDN, no build step). It talks to
// /v1/chat/completions with stream=true, shows tokens/s, and Stop aborts the fetch, which closes
// the connection and frees the sequence on the server.
#include "server/server.h"

namespace origami::server {

const char* const kWebPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>origami chat</title>
<style>
  :root { --bg:#f7f7f8; --fg:#1f2328; --muted:#6e7781; --accent:#2f6feb; --card:#fff; --border:#d0d7de; }
  * { box-sizing: border-box; }
  body { margin:0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--fg);
         display:flex; flex-direction:column; height:100vh; }
  header { display:flex; gap:12px; align-items:center; padding:10px 16px; border-bottom:1px solid var(--border); background:var(--card); }
  header h1 { font-size:16px; margin:0; }
  header .grow { flex:1; }
  header input { width:14em; }
  #log { flex:1; overflow-y:auto; padding:16px; display:flex; flex-direction:column; gap:10px; }
  .msg { max-width:52em; padding:10px 14px; border-radius:10px; white-space:pre-wrap; word-wrap:break-word; }
  .user { align-self:flex-end; background:var(--accent); color:#fff; }
  .assistant { align-self:flex-start; background:var(--card); border:1px solid var(--border); }
  .error { align-self:flex-start; background:#ffebe9; border:1px solid #ff8182; }
  form { display:flex; gap:8px; padding:12px 16px; border-top:1px solid var(--border); background:var(--card); }
  textarea { flex:1; resize:none; height:3.2em; font:inherit; padding:8px; border:1px solid var(--border); border-radius:8px; }
  button { font:inherit; padding:0 18px; border-radius:8px; border:1px solid var(--border); cursor:pointer; }
  #send { background:var(--accent); color:#fff; border-color:var(--accent); }
  button:disabled { opacity:.5; cursor:default; }
  #stats { color:var(--muted); font-size:13px; min-width:12em; text-align:right; }
  label { color:var(--muted); font-size:13px; }
</style>
</head>
<body>
<header>
  <h1>origami</h1><span id="model" class="muted"></span>
  <span class="grow"></span>
  <label>temperature <input id="temp" type="number" min="0" max="2" step="0.1" value="0.7" style="width:4.5em"></label>
  <label>max tokens <input id="maxtok" type="number" min="1" value="256" style="width:5.5em"></label>
  <label>API key <input id="key" type="password" placeholder="(none)"></label>
  <span id="stats"></span>
</header>
<div id="log"></div>
<form id="form">
  <textarea id="input" placeholder="Send a message (Enter to send, Shift+Enter for a new line)"></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
  <button id="clear" type="button">Clear</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
let controller = null;
$("key").value = localStorage.getItem("origami_key") || "";
$("key").addEventListener("change", () => localStorage.setItem("origami_key", $("key").value));

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}
function add(role, text) {
  const d = document.createElement("div");
  d.className = "msg " + role;
  d.textContent = text;
  $("log").appendChild(d);
  $("log").scrollTop = $("log").scrollHeight;
  return d;
}
async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const j = await r.json();
    if (j.data && j.data[0]) $("model").textContent = j.data[0].id;
  } catch (e) {}
}
function busy(on) {
  $("send").disabled = on;
  $("stop").disabled = !on;
}
async function send(text) {
  history.push({ role: "user", content: text });
  add("user", text);
  const out = add("assistant", "");
  out.dataset.state = "streaming";
  controller = new AbortController();
  busy(true);
  let answer = "", tokens = 0, t0 = 0;
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ messages: history, stream: true, stream_options: { include_usage: true },
                             temperature: Number($("temp").value), max_tokens: Number($("maxtok").value) }),
    });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      throw new Error((j.error && j.error.message) || ("HTTP " + r.status));
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "", shown = 0, turn = performance.now();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        if (j.usage) tokens = j.usage.completion_tokens;
        for (const c of j.choices || []) {
          const piece = (c.delta && c.delta.content) || "";
          if (piece) {
            if (!t0) t0 = performance.now();
            answer += piece;
            if (!j.usage) tokens += 1;
          }
        }
      }
      // The text is drawn once per chunk read, not once per token.
      if (answer.length !== shown) {
        out.textContent = answer;
        shown = answer.length;
        $("log").scrollTop = $("log").scrollHeight;
      }
      const dt = t0 ? (performance.now() - t0) / 1000 : 0;
      if (dt > 0) $("stats").textContent = tokens + " tokens, " + (tokens / dt).toFixed(1) + " tokens/s";
      // A stream that arrives faster than the page draws it keeps every read() resolved at once, a
      // chain of microtasks that never lets a click through: Stop would not respond. Yield a task
      // turn every 50 ms so input and painting go on.
      if (performance.now() - turn > 50) {
        await new Promise((r) => setTimeout(r, 0));
        turn = performance.now();
      }
    }
    out.textContent = answer;
    out.dataset.state = "done";
  } catch (e) {
    if (e.name === "AbortError") {
      out.dataset.state = "stopped";
      $("stats").textContent += " (stopped)";
    } else {
      out.dataset.state = "error";
      out.className = "msg error";
      out.textContent = answer + (answer ? "\n" : "") + "Error: " + e.message;
    }
  } finally {
    history.push({ role: "assistant", content: answer });
    controller = null;
    busy(false);
  }
}
$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("clear").addEventListener("click", () => { history.length = 0; $("log").innerHTML = ""; $("stats").textContent = ""; });
loadModel();
</script>
</body>
</html>
)HTML";

}  // namespace origami::server
