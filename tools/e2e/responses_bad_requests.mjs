// Hostile and malformed /v1/responses requests: each must get a 4xx in OpenAI's error shape
// ({"error":{"message","type","param","code"}}), never a 5xx, hang or crash, streamed or not; the
// server must still answer afterwards.
import { startServer, test, check, eq, summary } from "./lib.mjs";

// One kept response: the store's bound (--responses-max) is checked below.
const srv = await startServer(["--responses-max", "1"]);
const ok = { model: "m", input: "hi", max_output_tokens: 2 };
const fn = { type: "function", name: "f", parameters: { type: "object" } };
const items = (...input) => ({ ...ok, input });
const big = "x".repeat(9 << 20);
const cases = [
  ["invalid json", "{"],
  ["array body", "[]"],
  ["string body", '"hi"'],
  ["null body", "null"],
  ["empty body", ""],
  ["missing input", { model: "m" }],
  ["input number", { ...ok, input: 5 }],
  ["input object", { ...ok, input: { role: "user", content: "x" } }],
  ["input empty array", { ...ok, input: [] }],
  ["item not object", items(5)],
  ["item type number", items({ type: 5 })],
  ["unknown item type", items({ type: "teleport" })],
  ["item_reference", items({ type: "item_reference", id: "msg_1" })],
  ["message without role", items({ type: "message", content: "x" })],
  ["role tool", items({ role: "tool", content: "x" })],
  ["role number", items({ role: 3, content: "x" })],
  ["message without content", items({ role: "user" })],
  ["content number", items({ role: "user", content: 5 })],
  ["content part without type", items({ role: "user", content: [{ text: "x" }] })],
  ["unknown content part", items({ role: "user", content: [{ type: "input_video" }] })],
  ["input_text without text", items({ role: "user", content: [{ type: "input_text" }] })],
  ["input_image", items({ role: "user", content: [{ type: "input_image", image_url: "data:image/png;base64,AAAA" }] })],
  ["input_file", items({ role: "user", content: [{ type: "input_file", file_id: "f" }] })],
  ["function_call without call_id", items({ type: "function_call", name: "f", arguments: "{}" })],
  ["function_call without name", items({ type: "function_call", call_id: "c", arguments: "{}" })],
  ["function_call arguments object", items({ type: "function_call", call_id: "c", name: "f", arguments: {} })],
  ["function_call_output unknown call", items({ type: "function_call_output", call_id: "nope", output: "x" })],
  ["function_call_output without output", items({ type: "function_call", call_id: "c", name: "f", arguments: "{}" }, { type: "function_call_output", call_id: "c" })],
  ["function_call_output output number", items({ type: "function_call", call_id: "c", name: "f", arguments: "{}" }, { type: "function_call_output", call_id: "c", output: 5 })],
  ["model number", { ...ok, model: 7 }],
  ["instructions number", { ...ok, instructions: 5 }],
  ["max_output_tokens zero", { ...ok, max_output_tokens: 0 }],
  ["max_output_tokens string", { ...ok, max_output_tokens: "4" }],
  ["max_output_tokens float", { ...ok, max_output_tokens: 1.5 }],
  ["max_output_tokens huge", { ...ok, max_output_tokens: 1e30 }],
  ["temperature high", { ...ok, temperature: 3 }],
  ["temperature string", { ...ok, temperature: "hot" }],
  ["top_p negative", { ...ok, top_p: -1 }],
  ["stream string", { ...ok, stream: "yes" }],
  ["store string", { ...ok, store: "no" }],
  ["background true", { ...ok, background: true }],
  ["metadata string", { ...ok, metadata: "x" }],
  ["metadata number value", { ...ok, metadata: { a: 1 } }],
  ["metadata too many keys", { ...ok, metadata: Object.fromEntries([...Array(17).keys()].map((k) => [`k${k}`, "v"])) }],
  ["user number", { ...ok, user: 5 }],
  ["truncation bad", { ...ok, truncation: "middle" }],
  ["tools object", { ...ok, tools: {} }],
  ["tool not object", { ...ok, tools: [5] }],
  ["tool without type", { ...ok, tools: [{ name: "f" }] }],
  ["function tool without name", { ...ok, tools: [{ type: "function", parameters: {} }] }],
  ["function tool parameters string", { ...ok, tools: [{ type: "function", name: "f", parameters: "{}" }] }],
  ["function tool strict string", { ...ok, tools: [{ ...fn, strict: "yes" }] }],
  ["tool_choice unknown string", { ...ok, tools: [fn], tool_choice: "maybe" }],
  ["tool_choice required without tools", { ...ok, tool_choice: "required" }],
  ["tool_choice number", { ...ok, tools: [fn], tool_choice: 5 }],
  ["tool_choice function unknown name", { ...ok, tools: [fn], tool_choice: { type: "function", name: "g" } }],
  ["tool_choice function without name", { ...ok, tools: [fn], tool_choice: { type: "function" } }],
  ["parallel_tool_calls string", { ...ok, parallel_tool_calls: "yes" }],
  ["text string", { ...ok, text: "json" }],
  ["text.format unknown", { ...ok, text: { format: { type: "yaml" } } }],
  ["json_schema without name", { ...ok, text: { format: { type: "json_schema", schema: { type: "object" } } } }],
  ["json_schema without schema", { ...ok, text: { format: { type: "json_schema", name: "p" } } }],
  ["json_schema strict string", { ...ok, text: { format: { type: "json_schema", name: "p", schema: { type: "object" }, strict: "y" } } }],
  ["reasoning string", { ...ok, reasoning: "high" }],
  ["reasoning effort unknown", { ...ok, reasoning: { effort: "max" } }],
  ["previous_response_id number", { ...ok, previous_response_id: 5 }],
  ["previous_response_id empty", { ...ok, previous_response_id: "" }],
  ["previous_response_id unknown", { ...ok, previous_response_id: "resp_nope" }, 404],
  ["prompt too long", { ...ok, input: "hello ".repeat(5000) }],
  ["body too large", JSON.stringify({ ...ok, input: big })],
];

