// Many models in one server (issue 17): three `origami synth` models (tiny, different seeds, so
// their answers differ) in a models dir (one named by DIR/aliases.json), served under a
// --mem-budget that fits two of them (computed from `origami info M --plan --json`). 16 clients
// spread over the three for ORIGAMI_MODELS_SECONDS (default 15; the run is 60:
// ORIGAMI_MODELS_SECONDS=60 ctest -R e2e_models_test) must see no errors and greedy answers
// identical to a one-model server's for the same model and prompt, while models are loaded and
// evicted under them; every load and unload is logged and counted in /metrics. Then: the listings, Ollama's keep_alive 0 unloading (seen in /api/ps), and 404 for an
// unknown model in the OpenAI, Anthropic, Responses and Ollama shapes.
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import OpenAI from "openai";
import { Ollama } from "ollama";
import { env, startServer, metrics, test, check, eq, summary, sleep } from "./lib.mjs";

const SECONDS = Number(process.env.ORIGAMI_MODELS_SECONDS || 15);
const CLIENTS = 16;
const bin = env("ORIGAMI_BIN");
const dir = `${env("ORIGAMI_E2E_OUT")}/models-${process.pid}`;
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const ids = ["alpha", "bravo", "charlie"];
// charlie's file has another name; DIR/aliases.json names it.
const files = { alpha: "alpha.gguf", bravo: "bravo.gguf", charlie: "c-tiny.gguf" };
ids.forEach((id, i) =>
  execFileSync(bin, ["synth", "--arch", "llama", "--preset", "tiny", "--seed", String(11 + i),
                     "-o", `${dir}/${files[id]}`], { stdio: "ignore" }));
writeFileSync(`${dir}/aliases.json`, JSON.stringify({ "c-tiny.gguf": "charlie" }));

// The same serving flags for the plan and every server, so the plan is what serve computes.
const flags = ["--parallel", "2", "-t", "1", "--responses-max-bytes", "1048576"];
const planned = ids.map((id) => JSON.parse(execFileSync(
  bin, ["info", `${dir}/${files[id]}`, "--plan", "--json", ...flags], { encoding: "utf8" })).total);
// Any two fit, all three do not: the two largest plus half the smallest.
const sorted = [...planned].sort((a, b) => b - a);
const budget = sorted[0] + sorted[1] + Math.floor(sorted[2] / 2);
console.log(`planned ${planned.join(", ")} bytes; --mem-budget ${budget}`);

const prompts = ["Once upon a time", "The little dog", "Tom and Lily went", "In the park there",
                 "She saw a big"];
const MAX_TOKENS = 8;

// Greedy answers of a one-model server: [model][prompt] -> text.
const reference = {};
for (const id of ids) {
  const one = await startServer([...flags, "--alias", id], { model: `${dir}/${files[id]}` });
  const client = new OpenAI({ baseURL: one.url + "/v1", apiKey: "x", maxRetries: 0 });
  reference[id] = [];
  for (const p of prompts) {
    const r = await client.completions.create({ model: id, prompt: p, max_tokens: MAX_TOKENS,
                                               temperature: 0 });
    reference[id].push(r.choices[0].text);
  }
  await one.stop();
}
check(JSON.stringify(reference.alpha) !== JSON.stringify(reference.bravo) &&
      JSON.stringify(reference.bravo) !== JSON.stringify(reference.charlie),
      "the three models answer differently (the test could tell them apart)");

const srv = await startServer(["--models-dir", dir, "--mem-budget", String(budget), ...flags],
                              { model: null });
const openai = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "x", maxRetries: 0 });
const ollama = new Ollama({ host: srv.url });

await test("listings name all three models before any is loaded", async () => {
  const models = await openai.models.list();
  eq(models.data.map((m) => m.id).sort(), ids, "/v1/models");
  const tags = await ollama.list();
  eq(tags.models.map((m) => m.name).sort(), ids.map((id) => `${id}:latest`), "/api/tags");
  eq((await ollama.ps()).models.length, 0, "/api/ps: nothing loaded yet");
  const m = await metrics(srv.url);
  eq(m.origami_models_known, 3, "models_known");
  eq(m.origami_models_loaded, 0, "models_loaded");
});

