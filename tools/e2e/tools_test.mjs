// Tools round trip with the official openai npm SDK against `origami serve`: a random-weight
// Qwen3-shaped model (`origami synth`) and the real Qwen3 chat template (Hermes-style
// <tool_call> syntax). A random model calls no tool by itself, so requests force one
// (tool_choice "required" or a named function) and the grammar makes the call well formed; the
// checks are on the server's side of the contract: finish_reason, names, arguments that parse and
// match the schema, streamed deltas that add up to the same call (accumulated by hand and by the
// SDK's own stream helper), the tool result going back through the template, tool_choice "none",
// and a bad tool definition as a 400 the SDK surfaces without retrying.
import OpenAI from "openai";
import { env, startServer, metrics, check, eq, test, summary } from "./lib.mjs";
import { validateChatStream } from "./stream_validators.mjs";

const template = env("ORIGAMI_TOOLS_TEMPLATE");
const srv = await startServer(["--chat-template-file", template, "--parallel", "2"]);
const client = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "unused", maxRetries: 2 });
const model = (await client.models.list()).data[0].id;

// Every value is an enum, so a forced call is short whatever a random model prefers.
const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", enum: ["Paris", "Tokyo", "Lima"] },
        unit: { type: "string", enum: ["celsius", "fahrenheit"] },
        days: { type: "integer", enum: [1, 2, 3] },
        alerts: { type: "boolean" },
      },
      required: ["city", "unit"],
      additionalProperties: false,
    },
  },
};
const clock = {
  type: "function",
  function: {
    name: "get_time",
    description: "Current time in a zone",
    parameters: {
      type: "object",
      properties: { zone: { type: "string", enum: ["UTC", "CET", "JST"] } },
      required: ["zone"],
      additionalProperties: false,
    },
  },
};
const tools = [weather, clock];
const messages = [{ role: "user", content: "What is the weather in Paris?" }];
// Thinking off, as Qwen3 documents it: the template closes the think block itself. The grammar
// bounds a forced call (enums, at most 20 bytes of whitespace per gap: under 600 bytes here), and
// the synthetic model's vocabulary is bytes, so 1000 tokens always finish the call.
const base = {
  model, messages, tools, temperature: 0, max_tokens: 1000,
  chat_template_kwargs: { enable_thinking: false },
};
const named = { type: "function", function: { name: "get_weather" } };
const markers = ["<tool_call>", "</tool_call>", "<think>", "</think>", "<|im_end|>", "<|im_start|>"];

// The arguments against the tool's parameters schema (the subset used above).
function matchesSchema(args, fn) {
  const p = fn.function.parameters;
  if (args === null || typeof args !== "object" || Array.isArray(args)) return "not an object";
  for (const r of p.required) if (!(r in args)) return `missing ${r}`;
  for (const [k, v] of Object.entries(args)) {
    const s = p.properties[k];
    if (!s) return `unexpected property ${k}`;
    if (s.enum && !s.enum.includes(v)) return `${k}=${JSON.stringify(v)} not in enum`;
    if (s.type === "boolean" && typeof v !== "boolean") return `${k} not a boolean`;
    if (s.type === "integer" && !Number.isInteger(v)) return `${k} not an integer`;
    if (s.type === "string" && typeof v !== "string") return `${k} not a string`;
  }
  return "";
}

function checkCall(call, fn, what) {
  eq(call.type, "function", `${what}: type`);
  check(typeof call.id === "string" && call.id.length > 0, `${what}: id`);
  eq(call.function.name, fn.function.name, `${what}: name`);
  let args = null;
  try {
    args = JSON.parse(call.function.arguments);
  } catch {}
  const bad = args === null ? "arguments do not parse" : matchesSchema(args, fn);
  check(bad === "", `${what}: arguments ${call.function.arguments} match the schema (${bad})`);
}

