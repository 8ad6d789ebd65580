// End-to-end test of /v1/messages with the official @anthropic-ai/sdk against the real server:
// create, stream (and its final message), count_tokens, stop_sequences, a tool round trip, errors.
import Anthropic from "@anthropic-ai/sdk";
import { startServer, test, check, eq, summary } from "./lib.mjs";
import { validateAnthropicStream } from "./stream_validators.mjs";

const srv = await startServer(["--api-key", "sk-test"]);
const client = new Anthropic({ baseURL: srv.url, apiKey: "sk-test", maxRetries: 0 });
const user = [{ role: "user", content: "Once upon a time" }];

await test("messages.create", async () => {
  const m = await client.messages.create({ model: "any", max_tokens: 8, system: "Tell a story", messages: user });
  eq(m.type, "message", "type");
  eq(m.role, "assistant", "role");
  check(m.id.startsWith("msg_"), "id prefix");
  eq(m.content[0].type, "text", "text block");
  check(["max_tokens", "end_turn"].includes(m.stop_reason), "stop_reason");
  check(m.usage.input_tokens > 0 && m.usage.output_tokens > 0, "usage");
});

await test("messages.stream and finalMessage", async () => {
  const events = [];
  const stream = client.messages.stream({ model: "any", max_tokens: 6, messages: user });
  const raw = [];
  stream.on("streamEvent", (e) => {
    events.push(e.type);
    raw.push(structuredClone(e));  // the SDK later fills message_start.message in place
  });
  const m = await stream.finalMessage();
  for (const e of validateAnthropicStream(raw)) check(false, `messages stream: ${e}`);
  eq(events[0], "message_start", "first event");
  eq(events[events.length - 1], "message_stop", "last event");
  check(events.includes("content_block_delta"), "has deltas");
  check(events.includes("message_delta"), "has message_delta");
  eq(m.stop_reason, "max_tokens", "stop_reason");
  eq(m.usage.output_tokens, 6, "output tokens");
});

await test("count_tokens equals usage.input_tokens", async () => {
  const req = { model: "any", system: "Tell a story", messages: user };
  const c = await client.messages.countTokens(req);
  const m = await client.messages.create({ ...req, max_tokens: 1 });
  eq(c.input_tokens, m.usage.input_tokens + m.usage.cache_read_input_tokens, "count");
});

await test("stop_sequences", async () => {
  const m = await client.messages.create({ model: "any", max_tokens: 40, stop_sequences: ["e"], messages: user, temperature: 0 });
  check(!m.content[0].text.includes("e"), "text cut before the stop sequence");
  eq(m.stop_reason, "stop_sequence", "stop_reason");
  eq(m.stop_sequence, "e", "stop_sequence");
});

await test("tool_use then tool_result history", async () => {
  const tools = [{ name: "get_weather", description: "weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }];
  const m = await client.messages.create({
    model: "any", max_tokens: 8, tools,
    messages: [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "sunny" }] },
    ],
  });
  eq(m.type, "message", "answered");
});

await test("errors", async () => {
  for (const [body, status, type] of [
    [{ model: "any", messages: user }, 400, "invalid_request_error"],
    [{ model: "any", max_tokens: 5, messages: [{ role: "user", content: [{ type: "image", source: {} }] }] }, 400, "invalid_request_error"],
  ]) {
    try {
      await client.messages.create(body);
      check(false, "should fail");
    } catch (e) {
      eq(e.status, status, "status");
      eq(e.error?.error?.type, type, "error type");
    }
  }
  const bad = new Anthropic({ baseURL: srv.url, apiKey: "wrong", maxRetries: 0 });
  try {
    await bad.messages.create({ model: "any", max_tokens: 5, messages: user });
    check(false, "bad key should fail");
  } catch (e) {
    eq(e.status, 401, "401");
    eq(e.error?.error?.type, "authentication_error", "auth type");
  }
});

await srv.stop();

// The same API on the families agents run: a synthetic Qwen3 with the real Qwen3 template and a
// synthetic gpt-oss with its harmony template; forced tool use streamed and not, a tool_result
// round trip, thinking on and off. A random model writes what it likes, so the protocol is checked:
// a tool_use block whose input is an object, stop_reason tool_use, valid event sequences, thinking
// blocks only when thinking is on.
const tools = [{ name: "get_weather", description: "weather", input_schema: { type: "object", properties: { city: { type: "string", enum: ["Paris", "Oslo"] } }, required: ["city"] } }];
for (const [family, modelVar, templateVar] of [["qwen3", "ORIGAMI_TOOLS_MODEL", "ORIGAMI_TOOLS_TEMPLATE"],
                                              ["gpt-oss", "ORIGAMI_GPTOSS_MODEL", "ORIGAMI_GPTOSS_TEMPLATE"]]) {
  if (!process.env[modelVar] || !process.env[templateVar]) continue;
  const fam = await startServer(["--chat-template-file", process.env[templateVar], "-n", "600"], { model: process.env[modelVar] });
  const c = new Anthropic({ baseURL: fam.url, apiKey: "unused", maxRetries: 0 });
  try {
    for (const thinking of [false, true]) {
      const th = thinking ? { thinking: { type: "enabled", budget_tokens: 1024 } } : { thinking: { type: "disabled" } };
      await test(`${family}, thinking ${thinking ? "on" : "off"}: forced tool_use, not streamed`, async () => {
        const m = await c.messages.create({ model: "any", max_tokens: 2048, temperature: 0, messages: [{ role: "user", content: "Weather?" }], tools, tool_choice: { type: "any" }, ...th });
        const use = m.content.find((b) => b.type === "tool_use");
        check(use && use.name === "get_weather" && typeof use.input === "object", `a tool_use block: ${JSON.stringify(m.content)}`);
        eq(m.stop_reason, "tool_use", "stop_reason");
        if (!thinking) check(!m.content.some((b) => b.type === "thinking"), "no thinking block with thinking off");
      });
      await test(`${family}, thinking ${thinking ? "on" : "off"}: forced tool_use, streamed`, async () => {
        const raw = [];
        const stream = c.messages.stream({ model: "any", max_tokens: 2048, temperature: 0, messages: [{ role: "user", content: "Weather?" }], tools, tool_choice: { type: "tool", name: "get_weather" }, ...th });
        stream.on("streamEvent", (e) => raw.push(structuredClone(e)));
        const m = await stream.finalMessage();
        for (const e of validateAnthropicStream(raw)) check(false, `${family} stream: ${e}`);
        const use = m.content.find((b) => b.type === "tool_use");
        check(use && ["Paris", "Oslo"].includes(use.input.city), `streamed tool_use input: ${JSON.stringify(m.content)}`);
        eq(m.stop_reason, "tool_use", "stop_reason");
      });
    }
    await test(`${family}: tool_result round trip`, async () => {
      const m = await c.messages.create({
        model: "any", max_tokens: 2048, temperature: 0, tools,
        messages: [
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "sunny" }] },
        ],
      });
      eq(m.type, "message", "a message after the tool result");
      check(m.usage.input_tokens > 0, "usage");
    });
  } finally {
    await fam.stop();
  }
}
process.exit(summary());
