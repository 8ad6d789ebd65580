// Reasoning kept apart from the answer without tools (issue 14), and `--reasoning-format none`:
// a random-weight Qwen3-shaped model with QwQ's template, whose generation prompt ends inside
// <think>, so everything the model writes (no </think> comes by chance in a few tokens) is
// thinking. auto: Chat Completions gives it as reasoning_content (streamed and not, never in
// content), the Anthropic Messages API as a thinking block; none: it stays in the text.
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { env, startServer, check, eq, test, summary } from "./lib.mjs";
import { validateChatStream } from "./stream_validators.mjs";

const template = env("ORIGAMI_REASONING_TEMPLATE");
const messages = [{ role: "user", content: "Why is the sky blue?" }];
// The template closes the think block unless enable_thinking is set (Anthropic: `thinking`, whose
// budget must be under max_tokens; the server's -n 8 keeps the answers short).
const ask = { messages, max_tokens: 8, temperature: 0, seed: 1, chat_template_kwargs: { enable_thinking: true } };

for (const format of ["auto", "none"]) {
  const srv = await startServer(["--chat-template-file", template, "--reasoning-format", format, "-n", "8"]);
  try {
    const client = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "unused", maxRetries: 0 });
    const model = (await client.models.list()).data[0].id;
    await test(`${format}: chat completion, not streamed`, async () => {
      const r = await client.chat.completions.create({ model, ...ask });
      const m = r.choices[0].message;
      if (format === "auto") {
        check((m.reasoning_content ?? "").length > 0, `reasoning_content holds the thinking: ${JSON.stringify(m)}`);
        check(!(m.content ?? "").includes("think>"), "no think marker in content");
      } else {
        check((m.content ?? "").length > 0, `content holds the text: ${JSON.stringify(m)}`);
        eq(m.reasoning_content, undefined, "no reasoning_content");
      }
    });
    await test(`${format}: chat completion, streamed, equals the whole answer`, async () => {
      const whole = (await client.chat.completions.create({ model, ...ask })).choices[0].message;
      const stream = await client.chat.completions.create({ model, ...ask, stream: true });
      const chunks = [];
      let reasoning = "", content = "";
      for await (const c of stream) {
        chunks.push(c);
        reasoning += c.choices[0]?.delta?.reasoning_content ?? "";
        content += c.choices[0]?.delta?.content ?? "";
      }
      for (const e of validateChatStream([...chunks, "[DONE]"])) check(false, `reasoning stream: ${e}`);
      eq(reasoning, whole.reasoning_content ?? "", "streamed reasoning_content");
      eq(content, whole.content ?? "", "streamed content");
    });
    await test(`${format}: Anthropic Messages`, async () => {
      const anthropic = new Anthropic({ baseURL: srv.url, apiKey: "unused", maxRetries: 0 });
      const r = await anthropic.messages.create({
        model, messages, max_tokens: 2048, temperature: 0, thinking: { type: "enabled", budget_tokens: 1024 },
      });
      const kinds = r.content.map((b) => b.type);
      if (format === "auto") {
        check(kinds.includes("thinking"), `a thinking block: ${JSON.stringify(r.content)}`);
        check(!r.content.some((b) => b.type === "text" && b.text.includes("think>")), "no think marker in text");
      } else {
        check(!kinds.includes("thinking"), `no thinking block: ${JSON.stringify(r.content)}`);
      }
    });
  } finally {
    await srv.stop();
  }
}

process.exit(summary());