// Streams a request, accumulating the deltas by hand and checking their shape: a call's first
// delta carries index, id, type and name with empty arguments; later ones only arguments.
async function streamByHand(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const calls = [];
  let content = "";
  let finish = null;
  let argPieces = 0;
  const seen = [];
  for await (const chunk of stream) {
    seen.push(chunk);
    for (const c of chunk.choices) {
      if (c.finish_reason) finish = c.finish_reason;
      const d = c.delta ?? {};
      if (d.content) content += d.content;
      for (const tc of d.tool_calls ?? []) {
        if (tc.id !== undefined) {
          eq(tc.index, calls.length, "a new call takes the next index");
          eq(tc.type, "function", "first delta: type");
          check(typeof tc.function?.name === "string" && tc.function.name.length > 0, "first delta: name");
          eq(tc.function.arguments, "", "first delta: empty arguments");
          calls.push({ id: tc.id, type: tc.type, function: { name: tc.function.name, arguments: "" } });
        } else {
          check(tc.index < calls.length, `arguments for an opened call (index ${tc.index})`);
          check(tc.function?.name === undefined, "later deltas carry no name");
          if (tc.index < calls.length) calls[tc.index].function.arguments += tc.function.arguments;
          argPieces++;
        }
      }
    }
  }
  for (const e of validateChatStream([...seen, "[DONE]"])) check(false, `chat stream: ${e}`);
  return { calls, content, finish, argPieces };
}

