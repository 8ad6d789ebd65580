// The official openai npm client against `origami serve`: chat and completions, streamed and not,
// usage, stop strings, seeds, determinism under concurrency, logprobs, n, errors as the SDK
// surfaces them (4xx not retried), auth.
import OpenAI from "openai";
import { startServer, metrics, check, eq, test, summary } from "./lib.mjs";
import { validateChatStream } from "./stream_validators.mjs";

const srv = await startServer(["--parallel", "8"]);
const client = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "unused", maxRetries: 2 });
const models = await client.models.list();
const model = models.data[0].id;
const chat = (extra) => client.chat.completions.create({ model, messages: [{ role: "user", content: "Tell me a story." }], ...extra });

async function streamText(stream) {
  let text = "";
  let finish = null;
  let usage = null;
  let chunks = 0;
  const seen = [];
  for await (const chunk of stream) {
    chunks++;
    seen.push(chunk);
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta?.content ?? c.text ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  // The SDK's iterator ends at [DONE]; chat streams go through the protocol validator.
  if (seen[0]?.object === "chat.completion.chunk")
    for (const e of validateChatStream([...seen, "[DONE]"])) check(false, `chat stream: ${e}`);
  return { text, finish, usage, chunks };
}

try {
  await test("models list", async () => {
    eq(models.object, "list", "object");
    check(models.data.length === 1 && typeof model === "string", "one model");
  });

  await test("chat, not streamed, usage and finish_reason", async () => {
    const r = await chat({ max_tokens: 20, temperature: 0 });
    eq(r.object, "chat.completion", "object");
    eq(r.choices[0].message.role, "assistant", "role");
    check(r.choices[0].message.content.length > 0, "content not empty");
    eq(r.choices[0].finish_reason, "length", "finish_reason");
    eq(r.usage.completion_tokens, 20, "completion_tokens");
    check(r.usage.prompt_tokens > 5, "prompt_tokens counted");
    eq(r.usage.total_tokens, r.usage.prompt_tokens + 20, "total_tokens");
  });

  await test("chat streamed equals not streamed at temperature 0", async () => {
    const plain = await chat({ max_tokens: 30, temperature: 0 });
    const s = await streamText(await chat({ max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } }));
    eq(s.text, plain.choices[0].message.content, "streamed text");
    eq(s.finish, "length", "streamed finish_reason");
    check(s.usage && s.usage.completion_tokens === 30, "usage chunk with include_usage");
    check(s.chunks >= 30, `one chunk per token (${s.chunks} chunks)`);
  });

  await test("completions, streamed and not", async () => {
    const r = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 25, temperature: 0 });
    eq(r.object, "text_completion", "object");
    check(r.choices[0].text.length > 0, "text");
    eq(r.usage.completion_tokens, 25, "usage");
    const s = await streamText(await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 25, temperature: 0, stream: true }));
    eq(s.text, r.choices[0].text, "streamed completion text");
    const echo = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 5, temperature: 0, echo: true });
    check(echo.choices[0].text.startsWith("Once upon a time"), "echo prepends the prompt");
  });

  await test("stop strings are never emitted", async () => {
    const base = (await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 60, temperature: 0 })).choices[0].text;
    const words = base.split(/\s+/).filter((w) => w.length >= 3);
    const stop = words[Math.floor(words.length / 2)];
    const cut = base.slice(0, base.indexOf(stop));
    const r = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 60, temperature: 0, stop: [stop, "zzzz"] });
    eq(r.choices[0].text, cut, `text before stop '${stop}'`);
    eq(r.choices[0].finish_reason, "stop", "finish_reason stop");
    const s = await streamText(await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 60, temperature: 0, stop, stream: true }));
    eq(s.text, cut, "streamed text before stop");
    check(!s.text.includes(stop), "stop string absent from stream");
  });

  await test("seeds reproduce, different seeds differ", async () => {
    const a = await chat({ max_tokens: 40, temperature: 1, seed: 1234 });
    const b = await chat({ max_tokens: 40, temperature: 1, seed: 1234 });
    const c = await chat({ max_tokens: 40, temperature: 1, seed: 99 });
    eq(a.choices[0].message.content, b.choices[0].message.content, "same seed");
    check(a.choices[0].message.content !== c.choices[0].message.content, "different seed gives different text");
  });

  await test("n choices", async () => {
    const r = await chat({ max_tokens: 10, temperature: 1, seed: 5, n: 3 });
    eq(r.choices.map((c) => c.index), [0, 1, 2], "indices");
    eq(r.usage.completion_tokens, 30, "usage sums choices");
  });

  await test("determinism: alone equals among 8 concurrent", async () => {
    const prompts = Array.from({ length: 8 }, (_, i) => `Story number ${i}: once there was`);
    const alone = [];
    for (const p of prompts) alone.push((await client.completions.create({ model, prompt: p, max_tokens: 32, temperature: 0 })).choices[0].text);
    const together = await Promise.all(prompts.map((p, i) =>
      i % 2 ? client.completions.create({ model, prompt: p, max_tokens: 32, temperature: 0, stream: true }).then(streamText).then((s) => s.text)
            : client.completions.create({ model, prompt: p, max_tokens: 32, temperature: 0 }).then((r) => r.choices[0].text)));
    for (let i = 0; i < 8; i++) eq(together[i], alone[i], `request ${i}`);
  });

  await test("logprobs", async () => {
    const r = await chat({ max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 });
    const lp = r.choices[0].logprobs.content;
    eq(lp.length, 5, "one entry per token");
    check(lp.every((e) => e.logprob <= 0 && e.top_logprobs.length === 3), "top_logprobs");
    check(lp.every((e) => Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-4), "greedy token is the top one");
  });

  await test("prefix cache reports cached tokens", async () => {
    const long = "The little dog ran in the park and the sun was warm. ".repeat(6);
    await client.completions.create({ model, prompt: long, max_tokens: 2, temperature: 0 });
    const r = await client.completions.create({ model, prompt: long, max_tokens: 2, temperature: 0 });
    check(r.usage.prompt_tokens_details.cached_tokens >= 16, `cached tokens ${JSON.stringify(r.usage)}`);
  });

  await test("response_format json_schema: output parses and matches", async () => {
    const schema = {
      type: "object",
      properties: { name: { type: "string", maxLength: 12 }, age: { type: "integer" } },
      required: ["name", "age"],
      additionalProperties: false,
    };
    for (const seed of [1, 2, 3]) {
      const r = await chat({ max_tokens: 200, temperature: 0.8, seed,
                             response_format: { type: "json_schema", json_schema: { name: "person", schema } } });
      const text = r.choices[0].message.content;
      let obj = null;
      try {
        obj = JSON.parse(text);
      } catch {}
      check(obj !== null, `seed ${seed}: output parses as JSON: ${JSON.stringify(text)}`);
      check(obj && typeof obj.name === "string" && obj.name.length <= 12 && Number.isInteger(obj.age) &&
            Object.keys(obj).length === 2, `seed ${seed}: matches the schema: ${text}`);
    }
    const o = await chat({ max_tokens: 300, temperature: 0, response_format: { type: "json_object" } });
    let parsed = null;
    try {
      parsed = JSON.parse(o.choices[0].message.content);
    } catch {}
    check(o.choices[0].finish_reason === "length" || (parsed !== null && typeof parsed === "object"),
          `json_object output is an object: ${o.choices[0].message.content}`);
  });

  await test("errors surface as SDK errors and 4xx are not retried", async () => {
    const before = (await metrics(srv.url))['origami_http_responses_total{code="400"}'] ?? 0;
    let err = null;
    try {
      await chat({ max_tokens: 5, temperature: 3 });
    } catch (e) {
      err = e;
    }
    check(err instanceof OpenAI.BadRequestError, "BadRequestError");
    eq(err?.status, 400, "status");
    eq(err?.error?.param, "temperature", "param");
    const after = (await metrics(srv.url))['origami_http_responses_total{code="400"}'];
    eq(after - before, 1, "one request, no retries");
    let nf = null;
    try {
      await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] });
    } catch (e) {
      nf = e;
    }
    check(nf instanceof OpenAI.NotFoundError, "NotFoundError for an unknown model");
  });
} finally {
  await srv.stop();
}

