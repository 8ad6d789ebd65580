// The OpenAI Agents SDK (@openai/agents, pinned; it bundles its own openai v7 client) running one
// Agent with one function tool against `origami serve` over /v1/responses, on an `origami synth`
// Qwen3 model with the real Qwen3 template. A random model calls no tool by itself, so the tool
// choice is forced; the runs must finish with the tool called and no protocol error, streamed and
// not.
import { env, startServer, test, check, eq, summary, SKIP } from "./lib.mjs";

let agents, z, OpenAI;
try {
  agents = await import("@openai/agents");
  ({ z } = await import("zod"));
  // The OpenAI client class the Agents SDK itself uses (v7, nested under its package).
  ({ default: OpenAI } = await import(
    new URL("./node_modules/@openai/agents-openai/node_modules/openai/index.mjs", import.meta.url)));
} catch (e) {
  console.log(`SKIP: @openai/agents is not installed (npm ci --ignore-scripts --prefix tools/e2e): ${e.message}`);
  process.exit(SKIP);
}
const { Agent, run, tool, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled } = agents;

const srv = await startServer(["--chat-template-file", env("ORIGAMI_TOOLS_TEMPLATE"), "--api-key", "sk-agents"]);
setTracingDisabled(true);
setOpenAIAPI("responses");
setDefaultOpenAIClient(new OpenAI({ baseURL: srv.url + "/v1", apiKey: "sk-agents", maxRetries: 0 }));

const calls = [];
const getWeather = tool({
  name: "get_weather",
  description: "Current weather in a city",
  parameters: z.object({ city: z.enum(["Paris", "Tokyo", "Lima"]) }),
  execute: async ({ city }) => {
    calls.push(city);
    return `sunny in ${city}`;
  },
});

function makeAgent(extra) {
  return new Agent({
    name: "weather",
    instructions: "Answer weather questions with the tool.",
    model: "any",
    tools: [getWeather],
    modelSettings: { toolChoice: "get_weather", temperature: 0, maxTokens: 400, ...extra.modelSettings },
    ...extra.agent,
  });
}

try {
  for (const stream of [false, true]) {
    await test(`agent with a forced tool, stream=${stream}: tool called, output is its result`, async () => {
      calls.length = 0;
      const agent = makeAgent({ agent: { toolUseBehavior: "stop_on_first_tool" } });
      const result = await run(agent, "What is the weather in Paris?", { stream, maxTurns: 3 });
      if (stream) {
        for await (const _ of result) { /* drain the events */ }
        await result.completed;
        check(!result.error, `stream finished without error: ${result.error}`);
      }
      eq(calls.length, 1, "the tool ran once");
      check(typeof result.finalOutput === "string" && result.finalOutput.startsWith("sunny in "),
            `final output is the tool's result: ${JSON.stringify(result.finalOutput)}`);
      const items = result.newItems.map((i) => i.type);
      check(items.includes("tool_call_item") && items.includes("tool_call_output_item"), `items ${items}`);
    });
  }

  await test("agent: tool, then the model answers from the result (tool choice resets to auto)", async () => {
    calls.length = 0;
    const agent = makeAgent({ modelSettings: { maxTokens: 16, reasoning: { effort: "minimal" } } });
    const result = await run(agent, "What is the weather in Tokyo?", { maxTurns: 4 });
    eq(calls.length, 1, "the tool ran once");
    check(typeof result.finalOutput === "string", `a text answer: ${JSON.stringify(result.finalOutput)}`);
    check(result.rawResponses.length >= 2, `two model turns (${result.rawResponses.length})`);
    for (const r of result.rawResponses)
      check(r.usage.inputTokens > 0 && r.usage.totalTokens === r.usage.inputTokens + r.usage.outputTokens,
            `usage ${JSON.stringify(r.usage)}`);
  });
} finally {
  await srv.stop();
}
process.exit(summary());
