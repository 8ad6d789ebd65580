// End-to-end test of Ollama's native API with the official `ollama` npm client (pinned 0.6.4)
// against the real server: version, list, show, ps, chat and generate (streamed and not), format
// with a JSON schema, embed's capability error, keep_alive 0, greedy answers equal to
// /v1/chat/completions, statistics; then a forced tool call on a synthetic Qwen3 model with the
// real Qwen3 template (ORIGAMI_TOOLS_MODEL, ORIGAMI_TOOLS_TEMPLATE).
import { statSync } from "node:fs";
import { Ollama } from "ollama";
import { env, startServer, test, check, eq, summary } from "./lib.mjs";

const srv = await startServer([]);
const ollama = new Ollama({ host: srv.url });
const modelFile = env("ORIGAMI_MODEL");
const user = [{ role: "user", content: "Once upon a time" }];
let name = "";

// A thrown ResponseError with this status and message.
async function rejects(promise, status, pattern, what) {
  try {
    await promise;
    check(false, `${what}: should fail`);
  } catch (e) {
    eq(e.status_code, status, `${what}: status`);
    check(pattern.test(e.error ?? e.message), `${what}: message ${e.error ?? e.message}`);
  }
}

// The final line's statistics: integers, positive where work was done, consistent.
function checkStats(r, what, evalCount) {
  for (const k of ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration",
                   "prompt_eval_count", "eval_count"])
    check(Number.isInteger(r[k]) && r[k] >= 0, `${what}: ${k} is a non-negative integer (${r[k]})`);
  check(r.prompt_eval_count > 0, `${what}: prompt_eval_count > 0`);
  if (evalCount !== undefined) eq(r.eval_count, evalCount, `${what}: eval_count`);
  check(r.eval_duration > 0 && r.prompt_eval_duration > 0, `${what}: eval durations > 0`);
  check(r.total_duration >= r.load_duration + r.prompt_eval_duration + r.eval_duration,
        `${what}: total_duration covers the parts`);
  check(r.total_duration < 120e9, `${what}: total_duration is in nanoseconds (${r.total_duration})`);
  // RFC 3339 with nanoseconds, as Go writes it; the client passes the string through.
  check(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/.test(String(r.created_at)),
        `${what}: created_at ${r.created_at}`);
  check(Math.abs(new Date(r.created_at).getTime() - Date.now()) < 600e3, `${what}: created_at is now`);
}

await test("version", async () => {
  const v = await ollama.version();
  check(/^0\.\d+\.\d+$/.test(v.version), `version ${v.version}`);
});

await test("list", async () => {
  const { models } = await ollama.list();
  eq(models.length, 1, "one model");
  const m = models[0];
  name = m.name;
  check(m.name.endsWith(":latest"), `name ${m.name}`);
  eq(m.model, m.name, "model");
  eq(m.size, statSync(modelFile).size, "size is the file's");
  check(/^[0-9a-f]{64}$/.test(m.digest), `digest ${m.digest}`);
  check(!Number.isNaN(new Date(m.modified_at).getTime()), "modified_at");
  eq(m.details.format, "gguf", "format");
  check(m.details.family.length > 0 && m.details.families.includes(m.details.family), "family");
  check(/^\d+(\.\d+)?[KMB]?$/.test(m.details.parameter_size), `parameter_size ${m.details.parameter_size}`);
  check(typeof m.details.quantization_level === "string" && m.details.quantization_level.length > 0,
        `quantization_level ${m.details.quantization_level}`);
  const again = (await ollama.list()).models[0];
  eq(again.digest, m.digest, "digest is stable");
});

await test("show", async () => {
  const s = await ollama.show({ model: name });
  const arch = s.model_info["general.architecture"];
  eq(arch, s.details.family, "architecture is the family");
  check(s.model_info[`${arch}.context_length`] > 0, "context_length");
  check(s.model_info[`${arch}.embedding_length`] > 0, "embedding_length");
  check(s.model_info["general.parameter_count"] > 0, "parameter_count");
  check(s.capabilities.includes("completion") && !s.capabilities.includes("embedding"),
        `capabilities ${s.capabilities}`);
  check(typeof s.template === "string" && typeof s.parameters === "string", "template, parameters");
  const bare = await ollama.show({ model: name.replace(/:latest$/, "") });
  eq(bare.details, s.details, "the bare name is name:latest");
  await rejects(ollama.show({ model: "nope" }), 404, /^model "nope" not found, try pulling it first$/, "unknown model");
});

