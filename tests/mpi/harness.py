"""What the MPI end-to-end scripts share: their common arguments, commands under mpirun (with the
environment Open MPI needs in containers), finding one rank's process, the synthetic models, how a
lost rank must be named, and the ok/FAIL bookkeeping. Python standard library only."""
import argparse
import os
import re
import subprocess
import sys
import time

FAILURES = []
# The small synthetic model both scripts compare against one process (4 layers, GQA).
TINY_SHAPE = ("--n-layer", "4", "--n-embd", "64", "--n-ff", "128", "--n-head", "4", "--n-head-kv", "2")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def finish(what):
    """The summary line; returns the exit code."""
    if FAILURES:
        print("\n%d failure(s):\n  %s" % (len(FAILURES), "\n  ".join(FAILURES)))
        return 1
    print("\nall %s passed" % what)
    return 0


def parse_args(doc, parts):
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--origami", required=True)
    ap.add_argument("--mpirun", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--only", default="", help=parts)
    args = ap.parse_args()
    args.stories = os.path.join(args.shared, "models", "stories260K.gguf")
    args.synth = os.path.join(args.shared, "tools", "make_synthetic_gguf.py")
    os.makedirs(args.tmp, exist_ok=True)
    return args


def env(extra=None):
    e = dict(os.environ)
    # Containers often forbid the cross-process memory attach Open MPI's shared memory path tries.
    e.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    e.update(extra or {})
    return e


def mpirun(launcher, n, *options):
    """The command prefix that starts n ranks on this machine."""
    return [launcher, "--allow-run-as-root", "--oversubscribe"] + list(options) + ["-np", str(n)]


def run(cmd, timeout=180, extra_env=None):
    """Runs a command to its end; returns (exit code or None on timeout, stdout, stderr)."""
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(extra_env))
    except subprocess.TimeoutExpired as ex:
        out = ex.stdout.decode(errors="replace") if isinstance(ex.stdout, bytes) else (ex.stdout or "")
        return None, out, "TIMEOUT after %.0f s" % (time.time() - t0)
    return p.returncode, p.stdout, p.stderr


def rank_pid(launcher_pid, rank):
    """The pid of one rank: a child of mpirun whose environment says OMPI_COMM_WORLD_RANK=rank."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % pid) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) != launcher_pid:
                    continue
            with open("/proc/%s/environ" % pid, "rb") as f:
                if ("OMPI_COMM_WORLD_RANK=%d" % rank).encode() in f.read().split(b"\0"):
                    return int(pid)
        except (OSError, IndexError, ValueError):
            continue
    return None


def named(text, rank):
    """Whether the job's output names the lost rank (from mpirun or the survivors, not the dying
    rank's own line)."""
    return bool(re.search(r"Process name: \[\[\d+,\d+\],%d\]" % rank, text) or
                re.search(r"lost rank %d\b" % rank, text) or
                re.search(r"rank %d .*(exited|killed|signal)" % rank, text))


def synth(args, path, *shape):
    """A random-weight llama of the given shape (written once per build directory)."""
    if not os.path.exists(path):
        subprocess.run([args.python, args.synth, "-q", "--preset", "tiny", "--vocab-name", "llama-spm", "--type",
                        "F32", "-o", path] + list(shape), check=True)
    return path
