#!/usr/bin/env python3
"""`origami serve` at its limits (issue 16), in each API's own error shape: a full queue is 503 with
Retry-After on the OpenAI, Anthropic, Ollama and Responses routes (streamed or not); a prompt that
can never fit is 400 naming the limit (OpenAI's context_length_exceeded); /health says "saturated"
while requests wait; /metrics carries the memory figures. Python standard library only.

The server runs one sequence at a time with one waiting place (--parallel 1 --max-queue 1) on a
small synthetic llama, slow enough on one thread that a long generation holds the slot while the
test fills the queue and knocks; the state is confirmed through /health, not by timing."""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

FAILURES = []
MODEL = MODEL_ID = None  # the synthetic model's path, and the id the server names it by
SEQ = 1024  # --max-seq-len: a prompt of more tokens than this is a 400 (and the long stream's length)


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


class Server:
    def __init__(self, origami, model, args):
        cmd = [origami, "serve", "-m", model, "--port", "0", "-t", "1"] + args
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.p.stdout:
                self.lines.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()
        threading.Thread(target=read, daemon=True).start()
        ready.wait(120)
        if self.port is None:
            raise RuntimeError("server did not start:\n" + "".join(self.lines))

    def conn(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None):
        """(status, headers, parsed JSON or text)."""
        c = self.conn()
        data = None if body is None else json.dumps(body)
        c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        try:
            j = json.loads(text)
        except ValueError:
            j = text
        return r.status, {k.lower(): v for k, v in r.getheaders()}, j

    def health(self):
        return self.request("GET", "/health")[2]

    def metrics(self):
        text = self.request("GET", "/metrics")[2]
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()