try {
  await test("named function: finish_reason tool_calls, name and arguments per schema", async () => {
    const r = await client.chat.completions.create({ ...base, tool_choice: named });
    const m = r.choices[0].message;
    eq(r.choices[0].finish_reason, "tool_calls", "finish_reason");
    check(Array.isArray(m.tool_calls) && m.tool_calls.length === 1, "one tool call");
    checkCall(m.tool_calls[0], weather, "non-streamed call");
    check(m.content === null || m.content === "", `no content beside the call: ${JSON.stringify(m.content)}`);
  });

  await test("streamed deltas add up to the non-streamed call", async () => {
    const plain = (await client.chat.completions.create({ ...base, tool_choice: named })).choices[0].message;
    const s = await streamByHand({ ...base, tool_choice: named });
    eq(s.finish, "tool_calls", "streamed finish_reason");
    eq(s.calls.length, 1, "one streamed call");
    eq(s.calls[0]?.function.name, plain.tool_calls[0].function.name, "streamed name");
    eq(s.calls[0]?.function.arguments, plain.tool_calls[0].function.arguments, "streamed arguments");
    check(s.argPieces > 1, `arguments arrive in pieces (${s.argPieces})`);
    for (const mk of markers) check(!s.content.includes(mk), `no ${mk} in streamed content`);
    eq(s.content, plain.content ?? "", "streamed content");
    // The SDK's own accumulator (ChatCompletionStream) agrees.
    const helper = client.beta.chat.completions.stream({ ...base, tool_choice: named });
    let doneArgs = null;
    helper.on("tool_calls.function.arguments.done", (e) => { doneArgs = e.arguments; });
    const fin = await helper.finalChatCompletion();
    eq(fin.choices[0].finish_reason, "tool_calls", "SDK stream finish_reason");
    const sdkCall = fin.choices[0].message.tool_calls?.[0]?.function;
    eq(sdkCall?.name, plain.tool_calls[0].function.name, "SDK stream name");
    eq(sdkCall?.arguments, plain.tool_calls[0].function.arguments, "SDK stream arguments");
    eq(doneArgs, plain.tool_calls[0].function.arguments, "SDK arguments.done event");
  });

  await test("tool_choice required picks one of the tools", async () => {
    const r = await client.chat.completions.create({ ...base, tool_choice: "required" });
    const call = r.choices[0].message.tool_calls?.[0];
    eq(r.choices[0].finish_reason, "tool_calls", "finish_reason");
    const fn = tools.find((t) => t.function.name === call?.function.name);
    check(fn !== undefined, `called a known tool: ${call?.function.name}`);
    if (fn) checkCall(call, fn, "required call");
    const s = await streamByHand({ ...base, tool_choice: "required" });
    eq(s.calls[0]?.function.name, call?.function.name, "streamed name equals the non-streamed one");
    eq(s.calls[0]?.function.arguments, call?.function.arguments, "streamed arguments equal the non-streamed ones");
  });

  await test("tool result goes back through the template; the answer is text", async () => {
    const first = await client.chat.completions.create({ ...base, tool_choice: named });
    const call = first.choices[0].message.tool_calls[0];
    const result = JSON.stringify({ temperature: 21, sky: "clear" });
    const convo = [
      ...messages,
      { role: "assistant", content: null, tool_calls: [call] },
      { role: "tool", tool_call_id: call.id, content: result },
    ];
    const r = await client.chat.completions.create({ ...base, messages: convo, tool_choice: "none", max_tokens: 16 });
    const m = r.choices[0].message;
    check(["stop", "length"].includes(r.choices[0].finish_reason), `finish_reason ${r.choices[0].finish_reason}`);
    check(m.tool_calls === undefined, "no tool_calls");
    check(typeof m.content === "string", "text content");
    // The call and the result are in the prompt: it grew by at least the result's bytes (the
    // synthetic model's vocabulary is bytes; tools are not rendered with tool_choice none).
    const alone = await client.chat.completions.create({ ...base, tool_choice: "none", max_tokens: 1 });
    check(r.usage.prompt_tokens >= alone.usage.prompt_tokens + result.length,
          `prompt grew with the call and result (${alone.usage.prompt_tokens} -> ${r.usage.prompt_tokens})`);
    const s = await client.chat.completions.create({ ...base, messages: convo, tool_choice: "none", max_tokens: 16, stream: true });
    let text = "";
    let finish = null;
    for await (const chunk of s) {
      for (const c of chunk.choices) {
        text += c.delta?.content ?? "";
        if (c.finish_reason) finish = c.finish_reason;
        check(c.delta?.tool_calls === undefined, "no streamed tool_calls");
      }
    }
    eq(text, m.content, "streamed text equals non-streamed");
    eq(finish, r.choices[0].finish_reason, "streamed finish_reason");
  });

  await test("tool_choice none with tools gives no tool_calls", async () => {
    const r = await client.chat.completions.create({ ...base, tool_choice: "none", max_tokens: 24 });
    check(r.choices[0].message.tool_calls === undefined, "no tool_calls");
    check(r.choices[0].finish_reason !== "tool_calls", `finish_reason ${r.choices[0].finish_reason}`);
  });

  await test("invalid tool definitions are 400s the SDK surfaces, not retried", async () => {
    const count = async () => (await metrics(srv.url))['origami_http_responses_total{code="400"}'] ?? 0;
    const before = await count();
    let err = null;
    try {
      await client.chat.completions.create({ ...base, tools: [{ type: "function", function: { description: "no name" } }] });
    } catch (e) {
      err = e;
    }
    check(err instanceof OpenAI.BadRequestError, "BadRequestError for a tool without a name");
    eq(err?.status, 400, "status");
    eq(err?.error?.param, "tools[0]", "param");
    eq((await count()) - before, 1, "one request, no retries");
    // A parameters schema the grammar cannot honour, when a call is forced.
    err = null;
    const badSchema = { type: "function", function: { name: "f", parameters: { type: "string", pattern: "a+" } } };
    try {
      await client.chat.completions.create({ ...base, tools: [badSchema], tool_choice: "required" });
    } catch (e) {
      err = e;
    }
    check(err instanceof OpenAI.BadRequestError, "BadRequestError for an unsupported schema");
    eq(err?.error?.param, "tools", "param of a bad schema");
    err = null;
    try {
      await client.chat.completions.create({ ...base, tool_choice: { type: "function", function: { name: "missing" } } });
    } catch (e) {
      err = e;
    }
    check(err instanceof OpenAI.BadRequestError, "BadRequestError for a named function not in tools");
  });
} finally {
  await srv.stop();
}
process.exit(summary());
