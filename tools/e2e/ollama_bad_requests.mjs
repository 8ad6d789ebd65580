// Hostile and malformed Ollama API requests: each must get a 4xx with Ollama's {"error": string},
// never a 5xx, hang or crash; the server must still answer afterwards.
import { startServer, test, check, eq, summary } from "./lib.mjs";

const srv = await startServer([]);
const name = (await (await fetch(srv.url + "/api/tags")).json()).models[0].name;
const u = [{ role: "user", content: "hi" }];
const chat = (extra) => ({ model: name, messages: u, ...extra });
const opts = (options) => chat({ options });
const gen = (extra) => ({ model: name, prompt: "Once", ...extra });
const big = "x".repeat(9 << 20);
// [name, body, path, method, expected status (default: any 4xx)]
const cases = [
  ["chat invalid json", "{"],
  ["chat array body", "[]"],
  ["chat string body", '"hi"'],
  ["chat null body", "null"],
  ["chat empty body", ""],
  ["chat missing model", { messages: u }],
  ["chat empty model", { model: "", messages: u }],
  ["chat model number", { model: 7, messages: u }],
  ["chat unknown model", { model: "llama3:8b", messages: u }, "/api/chat", "POST", 404],
  ["chat unknown tag", { model: name.replace(/:latest$/, ":7b"), messages: u }, "/api/chat", "POST", 404],
  ["messages object", chat({ messages: {} })],
  ["message not object", chat({ messages: [5] })],
  ["message missing role", chat({ messages: [{ content: "x" }] })],
  ["message bad role", chat({ messages: [{ role: "robot", content: "x" }] })],
  ["message content number", chat({ messages: [{ role: "user", content: 5 }] })],
  ["message content array", chat({ messages: [{ role: "user", content: [{ type: "text", text: "x" }] }] })],
  ["message images", chat({ messages: [{ role: "user", content: "x", images: ["iVBORw0KGgo="] }] })],
  ["message images string", chat({ messages: [{ role: "user", content: "x", images: "AAAA" }] })],
  ["message thinking number", chat({ messages: [{ role: "assistant", content: "x", thinking: 1 }] })],
  ["tool_calls on user", chat({ messages: [{ role: "user", content: "x", tool_calls: [{ function: { name: "f", arguments: {} } }] }] })],
  ["tool_calls arguments number", chat({ messages: [{ role: "assistant", content: "", tool_calls: [{ function: { name: "f", arguments: 5 } }] }] })],
  ["tool_calls without function", chat({ messages: [{ role: "assistant", content: "", tool_calls: [{}] }] })],
  ["stream string", chat({ stream: "yes" })],
  ["options array", chat({ options: [] })],
  ["options.temperature string", opts({ temperature: "hot" })],
  ["options.top_k string", opts({ top_k: "x" })],
  ["options.top_p bool", opts({ top_p: true })],
  ["options.seed string", opts({ seed: "x" })],
  ["options.num_predict string", opts({ num_predict: "5" })],
  ["options.num_predict -5", opts({ num_predict: -5 })],
  ["options.num_predict float", opts({ num_predict: 2.5 })],
  ["options.num_ctx zero", opts({ num_ctx: 0 })],
  ["options.num_ctx string", opts({ num_ctx: "big" })],
  ["options.stop numbers", opts({ stop: [1, 2] })],
  ["options.stop 65", opts({ stop: Array.from({ length: 65 }, (_, i) => `s${i}`) })],
  ["options.repeat_penalty string", opts({ repeat_penalty: "x" })],
  ["options.repeat_last_n float", opts({ repeat_last_n: 1.5 })],
  ["format xml", chat({ format: "xml" })],
  ["format number", chat({ format: 5 })],
  ["format bad schema", chat({ format: { type: "object", properties: { a: { type: "wat" } } } })],
  ["think string", chat({ think: "very" })],
  ["think without a thinking template", chat({ think: true }), "/api/chat", "POST", 400],
  ["tools without a tools template", chat({ tools: [{ type: "function", function: { name: "f" } }] }), "/api/chat", "POST", 400],
  ["keep_alive word", chat({ keep_alive: "soon" })],
  ["keep_alive bool", chat({ keep_alive: true })],
  ["tools object", chat({ tools: {} })],
  ["tool without name", chat({ tools: [{ type: "function", function: {} }] })],
  ["tool bad type", chat({ tools: [{ type: "retrieval", function: { name: "f" } }] })],
  ["tool_choice unknown function", chat({ tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
                                          tool_choice: { type: "function", function: { name: "g" } } })],
  ["prompt too long", chat({ messages: [{ role: "user", content: "story ".repeat(3000) }] })],
  ["body too large", JSON.stringify(chat({ messages: [{ role: "user", content: big }] })), "/api/chat", "POST", 413],
  ["generate invalid json", "{", "/api/generate"],
  ["generate unknown model", { model: "x", prompt: "y" }, "/api/generate", "POST", 404],
  ["generate prompt number", gen({ prompt: 5 }), "/api/generate"],
  ["generate images", gen({ images: ["AAAA"] }), "/api/generate"],
  ["generate suffix without FIM", gen({ suffix: "end" }), "/api/generate"],
  ["generate context", gen({ context: [1, 2, 3] }), "/api/generate"],
  ["generate raw string", gen({ raw: "yes" }), "/api/generate"],
  ["generate system number", gen({ system: 1 }), "/api/generate"],
  ["generate template action", gen({ template: "{{ range .Messages }}{{ end }}" }), "/api/generate"],
  ["generate options.num_predict -9", gen({ options: { num_predict: -9 } }), "/api/generate"],
  ["show invalid json", "{", "/api/show"],
  ["show missing model", {}, "/api/show"],
  ["show unknown model", { model: "nope" }, "/api/show", "POST", 404],
  ["embed generative model", { model: name, input: "hi" }, "/api/embed", "POST", 400],
  ["embed input number", { model: name, input: 5 }, "/api/embed"],
  ["embed unknown model", { model: "nope", input: "hi" }, "/api/embed", "POST", 404],
  ["embeddings generative model", { model: name, prompt: "hi" }, "/api/embeddings", "POST", 400],
  ["pull", { model: name }, "/api/pull", "POST", 400],
  ["push", { model: name }, "/api/push", "POST", 400],
  ["create", { model: "x", from: name }, "/api/create", "POST", 400],
  ["copy", { source: name, destination: "y" }, "/api/copy", "POST", 400],
  ["delete", { model: name }, "/api/delete", "DELETE", 400],
  ["unknown route", {}, "/api/frobnicate", "POST", 404],
];