// Auth, and -n: a second server with a key and a cap of 5 generated tokens per answer.
const keyed = await startServer(["--api-key", "s3cret-key", "-n", "5"]);
try {
  await test("api key required and checked", async () => {
    const bad = new OpenAI({ baseURL: keyed.url + "/v1", apiKey: "wrong", maxRetries: 0 });
    let e1 = null;
    try {
      await bad.models.list();
    } catch (e) {
      e1 = e;
    }
    check(e1 instanceof OpenAI.AuthenticationError, "AuthenticationError with a wrong key");
    const good = new OpenAI({ baseURL: keyed.url + "/v1", apiKey: "s3cret-key" });
    const r = await good.completions.create({ model: (await good.models.list()).data[0].id, prompt: "Hi", max_tokens: 3 });
    eq(r.choices.length, 1, "works with the right key");
    check(!keyed.log().includes("s3cret-key"), "the key is never logged");
  });
  await test("-n caps answers that give no limit, and those that ask for more", async () => {
    const good = new OpenAI({ baseURL: keyed.url + "/v1", apiKey: "s3cret-key" });
    const model = (await good.models.list()).data[0].id;
    for (const extra of [{}, { max_tokens: 50 }]) {
      const r = await good.completions.create({ model, prompt: "Once upon a time", ignore_eos: true, ...extra });
      eq(r.usage.completion_tokens, 5, `completion tokens with ${JSON.stringify(extra)}`);
      eq(r.choices[0].finish_reason, "length", "finish_reason");
    }
    const r = await good.completions.create({ model, prompt: "Once upon a time", ignore_eos: true, max_tokens: 3 });
    eq(r.usage.completion_tokens, 3, "a smaller limit of the request wins");
  });
} finally {
  await keyed.stop();
}

process.exit(summary());
