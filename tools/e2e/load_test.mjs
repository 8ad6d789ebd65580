// A bounded load test on loopback: CLIENTS concurrent streaming clients for DURATION seconds
// (env ORIGAMI_LOAD_CLIENTS, ORIGAMI_LOAD_SECONDS), a share of them disconnecting at random
// mid-stream. Passes when no request fails, every slot and KV block is free at the end, and the
// server's memory stays flat after warm-up.
import { startServer, metrics, check, eq, test, summary, sleep } from "./lib.mjs";

const CLIENTS = Number(process.env.ORIGAMI_LOAD_CLIENTS || 32);
const SECONDS = Number(process.env.ORIGAMI_LOAD_SECONDS || 60);
const srv = await startServer(["--parallel", "8", "--max-queue", String(CLIENTS * 2)]);

let ok = 0, aborted = 0, errors = 0, tokens = 0;
const errorSamples = [];
const deadline = Date.now() + SECONDS * 1000;
let seq = 0;

async function oneRequest(id) {
  const ac = new AbortController();
  const disconnect = Math.random() < 0.25;
  const body = {
    messages: [
      { role: "system", content: "You are a storyteller." },  // shared prefix: exercises the prefix cache
      { role: "user", content: `Tell story ${id % 50}.` },
    ],
    stream: true,
    max_tokens: 16 + Math.floor(Math.random() * 64),
    temperature: Math.random() < 0.5 ? 0 : 0.9,
    seed: id,
  };
  let got = 0;
  try {
    const r = await fetch(srv.url + "/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal: ac.signal,
    });
    if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "", done = false;
    const cutAfter = disconnect ? 1 + Math.floor(Math.random() * 10) : Infinity;
    while (!done) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!ev.startsWith("data: ")) continue;
        if (ev === "data: [DONE]") { done = true; break; }
        const j = JSON.parse(ev.slice(6));
        if (j.error) throw new Error(j.error.message);
        if (j.choices[0]?.delta?.content) got++;
        if (got >= cutAfter) {
          ac.abort();
          aborted++;
          tokens += got;
          return;
        }
      }
    }
    if (!done) throw new Error("stream ended without [DONE]");
    ok++;
    tokens += got;
  } catch (e) {
    if (e.name === "AbortError") return;
    errors++;
    if (errorSamples.length < 5) errorSamples.push(String(e));
  }
}

async function client() {
  while (Date.now() < deadline) await oneRequest(seq++);
}

await test(`${CLIENTS} streaming clients for ${SECONDS} s`, async () => {
  const rss = [];
  const sampler = setInterval(() => rss.push(srv.rssKb()), 1000);
  const t0 = Date.now();
  await Promise.all(Array.from({ length: CLIENTS }, client));
  clearInterval(sampler);
  const secs = (Date.now() - t0) / 1000;
  console.log(`requests: ${ok} complete, ${aborted} disconnected on purpose, ${errors} errors; ${tokens} streamed pieces, ${(tokens / secs).toFixed(0)}/s`);
  if (errorSamples.length) console.log("errors:", errorSamples);
  eq(errors, 0, "errors");
  check(ok > CLIENTS, "requests completed");
  check(aborted > 0, "some clients disconnected");
  // Slots and blocks are freed at once: give the engine a moment to see the last disconnects.
  let m = {};
  for (let i = 0; i < 50; i++) {
    m = await metrics(srv.url);
    if (m.origami_live_sequences === 0 && m.origami_kv_blocks_in_use === 0 && m.origami_queue_depth === 0) break;
    await sleep(100);
  }
  eq(m.origami_live_sequences, 0, "live sequences after the load");
  eq(m.origami_kv_blocks_in_use, 0, "KV blocks in use after the load");
  eq(m.origami_queue_depth, 0, "queue after the load");
  check(m.origami_requests_cancelled_total >= 1, "disconnects cancelled their sequences");
  check(m.origami_prompt_tokens_cached_total > 0, "the shared system prompt came from the prefix cache");
  // Memory flat after warm-up: the last third of samples within 15% (+8 MiB) of the middle third.
  if (rss.length >= 6) {
    const third = Math.floor(rss.length / 3);
    const mid = Math.max(...rss.slice(third, 2 * third));
    const last = Math.max(...rss.slice(2 * third));
    console.log(`RSS: start ${rss[0]} kB, middle max ${mid} kB, end max ${last} kB`);
    check(last <= mid * 1.15 + 8192, `memory flat after warm-up (${mid} -> ${last} kB)`);
  }
});

await srv.stop();
process.exit(summary());
