// Prefix reuse for Claude Code-shaped requests (issue 14): sends a captured Claude Code
// /v1/messages body twice, differing only in the cch= nonce of its x-anthropic-billing-header
// system block, and prints the second request's prompt tokens and how many came from the cache.
// usage: node tools/agents/prefix_reuse.mjs URL BODY.json   (a JSON request body or a capture.mjs record)
import { readFileSync } from "node:fs";

const [url, file] = process.argv.slice(2);
// A request body, or a capture.mjs record ({method, url, headers, body}) holding one.
const read = JSON.parse(readFileSync(file, "utf8"));
const base = typeof read.body === "string" && read.url ? JSON.parse(read.body) : read;
function variant(nonce) {
  const b = structuredClone(base);
  b.stream = false;
  b.max_tokens = 1;
  const sys = Array.isArray(b.system) ? b.system : [{ type: "text", text: String(b.system ?? "") }];
  const i = sys.findIndex((s) => s.text?.startsWith("x-anthropic-billing-header"));
  const header = `x-anthropic-billing-header: cc_version=2.1.337.ef8; cc_entrypoint=sdk-cli; cch=${nonce};`;
  if (i >= 0) sys[i].text = header;
  else sys.unshift({ type: "text", text: header });
  b.system = sys;
  return b;
}
async function send(body) {
  const t0 = Date.now();
  const r = await fetch(url + "/v1/messages?beta=true", {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": "x", "anthropic-version": "2023-06-01" },
    body: JSON.stringify(body),
  });
  const j = await r.json();
  return { status: r.status, ms: Date.now() - t0, usage: j.usage, error: j.error };
}
const first = await send(variant("a1b2c"));
console.log("first ", JSON.stringify(first));
const second = await send(variant("9f8e7"));
console.log("second", JSON.stringify(second));
const u = second.usage || {};
const prompt = (u.input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);
const share = prompt ? (u.cache_read_input_tokens ?? 0) / prompt : 0;
console.log(`second request: ${prompt} prompt tokens, ${u.cache_read_input_tokens ?? 0} from the cache (${(100 * share).toFixed(2)}%)`);
process.exit(first.status === 200 && second.status === 200 && share >= 0.95 ? 0 : 1);
