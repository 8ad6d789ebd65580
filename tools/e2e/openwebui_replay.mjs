// Replays, with plain fetch, the requests Open WebUI's backend (routers/ollama.py) makes to an
// Ollama connection, with its headers and bodies, and checks the fields it reads: the version
// probe, the model list (model, name, details), /api/ps, a streamed chat with options and
// keep_alive (message.content per line; done, done_reason and the statistics it turns into
// tokens per second on the last), and the non-streamed chat it uses for titles. The server runs
// with an API key, sent as Open WebUI sends a connection's key.
import { startServer, test, check, eq, summary } from "./lib.mjs";

const key = "owui-key";
const srv = await startServer(["--api-key", key]);
const headers = { "Content-Type": "application/json", Authorization: `Bearer ${key}` };
const get = (path) => fetch(srv.url + path, { headers });
const post = (path, body) => fetch(srv.url + path, { method: "POST", headers, body: JSON.stringify(body) });
let model = "";
let tagName = "";

// Open WebUI's usage conversion (convert_ollama_usage_to_openai) divides counts by durations.
function tokensPerSecond(count, ns) {
  return ns > 0 ? count / (ns / 1e9) : NaN;
}

await test("GET /api/version (connection check)", async () => {
  const r = await get("/api/version");
  eq(r.status, 200, "status");
  const v = await r.json();
  check(typeof v.version === "string" && /^\d+\.\d+\.\d+/.test(v.version), `version ${v.version}`);
});

await test("GET /api/tags (model list)", async () => {
  const r = await get("/api/tags");
  eq(r.status, 200, "status");
  const { models } = await r.json();
  check(Array.isArray(models) && models.length === 1, "models");
  const m = models[0];
  model = m.model;  // Open WebUI keys models by "model" and shows "name"
  tagName = m.name;
  check(typeof m.model === "string" && typeof m.name === "string", "model and name");
  check(typeof m.details?.parameter_size === "string" && typeof m.details?.quantization_level === "string",
        "details shown in the model selector");
  check(typeof m.size === "number" && typeof m.digest === "string" && typeof m.modified_at === "string",
        "size, digest, modified_at");
});

await test("GET /api/ps (loaded models)", async () => {
  const { models } = await (await get("/api/ps")).json();
  // get_all_models maps expires_at by "name" onto the tags list and parses it with Python's
  // datetime.fromisoformat (3.11: any fraction digits, "Z" or an offset).
  const m = models.find((x) => x.name === tagName);
  check(m !== undefined, "the model is loaded under its tags name");
  check(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(m?.expires_at ?? ""),
        `expires_at in ISO 8601: ${m?.expires_at}`);
});

await test("POST /api/show (model info)", async () => {
  const r = await post("/api/show", { model });
  eq(r.status, 200, "status");
  const s = await r.json();
  check(Array.isArray(s.capabilities) && s.capabilities.includes("completion"), "capabilities");
  check(typeof s.model_info === "object", "model_info");
});

await test("POST /api/chat streamed with options and keep_alive", async () => {
  const body = {
    model,
    messages: [
      { role: "system", content: "You are a storyteller." },
      { role: "user", content: "Once upon a time" },
    ],
    stream: true,
    options: { temperature: 0.7, top_p: 0.9, top_k: 40, num_ctx: 2048, num_predict: 16, seed: 1,
               repeat_penalty: 1.1, stop: ["<|im_end|>"], num_batch: 512, use_mmap: true },
    keep_alive: "5m",
  };
  const r = await post("/api/chat", body);
  eq(r.status, 200, "status");
  check((r.headers.get("content-type") ?? "").startsWith("application/x-ndjson"), `content-type ${r.headers.get("content-type")}`);
  const lines = (await r.text()).split("\n").filter((l) => l.length > 0);
  const objs = [];
  for (const l of lines) {
    try {
      objs.push(JSON.parse(l));
    } catch {
      check(false, `line is JSON: ${l}`);
    }
  }
  check(objs.length >= 2, `several lines (${objs.length})`);
  let content = "";
  for (const o of objs.slice(0, -1)) {
    eq(o.done, false, "done false before the end");
    eq(o.model, model, "model on every line");
    check(typeof o.message?.content === "string" && o.message.role === "assistant", "message.content");
    content += o.message.content;
  }
  check(content.length > 0, "text streamed");
  const last = objs[objs.length - 1];
  eq(last.done, true, "last line done");
  check(["stop", "length"].includes(last.done_reason), `done_reason ${last.done_reason}`);
  for (const k of ["eval_count", "eval_duration", "prompt_eval_count", "prompt_eval_duration", "total_duration", "load_duration"])
    check(Number.isInteger(last[k]), `${k} is an integer`);
  const rate = tokensPerSecond(last.eval_count, last.eval_duration);
  check(Number.isFinite(rate) && rate > 0, `response_token/s ${rate}`);
  check(Number.isFinite(tokensPerSecond(last.prompt_eval_count, last.prompt_eval_duration)), "prompt_token/s");
  check(!Number.isNaN(Date.parse(last.created_at)), "created_at");
});

await test("POST /api/chat not streamed (title generation)", async () => {
  const r = await post("/api/chat", {
    model, stream: false, messages: [{ role: "user", content: "Give a title to: Once upon a time" }],
    options: { temperature: 0.1, num_predict: 8 },
  });
  eq(r.status, 200, "status");
  const o = await r.json();
  check(typeof o.message?.content === "string" && o.done === true, "message and done");
  eq(o.eval_count, 8, "eval_count");
});

await test("the key is required", async () => {
  const r = await fetch(srv.url + "/api/tags");
  eq(r.status, 401, "status without the key");
  const j = await r.json();
  check(typeof j.error === "string", "Ollama error shape");
});

await srv.stop();
process.exit(summary());
