#!/usr/bin/env python3
"""`origami serve` under a real memory cgroup limit (issue 16 (c)): 32 streaming clients ask for long
contexts, more KV than the planned pool holds at once. The server must size itself from the cgroup
(--fit), make the extra requests wait or answer 503 with Retry-After, preempt and resume as it must,
finish every request it admitted, never be OOM-killed, and keep its resident memory (sampled) under
the limit. Python standard library only.

The group is made as in cgroup_memory_test.py (a child of this process's own memory cgroup, v1 or
v2; removed afterwards); exits 77 (ctest SKIP_RETURN_CODE) with a message where it cannot be.
The limit is the plan of a 1024-position pool (8 sequences of 128) plus 4 MiB, so --fit chooses a
pool of about 1.5k positions, while 8 running requests of 220 positions (180 prompt tokens, 40
generated) need 1760: requests wait for KV, running ones are preempted, and a burst of 32 overflows
the 8 waiting places (503, retried after Retry-After)."""
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cgroup_memory_test import Group, setup  # noqa: E402

CLIENTS = 32
PARALLEL = 8
QUEUE = 8  # waiting places: with 8 running, the rest of a burst of 32 gets 503 and retries
SEQ = 256  # --max-seq-len
PLAN_SEQ = 128  # the limit is the plan of a pool of PARALLEL x PLAN_SEQ positions (plus 4 MiB)
PROMPT = 180  # prompt tokens each client sends: with GEN, 8 running need more than the pool
GEN = 40  # tokens each client asks for
STORE = 2 << 20  # --responses-max-bytes, for the plan and the server alike (the default follows the budget)
FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def prompt(i):
    """Token ids, distinct from the first block on (the prefix cache cannot share them)."""
    return [3 + (i * 31 + k * (i % 7 + 1) * 17) % 250 for k in range(PROMPT)]


class Client:
    """One streaming completions client: retries a 503 after its Retry-After until admitted or out of
    time."""

    def __init__(self, port, i, deadline):
        self.port, self.i, self.deadline = port, i, deadline
        self.statuses = []  # every answer's status
        self.bad = []  # what went wrong: a 5xx that is not 503 + Retry-After, a broken stream
        self.tokens = 0
        self.finish = None

    def run(self):
        body = json.dumps({"prompt": prompt(self.i), "max_tokens": GEN, "temperature": 0, "ignore_eos": True,
                           "stream": True, "stream_options": {"include_usage": True}})
        while time.monotonic() < self.deadline:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                self.statuses.append(r.status)
                if r.status == 503:
                    ra = r.getheader("Retry-After", "")
                    r.read()
                    if not ra.isdigit():
                        self.bad.append(f"503 without Retry-After ({ra!r})")
                        return
                    time.sleep(min(int(ra), 2))
                    continue
                if r.status != 200:
                    self.bad.append(f"status {r.status}: {r.read()[:200]!r}")
                    return
                for raw in r:
                    line = raw.decode().strip()
                    if not line.startswith("data: "):
                        continue
                    if line == "data: [DONE]":
                        break
                    ev = json.loads(line[6:])
                    if "error" in ev:
                        self.bad.append(f"error event: {ev}")
                        return
                    if ev.get("usage"):
                        self.tokens = ev["usage"]["completion_tokens"]
                    ch = ev["choices"][0] if ev.get("choices") else {}
                    if ch.get("finish_reason"):
                        self.finish = ch["finish_reason"]
                if self.finish is None:
                    self.bad.append("stream ended without a finish_reason")
                return
            except (OSError, http.client.HTTPException) as e:
                self.bad.append(f"connection: {e}")
                return
            finally:
                c.close()
        self.bad.append("never admitted before the deadline")


