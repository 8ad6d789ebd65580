// A benchmark, not a test: aggregate generated tokens/s and per-stream latency at 1, 4 and 16
// concurrent streaming clients against one `origami serve` (env ORIGAMI_BIN, ORIGAMI_MODEL;
// ORIGAMI_BENCH_TOKENS per request, ORIGAMI_BENCH_ARGS extra server flags, e.g. "-t 8").
import { startServer } from "./lib.mjs";

const TOKENS = Number(process.env.ORIGAMI_BENCH_TOKENS || 64);
const extra = (process.env.ORIGAMI_BENCH_ARGS || "").split(" ").filter(Boolean);
const srv = await startServer(["--parallel", "16", ...extra], { timeoutMs: 600000 });

async function one(i) {
  const t0 = performance.now();
  const r = await fetch(srv.url + "/v1/completions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: `Request ${i}: once upon a time`, max_tokens: TOKENS, temperature: 0, stream: true,
                           stream_options: { include_usage: true }, ignore_eos: true }),
  });
  const text = await r.text();
  let first = 0, n = 0;
  for (const ev of text.split("\n\n")) {
    if (!ev.startsWith("data: {")) continue;
    const j = JSON.parse(ev.slice(6));
    if (j.usage) n = j.usage.completion_tokens;
  }
  return { n, ms: performance.now() - t0 };
}

try {
  console.log("streams  aggregate tok/s  per-stream tok/s  mean request ms");
  for (const streams of [1, 4, 16]) {
    await Promise.all(Array.from({ length: streams }, (_, i) => one(1000 + i)));  // warm-up
    const t0 = performance.now();
    const res = await Promise.all(Array.from({ length: streams }, (_, i) => one(i)));
    const secs = (performance.now() - t0) / 1000;
    const total = res.reduce((a, r) => a + r.n, 0);
    const mean = res.reduce((a, r) => a + r.ms, 0) / streams;
    const perStream = res.reduce((a, r) => a + r.n / (r.ms / 1000), 0) / streams;
    console.log(`${String(streams).padStart(7)}  ${(total / secs).toFixed(1).padStart(15)}  ${perStream.toFixed(1).padStart(16)}  ${mean.toFixed(0).padStart(15)}`);
  }
} finally {
  await srv.stop();
}