def wait_for(pred, secs, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    check(False, f"timed out waiting for {what}")
    return None


def openai_shape(j, code):
    e = isinstance(j, dict) and j.get("error")
    return isinstance(e, dict) and isinstance(e.get("message"), str) and e.get("code") == code \
        and "type" in e and "param" in e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("--tmp", required=True)
    a = ap.parse_args()
    os.makedirs(a.tmp, exist_ok=True)
    global MODEL, MODEL_ID
    model = MODEL = os.path.join(a.tmp, "limits_llama_small_q8.gguf")
    MODEL_ID = "limits_llama_small_q8"
    if not os.path.exists(model):
        subprocess.run([a.origami, "synth", "--arch", "llama", "--preset", "small", "--type", "Q8_0", "-o", model],
                       check=True)
    # An explicit budget: what this test checks must not depend on the machine's free memory.
    srv = Server(a.origami, model, ["--parallel", "1", "--max-queue", "1", "--max-seq-len", str(SEQ),
                                    "--mem-budget", "2G"])
    try:
        run(srv)
    finally:
        srv.stop()
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


def run(srv):
    h = srv.health()
    check(h.get("status") == "ok" and h.get("waiting") == 0, f"/health idle: {h}")
    m = srv.metrics()
    for name in ["memory_budget_bytes", "memory_planned_bytes", "weights_bytes", "kv_cache_bytes_total",
                 "kv_cache_bytes_in_use", "kv_cache_bytes_in_use_peak", "prefix_cache_bytes",
                 "resident_memory_bytes", "resident_memory_peak_bytes", "saturated", "max_queue"]:
        check("origami_" + name in m, f"/metrics has origami_{name}")
    size = os.path.getsize(MODEL)
    check(abs(m.get("origami_weights_bytes", 0) - size) < 0.05 * size,
          f"weights {m.get('origami_weights_bytes', 0):.0f} B ~ file {size} B")
    check(0 < m.get("origami_memory_planned_bytes", 0) <= m.get("origami_memory_budget_bytes", 0) == 2 << 30,
          "planned within the budget (--mem-budget 2G)")
    check(m.get("origami_resident_memory_bytes", 0) > 0 and
          m.get("origami_resident_memory_peak_bytes", 0) >= m.get("origami_resident_memory_bytes", 0),
          "RSS and its high-water mark")
    check(m.get("origami_kv_cache_bytes_in_use") == 0 and m.get("origami_saturated") == 0, "idle: no KV held")

    # 400: a prompt that can never fit, in each API's shape, before anything queues.
    long_text = "hello " * SEQ  # several tokens a word
    s, _, j = srv.request("POST", "/v1/chat/completions",
                          {"messages": [{"role": "user", "content": long_text}], "max_tokens": 4})
    check(s == 400 and openai_shape(j, "context_length_exceeded") and j["error"]["param"] == "messages"
          and f"maximum context length is {SEQ} tokens" in j["error"]["message"], f"chat 400: {s} {j}")
    s, _, j = srv.request("POST", "/v1/completions", {"prompt": long_text, "max_tokens": 4, "stream": True})
    check(s == 400 and openai_shape(j, "context_length_exceeded") and j["error"]["param"] == "prompt",
          f"completions (stream) 400: {s} {j}")
    s, _, j = srv.request("POST", "/v1/messages", {"model": "x", "max_tokens": 32000,
                                                   "messages": [{"role": "user", "content": long_text}]})
    check(s == 400 and isinstance(j, dict) and j.get("type") == "error"
          and j["error"]["type"] == "invalid_request_error"
          and re.match(rf"^prompt is too long: \d+ tokens > {SEQ} maximum$", j["error"]["message"]),
          f"anthropic 400: {s} {j}")
    s, _, j = srv.request("POST", "/api/chat", {"model": MODEL_ID, "stream": False,
                                                "messages": [{"role": "user", "content": long_text}]})
    check(s == 400 and isinstance(j, dict) and list(j) == ["error"] and str(SEQ) in j["error"],
          f"ollama 400: {s} {j}")
    s, _, j = srv.request("POST", "/v1/responses", {"input": long_text, "max_output_tokens": 4})
    check(s == 400 and openai_shape(j, "context_length_exceeded"), f"responses 400: {s} {j}")
    # max_tokens past the limit is capped, not refused (agents ask for 32000 on any context).
    s, _, j = srv.request("POST", "/v1/completions", {"prompt": [7] * (SEQ - 20), "max_tokens": 100000,
                                                      "temperature": 0, "ignore_eos": True})
    check(s == 200 and j["choices"][0]["finish_reason"] == "length"
          and j["usage"]["prompt_tokens"] + j["usage"]["completion_tokens"] == SEQ,
          f"max_tokens above the limit runs to the limit: {s} {j.get('usage') if isinstance(j, dict) else j}")

    # Fill the slot with a long stream, and the one waiting place with a second request.
    hold = srv.conn(timeout=300)
    hold.request("POST", "/v1/completions",
                 body=json.dumps({"prompt": "Once upon a time", "max_tokens": 100000, "temperature": 0,
                                  "ignore_eos": True, "stream": True}),
                 headers={"Content-Type": "application/json"})
    hold_r = hold.getresponse()
    check(hold_r.status == 200, f"long stream admitted ({hold_r.status})")
    first = hold_r.readline()
    check(first.startswith(b"data: "), "long stream sends tokens")
    waiter_out = {}

    def waiter():
        waiter_out["r"] = srv.request("POST", "/v1/chat/completions",
                                      {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3,
                                       "temperature": 0, "ignore_eos": True})
    wt = threading.Thread(target=waiter)
    wt.start()
    h = wait_for(lambda: (lambda x: x if x.get("waiting") == 1 else None)(srv.health()), 30, "a waiting request")
    if h:
        check(h["status"] == "saturated" and h["queue_full"] is True and h["live"] == 1, f"/health saturated: {h}")
        check(h["kv_bytes_in_use"] > 0 and h["kv_bytes_in_use"] <= h["kv_bytes_total"], "/health KV bytes")
    m = srv.metrics()
    check(m.get("origami_saturated") == 1, "/metrics saturated 1")
    check(0 < m.get("origami_kv_cache_bytes_in_use", 0) <= m.get("origami_kv_cache_bytes_in_use_peak", 0)
          <= m.get("origami_kv_cache_bytes_total", 0), "KV in use <= peak <= total")

    # 503 with Retry-After in every API's shape, streamed or not.
    msgs = [{"role": "user", "content": "hi"}]
    cases = [
        ("chat", "/v1/chat/completions", {"messages": msgs, "max_tokens": 2}, "openai"),
        ("chat stream", "/v1/chat/completions", {"messages": msgs, "max_tokens": 2, "stream": True}, "openai"),
        ("completions", "/v1/completions", {"prompt": "hi", "max_tokens": 2}, "openai"),
        ("anthropic", "/v1/messages", {"model": "x", "max_tokens": 2, "messages": msgs}, "anthropic"),
        ("anthropic stream", "/v1/messages", {"model": "x", "max_tokens": 2, "messages": msgs, "stream": True},
         "anthropic"),
        ("ollama chat", "/api/chat", {"model": MODEL_ID, "messages": msgs}, "ollama"),
        ("ollama generate", "/api/generate", {"model": MODEL_ID, "prompt": "hi", "stream": False},
         "ollama"),
        ("responses", "/v1/responses", {"input": "hi", "max_output_tokens": 2}, "openai"),
    ]
    for name, path, body, shape in cases:
        s, hdr, j = srv.request("POST", path, body)
        ok = s == 503 and hdr.get("retry-after", "").isdigit() and int(hdr["retry-after"]) >= 1
        if shape == "openai":
            ok = ok and openai_shape(j, "overloaded") and j["error"]["type"] == "server_error"
        elif shape == "anthropic":
            ok = ok and j.get("type") == "error" and j["error"]["type"] == "overloaded_error" \
                and isinstance(j["error"]["message"], str)
        else:
            ok = ok and isinstance(j, dict) and list(j) == ["error"] and isinstance(j["error"], str)
        check(ok, f"{name}: 503 with Retry-After in its shape: {s} retry-after={hdr.get('retry-after')} {j}")
    m = srv.metrics()
    check(m.get("origami_requests_rejected_total", 0) >= len(cases), "rejections counted")

    # Letting go of the long stream frees the slot: the waiting request completes.
    hold.close()
    wt.join(120)
    s, _, j = waiter_out.get("r", (0, {}, None))
    check(s == 200 and j["usage"]["completion_tokens"] == 3, f"the waiting request completes: {s}")
    h = wait_for(lambda: (lambda x: x if x.get("status") == "ok" else None)(srv.health()), 30, "/health ok again")
    m = srv.metrics()
    check(m.get("origami_kv_cache_bytes_in_use") == 0 and m.get("origami_kv_cache_bytes_in_use_peak", 0) > 0,
          "KV given back, peak kept")
    check(m.get("origami_requests_cancelled_total", 0) >= 1, "the long stream was cancelled by the disconnect")


if __name__ == "__main__":
    sys.exit(main())
