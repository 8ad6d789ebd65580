// Embeddings end to end: the official `openai` client's embeddings.create (float, base64, token
// ids, dimensions) and the `ollama` client's embed/embeddings against a synthetic embedding model
// (a Qwen3 shape whose GGUF names last-token pooling), /v1/embeddings on a generative model
// (stories260K, mean pooling), and bad requests answered 4xx in each API's error shape.
import OpenAI from "openai";
import { Ollama } from "ollama";
import { env, startServer, metrics, test, check, eq, summary } from "./lib.mjs";

const ctx = 64;
const srv = await startServer(["--max-seq-len", String(ctx)]);
const client = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "unused", maxRetries: 0 });
const ollama = new Ollama({ host: srv.url });
const model = (await client.models.list()).data[0].id;
const oname = (await (await fetch(srv.url + "/api/tags")).json()).models[0].name;

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const maxDiff = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const cos = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0) / (norm(a) * norm(b));
const fromBase64 = (s) => {
  const buf = Buffer.from(s, "base64");
  return Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
};
const texts = ["Hello, world", "the quick brown fox", "a"];
let width = 0;
let floats = [];

await test("embeddings.create with float vectors", async () => {
  const r = await client.embeddings.create({ model, input: texts, encoding_format: "float" });
  eq(r.object, "list", "object");
  eq(r.model, model, "model");
  eq(r.data.length, texts.length, "one vector per input");
  r.data.forEach((d, i) => {
    eq(d.object, "embedding", "data object");
    eq(d.index, i, "index");
  });
  floats = r.data.map((d) => d.embedding);
  width = floats[0].length;
  check(width > 0 && floats.every((v) => v.length === width), `width ${width}`);
  for (const v of floats) check(Math.abs(norm(v) - 1) < 1e-5, `unit length: ${norm(v)}`);
  check(maxDiff(floats[0], floats[1]) > 1e-3, "different texts, different vectors");
  check(r.usage.prompt_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens, "usage");
});

await test("base64 carries the same float32 values", async () => {
  const r = await client.embeddings.create({ model, input: texts, encoding_format: "base64" });
  check(typeof r.data[0].embedding === "string", "base64 string kept as sent");
  r.data.forEach((d, i) => eq(maxDiff(fromBase64(d.embedding), floats[i]), 0, `input ${i}`));
  // The client's default asks for base64 and decodes it itself.
  const dflt = await client.embeddings.create({ model, input: texts[0] });
  check(maxDiff(dflt.data[0].embedding, floats[0]) === 0, "client default (base64 decoded)");
});

await test("one input at a time gives the batch's vectors", async () => {
  for (let i = 0; i < texts.length; i++) {
    const r = await client.embeddings.create({ model, input: texts[i], encoding_format: "float" });
    check(maxDiff(r.data[0].embedding, floats[i]) <= 1e-6, `input ${i}: ${maxDiff(r.data[0].embedding, floats[i])}`);
  }
});

await test("token-id inputs and dimensions", async () => {
  const ids = [[1, 72, 101, 108, 108, 111], [1, 50, 60]];
  const a = await client.embeddings.create({ model, input: ids, encoding_format: "float" });
  eq(a.usage.prompt_tokens, 9, "usage counts the ids");
  const b = await client.embeddings.create({ model, input: ids[0], encoding_format: "float" });
  check(maxDiff(a.data[0].embedding, b.data[0].embedding) <= 1e-6, "flat id array equals the first of two");
  const d = Math.max(1, width >> 2);
  const c = await client.embeddings.create({ model, input: texts[0], dimensions: d, encoding_format: "float" });
  eq(c.data[0].embedding.length, d, "dimensions");
  check(Math.abs(norm(c.data[0].embedding) - 1) < 1e-5, "re-normalised");
  const head = floats[0].slice(0, d);
  const n = norm(head);
  check(maxDiff(c.data[0].embedding, head.map((x) => x / n)) < 1e-6, "the leading values, normalised");
});