await test("ps", async () => {
  const { models } = await ollama.ps();
  eq(models.length, 1, "one loaded model");
  const m = models[0];
  eq(m.name, name, "name");
  check(m.size >= statSync(modelFile).size, "size covers the weights");
  eq(m.size_vram, 0, "size_vram");
  check(new Date(m.expires_at).getTime() > Date.now(), `expires_at ${m.expires_at}`);
  check(m.context_length > 0, "context_length");
});

let greedy = "";
await test("chat, not streamed", async () => {
  const r = await ollama.chat({ model: name, messages: user, options: { temperature: 0, num_predict: 12 } });
  eq(r.model, name, "model echoed");
  eq(r.message.role, "assistant", "role");
  check(typeof r.message.content === "string" && r.message.content.length > 0, "content");
  eq(r.done, true, "done");
  eq(r.done_reason, "length", "done_reason");
  checkStats(r, "chat", 12);
  greedy = r.message.content;
});

await test("chat, streamed", async () => {
  const parts = [];
  let last = null;
  let lines = 0;
  for await (const part of await ollama.chat({ model: name, messages: user, stream: true,
                                                options: { temperature: 0, num_predict: 12 } })) {
    lines++;
    if (!part.done) parts.push(part.message.content);
    last = part;
  }
  check(lines > 2, `several lines (${lines})`);
  eq(parts.join(""), greedy, "streamed text equals the whole answer");
  eq(last.done, true, "last line done");
  eq(last.message.content, "", "last line has no text");
  eq(last.done_reason, "length", "done_reason");
  checkStats(last, "chat stream", 12);
});

await test("greedy chat equals /v1/chat/completions", async () => {
  const messages = [{ role: "system", content: "Tell a story" }, ...user];
  const r = await ollama.chat({ model: name, messages, options: { temperature: 0, num_predict: 24, seed: 3 } });
  const o = await fetch(srv.url + "/v1/chat/completions", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages, temperature: 0, max_tokens: 24 }),
  }).then((x) => x.json());
  eq(r.message.content, o.choices[0].message.content, "same text");
  eq(r.eval_count, o.usage.completion_tokens, "eval_count is completion_tokens");
  eq(r.prompt_eval_count, o.usage.prompt_tokens, "prompt_eval_count is prompt_tokens");
});

await test("generate, streamed and not", async () => {
  const r = await ollama.generate({ model: name, prompt: "Once upon a time", options: { temperature: 0, num_predict: 10 } });
  check(typeof r.response === "string" && r.response.length > 0, "response");
  eq(r.done, true, "done");
  checkStats(r, "generate", 10);
  let text = "";
  let last = null;
  for await (const part of await ollama.generate({ model: name, prompt: "Once upon a time", stream: true,
                                                    options: { temperature: 0, num_predict: 10 } })) {
    text += part.response;
    last = part;
  }
  eq(text, r.response, "streamed response equals the whole one");
  eq(last.done_reason, "length", "done_reason");
  const raw = await ollama.generate({ model: name, prompt: "Once upon a time", raw: true,
                                      options: { temperature: 0, num_predict: 6 } });
  const c = await fetch(srv.url + "/v1/completions", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "Once upon a time", temperature: 0, max_tokens: 6 }),
  }).then((x) => x.json());
  eq(raw.response, c.choices[0].text, "raw generate equals /v1/completions");
});

await test("stop and seed options", async () => {
  const r = await ollama.chat({ model: name, messages: user, options: { temperature: 0, num_predict: 40, stop: ["e"] } });
  check(!r.message.content.includes("e"), `stopped before "e": ${r.message.content}`);
  eq(r.done_reason, "stop", "done_reason stop");
  // More than the four stop strings OpenAI's parser takes (Continue sends a model's whole list).
  const stops = ["<|im_end|>", "</s>", "zzz", "qqq", "xyz", "e"];
  const many = await ollama.chat({ model: name, messages: user, options: { temperature: 0, num_predict: 40, stop: stops } });
  eq(many.message.content, r.message.content, "six stop strings cut where one did");
  eq(many.done_reason, "stop", "done_reason stop with six");
  let streamed = "";
  for await (const p of await ollama.chat({ model: name, messages: user, stream: true, options: { temperature: 0, num_predict: 40, stop: stops } }))
    streamed += p.message.content;
  eq(streamed, r.message.content, "six stop strings, streamed");
  const a = await ollama.chat({ model: name, messages: user, options: { temperature: 1, seed: 42, num_predict: 10, num_ctx: 999999, mirostat: 0 } });
  const b = await ollama.chat({ model: name, messages: user, options: { temperature: 1, seed: 42, num_predict: 10 } });
  eq(a.message.content, b.message.content, "same seed, same answer (num_ctx and unknown options accepted)");
});

