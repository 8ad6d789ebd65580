// End-to-end test of /v1/responses with the official openai npm SDK (responses.create and
// responses.stream) against the real server: on stories260K create, stream, usage, echoed
// fields, max_output_tokens -> incomplete, json_schema output, previous_response_id, GET and
// DELETE, context overflow; on an `origami synth` Qwen3 model with the real Qwen3 template a
// function-call round trip with function_call_output, streamed and not, stateless and through
// previous_response_id. Every stream goes through the event-sequence validator.
import OpenAI from "openai";
import { env, startServer, test, check, eq, summary } from "./lib.mjs";
import { validateResponseEvents, collect } from "./responses_events.mjs";

const srv = await startServer(["--api-key", "sk-test"]);
const client = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "sk-test", maxRetries: 0 });
const story = "Once upon a time";

async function streamChecked(params, what, c = client) {
  const events = await collect(await c.responses.create({ ...params, stream: true }));
  const problems = validateResponseEvents(events);
  check(problems.length === 0, `${what}: event sequence valid:\n  ${problems.join("\n  ")}`);
  return { events, response: events[events.length - 1].response };
}
const textOf = (r) => r.output.filter((o) => o.type === "message").flatMap((o) => o.content).map((c) => c.text).join("");

try {
  await test("responses.create: object, output, usage, echoed fields", async () => {
    const r = await client.responses.create({
      model: "any", input: story, instructions: "Tell a story", max_output_tokens: 8,
      temperature: 0, metadata: { run: "e2e" }, user: "tester",
    });
    eq(r.object, "response", "object");
    check(r.id.startsWith("resp_"), `id ${r.id}`);
    check(Number.isInteger(r.created_at) && r.created_at > 1.6e9, "created_at");
    check(["completed", "incomplete"].includes(r.status), `status ${r.status}`);
    eq(r.output[0]?.type, "message", "message item");
    eq(r.output[0]?.role, "assistant", "role");
    eq(r.output[0]?.content[0]?.type, "output_text", "output_text part");
    eq(r.output[0]?.content[0]?.annotations, [], "annotations");
    eq(r.output_text, textOf(r), "SDK output_text");
    eq(r.instructions, "Tell a story", "instructions echoed");
    eq(r.temperature, 0, "temperature echoed");
    eq(r.max_output_tokens, 8, "max_output_tokens echoed");
    eq(r.metadata, { run: "e2e" }, "metadata echoed");
    eq(r.user, "tester", "user echoed");
    eq(r.tools, [], "tools");
    eq(r.tool_choice, "auto", "tool_choice");
    const u = r.usage;
    check(u.input_tokens > 4, `input_tokens ${u.input_tokens}`);
    check(u.output_tokens > 0 && u.output_tokens <= 8, `output_tokens ${u.output_tokens}`);
    eq(u.total_tokens, u.input_tokens + u.output_tokens, "total_tokens");
    check(Number.isInteger(u.input_tokens_details.cached_tokens), "cached_tokens");
    eq(u.output_tokens_details.reasoning_tokens, 0, "reasoning_tokens");
  });

  await test("stream: valid events, same text and usage as create at temperature 0", async () => {
    const params = { model: "any", input: story, max_output_tokens: 12, temperature: 0 };
    const plain = await client.responses.create(params);
    const { events, response } = await streamChecked(params, "stream");
    const deltas = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
    eq(deltas, textOf(plain), "streamed text");
    eq(textOf(response), textOf(plain), "final response text");
    eq(response.usage.output_tokens, plain.usage.output_tokens, "output tokens");
    eq(response.usage.input_tokens, plain.usage.input_tokens, "input tokens");
    // The SDK's own accumulator agrees.
    const helper = client.responses.stream(params);
    const types = [];
    helper.on("event", (e) => types.push(e.type));
    const fin = await helper.finalResponse();
    eq(textOf(fin), textOf(plain), "responses.stream finalResponse text");
    check(types.includes("response.output_text.delta"), "stream helper saw deltas");
  });

  await test("max_output_tokens: incomplete with reason, streamed and not", async () => {
    const params = { model: "any", input: story, max_output_tokens: 3, temperature: 0 };
    const r = await client.responses.create(params);
    eq(r.status, "incomplete", "status");
    eq(r.incomplete_details, { reason: "max_output_tokens" }, "incomplete_details");
    eq(r.usage.output_tokens, 3, "output tokens");
    eq(r.output[0]?.status, "incomplete", "message status");
    const { events, response } = await streamChecked(params, "length-cut stream");
    eq(events[events.length - 1].type, "response.incomplete", "terminal event");
    eq(response.usage.output_tokens, 3, "streamed output tokens");
  });

  await test("text.format json_schema: output parses and matches", async () => {
    const schema = {
      type: "object",
      properties: { name: { type: "string", enum: ["Lily", "Tom", "Sue"] }, age: { type: "integer", enum: [3, 4, 5] } },
      required: ["name", "age"],
      additionalProperties: false,
    };
    const params = { model: "any", input: story, max_output_tokens: 200, temperature: 0,
                     text: { format: { type: "json_schema", name: "person", schema, strict: true } } };
    for (const stream of [false, true]) {
      const r = stream ? (await streamChecked(params, "json_schema stream")).response : await client.responses.create(params);
      let obj = null;
      try {
        obj = JSON.parse(textOf(r));
      } catch {}
      check(obj && schema.properties.name.enum.includes(obj.name) && schema.properties.age.enum.includes(obj.age) &&
            Object.keys(obj).length === 2, `stream=${stream}: output matches the schema: ${textOf(r)}`);
      eq(r.text.format.type, "json_schema", "text echoed");
    }
  });

  await test("previous_response_id continues; store false keeps nothing; GET and DELETE", async () => {
    const r1 = await client.responses.create({ model: "any", input: story, max_output_tokens: 6, temperature: 0 });
    const r2 = await client.responses.create({ model: "any", previous_response_id: r1.id, input: "and then", max_output_tokens: 4 });
    eq(r2.previous_response_id, r1.id, "previous_response_id echoed");
    const alone = await client.responses.create({ model: "any", input: "and then", max_output_tokens: 1 });
    check(r2.usage.input_tokens >= alone.usage.input_tokens + r1.usage.input_tokens - 4,
          `the follow-up's prompt holds the first turn (${alone.usage.input_tokens} alone, ${r1.usage.input_tokens} first, ${r2.usage.input_tokens} follow-up)`);
    // A chain of three: the second response's conversation holds the first.
    const r3 = await client.responses.create({ model: "any", previous_response_id: r2.id, input: "end", max_output_tokens: 1 });
    check(r3.usage.input_tokens > r2.usage.input_tokens, "the chain grows");
    // input_items: r3 was made from r1's input and output, r2's, then "end" (5 items), newest first.
    const listed = [];
    for await (const it of client.responses.inputItems.list(r3.id, { limit: 2 })) listed.push(it);
    eq(listed.length, 5, "input_items of a chain of three, paged by 2");
    eq(listed[0].content?.[0]?.text, "end", "input_items newest first, text as a part");
    eq(new Set(listed.map((it) => it.id)).size, 5, "input_items ids are distinct");
    const asc = await client.responses.inputItems.list(r3.id, { order: "asc", limit: 100 });
    eq(asc.data.map((it) => it.id).join(), listed.map((it) => it.id).reverse().join(), "asc is desc reversed");
    const got = await client.responses.retrieve(r1.id);
    eq(got.id, r1.id, "GET id");
    eq(textOf(got), textOf(r1), "GET output");
    const streamed = await streamChecked({ model: "any", previous_response_id: r1.id, input: "more", max_output_tokens: 3 }, "stream with previous_response_id");
    eq((await client.responses.retrieve(streamed.response.id)).status, streamed.response.status, "a streamed response is kept too");
    const s = await client.responses.create({ model: "any", input: story, max_output_tokens: 2, store: false });
    eq(s.store, false, "store echoed");
    for (const id of [s.id, "resp_unknown"]) {
      try {
        await client.responses.create({ model: "any", previous_response_id: id, input: "x", max_output_tokens: 1 });
        check(false, `${id}: should be 404`);
      } catch (e) {
        eq(e.status, 404, `${id}: status`);
        eq(e.error?.code, "previous_response_not_found", `${id}: code`);
        eq(e.error?.param, "previous_response_id", `${id}: param`);
        eq(e.error?.type, "invalid_request_error", `${id}: type`);
      }
    }
    await client.responses.del(r1.id);
    try {
      await client.responses.retrieve(r1.id);
      check(false, "deleted response should be 404");
    } catch (e) {
      eq(e.status, 404, "GET after DELETE");
    }
  });

  await test("a stream the client cancels: a valid prefix, the server goes on", async () => {
    const ac = new AbortController();
    const stream = await client.responses.create({ model: "any", input: story, max_output_tokens: 400, stream: true }, { signal: ac.signal });
    const events = [];
    try {
      for await (const e of stream) {
        events.push(e);
        if (e.type === "response.output_text.delta") ac.abort();
      }
    } catch {}
    check(events.length >= 3 && events[0].type === "response.created", `events before the cancel (${events.length})`);
    events.forEach((e, i) => eq(e.sequence_number, i, `sequence_number ${i}`));
    const r = await client.responses.create({ model: "any", input: story, max_output_tokens: 2 });
    eq(r.object, "response", "the server still answers");
  });

  await test("hosted tools are ignored, not a 400", async () => {
    const r = await client.responses.create({ model: "any", input: story, max_output_tokens: 2,
                                              tools: [{ type: "web_search_preview" }] });
    check(["completed", "incomplete"].includes(r.status), "answered");
    eq(r.output[0]?.type, "message", "a message");
  });

  await test("context overflow is 400 context_length_exceeded", async () => {
    try {
      await client.responses.create({ model: "any", input: "a b c d ".repeat(20000), max_output_tokens: 2 });
      check(false, "should fail");
    } catch (e) {
      eq(e.status, 400, "status");
      eq(e.error?.code, "context_length_exceeded", "code");
      eq(e.error?.param, "input", "param");
    }
  });
} finally {
  await srv.stop();
}