await test(`${cases.length} bad requests get 4xx in Ollama's shape`, async () => {
  check(cases.length >= 30, "at least 30 cases");
  for (const [what, body, path = "/api/chat", method = "POST", status] of cases) {
    let r;
    try {
      r = await fetch(srv.url + path, {
        method,
        headers: { "content-type": "application/json" },
        body: typeof body === "string" ? body : JSON.stringify(body),
        signal: AbortSignal.timeout(20000),
      });
    } catch (e) {
      check(false, `${what}: request failed: ${e}`);
      continue;
    }
    const text = await r.text();
    if (status) eq(r.status, status, `${what}: status (${text.slice(0, 200)})`);
    else check(r.status >= 400 && r.status < 500, `${what}: status ${r.status} ${text.slice(0, 200)}`);
    let j = null;
    try {
      j = JSON.parse(text);
    } catch {}
    check(j && typeof j.error === "string" && j.error.length > 0 && Object.keys(j).length === 1,
          `${what}: Ollama error shape ${text.slice(0, 200)}`);
  }
});

await test("the capability error uses Ollama's wording", async () => {
  const r = await fetch(srv.url + "/api/embed", { method: "POST", body: JSON.stringify({ model: name, input: "x" }) });
  eq((await r.json()).error, `"${name}" does not support embeddings`, "message");
});

await test("server still answers", async () => {
  const r = await fetch(srv.url + "/api/chat", {
    method: "POST", body: JSON.stringify(chat({ stream: false, options: { num_predict: 3 } })),
  });
  eq(r.status, 200, "status");
  const j = await r.json();
  eq(j.done, true, "done");
  eq(j.eval_count, 3, "eval_count");
});

await srv.stop();
process.exit(summary());
