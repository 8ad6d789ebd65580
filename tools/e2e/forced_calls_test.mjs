// Forced tool calls on a model whose template has no tool syntax (issue 14's reproduction):
// stories260K with the default ChatML template, tool_choice "required" / a named function / Anthropic
// "any" / "tool", in Chat Completions, Messages and Responses, streamed and not, over many seeds.
// Every answer must be a call whose arguments parse, or a call cut by max_tokens reported as
// truncated (finish_reason "length", stop_reason "max_tokens", status "incomplete"); never tool
// markers or half JSON in the text, never a 5xx. Streams go through the per-API validators.
import { startServer, check, eq, test, summary } from "./lib.mjs";
import { validateChatStream, validateAnthropicStream, readSse, readSseThenCancel } from "./stream_validators.mjs";
import { validateResponseEvents } from "./responses_events.mjs";

const srv = await startServer(["--parallel", "2"]);
const seeds = Number(process.env.ORIGAMI_FORCED_SEEDS || 12);
const model = (await (await fetch(srv.url + "/v1/models")).json()).data[0].id;

const schemas = {
  search: {
    type: "object",
    properties: { query: { type: "string", maxLength: 24 }, limit: { type: "integer" } },
    required: ["query", "limit"],
    additionalProperties: false,
  },
  note: {
    type: "object",
    properties: { text: { type: "string" } },
    required: ["text"],
  },
};
const names = Object.keys(schemas);
const chatTools = names.map((name) => ({
  type: "function",
  function: { name, description: `the ${name} tool`, parameters: schemas[name] },
}));
const anthropicTools = names.map((name) => ({ name, description: `the ${name} tool`, input_schema: schemas[name] }));
const responsesTools = names.map((name) => ({ type: "function", name, description: `the ${name} tool`, parameters: schemas[name] }));

// What must never reach the text of an answer.
const leaks = ["<tool_call", "</tool_call", "tool_call>", '{"name"', '"arguments"'];
function noLeak(text, what) {
  const hit = leaks.find((l) => (text || "").includes(l));
  check(hit === undefined, `${what}: text holds ${hit}: ${JSON.stringify(text).slice(0, 160)}`);
}
const tally = { parsed: 0, truncated: 0 };
// One call's verdict: complete calls parse, cut calls are only allowed when the answer was cut.
function judgeCall(name, args, cut, what) {
  check(names.includes(name), `${what}: unknown tool name ${JSON.stringify(name)}`);
  let ok = false;
  try {
    JSON.parse(args);
    ok = true;
  } catch {}
  check(ok || cut, `${what}: arguments do not parse and the answer was not cut: ${args}`);
}

async function post(path, body) {
  const r = await fetch(srv.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": "x" },
    body: JSON.stringify(body),
  });
  check(r.status === 200, `${path}: status ${r.status}`);
  return r;
}

// Settings per seed: short budgets are often cut mid-call, longer ones finish.
const plan = (seed) => ({ seed, stream: seed % 2 === 1, max: seed % 3 === 0 ? 24 : 400, named: seed % 4 >= 2 });