// Function calls on synthetic models with real templates (Qwen3's <tool_call>, gpt-oss harmony):
// a random model calls no tool by itself, so the call is forced (named function) and the grammar
// makes it well formed; every value is an enum, so a forced call is short.
const weather = {
  type: "function", name: "get_weather", description: "Current weather in a city", strict: true,
  parameters: {
    type: "object",
    properties: { city: { type: "string", enum: ["Paris", "Tokyo", "Lima"] }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
    required: ["city", "unit"], additionalProperties: false,
  },
};
const base = {
  model: "any", tools: [weather], tool_choice: { type: "function", name: "get_weather" }, temperature: 0,
  max_output_tokens: 1000, reasoning: { effort: "minimal" }, input: [{ role: "user", content: "Weather in Paris?" }],
};
const markers = ["<tool_call>", "</tool_call>", "<think>", "<|im_end|>", "<|channel|>", "<|call|>", "<|start|>", "<|end|>"];
const callOf = (r) => r.output.find((o) => o.type === "function_call");
function checkCall(call, what) {
  check(call !== undefined, `${what}: a function_call item`);
  if (!call) return;
  eq(call.name, "get_weather", `${what}: name`);
  check(typeof call.call_id === "string" && call.call_id.length > 0, `${what}: call_id`);
  check(call.id !== call.call_id && call.id.length > 0, `${what}: item id`);
  let args = null;
  try {
    args = JSON.parse(call.arguments);
  } catch {}
  check(args && weather.parameters.properties.city.enum.includes(args.city) &&
        weather.parameters.properties.unit.enum.includes(args.unit), `${what}: arguments ${call.arguments}`);
}
async function toolSuite(label, modelPath, template, { thinking }) {
const tsrv = await startServer(["--chat-template-file", template], { model: modelPath });
const tclient = new OpenAI({ baseURL: tsrv.url + "/v1", apiKey: "unused", maxRetries: 0 });
try {
  await test(`${label}: function call, forced, streamed and not, the same call`, async () => {
    const r = await tclient.responses.create(base);
    eq(r.status, "completed", "status");
    checkCall(callOf(r), "create");
    for (const m of markers) check(!textOf(r).includes(m), `no ${m} in text`);
    const { events, response } = await streamChecked(base, "function call stream", tclient);
    checkCall(callOf(response), "stream");
    eq(callOf(response)?.arguments, callOf(r)?.arguments, "streamed arguments equal create's");
    const pieces = events.filter((e) => e.type === "response.function_call_arguments.delta").length;
    check(pieces > 1, `arguments arrive in pieces (${pieces})`);
    eq([r.tool_choice?.type, r.tool_choice?.name], ["function", "get_weather"], "tool_choice echoed");
    eq(r.tools[0].name, "get_weather", "tools echoed");
  });

  await test(`${label}: function_call_output round trip, stateless and by previous_response_id`, async () => {
    const r = await tclient.responses.create(base);
    const call = callOf(r);
    const result = JSON.stringify({ temperature: 21, sky: "clear" });
    const out = { type: "function_call_output", call_id: call.call_id, output: result };
    const follow = { model: "any", tools: [weather], tool_choice: "none", temperature: 0, max_output_tokens: 8, reasoning: { effort: "minimal" } };
    const a = await tclient.responses.create({ ...follow, input: [...base.input, ...r.output, out] });
    check(["completed", "incomplete"].includes(a.status), `status ${a.status}`);
    check(callOf(a) === undefined, "no call with tool_choice none");
    eq(a.output[0]?.type, "message", "a message answers");
    for (const m of markers) check(!textOf(a).includes(m), `no ${m} in the answer`);
    const b = await tclient.responses.create({ ...follow, previous_response_id: r.id, input: [out] });
    eq(b.usage.input_tokens, a.usage.input_tokens, "previous_response_id gives the same prompt as the full history");
    eq(textOf(b), textOf(a), "and the same answer at temperature 0");
    // The same prompt again: the prefix cache serves most of it, and usage says so.
    check(b.usage.input_tokens_details.cached_tokens > b.usage.input_tokens / 2,
          `cached_tokens ${b.usage.input_tokens_details.cached_tokens} of ${b.usage.input_tokens}`);
    const s = await streamChecked({ ...follow, previous_response_id: r.id, input: [out] }, "round-trip stream", tclient);
    eq(textOf(s.response), textOf(a), "streamed follow-up text");
    const alone = await tclient.responses.create({ ...follow, input: base.input, max_output_tokens: 1 });
    check(a.usage.input_tokens >= alone.usage.input_tokens + result.length,
          `the call and its output are in the prompt (${alone.usage.input_tokens} -> ${a.usage.input_tokens})`);
  });

  if (!thinking) return;
  // With thinking on, the forced-call grammar lets the model think first: a reasoning item, then
  // the call. The random model's thinking ends (the grammar closes it) well within the limit.
  await test("thinking on with a forced call: reasoning item, reasoning_text events, reasoning_tokens", async () => {
    const params = { ...base, reasoning: { effort: "high" }, max_output_tokens: 2000 };
    const r = await tclient.responses.create(params);
    eq(r.status, "completed", "status");
    eq(r.output.map((o) => o.type), ["reasoning", "function_call"], "output items");
    const thought = r.output[0]?.content?.[0]?.text ?? "";
    check(thought.length > 0, "reasoning text");
    check(!thought.includes("<think>") && !thought.includes("</think>"), "no think markers in the reasoning");
    checkCall(callOf(r), "call after thinking");
    const u = r.usage.output_tokens_details.reasoning_tokens;
    check(u > 0 && u < r.usage.output_tokens, `reasoning_tokens ${u} of ${r.usage.output_tokens}`);
    const { events, response } = await streamChecked(params, "thinking + call stream", tclient);
    const deltas = events.filter((e) => e.type === "response.reasoning_text.delta").map((e) => e.delta).join("");
    eq(deltas, thought, "streamed reasoning equals create's");
    eq(callOf(response)?.arguments, callOf(r)?.arguments, "streamed call equals create's");
    eq(response.usage.output_tokens_details.reasoning_tokens, u, "streamed reasoning_tokens");
  });

  await test("thinking on: a valid stream with reasoning kept apart", async () => {
    const { response } = await streamChecked({ model: "any", input: "Hi", max_output_tokens: 40, reasoning: { effort: "high" } }, "thinking stream", tclient);
    for (const o of response.output)
      if (o.type === "message") check(!o.content[0].text.includes("<think>"), "no <think> in the answer");
  });
} finally {
  await tsrv.stop();
}
}

await toolSuite("qwen3", env("ORIGAMI_TOOLS_MODEL"), env("ORIGAMI_TOOLS_TEMPLATE"), { thinking: true });
await toolSuite("gpt-oss", env("ORIGAMI_GPTOSS_MODEL"), env("ORIGAMI_GPTOSS_TEMPLATE"), { thinking: false });
process.exit(summary());