await test(`hot swap under load: ${CLIENTS} clients over 3 models for ${SECONDS} s`, async () => {
  const until = Date.now() + SECONDS * 1000;
  let requests = 0, errors = 0, mismatches = 0;
  let maxLoaded = 0;
  const perModel = { alpha: 0, bravo: 0, charlie: 0 };
  const client = async (c) => {
    for (let k = 0; Date.now() < until; ++k) {
      const id = ids[(c + k) % 3];  // each client moves across all three models
      const pi = (c * 7 + k) % prompts.length;
      try {
        let text;
        if (k % 4 === 3) {  // some through Ollama's API, which the same model answers
          const r = await ollama.generate({ model: id, prompt: prompts[pi], raw: true,
                                            options: { temperature: 0, num_predict: MAX_TOKENS } });
          text = r.response;
        } else {
          const r = await openai.completions.create({ model: id, prompt: prompts[pi],
                                                      max_tokens: MAX_TOKENS, temperature: 0 });
          text = r.choices[0].text;
        }
        requests++;
        perModel[id]++;
        if (text !== reference[id][pi]) {
          if (mismatches++ < 5)
            console.error(`mismatch ${id} "${prompts[pi]}": ${JSON.stringify(text)} vs ` +
                          JSON.stringify(reference[id][pi]));
        }
      } catch (e) {
        if (errors++ < 5) console.error(`client ${c} ${id}: ${e.status ?? ""} ${e.message}`);
      }
    }
  };
  const watcher = (async () => {
    while (Date.now() < until) {
      const m = await metrics(srv.url);
      maxLoaded = Math.max(maxLoaded, m.origami_models_loaded);
      await sleep(200);
    }
  })();
  await Promise.all([...Array(CLIENTS).keys()].map(client).concat([watcher]));
  console.log(`${requests} requests (${JSON.stringify(perModel)}), ${errors} errors, ` +
              `${mismatches} mismatches, at most ${maxLoaded} loaded`);
  check(requests > CLIENTS, `requests were answered (${requests})`);
  eq(errors, 0, "errors");
  eq(mismatches, 0, "greedy answers that differ from the one-model server's");
  check(maxLoaded <= 2, `never more than 2 models loaded under a budget for 2 (${maxLoaded})`);
  const m = await metrics(srv.url);
  console.log(`${m.origami_model_loads_total} loads, ${m.origami_model_unloads_total} unloads ` +
              `(${m.origami_model_evictions_total} evictions)`);
  check(m.origami_model_loads_total >= 3, `loads counted (${m.origami_model_loads_total})`);
  check(m.origami_model_unloads_total >= 1, `unloads counted (${m.origami_model_unloads_total})`);
  check(m.origami_model_evictions_total >= 1, `evictions counted (${m.origami_model_evictions_total})`);
  eq(m.origami_models_loaded, m.origami_model_loads_total - m.origami_model_unloads_total,
     "loaded = loads - unloads");
  const log = srv.log();
  eq((log.match(/loaded model /g) || []).length - (log.match(/unloaded model /g) || []).length,
     m.origami_model_loads_total, "each load logged");
  eq((log.match(/unloaded model /g) || []).length, m.origami_model_unloads_total,
     "each unload logged");
  let bytes = 0;
  for (const id of ids) bytes += m[`origami_model_bytes{model="${id}"}`] ?? 0;
  check(bytes > 0 && bytes <= budget, `per-model bytes within the budget (${bytes} <= ${budget})`);
  const failed = Object.entries(m).filter(([k, v]) => /code="5/.test(k) && v > 0);
  eq(failed, [], "no 5xx answers");
});

await test("keep_alive 0 unloads (Ollama client), visible in /api/ps", async () => {
  // A load call keeps the model with the request's keep_alive; /api/ps says until when.
  await ollama.generate({ model: "alpha", prompt: "", keep_alive: "1h" });
  let ps = await ollama.ps();
  const alpha = ps.models.find((m) => m.name === "alpha:latest");
  check(alpha !== undefined, "alpha loaded after the load call");
  if (alpha) {
    const left = new Date(alpha.expires_at).getTime() - Date.now();
    check(left > 50 * 60e3 && left <= 3600e3 + 5e3, `expires_at about an hour away (${left} ms)`);
    check(alpha.size > 0, "size");
  }
  // The unload call.
  const r = await ollama.generate({ model: "alpha", prompt: "", keep_alive: 0 });
  eq(r.done_reason, "unload", "done_reason");
  let gone = false;
  for (let i = 0; i < 50 && !gone; ++i) {
    ps = await ollama.ps();
    gone = !ps.models.some((m) => m.name === "alpha:latest");
    if (!gone) await sleep(100);
  }
  check(gone, "alpha no longer in /api/ps");
  // A chat with keep_alive 0 answers, then unloads.
  const c = await ollama.chat({ model: "bravo", messages: [{ role: "user", content: "Hi" }],
                                keep_alive: 0, options: { num_predict: 4 } });
  eq(c.done, true, "chat with keep_alive 0 answered");
  gone = false;
  for (let i = 0; i < 50 && !gone; ++i) {
    ps = await ollama.ps();
    gone = !ps.models.some((m) => m.name === "bravo:latest");
    if (!gone) await sleep(100);
  }
  check(gone, "bravo unloaded after its keep_alive 0 chat");
});

await test("unknown model: 404 in each API's error shape", async () => {
  try {
    await openai.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "x" }] });
    check(false, "openai: should fail");
  } catch (e) {
    eq(e.status, 404, "openai status");
    eq(e.code, "model_not_found", "openai error code");
  }
  const post = async (path, body) => {
    const r = await fetch(srv.url + path, { method: "POST", body: JSON.stringify(body),
                                            headers: { "Content-Type": "application/json" } });
    return [r.status, await r.json()];
  };
  let [st, b] = await post("/v1/messages", { model: "nope", max_tokens: 4,
                                             messages: [{ role: "user", content: "x" }] });
  eq(st, 404, "anthropic status");
  eq([b.type, b.error?.type], ["error", "not_found_error"], "anthropic shape");
  [st, b] = await post("/v1/responses", { model: "nope", input: "x" });
  eq(st, 404, "responses status");
  eq([b.error?.code, typeof b.error?.message], ["model_not_found", "string"], "responses shape");
  [st, b] = await post("/v1/embeddings", { model: "nope", input: "x" });
  eq(st, 404, "embeddings status");
  try {
    await ollama.generate({ model: "nope", prompt: "x" });
    check(false, "ollama: should fail");
  } catch (e) {
    eq(e.status_code, 404, "ollama status");
    check(/not found/.test(e.error ?? e.message), `ollama message: ${e.error ?? e.message}`);
  }
  [st, b] = await post("/api/chat", { model: "nope", messages: [] });
  eq([st, typeof b.error], [404, "string"], "ollama shape ({error: string})");
  const r = await fetch(srv.url + "/v1/models/nope");
  eq(r.status, 404, "/v1/models/nope");
});

if (process.env.ORIGAMI_MODELS_LOG) console.log(srv.log());
const code = await srv.stop();
eq(code, 0, "server exit code");
rmSync(dir, { recursive: true, force: true });
process.exit(summary());