async function chat(p) {
  const body = {
    model, seed: p.seed, temperature: 1, max_tokens: p.max, stream: p.stream,
    messages: [{ role: "user", content: "Look something up." }],
    tools: chatTools,
    tool_choice: p.named ? { type: "function", function: { name: "search" } } : "required",
  };
  const r = await post("/v1/chat/completions", body);
  const what = `chat seed ${p.seed}${p.stream ? " stream" : ""}`;
  let content = "", finish, calls = [];
  if (p.stream) {
    const chunks = await readSse(r);
    for (const e of validateChatStream(chunks)) check(false, `${what}: ${e}`);
    for (const ch of chunks) {
      if (ch === "[DONE]") continue;
      const c = ch.choices?.[0];
      if (!c) continue;
      content += c.delta?.content || "";
      for (const tc of c.delta?.tool_calls || []) {
        calls[tc.index] ??= { name: "", arguments: "" };
        calls[tc.index].name += tc.function?.name || "";
        calls[tc.index].arguments += tc.function?.arguments || "";
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  } else {
    const j = await r.json();
    content = j.choices[0].message.content || "";
    finish = j.choices[0].finish_reason;
    calls = (j.choices[0].message.tool_calls || []).map((c) => c.function);
  }
  noLeak(content, what);
  check(finish === "tool_calls" || finish === "length", `${what}: finish_reason ${finish}`);
  if (finish === "tool_calls") check(calls.length >= 1, `${what}: tool_calls finish without calls`);
  for (const c of calls) judgeCall(c.name, c.arguments, finish === "length", what);
  if (p.named) for (const c of calls) eq(c.name, "search", `${what}: named call`);
  tally[finish === "tool_calls" ? "parsed" : "truncated"]++;
}

async function messages(p) {
  const body = {
    model, max_tokens: p.max, temperature: 1, stream: p.stream, metadata: { user_id: `u${p.seed}` },
    messages: [{ role: "user", content: "Look something up." }],
    tools: anthropicTools,
    tool_choice: p.named ? { type: "tool", name: "search" } : { type: "any" },
    // Newer top-level fields Claude Code sends: accepted and ignored.
    context_management: { edits: [] }, output_config: { effort: "low" },
  };
  const r = await post("/v1/messages", body);
  const what = `messages seed ${p.seed}${p.stream ? " stream" : ""}`;
  let text = "", stop, uses = [];
  if (p.stream) {
    const events = await readSse(r);
    for (const e of validateAnthropicStream(events)) check(false, `${what}: ${e}`);
    const open = {};
    for (const e of events) {
      if (e.type === "content_block_start" && e.content_block.type === "tool_use")
        open[e.index] = uses.push({ name: e.content_block.name, input: "" }) - 1;
      if (e.type === "content_block_delta" && e.delta.type === "text_delta") text += e.delta.text;
      if (e.type === "content_block_delta" && e.delta.type === "input_json_delta")
        uses[open[e.index]].input += e.delta.partial_json;
      if (e.type === "message_delta") stop = e.delta.stop_reason;
    }
  } else {
    const j = await r.json();
    stop = j.stop_reason;
    for (const b of j.content) {
      if (b.type === "text") text += b.text;
      if (b.type === "tool_use") {
        check(typeof b.input === "object" && b.input !== null, `${what}: tool_use input is not an object`);
        uses.push({ name: b.name, input: JSON.stringify(b.input) });
      }
    }
  }
  noLeak(text, what);
  check(stop === "tool_use" || stop === "max_tokens", `${what}: stop_reason ${stop}`);
  if (stop === "tool_use") check(uses.length >= 1, `${what}: tool_use stop without a tool_use block`);
  for (const u of uses) judgeCall(u.name, u.input, stop === "max_tokens", what);
  tally[stop === "tool_use" ? "parsed" : "truncated"]++;
}

async function responses(p) {
  const body = {
    model, max_output_tokens: p.max, temperature: 1, stream: p.stream, store: false,
    input: "Look something up.", tools: responsesTools,
    tool_choice: p.named ? { type: "function", name: "search" } : "required",
  };
  const r = await post("/v1/responses", body);
  const what = `responses seed ${p.seed}${p.stream ? " stream" : ""}`;
  let resp;
  if (p.stream) {
    const events = await readSse(r);
    for (const e of validateResponseEvents(events)) check(false, `${what}: ${e}`);
    resp = events.at(-1)?.response;
  } else {
    resp = await r.json();
  }
  check(resp && (resp.status === "completed" || resp.status === "incomplete"), `${what}: status ${resp?.status}`);
  if (!resp) return;
  const cut = resp.status === "incomplete";
  let text = "";
  const calls = [];
  for (const item of resp.output || []) {
    if (item.type === "message") for (const c of item.content) text += c.text || "";
    if (item.type === "function_call") calls.push(item);
  }
  noLeak(text, what);
  if (!cut) check(calls.length >= 1, `${what}: completed without a function_call`);
  for (const c of calls) judgeCall(c.name, c.arguments, cut, what);
  tally[cut ? "truncated" : "parsed"]++;
}

for (const [name, fn] of [["chat completions", chat], ["messages", messages], ["responses", responses]]) {
  await test(`forced calls, ${name}, ${seeds} seeds`, async () => {
    for (let seed = 0; seed < seeds; seed++) await fn(plan(seed));
  });
}
// Streams the client cancels after a few events: what came is a valid prefix, and the server
// goes on serving.
await test("cancelled streams are valid prefixes", async () => {
  for (const [path, body, validate] of [
    ["/v1/chat/completions", { model, stream: true, max_tokens: 200, messages: [{ role: "user", content: "Hi" }], tools: chatTools, tool_choice: "required" }, validateChatStream],
    ["/v1/messages", { model, stream: true, max_tokens: 200, messages: [{ role: "user", content: "Hi" }], tools: anthropicTools, tool_choice: { type: "any" } }, validateAnthropicStream],
  ]) {
    const ac = new AbortController();
    const r = await fetch(srv.url + path, { method: "POST", signal: ac.signal, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const got = await readSseThenCancel(r, ac, 4).catch(() => []);
    check(got.length > 0, `${path}: events before the cancel`);
    for (const e of validate(got, { cancelled: true })) check(false, `${path} cancelled: ${e}`);
  }
  const r = await fetch(srv.url + "/v1/models");
  eq(r.status, 200, "the server still answers");
});
console.log(`calls: ${tally.parsed} complete, ${tally.truncated} truncated`);
check(tally.parsed > 0, "at least one forced call completed");
check(!/\b5\d\d\b.*POST/.test(srv.log()), "no 5xx in the server log");
await srv.stop();
process.exit(summary());