await test("format: a JSON schema", async () => {
  const format = {
    type: "object",
    properties: { name: { type: "string", enum: ["Lily", "Tom", "Sue"] }, age: { type: "integer", enum: [3, 4, 5] } },
    required: ["name", "age"],
    additionalProperties: false,
  };
  for (const stream of [false, true]) {
    let text = "";
    if (stream) {
      for await (const p of await ollama.chat({ model: name, messages: user, format, stream, options: { temperature: 0.8, seed: 5, num_predict: 200 } }))
        text += p.message.content;
    } else {
      text = (await ollama.chat({ model: name, messages: user, format, options: { temperature: 0.8, seed: 5, num_predict: 200 } })).message.content;
    }
    let obj = null;
    try {
      obj = JSON.parse(text);
    } catch {}
    check(obj && format.properties.name.enum.includes(obj.name) && format.properties.age.enum.includes(obj.age),
          `stream ${stream}: answer matches the schema: ${text}`);
  }
  const j = await ollama.generate({ model: name, prompt: "A list", format: "json", options: { temperature: 0, num_predict: 300 } });
  let parsed = null;
  try {
    parsed = JSON.parse(j.response);
  } catch {}
  check(j.done_reason === "length" || (parsed !== null && typeof parsed === "object"), `format json: ${j.response}`);
});

await test("embed answers the capability error", async () => {
  const want = new RegExp(`^"${name}" does not support embeddings$`);
  await rejects(ollama.embed({ model: name, input: "hello" }), 400, want, "embed");
  await rejects(ollama.embed({ model: name, input: ["a", "b"] }), 400, want, "embed batch");
  await rejects(ollama.embeddings({ model: name, prompt: "hello" }), 400, want, "embeddings");
  await rejects(ollama.embed({ model: "nope", input: "x" }), 404, /not found/, "embed unknown model");
});

await test("keep_alive 0 and the load call", async () => {
  const u = await ollama.chat({ model: name, messages: [], keep_alive: 0 });
  eq(u.done, true, "done");
  eq(u.done_reason, "unload", "chat unload");
  const g = await ollama.generate({ model: name, prompt: "", keep_alive: 0 });
  eq(g.done_reason, "unload", "generate unload");
  const l = await ollama.chat({ model: name, messages: [] });
  eq(l.done_reason, "load", "load call");
  eq((await ollama.ps()).models.length, 1, "the only model stays loaded");
  const r = await ollama.chat({ model: name, messages: user, keep_alive: "5m", options: { num_predict: 3 } });
  eq(r.eval_count, 3, "answers after an unload");
});

await test("errors the client surfaces", async () => {
  await rejects(ollama.chat({ model: "nope:7b", messages: user }), 404, /^model "nope:7b" not found/, "unknown model");
  await rejects(ollama.chat({ model: name, messages: [{ role: "user", content: "x", images: ["AAAA"] }] }), 400,
                /messages\[0\]\.images/, "images");
  await rejects(ollama.generate({ model: name, prompt: "x", suffix: "y" }), 400, /does not support insert/, "suffix");
  await rejects(ollama.chat({ model: name, messages: user, think: true }), 400,
                new RegExp(`^"${name}" does not support thinking$`), "think on a model without it");
  await rejects(ollama.chat({ model: name, messages: user, tools: [{ type: "function", function: { name: "f" } }] }), 400,
                /does not support tools/, "tools on a template without tool syntax");
  await rejects(ollama.pull({ model: name }), 400, /origami serves the local GGUF/, "pull");
  await rejects(ollama.delete({ model: name }), 400, /origami serves the local GGUF/, "delete");
});

