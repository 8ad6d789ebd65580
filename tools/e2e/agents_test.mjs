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
// Every HTTP exchange is recorded: the request bodies and statuses are part of what is checked.
const exchanges = [];
const recordingFetch = async (url, init) => {
  const r = await fetch(url, init);
  exchanges.push({ body: JSON.parse(init.body), status: r.status });
  return r;
};
setDefaultOpenAIClient(new OpenAI({ baseURL: srv.url + "/v1", apiKey: "sk-agents", maxRetries: 0, fetch: recordingFetch }));

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
    // Thinking off (reasoning.effort minimal -> enable_thinking false): a random model's thinking
    // has no end, and a call cut by the token limit is an incomplete response, which the SDK
    // rightly rejects. The grammar bounds the forced call itself well under 1000 tokens.
    modelSettings: { toolChoice: "get_weather", temperature: 0, maxTokens: 1000, reasoning: { effort: "minimal" },
                     ...extra.modelSettings },
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

  // The tool runs, the tool choice resets to auto and the model is asked again with the call and
  // its output in the input. A random model does not stop by itself, so that answer may be cut at
  // maxTokens: then the SDK must report the server's response.incomplete (its own
  // ModelBehaviorError), never a protocol or HTTP error.
  for (const stream of [false, true]) {
    await test(`agent: tool, then the model again with function_call_output, stream=${stream}`, async () => {
      calls.length = 0;
      exchanges.length = 0;
      const agent = makeAgent({ modelSettings: { maxTokens: 300 } });
      let err = null, result = null;
      try {
        result = await run(agent, "What is the weather in Tokyo?", { stream, maxTurns: 2 });
        if (stream) {
          for await (const _ of result) { /* drain the events */ }
          await result.completed;
          if (result.error) throw result.error;
        }
      } catch (e) {
        err = e;
      }
      eq(calls.length, 1, "the tool ran once");
      eq(exchanges.map((x) => x.status), [200, 200], "two model requests, both 200");
      const second = exchanges[1]?.body;
      const call = second?.input?.find((i) => i.type === "function_call");
      const out = second?.input?.find((i) => i.type === "function_call_output");
      check(call && out && out.call_id === call.call_id, "the second request carries the call and its output");
      check(second?.tool_choice === undefined || second?.tool_choice === "auto", `tool choice reset: ${JSON.stringify(second?.tool_choice)}`);
      check(err === null ? typeof result.finalOutput === "string" : /response\.incomplete|Max turns/.test(err.message),
            `finished with text, or a length cut the SDK recognises: ${err?.message}`);
    });
  }
} finally {
  await srv.stop();
}
process.exit(summary());