await test("ollama.embed and ollama.embeddings", async () => {
  const r = await ollama.embed({ model: oname, input: texts });
  eq(r.model, oname, "model");
  eq(r.embeddings.length, texts.length, "one vector per input");
  r.embeddings.forEach((v, i) => check(maxDiff(v, floats[i]) <= 1e-6, `embed ${i} equals /v1/embeddings`));
  check(r.prompt_eval_count > 0 && r.total_duration > 0, "counts and durations");
  const one = await ollama.embed({ model: oname, input: texts[1], dimensions: 8 });
  eq(one.embeddings[0].length, 8, "dimensions");
  const old = await ollama.embeddings({ model: oname, prompt: texts[0] });
  eq(old.embedding.length, width, "legacy width");
  check(cos(old.embedding, floats[0]) > 1 - 1e-6, "legacy vector points the same way (not normalised)");
  const long = "story time ".repeat(200);
  const cut = await ollama.embed({ model: oname, input: long });
  eq(cut.prompt_eval_count, ctx, "truncate (default true) cuts to the context");
  let status = 0;
  try {
    await ollama.embed({ model: oname, input: long, truncate: false });
  } catch (e) {
    status = e.status_code;
  }
  eq(status, 400, "truncate false: 400 on overflow");
  const load = await ollama.embed({ model: oname, input: "" });
  eq(load.embeddings, [], "empty input is a load call");
});

await test("show lists the embedding capability; chat and generate are refused", async () => {
  const s = await ollama.show({ model: oname });
  check(s.capabilities.includes("embedding"), `capabilities ${s.capabilities}`);
  check(!s.capabilities.includes("completion"), "no completion capability");
  for (const [what, call] of [["chat", () => ollama.chat({ model: oname, messages: [{ role: "user", content: "hi" }] })],
                              ["generate", () => ollama.generate({ model: oname, prompt: "hi", stream: false })]]) {
    let err = null;
    try { await call(); } catch (e) { err = e; }
    eq(err && err.status_code, 400, `${what}: status`);
    eq(err && err.error, `"${oname}" does not support ${what}`, `${what}: message`);
  }
});

await test("chat and completions on an embedding model: 400 naming the model, in OpenAI's shape", async () => {
  for (const [what, call] of [["chat", () => client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] })],
                              ["completions", () => client.completions.create({ model, prompt: "hi", max_tokens: 2 })]]) {
    let err = null;
    try { await call(); } catch (e) { err = e; }
    eq(err && err.status, 400, `${what}: status`);
    eq(err && err.error?.code, "model_not_supported", `${what}: code`);
    eq(err && err.error?.param, "model", `${what}: param`);
  }
});

const big = Array.from({ length: 2049 }, () => "x");
const tooLong = Array.from({ length: ctx + 1 }, () => 5);
// [name, body, expected status]
const openaiCases = [
  ["invalid json", "{", 400],
  ["array body", "[]", 400],
  ["missing input", { model }, 400],
  ["null input", { model, input: null }, 400],
  ["empty string", { model, input: "" }, 400],
  ["empty array", { model, input: [] }, 400],
  ["empty string in array", { model, input: ["a", ""] }, 400],
  ["empty id array in array", { model, input: [[1], []] }, 400],
  ["input number", { model, input: 5 }, 400],
  ["input object", { model, input: { text: "x" } }, 400],
  ["input bool array", { model, input: [true] }, 400],
  ["mixed strings and ids", { model, input: ["a", [1, 2]] }, 400],
  ["negative token id", { model, input: [1, -2] }, 400],
  ["token id past the vocabulary", { model, input: [1, 1 << 30] }, 400],
  ["float token id", { model, input: [1, 2.5] }, 400],
  ["too many inputs", { model, input: big }, 400],
  ["ids longer than the context", { model, input: tooLong }, 400],
  ["text longer than the context", { model, input: "story time ".repeat(200) }, 400],
  ["encoding_format unknown", { model, input: "a", encoding_format: "int8" }, 400],
  ["encoding_format number", { model, input: "a", encoding_format: 1 }, 400],
  ["dimensions zero", { model, input: "a", dimensions: 0 }, 400],
  ["dimensions too large", { model, input: "a", dimensions: 1 << 20 }, 400],
  ["dimensions string", { model, input: "a", dimensions: "8" }, 400],
  ["model number", { model: 5, input: "a" }, 400],
  ["unknown model", { model: "nope", input: "a" }, 404],
];
const ollamaCases = [
  ["/api/embed", "{", 400],
  ["/api/embed", { model: oname, input: 5 }, 400],
  ["/api/embed", { model: oname, input: [1, 2] }, 400],
  ["/api/embed", { model: oname, input: "a", truncate: "no" }, 400],
  ["/api/embed", { model: oname, input: "a", dimensions: -1 }, 400],
  ["/api/embed", { model: oname, input: "a", keep_alive: "soon" }, 400],
  ["/api/embed", { model: oname, input: big }, 400],
  ["/api/embed", { model: "nope", input: "a" }, 404],
  ["/api/embeddings", { model: oname, prompt: ["a"] }, 400],
  ["/api/embeddings", { model: "nope", prompt: "a" }, 404],
];