await test("probes of /", async () => {
  const head = await fetch(srv.url + "/", { method: "HEAD" });
  eq(head.status, 200, "HEAD /");
  const plain = await fetch(srv.url + "/", { headers: { accept: "*/*" } });
  eq(await plain.text(), "Ollama is running", "GET / from a script");
  const page = await fetch(srv.url + "/", { headers: { accept: "text/html,application/xhtml+xml" } });
  check((await page.text()).includes("<html"), "GET / from a browser is the chat page");
});

await srv.stop();

// Tools: the synthetic Qwen3 model calls no tool by itself, so the call is forced with origami's
// tool_choice extension and the grammar makes it well formed.
await test("tools: a forced call on Qwen3 (synthetic weights, real template)", async () => {
  const tsrv = await startServer(["--chat-template-file", env("ORIGAMI_TOOLS_TEMPLATE")],
                                 { model: env("ORIGAMI_TOOLS_MODEL") });
  try {
    const client = new Ollama({ host: tsrv.url });
    const tname = (await client.list()).models[0].name;
    const caps = (await client.show({ model: tname })).capabilities;
    check(caps.includes("tools") && caps.includes("thinking"), `qwen3 capabilities ${caps}`);
    const tools = [{
      type: "function",
      function: {
        name: "get_weather", description: "Current weather in a city",
        parameters: {
          type: "object",
          properties: { city: { type: "string", enum: ["Paris", "Tokyo"] }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
          required: ["city", "unit"], additionalProperties: false,
        },
      },
    }];
    const req = {
      model: tname, messages: [{ role: "user", content: "Weather in Paris?" }], tools, think: false,
      tool_choice: { type: "function", function: { name: "get_weather" } },
      options: { temperature: 0, num_predict: 1000 },
    };
    const checkCall = (calls, what) => {
      check(Array.isArray(calls) && calls.length === 1, `${what}: one call ${JSON.stringify(calls)}`);
      const f = calls?.[0]?.function;
      eq(f?.name, "get_weather", `${what}: name`);
      check(f && typeof f.arguments === "object" && ["Paris", "Tokyo"].includes(f.arguments.city) &&
            ["celsius", "fahrenheit"].includes(f.arguments.unit), `${what}: arguments object ${JSON.stringify(f?.arguments)}`);
    };
    const r = await client.chat(req);
    checkCall(r.message.tool_calls, "not streamed");
    eq(r.done_reason, "stop", "done_reason");
    let calls = [];
    for await (const p of await client.chat({ ...req, stream: true }))
      if (p.message.tool_calls) calls = calls.concat(p.message.tool_calls);
    checkCall(calls, "streamed");
    eq(calls[0].function.arguments, r.message.tool_calls[0].function.arguments, "streamed call equals the whole one");
    const back = await client.chat({
      model: tname, think: false, tools, options: { temperature: 0, num_predict: 4 },
      messages: [...req.messages, { role: "assistant", content: "", tool_calls: r.message.tool_calls },
                 { role: "tool", content: "sunny, 21 degrees", tool_name: "get_weather" }],
    });
    eq(back.done, true, "tool result round trip answered");
    await rejects(client.chat({ ...req, tool_choice: { type: "function", function: { name: "nope" } } }), 400,
                  /nope/, "a forced call of an unknown tool");
    // think on: whatever the random model writes, the streamed thinking and content add up to the
    // whole answer's, and no think tag is left in the content.
    const thinkReq = { model: tname, messages: [{ role: "user", content: "hi" }], think: true,
                       options: { temperature: 0, num_predict: 40 } };
    const whole = await client.chat(thinkReq);
    let thinking = "", content = "";
    for await (const p of await client.chat({ ...thinkReq, stream: true })) {
      thinking += p.message.thinking ?? "";
      content += p.message.content;
    }
    eq(thinking, whole.message.thinking ?? "", "think: streamed thinking equals the whole");
    eq(content, whole.message.content, "think: streamed content equals the whole");
    check(!/<\/?think>/.test(content), `think: no tags in content ${JSON.stringify(content)}`);
    const g = await client.generate({ model: tname, prompt: "hi", think: false, options: { temperature: 0, num_predict: 8 } });
    eq(g.eval_count, 8, "generate on the Qwen3 template");
  } finally {
    await tsrv.stop();
  }
});

process.exit(summary());
