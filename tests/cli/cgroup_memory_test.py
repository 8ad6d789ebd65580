#!/usr/bin/env python3
"""`origami run` under a real memory cgroup limit (issue 16): refused with the numbers when the plan
exceeds the limit, and with --fit runs at a smaller context it reports, with no OOM kill either way.

Needs root and a writable memory controller: a child group is made under this process's own memory
cgroup (v1: memory.limit_in_bytes; v2: memory.max), `origami run` is moved into it by a shell that
writes its own pid to the group's procs file and then execs origami, and the group is removed
afterwards. Exits 77 (ctest SKIP_RETURN_CODE) with a message where the controller cannot be written.
"""
import argparse
import json
import os
import subprocess
import sys
import time

SKIP = 77
LIMIT = 256 << 20  # small enough that the test is fast, big enough for a Q8_0 model of ~95 MiB
CTX = 32768  # f16 KV of the small llama: 8 KiB a position, 256 MiB here: over the limit


def skip(msg):
    print(f"SKIP: {msg}")
    sys.exit(SKIP)


def memory_group():
    """(v2, directory of our own memory cgroup), or skips."""
    try:
        groups = [l.rstrip("\n").split(":", 2) for l in open("/proc/self/cgroup")]
        mounts = [l.split() for l in open("/proc/self/mountinfo")]
    except OSError as e:
        skip(f"cannot read /proc: {e}")

    def fstype(m):
        return m[m.index("-") + 1]

    def below(path, root):
        if root == "/":
            return path
        return path[len(root):] if path.startswith(root) else "/"

    for _, ctrl, path in groups:
        if "memory" in ctrl.split(","):
            for m in mounts:
                if fstype(m) == "cgroup" and "memory" in m[m.index("-") + 3].split(","):
                    return False, m[4] + below(path, m[3])
    for _, ctrl, path in groups:
        if ctrl == "":
            for m in mounts:
                if fstype(m) == "cgroup2":
                    return True, m[4] + below(path, m[3])
    skip("no memory cgroup mounted")


class Group:
    def __init__(self, v2, parent, name, limit=LIMIT):
        self.v2 = v2
        self.dir = os.path.join(parent, name)
        try:
            if v2:
                # A v2 child only gets memory.max when its parent delegates the controller.
                with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
                    f.write("+memory")
            os.mkdir(self.dir)
            self.write("memory.max" if v2 else "memory.limit_in_bytes", str(limit))
        except OSError as e:
            self.remove()
            skip(f"cannot create a memory cgroup under {parent}: {e}")

    def write(self, name, value):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(value)

    def read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read()

    def oom_kills(self):
        text = self.read("memory.events" if self.v2 else "memory.oom_control")
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v)
        return 0

    def failcnt(self):
        return 0 if self.v2 else int(self.read("memory.failcnt"))

    def run(self, argv):
        procs = os.path.join(self.dir, "cgroup.procs")
        shell = f'echo $$ > "{procs}" && exec "$@"'
        t0 = time.monotonic()
        p = subprocess.run(["sh", "-c", shell, "sh"] + argv, capture_output=True, text=True, timeout=300)
        return p, time.monotonic() - t0

    def popen(self, argv, **kw):
        """Starts argv inside the group (a long-running server); the caller waits for it."""
        procs = os.path.join(self.dir, "cgroup.procs")
        shell = f'echo $$ > "{procs}" && exec "$@"'
        return subprocess.Popen(["sh", "-c", shell, "sh"] + argv, **kw)

    def remove(self):
        if os.path.isdir(self.dir):
            for _ in range(50):  # the last process may still be leaving the group
                try:
                    os.rmdir(self.dir)
                    return
                except OSError:
                    time.sleep(0.1)


def setup(model_name):
    """The cgroup tests' common start: their arguments (--origami, --tmp), our own memory cgroup
    (v2, directory), or a skip when not root, and the small Q8_0 llama written once to
    --tmp/model_name. Returns (args, v2, own, model)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("--tmp", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        skip("not root: cannot create a memory cgroup")
    v2, own = memory_group()
    os.makedirs(a.tmp, exist_ok=True)
    model = os.path.join(a.tmp, model_name)
    if not os.path.exists(model):
        subprocess.run([a.origami, "synth", "--arch", "llama", "--preset", "small", "--type", "Q8_0", "-o", model],
                       check=True)
    return a, v2, own, model


def main():
    a, v2, own, model = setup("cgroup_llama_small_q8.gguf")
    group = Group(v2, own, f"origami-memtest-{os.getpid()}")
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    try:
        print(f"cgroup {'v2' if v2 else 'v1'} {group.dir}, limit {LIMIT >> 20} MiB")
        base = [a.origami, "run", "-m", model, "-p", "hello", "-n", "8", "--ignore-eos", "--temp", "0",
                "-t", "2", "-c", str(CTX)]
        # (a) over the limit: refused before loading, one line with the numbers, exit 1.
        p, secs = group.run(base)
        print(f"(a) exit {p.returncode} in {secs:.3f} s: {p.stderr.strip()}")
        check(p.returncode == 1, "(a) exit code 1")
        check(secs < 1.0, f"(a) refused within one second ({secs:.3f} s)")
        err = p.stderr.strip()
        check(err.startswith("error: not enough memory") and len(err.splitlines()) == 1, "(a) one error line")
        check("budget is" in err and "cgroup" in err and "largest part: KV cache" in err, "(a) numbers and what dominates")
        check("would fit: -c " in err, "(a) names a -c that fits")
        check(group.oom_kills() == 0, "(a) no OOM kill")
        # (b) --fit: a smaller context, reported, and generation.
        p, secs = group.run(base + ["--fit", "--json"])
        print(f"(b) exit {p.returncode} in {secs:.3f} s: {p.stderr.strip().splitlines()[:3]}")
        check(p.returncode == 0, "(b) exit code 0")
        fit_line = [l for l in p.stderr.splitlines() if "--fit: context" in l]
        check(len(fit_line) == 1, "(b) reports the context it chose")
        if fit_line:
            chosen = int(fit_line[0].split("--fit: context ")[1].split()[0])
            check(0 < chosen < CTX, f"(b) context {chosen} < {CTX}")
        try:
            out = json.loads(p.stdout)
            check(out["n_generated"] == 8, f"(b) generated {out['n_generated']} tokens")
        except (ValueError, KeyError) as e:
            check(False, f"(b) JSON output: {e}")
        check(group.oom_kills() == 0, "(b) no OOM kill")
        peak_file = "memory.peak" if v2 else "memory.max_usage_in_bytes"
        peak = int(group.read(peak_file)) if os.path.exists(os.path.join(group.dir, peak_file)) else 0
        print(f"group peak usage {peak / 2**20:.1f} MiB of {LIMIT >> 20} MiB, failcnt {group.failcnt()}")
    finally:
        group.remove()
    if os.path.isdir(group.dir):
        failures.append(f"could not remove {group.dir}")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