await test(`${openaiCases.length + ollamaCases.length} bad requests in each API's error shape`, async () => {
  for (const [what, body, status] of openaiCases) {
    const r = await fetch(srv.url + "/v1/embeddings", {
      method: "POST", headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await r.text();
    eq(r.status, status, `${what}: status (${text.slice(0, 160)})`);
    let j = null;
    try { j = JSON.parse(text); } catch {}
    check(j && j.error && typeof j.error.message === "string" && typeof j.error.type === "string",
          `${what}: OpenAI error shape ${text.slice(0, 160)}`);
  }
  for (const [path, body, status] of ollamaCases) {
    const r = await fetch(srv.url + path, {
      method: "POST", body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await r.text();
    const what = `${path} ${typeof body === "string" ? body : JSON.stringify(body).slice(0, 60)}`;
    eq(r.status, status, `${what}: status (${text.slice(0, 160)})`);
    let j = null;
    try { j = JSON.parse(text); } catch {}
    check(j && typeof j.error === "string" && Object.keys(j).length === 1, `${what}: Ollama error shape ${text.slice(0, 160)}`);
  }
  const ok = await client.embeddings.create({ model, input: "still here", encoding_format: "float" });
  eq(ok.data[0].embedding.length, width, "server still answers");
  const m = await metrics(srv.url);
  check(m.origami_embedding_requests_total > 0 && m.origami_embedding_tokens_total > m.origami_embedding_requests_total,
        `embedding counters in /metrics: ${m.origami_embedding_requests_total} ${m.origami_embedding_tokens_total}`);
  eq(m.origami_kv_blocks_in_use, 0, "every KV block back");
});

await srv.stop();

await test("a generative model embeds through /v1/embeddings (mean) but not /api/embed", async () => {
  const gen = await startServer([], { model: env("ORIGAMI_GENERATIVE_MODEL") });
  try {
    const c = new OpenAI({ baseURL: gen.url + "/v1", apiKey: "unused", maxRetries: 0 });
    const r = await c.embeddings.create({ input: ["Once upon a time", "Lily"], encoding_format: "float" });
    eq(r.data.length, 2, "two vectors");
    check(Math.abs(norm(r.data[0].embedding) - 1) < 1e-5, "unit length");
    const name = (await (await fetch(gen.url + "/api/tags")).json()).models[0].name;
    const e = await fetch(gen.url + "/api/embed", { method: "POST", body: JSON.stringify({ model: name, input: "x" }) });
    eq(e.status, 400, "capability error status");
    eq((await e.json()).error, `"${name}" does not support embeddings`, "capability error");
    const s = await (await fetch(gen.url + "/api/show", { method: "POST", body: JSON.stringify({ model: name }) })).json();
    check(!s.capabilities.includes("embedding"), "no embedding capability");
  } finally {
    await gen.stop();
  }
});

process.exit(summary());
