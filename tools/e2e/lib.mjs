// Shared helpers for the end-to-end tests: start the real `origami serve` on a free loopback
// port, wait until it listens, stop it; tiny assertions; a skip exit code ctest understands.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

export const SKIP = 77;

export function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (fallback !== undefined) return fallback;
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return v;
}

// Starts the server with --port 0 and resolves once it prints its address. model: another GGUF
// than ORIGAMI_MODEL, or null for none (the arguments name the models: --models-dir).
export async function startServer(extraArgs = [], { timeoutMs = 60000, model = env("ORIGAMI_MODEL") } = {}) {
  const bin = env("ORIGAMI_BIN");
  const threads = extraArgs.includes("-t") ? [] : ["-t", "1"];
  const args = ["serve", ...(model === null ? [] : ["-m", model]), "--port", "0", ...threads, ...extraArgs];
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${log}`)), timeoutMs);
    const onData = (d) => {
      log += d.toString();
      const m = log.match(/listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stderr.on("data", onData);
    child.stdout.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${log}`));
    });
  });
  child.stderr.removeAllListeners("data");
  child.stderr.on("data", (d) => { log += d.toString(); });
  child.removeAllListeners("exit");
  return {
    url,
    child,
    log: () => log,
    rssKb() {
      try {
        const s = readFileSync(`/proc/${child.pid}/status`, "utf8");
        return Number(/VmRSS:\s+(\d+)/.exec(s)[1]);
      } catch {
        return 0;
      }
    },
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const done = new Promise((r) => child.on("exit", (code, sig) => r(code ?? sig)));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10000);
      const code = await done;
      clearTimeout(t);
      return code;
    },
  };
}

export async function metrics(url, key) {
  const r = await fetch(url + "/metrics", { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  const text = await r.text();
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

let failures = 0;
let passes = 0;
export function check(cond, what) {
  if (cond) {
    passes++;
  } else {
    failures++;
    console.error(`FAIL: ${what}`);
  }
}
export function eq(a, b, what) {
  const ok = JSON.stringify(a) === JSON.stringify(b);
  check(ok, `${what}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}
export async function test(name, fn) {
  const before = failures;
  try {
    await fn();
  } catch (e) {
    failures++;
    console.error(`FAIL: ${name} threw ${e && e.stack ? e.stack : e}`);
  }
  console.log(`${failures === before ? "ok  " : "FAIL"} ${name}`);
}
export function summary() {
  console.log(`${passes} checks passed, ${failures} failed`);
  return failures === 0 ? 0 : 1;
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
