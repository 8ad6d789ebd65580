// Hostile and malformed /v1/messages requests: each must get a 4xx in Anthropic's error shape
// ({"type":"error","error":{"type","message"}}), never a 5xx, hang or crash; the server must
// still answer afterwards.
import { startServer, test, check, eq, summary } from "./lib.mjs";

const srv = await startServer([]);
const ok = { model: "m", max_tokens: 4, messages: [{ role: "user", content: "hi" }] };
const u = (content) => ({ ...ok, messages: [{ role: "user", content }] });
const big = "x".repeat(9 << 20);
const cases = [
  ["invalid json", "{", "/v1/messages"],
  ["array body", "[]"],
  ["string body", '"hi"'],
  ["null body", "null"],
  ["empty body", ""],
  ["missing max_tokens", { model: "m", messages: ok.messages }],
  ["max_tokens zero", { ...ok, max_tokens: 0 }],
  ["max_tokens negative", { ...ok, max_tokens: -3 }],
  ["max_tokens string", { ...ok, max_tokens: "4" }],
  ["max_tokens float", { ...ok, max_tokens: 1.5 }],
  ["max_tokens huge", { ...ok, max_tokens: 1e30 }],
  ["missing model", { max_tokens: 4, messages: ok.messages }],
  ["model number", { ...ok, model: 7 }],
  ["missing messages", { model: "m", max_tokens: 4 }],
  ["messages object", { ...ok, messages: {} }],
  ["messages empty", { ...ok, messages: [] }],
  ["message not object", { ...ok, messages: [5] }],
  ["missing role", { ...ok, messages: [{ content: "x" }] }],
  ["role tool", { ...ok, messages: [{ role: "tool", content: "x" }] }],
  ["role number", { ...ok, messages: [{ role: 1, content: "x" }] }],
  ["missing content", { ...ok, messages: [{ role: "user" }] }],
  ["content number", u(5)],
  ["content object", u({ type: "text", text: "x" })],
  ["block without type", u([{ text: "x" }])],
  ["unknown block type", u([{ type: "video" }])],
  ["text block without text", u([{ type: "text" }])],
  ["text block number", u([{ type: "text", text: 5 }])],
  ["image block", u([{ type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } }])],
  ["document block", u([{ type: "document", source: {} }])],
  ["tool_result without tool_use", u([{ type: "tool_result", tool_use_id: "toolu_x", content: "r" }])],
  ["tool_result id number", u([{ type: "tool_result", tool_use_id: 5 }])],
  ["tool_use in user", u([{ type: "tool_use", id: "a", name: "f", input: {} }])],
  ["tool_use input string", { ...ok, messages: [{ role: "user", content: "x" }, { role: "assistant", content: [{ type: "tool_use", id: "a", name: "f", input: "{}" }] }] }],
  ["tool_use without id", { ...ok, messages: [{ role: "user", content: "x" }, { role: "assistant", content: [{ type: "tool_use", name: "f", input: {} }] }] }],
  ["thinking in user", u([{ type: "thinking", thinking: "t" }])],
  ["is_error string", { ...ok, messages: [{ role: "user", content: "x" }, { role: "assistant", content: [{ type: "tool_use", id: "a", name: "f", input: {} }] }, { role: "user", content: [{ type: "tool_result", tool_use_id: "a", is_error: "yes" }] }] }],
  ["system number", { ...ok, system: 5 }],
  ["system image block", { ...ok, system: [{ type: "image" }] }],
  ["temperature high", { ...ok, temperature: 5 }],
  ["temperature string", { ...ok, temperature: "hot" }],
  ["top_p negative", { ...ok, top_p: -1 }],
  ["top_k negative", { ...ok, top_k: -1 }],
  ["stop_sequences string", { ...ok, stop_sequences: "x" }],
  ["stop_sequences numbers", { ...ok, stop_sequences: [1] }],
  ["stop_sequences empty string", { ...ok, stop_sequences: [""] }],
  ["stream string", { ...ok, stream: "yes" }],
  ["metadata string", { ...ok, metadata: "x" }],
  ["tools object", { ...ok, tools: {} }],
  ["tool without name", { ...ok, tools: [{ input_schema: {} }] }],
  ["tool without schema", { ...ok, tools: [{ name: "f" }] }],
  ["tool_choice string", { ...ok, tool_choice: "auto" }],
  ["tool_choice unknown", { ...ok, tool_choice: { type: "maybe" } }],
  ["tool_choice any without tools", { ...ok, tool_choice: { type: "any" } }],
  ["disable_parallel_tool_use not a boolean", { ...ok, tools: [{ name: "f", input_schema: { type: "object" } }], tool_choice: { type: "auto", disable_parallel_tool_use: "yes" } }],
  ["tool_choice tool without name", { ...ok, tools: [{ name: "f", input_schema: { type: "object" } }], tool_choice: { type: "tool" } }],
  ["thinking string", { ...ok, thinking: "on" }],
  ["thinking bad type", { ...ok, thinking: { type: "maybe" } }],
  ["thinking budget negative", { ...ok, thinking: { type: "enabled", budget_tokens: -5 } }],
  ["prompt too long", u("hello ".repeat(5000))],
  ["body too large", JSON.stringify(u(big))],
  ["count_tokens bad json", "{", "/v1/messages/count_tokens"],
  ["count_tokens no messages", { model: "m" }, "/v1/messages/count_tokens"],
];

await test(`${cases.length} bad requests get 4xx in Anthropic's shape`, async () => {
  for (const [name, body, path = "/v1/messages"] of cases) {
    const r = await fetch(srv.url + path, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: typeof body === "string" ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(20000),
    });
    const text = await r.text();
    check(r.status >= 400 && r.status < 500, `${name}: status ${r.status} ${text.slice(0, 200)}`);
    let j = null;
    try { j = JSON.parse(text); } catch {}
    check(j && j.type === "error" && typeof j.error?.type === "string" && typeof j.error?.message === "string",
      `${name}: error shape ${text.slice(0, 200)}`);
  }
});

await test("prompt too long wording", async () => {
  const r = await fetch(srv.url + "/v1/messages", { method: "POST", body: JSON.stringify(u("hello ".repeat(5000))) });
  const j = await r.json();
  check(/^prompt is too long: \d+ tokens > \d+ maximum$/.test(j.error.message), `message: ${j.error.message}`);
});

await test("server still answers", async () => {
  const r = await fetch(srv.url + "/v1/messages", { method: "POST", body: JSON.stringify(ok) });
  eq(r.status, 200, "status");
  eq((await r.json()).type, "message", "message");
});

await srv.stop();
process.exit(summary());
