// The bad-request catalogue: every case with its exact HTTP status and, for 4xx, an OpenAI-shaped
// error object ({"error":{"message","type","param","code"}}). The server must survive all of it
// and still answer a good request afterwards.
import { startServer, check, eq, test, summary } from "./lib.mjs";

const KEY = "catalogue-key";
const srv = await startServer(["--api-key", KEY, "--max-body", "65536", "--parallel", "2"]);
const auth = { Authorization: `Bearer ${KEY}` };
const model = (await (await fetch(srv.url + "/v1/models", { headers: auth })).json()).data[0].id;
const msgs = [{ role: "user", content: "hi" }];
const chat = (extra) => ({ model, messages: msgs, max_tokens: 2, ...extra });
const cmpl = (extra) => ({ model, prompt: "hi", max_tokens: 2, ...extra });
const C = "/v1/chat/completions";
const P = "/v1/completions";

// [name, path, body (object | raw string | undefined for GET), expected status, expected param, headers]
const cases = [
  ["no auth header", C, chat(), 401, null, {}],
  ["wrong key", C, chat(), 401, null, { Authorization: "Bearer nope" }],
  ["key without Bearer", C, chat(), 401, null, { Authorization: KEY }],
  ["metrics need the key", "/metrics", undefined, 401, null, {}],
  ["unknown route", "/v1/nope", chat(), 404],
  ["unknown GET route", "/v2/models", undefined, 404],
  ["unknown model", C, chat({ model: "gpt-4o" }), 404, "model"],
  ["unknown model id in path", "/v1/models/other", undefined, 404, "model"],
  ["body not JSON", C, "{not json", 400],
  ["body is an array", C, "[1,2]", 400],
  ["body is empty", C, "", 400],
  ["body too large", C, JSON.stringify(chat({ messages: [{ role: "user", content: "x".repeat(70000) }] })), 413],
  ["messages missing", C, { model }, 400, "messages"],
  ["messages not an array", C, chat({ messages: "hi" }), 400, "messages"],
  ["messages empty", C, chat({ messages: [] }), 400, "messages"],
  ["message not an object", C, chat({ messages: ["hi"] }), 400, "messages[0]"],
  ["message without role", C, chat({ messages: [{ content: "hi" }] }), 400, "messages[0].role"],
  ["message with bad role", C, chat({ messages: [{ role: "wizard", content: "hi" }] }), 400, "messages[0].role"],
  ["message without content", C, chat({ messages: [{ role: "user" }] }), 400, "messages[0].content"],
  ["content of wrong type", C, chat({ messages: [{ role: "user", content: 5 }] }), 400, "messages[0].content"],
  ["image content part", C, chat({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }), 400, "messages[0].content"],
  ["temperature above 2", C, chat({ temperature: 2.5 }), 400, "temperature"],
  ["temperature negative", C, chat({ temperature: -0.1 }), 400, "temperature"],
  ["temperature a string", C, chat({ temperature: "hot" }), 400, "temperature"],
  ["top_p above 1", C, chat({ top_p: 1.5 }), 400, "top_p"],
  ["n zero", C, chat({ n: 0 }), 400, "n"],
  ["n too large", C, chat({ n: 1000 }), 400, "n"],
  ["n fractional", C, chat({ n: 1.5 }), 400, "n"],
  ["max_tokens zero", C, chat({ max_tokens: 0 }), 400, "max_tokens"],
  ["max_tokens negative", C, chat({ max_tokens: -5 }), 400, "max_tokens"],
  ["max_tokens a string", C, chat({ max_tokens: "10" }), 400, "max_tokens"],
  ["max_completion_tokens zero", C, chat({ max_completion_tokens: 0 }), 400, "max_completion_tokens"],
  ["five stop strings", C, chat({ stop: ["a", "b", "c", "d", "e"] }), 400, "stop"],
  ["stop not a string", C, chat({ stop: 7 }), 400, "stop"],
  ["stop array with a number", C, chat({ stop: ["a", 1] }), 400, "stop"],
  ["empty stop string", C, chat({ stop: [""] }), 400, "stop"],
  ["presence_penalty above 2", C, chat({ presence_penalty: 3 }), 400, "presence_penalty"],
  ["frequency_penalty below -2", C, chat({ frequency_penalty: -2.5 }), 400, "frequency_penalty"],
  ["seed a string", C, chat({ seed: "abc" }), 400, "seed"],
  ["logit_bias not an object", C, chat({ logit_bias: [1, 2] }), 400, "logit_bias"],
  ["logit_bias key not a token id", C, chat({ logit_bias: { abc: 1 } }), 400, "logit_bias"],
  ["logit_bias value out of range", C, chat({ logit_bias: { 5: 500 } }), 400, "logit_bias"],
  ["logit_bias token beyond the vocabulary", C, chat({ logit_bias: { 99999999: 1 } }), 400, "logit_bias"],
  ["top_logprobs without logprobs", C, chat({ top_logprobs: 2 }), 400, "top_logprobs"],
  ["top_logprobs above 20", C, chat({ logprobs: true, top_logprobs: 21 }), 400, "top_logprobs"],
  ["logprobs not a boolean", C, chat({ logprobs: "yes" }), 400, "logprobs"],
  ["stream not a boolean", C, chat({ stream: "yes" }), 400, "stream"],
  ["stream_options without stream", C, chat({ stream_options: { include_usage: true } }), 400, "stream_options"],
  ["stream_options not an object", C, chat({ stream: true, stream_options: 1 }), 400, "stream_options"],
  ["top_k negative", C, chat({ top_k: -1 }), 400, "top_k"],
  ["min_p above 1", C, chat({ min_p: 2 }), 400, "min_p"],
  ["repeat_penalty zero", C, chat({ repeat_penalty: 0 }), 400, "repeat_penalty"],
  ["model not a string", C, chat({ model: 5 }), 400, "model"],
  ["tools not an array", C, chat({ tools: {} }), 400, "tools"],
  ["tool without a name", C, chat({ tools: [{ type: "function", function: {} }] }), 400, "tools[0]"],
  ["tool_choice unknown", C, chat({ tool_choice: "always" }), 400, "tool_choice"],
  ["tool_choice required without tools", C, chat({ tool_choice: "required" }), 400, "tool_choice"],
  ["parallel_tool_calls not a boolean", C, chat({ parallel_tool_calls: "no" }), 400, "parallel_tool_calls"],
  ["response_format unknown type", C, chat({ response_format: { type: "xml" } }), 400, "response_format"],
  ["json_schema without schema", C, chat({ response_format: { type: "json_schema" } }), 400, "response_format"],
  ["prompt longer than the context", C, chat({ messages: [{ role: "user", content: "story ".repeat(3000) }] }), 400, "messages"],
  ["prompt missing", P, { model, max_tokens: 2 }, 400, "prompt"],
  ["prompt a number", P, cmpl({ prompt: 5 }), 400, "prompt"],
  ["prompt empty array", P, cmpl({ prompt: [] }), 400, "prompt"],
  ["prompt token id negative", P, cmpl({ prompt: [1, -4] }), 400, "prompt"],
  ["prompt token id beyond vocabulary", P, cmpl({ prompt: [1, 99999999] }), 400, "prompt"],
  ["completions logprobs above 5", P, cmpl({ logprobs: 6 }), 400, "logprobs"],
  ["completions echo not a boolean", P, cmpl({ echo: 1 }), 400, "echo"],
  ["completions prompt too long", P, cmpl({ prompt: "story ".repeat(3000) }), 400, "prompt"],
  // Accepted: unknown fields are ignored, nulls mean "absent".
  ["unknown fields ignored", C, chat({ frobnicate: true, user: "u1", metadata: { a: 1 } }), 200],
  ["null fields mean absent", C, chat({ temperature: null, stop: null, seed: null }), 200],
  ["developer role accepted", C, chat({ messages: [{ role: "developer", content: "be brief" }, { role: "user", content: "hi" }] }), 200],
  ["text content parts accepted", C, chat({ messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }] }), 200],
  ["health needs no key", "/health", undefined, 200, null, {}],
  ["web page needs no key", "/", undefined, 200, null, {}],
];