def main():
    # A file of its own: its pages are dropped from the cache below so that the server's reads are
    # charged to its group, which a file shared with the other cgroup test would spoil.
    a, v2, own, model = setup("cgroup_serve_llama_small_q8.gguf")
    plan = json.loads(subprocess.run([a.origami, "info", model, "--plan", "-c", str(PLAN_SEQ), "--parallel",
                                      str(PARALLEL), "--max-queue", str(QUEUE), "--responses-max-bytes", str(STORE),
                                      "-t", "2", "--json"],
                                     check=True, capture_output=True, text=True).stdout)
    limit = (plan["total"] + (4 << 20) + 4095) // 4096 * 4096
    # The model's pages go to whoever reads them first: drop them from the page cache so the
    # server's reads are charged to its own group, as on a machine that just booted.
    fd = os.open(model, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    group = Group(v2, own, f"origami-servetest-{os.getpid()}", limit)
    t_start = time.monotonic()
    srv = None
    try:
        print(f"cgroup {'v2' if v2 else 'v1'} {group.dir}, limit {limit / 2**20:.1f} MiB "
              f"(plan of {plan['kv_tokens']} positions: {plan['total'] / 2**20:.1f} MiB)", flush=True)
        # --mem-reserve 0: the reserve is for the rest of the machine and comes off MemAvailable only;
        # on a shared machine short of memory it would bind before the cgroup this test is about.
        srv = group.popen([a.origami, "serve", "-m", model, "--port", "0", "-t", "2", "--fit", "-c", "65536",
                           "--parallel", str(PARALLEL), "--max-queue", str(QUEUE), "--max-seq-len", str(SEQ),
                           "--mem-reserve", "0", "--responses-max-bytes", str(STORE)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines, port = [], None
        for line in srv.stdout:
            lines.append(line)
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        threading.Thread(target=lambda: [lines.append(l) for l in srv.stdout], daemon=True).start()
        print("".join(lines), end="", flush=True)
        check(port is not None, "serve started under the limit")
        if port is None:
            return 1
        mem_line = next((l for l in lines if l.startswith("memory:")), "")
        check("cgroup" in mem_line and "--fit: KV pool" in mem_line, "budget from the cgroup, pool chosen by --fit")
        pool = int(re.search(r"--fit: KV pool (\d+)", mem_line).group(1)) if "--fit: KV pool" in mem_line else 0
        check(0 < pool < PARALLEL * (PROMPT + GEN),
              f"pool of {pool} positions < what {PARALLEL} running requests need ({PARALLEL * (PROMPT + GEN)})")

        # Sample the server's RSS and the group's usage while the clients run.
        peak = {"rss": 0, "usage": 0}
        stop = threading.Event()
        usage_file = "memory.current" if v2 else "memory.usage_in_bytes"

        def sample():
            while not stop.is_set():
                try:
                    with open(f"/proc/{srv.pid}/status") as f:
                        for l in f:
                            if l.startswith("VmRSS:"):
                                peak["rss"] = max(peak["rss"], int(l.split()[1]) * 1024)
                    peak["usage"] = max(peak["usage"], int(group.read(usage_file)))
                except (OSError, ValueError):
                    pass
                time.sleep(0.02)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        deadline = time.monotonic() + 90
        clients = [Client(port, i, deadline) for i in range(CLIENTS)]
        threads = [threading.Thread(target=c.run) for c in clients]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        secs = time.monotonic() - t0
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        metrics = {}
        for l in c.getresponse().read().decode().splitlines():
            if l and not l.startswith("#"):
                k, _, v = l.rpartition(" ")
                metrics[k] = float(v)
        c.close()
        stop.set()
        sampler.join()

        statuses = [s for cl in clients for s in cl.statuses]
        admitted = [cl for cl in clients if 200 in cl.statuses]
        print(f"{CLIENTS} clients in {secs:.1f} s: {statuses.count(200)} admitted, {statuses.count(503)} answers "
              f"503 (retried), preemptions {metrics.get('origami_preemptions_total', 0):.0f}, KV peak "
              f"{metrics.get('origami_kv_cache_bytes_in_use_peak', 0) / 2**20:.1f} of "
              f"{metrics.get('origami_kv_cache_bytes_total', 0) / 2**20:.1f} MiB", flush=True)
        for cl in clients:
            for b in cl.bad:
                check(False, f"client {cl.i}: {b}")
        check(all(s in (200, 503) for s in statuses), f"no status but 200 and 503: {sorted(set(statuses))}")
        check(len(admitted) == CLIENTS, f"every client admitted in the end ({len(admitted)})")
        check(all(cl.finish == "length" and cl.tokens == GEN for cl in admitted),
              f"every admitted request completes with its {GEN} tokens")
        check(metrics.get("origami_kv_cache_bytes_in_use_peak", 0) <= metrics.get("origami_kv_cache_bytes_total", 1),
              "KV in use never past the pool")
        check(metrics.get("origami_memory_planned_bytes", 1) <= metrics.get("origami_memory_budget_bytes", 0) <= limit,
              "plan <= budget <= limit")
        check(0 < peak["rss"] < limit, f"sampled RSS peak {peak['rss'] / 2**20:.1f} MiB < limit {limit / 2**20:.1f} MiB")
        hwm = metrics.get("origami_resident_memory_peak_bytes", 0)
        check(0 < hwm < limit, f"VmHWM {hwm / 2**20:.1f} MiB < limit")
        check(srv.poll() is None, "server alive")
        srv.terminate()
        try:
            srv.wait(30)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
        check(srv.returncode == 0, f"server stopped cleanly (exit {srv.returncode})")
        check(group.oom_kills() == 0, "no OOM kill")
        if not v2:
            under = [l for l in group.read("memory.oom_control").splitlines() if l.startswith("under_oom")]
            check(not under or under[0].split()[1] == "0", "never under OOM")
        peak_file = "memory.peak" if v2 else "memory.max_usage_in_bytes"
        gpeak = int(group.read(peak_file)) if os.path.exists(os.path.join(group.dir, peak_file)) else 0
        print(f"group peak usage {gpeak / 2**20:.1f} MiB (sampled {peak['usage'] / 2**20:.1f}) of "
              f"{limit / 2**20:.1f} MiB, failcnt {group.failcnt()}; {time.monotonic() - t_start:.1f} s in all")
    finally:
        if srv and srv.poll() is None:
            srv.kill()
            srv.wait()
        group.remove()
    if os.path.isdir(group.dir):
        FAILURES.append(f"could not remove {group.dir}")
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