await test(`${cases.length} bad requests get 4xx in OpenAI's shape, streamed or not`, async () => {
  for (const [name, body, want] of cases) {
    for (const stream of [false, true]) {
      let text = typeof body === "string" ? body : JSON.stringify(stream ? { ...body, stream: body.stream ?? true } : body);
      if (stream && typeof body === "string") continue;
      const r = await fetch(srv.url + "/v1/responses", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: text,
        signal: AbortSignal.timeout(20000),
      });
      text = await r.text();
      const what = `${name}${stream ? " (stream)" : ""}`;
      if (want) eq(r.status, want, `${what}: status`);
      else check(r.status >= 400 && r.status < 500, `${what}: status ${r.status} ${text.slice(0, 200)}`);
      let j = null;
      try { j = JSON.parse(text); } catch {}
      check(j && typeof j.error?.message === "string" && typeof j.error?.type === "string" && "param" in j.error && "code" in j.error,
            `${what}: error shape ${text.slice(0, 200)}`);
    }
  }
});

await test("context overflow is context_length_exceeded on input", async () => {
  const r = await fetch(srv.url + "/v1/responses", { method: "POST", body: JSON.stringify({ ...ok, input: "hello ".repeat(5000) }) });
  eq(r.status, 400, "status");
  const j = await r.json();
  eq(j.error.code, "context_length_exceeded", "code");
  eq(j.error.param, "input", "param");
});

await test("GET and DELETE of an unknown response are 404 in OpenAI's shape", async () => {
  for (const method of ["GET", "DELETE"]) {
    const r = await fetch(srv.url + "/v1/responses/resp_nope", { method });
    eq(r.status, 404, `${method} status`);
    const j = await r.json();
    check(typeof j.error?.message === "string", `${method} error shape`);
  }
});

await test("--responses-max 1: an older response is evicted (404), the newest continues", async () => {
  const post = (body) => fetch(srv.url + "/v1/responses", { method: "POST", body: JSON.stringify(body) });
  const r1 = await (await post(ok)).json();
  const r2 = await (await post(ok)).json();
  const a = await post({ ...ok, previous_response_id: r1.id });
  eq(a.status, 404, "evicted id");
  eq((await a.json()).error?.code, "previous_response_not_found", "code");
  eq((await post({ ...ok, previous_response_id: r2.id })).status, 200, "newest id");
});

await test("server still answers", async () => {
  const r = await fetch(srv.url + "/v1/responses", { method: "POST", body: JSON.stringify(ok) });
  eq(r.status, 200, "status");
  eq((await r.json()).object, "response", "a response");
});

await srv.stop();
process.exit(summary());