await test(`catalogue of ${cases.length} requests`, async () => {
  check(cases.filter((c) => c[3] >= 400).length >= 40, "at least 40 bad requests");
  for (const [name, path, body, status, param, headers] of cases) {
    const init = { method: body === undefined ? "GET" : "POST", headers: { "Content-Type": "application/json", ...(headers ?? auth) } };
    if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
    let res;
    try {
      res = await fetch(srv.url + path, init);
    } catch (e) {
      check(false, `${name}: request failed: ${e}`);
      continue;
    }
    const text = await res.text();
    eq(res.status, status, `${name}: status`);
    if (status >= 400) {
      let j = null;
      try {
        j = JSON.parse(text);
      } catch {}
      const e = j && j.error;
      check(e && typeof e.message === "string" && typeof e.type === "string" && "param" in e && "code" in e,
            `${name}: OpenAI error shape, got ${text.slice(0, 200)}`);
      if (param) eq(e && e.param, param, `${name}: param`);
    }
  }
});

await test("overload answers 503 with Retry-After", async () => {
  const busy = await startServer(["--parallel", "1", "--max-queue", "1"]);
  try {
    const req = () => fetch(busy.url + "/v1/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "Once", max_tokens: 400, temperature: 0 }),
    });
    const all = await Promise.all(Array.from({ length: 6 }, req));
    const codes = all.map((r) => r.status);
    check(codes.includes(503), `some 503 among ${codes}`);
    check(codes.includes(200), `some 200 among ${codes}`);
    const r503 = all.find((r) => r.status === 503);
    if (r503) {
      eq(r503.headers.get("retry-after"), "1", "Retry-After");
      eq((await r503.json()).error.code, "overloaded", "code");
    }
    for (const r of all) if (r.status === 200) await r.text();
  } finally {
    await busy.stop();
  }
});

await test("still healthy after the catalogue", async () => {
  const r = await fetch(srv.url + C, { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify(chat({})) });
  eq(r.status, 200, "good request");
  check(srv.child.exitCode === null, "server alive");
});

await srv.stop();
process.exit(summary());
