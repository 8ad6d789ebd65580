#!/usr/bin/env python3
"""End-to-end tests of `mpirun -np N origami serve`: concurrent requests (greedy) get the same text
as from one process, prefix-shared KV blocks stay valid on every rank, SIGTERM to rank 0 ends every
rank cleanly, and a worker rank that dies ends the whole job with an error naming it (never a
server left hanging). Python standard library only."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import harness
from harness import check

ARGS = None
# A long shared opening (more than one 16-token KV block) so the second round hits the prefix cache.
OPENING = "Once upon a time, there was a little girl named Lily who lived in a small house near the woods. "
PROMPTS = [OPENING + s for s in ["She liked", "One day", "Her mom", "The sun", "A big dog", "Tim and"]] + \
    ["The cat sat", "Tom had a red ball"]


class Server:
    """One `origami serve` (under mpirun when ranks > 0) on a free port; stderr is collected."""

    def __init__(self, model, ranks, extra_env=None, extra_args=()):
        cmd = [ARGS.origami, "serve", "-m", model, "--port", "0", "-t", "1", "--parallel", "4", "-c", "2048"]
        cmd += list(extra_args)
        if ranks > 0:
            cmd = harness.mpirun(ARGS.mpirun, ranks) + cmd
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=harness.env(extra_env))
        self.lines = []
        self.port = None
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(180):
            raise RuntimeError("server did not start:\n" + self.text())

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                self.ready.set()
        self.ready.set()

    def text(self):
        return "".join(self.lines)

    def complete(self, prompt, max_tokens=24, timeout=240):
        body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
                           "logprobs": 1}).encode()
        req = urllib.request.Request("http://127.0.0.1:%d/v1/completions" % self.port, data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                out = json.loads(r.read())
                out["_status"] = r.status
        except urllib.error.HTTPError as e:  # an error answer: its body and status
            out = json.loads(e.read())
            out["_status"] = e.code
        return out

    def concurrent(self, prompts, **kw):
        """All prompts at once, one thread each; returns the responses (or the exceptions) in order."""
        out = [None] * len(prompts)

        def one(i):
            try:
                out[i] = self.complete(prompts[i], **kw)
            except Exception as ex:  # noqa: BLE001 - the caller inspects what failed
                out[i] = ex
        ts = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return out

    def rank_pid(self, rank):
        return harness.rank_pid(self.p.pid, rank)

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None


def texts(responses):
    return [r["choices"][0]["text"] if isinstance(r, dict) else "ERROR: %r" % r for r in responses]


def logprobs(responses):
    return [r["choices"][0]["logprobs"]["token_logprobs"] if isinstance(r, dict) else [] for r in responses]


def reference(model):
    """Greedy answers of one process (one request at a time: no batching involved)."""
    s = Server(model, 0)
    try:
        return [s.complete(p) for p in PROMPTS]
    finally:
        s.p.send_signal(signal.SIGINT)
        s.wait(60)


def test_identical(model, name, ranks, ref, split=None):
    # With 3 ranks every step is cut into 3 micro-batches (decode steps too, which the automatic
    # choice keeps whole), so sequences straddle micro-batches; with 2 the automatic choice runs.
    label = "%s, %d ranks%s%s" % (name, ranks, ", 3 micro-batches per step" if ranks == 3 else "",
                                  ", --split " + split if split else "")
    s = Server(model, ranks, {"ORIGAMI_MICRO_BATCHES": "3"} if ranks == 3 else None,
               ("--split", split) if split else ())
    try:
        check("pipeline plan" in s.text() and "output head" in s.text(), label + ": rank 0 prints the plan")
        if split:
            first = int(split.split(",")[0])
            check(re.search(r"rank 0: layers +0-%d +\( *%d layers\)" % (first - 1, first), s.text()) is not None,
                  label + ": the plan follows --split")
        # Round 1: everything at once (batched decode steps cut into micro-batches); round 2 again,
        # now with the shared opening's blocks taken from the prefix cache on every rank.
        for rnd in (1, 2):
            got = s.concurrent(PROMPTS)
            same = texts(got) == texts(ref)
            check(same, "%s: round %d: %d concurrent greedy answers equal one process's" % (label, rnd, len(PROMPTS)))
            if rnd == 2:
                cached = sum(r["usage"]["prompt_tokens_details"]["cached_tokens"] for r in got if isinstance(r, dict))
                check(cached > 0, "%s: round 2 reuses prefix-cached KV blocks (%d prompt tokens)" % (label, cached))
            if not same:
                for a, b in zip(texts(got), texts(ref)):
                    print("     got %r\n     ref %r" % (a, b))
            # Batch composition changes the summation order of the prefill tiles (a few ulps), so
            # the log-probabilities are held to 1e-3, not to the bit.
            diff = max((abs(a - b) for x, y in zip(logprobs(got), logprobs(ref)) for a, b in zip(x, y)), default=1.0)
            check(diff < 1e-3, "%s: round %d: logprobs within 1e-3 of one process's (max diff %.2g)"
                  % (label, rnd, diff))
        # SIGTERM to rank 0 alone: it stops serving, tells the workers, and the job exits 0.
        pid0 = s.rank_pid(0)
        check(pid0 is not None, label + ": rank 0's process found")
        if pid0:
            os.kill(pid0, signal.SIGTERM)
        rc = s.wait(120)
        check(rc == 0, label + ": SIGTERM to rank 0 ends every rank with exit 0 (rc %s)" % rc)
        m = re.search(r"([\d.]+) bytes on the wire per token", s.text())
        check(bool(m), label + ": rank 0 reports the bytes on the wire per token")
        if m:
            print("     %s bytes on the wire per token" % m.group(1))
        if rc != 0:
            print(s.text()[-3000:])
    finally:
        if s.p.poll() is None:
            s.p.kill()
            s.wait(30)


def test_worker_killed(model, ranks, victim):
    """kill -9 of a worker while requests are in flight ends the job (non-zero), naming the rank."""
    label = "%d ranks, rank %d killed (SIGKILL) during requests" % (ranks, victim)
    s = Server(model, ranks)
    pid = s.rank_pid(victim)
    check(pid is not None, label + ": the rank's process found")
    if pid is None:
        s.p.kill()
        return
    results = []
    client = threading.Thread(target=lambda: results.append(s.concurrent(PROMPTS[:4], max_tokens=400, timeout=150)))
    client.start()
    time.sleep(1.0)
    t0 = time.time()
    os.kill(pid, signal.SIGKILL)
    rc = s.wait(150)
    took = time.time() - t0
    client.join(200)
    check(rc is not None, label + ": the job ends (no hang; took %.1f s)" % took)
    check(rc is not None and rc != 0, label + ": non-zero exit (%s)" % rc)
    check(harness.named(s.text(), victim), label + ": the error names rank %d" % victim)
    check(not client.is_alive(), label + ": no client is left waiting")
    if not harness.named(s.text(), victim):
        print(s.text()[-3000:])


def test_worker_dies(model, ranks, victim, step):
    """A worker that exits in the middle of a micro-batch (test hook) ends the job the same way."""
    label = "%d ranks, rank %d exits at micro-batch %d" % (ranks, victim, step)
    s = Server(model, ranks, {"ORIGAMI_TEST_DIE_AT_STEP": "%d:%d" % (victim, step)})
    t0 = time.time()
    got = s.concurrent(PROMPTS[:4], max_tokens=200, timeout=150)
    rc = s.wait(150)
    took = time.time() - t0
    check(rc is not None, label + ": the job ends (no hang; took %.1f s)" % took)
    check(rc is not None and rc != 0, label + ": non-zero exit (%s)" % rc)
    check(all(not isinstance(r, dict) or r["choices"][0].get("finish_reason") != "length" for r in got),
          label + ": no request claims a complete answer")
    check(harness.named(s.text(), victim), label + ": the error names rank %d" % victim)
    if not harness.named(s.text(), victim):
        print(s.text()[-3000:])


def test_worker_hangs(model):
    """A worker that stops answering (a dropped network: the process lives) makes rank 0 fail the
    requests and end the job after ORIGAMI_DIST_TIMEOUT, naming the stalled ranks."""
    label = "3 ranks, rank 1 stops answering at micro-batch 6"
    s = Server(model, 3, {"ORIGAMI_TEST_HANG_AT_STEP": "1:6", "ORIGAMI_DIST_TIMEOUT": "3"})
    t0 = time.time()
    got = s.concurrent(PROMPTS[:4], max_tokens=200, timeout=150)
    rc = s.wait(150)
    took = time.time() - t0
    check(rc is not None and rc != 0, label + ": the job ends with an error (rc %s, %.1f s)" % (rc, took))
    # Rank 0 fails the requests in flight with the error before the job ends.
    errors = [r["error"]["message"] for r in got if isinstance(r, dict) and "error" in r]
    check(len(errors) == len(got) and all("stuck in the pipeline" in e for e in errors),
          label + ": every request gets the error (%d of %d)" % (len(errors), len(got)))
    # The failure comes within the wait before keep-alive spaces commit the response to a 200.
    statuses = [r.get("_status") for r in got if isinstance(r, dict)]
    check(statuses == [500] * len(got), label + ": answered with status 500 (%s)" % statuses)
    check("stuck in the pipeline of ranks 1..2" in s.text(), label + ": rank 0 names the stalled ranks")
    if rc is None or "stuck in the pipeline" not in s.text():
        print(s.text()[-3000:])


def main():
    global ARGS
    ARGS = harness.parse_args(__doc__, "identical|death")
    if ARGS.only in ("", "identical"):
        tiny = harness.synth(ARGS, os.path.join(ARGS.tmp, "synthetic_tiny.gguf"), *harness.TINY_SHAPE)
        for model, name in ((ARGS.stories, "stories260K"), (tiny, "synthetic")):
            ref = reference(model)
            check(all(len(t) > 0 for t in texts(ref)), name + ": one process answers every prompt")
            for ranks in (2, 3):
                test_identical(model, name, ranks, ref)
        test_identical(tiny, "synthetic", 2, reference(tiny), split="3,1")
    if ARGS.only in ("", "death"):
        test_worker_killed(ARGS.stories, 2, 1)
        test_worker_dies(ARGS.stories, 3, 2, 6)
        test_worker_dies(ARGS.stories, 3, 1, 6)
        test_worker_hangs(ARGS.stories)
    return harness.finish("serve dist tests")


if __name__ == "__main__":
    sys.exit(main())
