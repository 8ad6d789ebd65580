// Replays a captured agent request (capture.mjs) against origami, streamed, and checks its head:
// status 200 and the protocol's first events (message_start for Messages, response.created for
// Responses), then cancels. Shows that the client's real request, with all its newer fields, is
// accepted, without waiting for a random model to prefill ~50k tokens on a small CPU.
// usage: node tools/agents/replay_head.mjs URL CAPTURED.json
import { readFileSync } from "node:fs";
import { readSseThenCancel } from "../e2e/stream_validators.mjs";

const [url, file] = process.argv.slice(2);
const cap = JSON.parse(readFileSync(file, "utf8"));
const body = JSON.parse(cap.body);
body.stream = true;
const ac = new AbortController();
const t0 = Date.now();
const r = await fetch(url + cap.url.replace(/^\/v1/, "/v1"), {
  method: "POST",
  signal: ac.signal,
  headers: { "content-type": "application/json", "x-api-key": "x", authorization: "Bearer x", "anthropic-version": "2023-06-01" },
  body: JSON.stringify(body),
});
console.log(`${cap.url}: ${cap.body.length} bytes, top-level fields ${Object.keys(body).join(", ")}`);
console.log(`status ${r.status} after ${Date.now() - t0} ms`);
if (r.status !== 200) {
  console.log(await r.text());
  process.exit(1);
}
const ev = await readSseThenCancel(r, ac, 1);
const first = ev[0]?.type;
const want = cap.url.startsWith("/v1/messages") ? "message_start" : "response.created";
const prompt = ev[0]?.message?.usage?.input_tokens;
console.log(`first event ${first} after ${Date.now() - t0} ms${prompt ? `, ${prompt} prompt tokens` : ""}`);
process.exit(first === want ? 0 : 1);
