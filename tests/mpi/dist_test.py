#!/usr/bin/env python3
"""End-to-end tests of `mpirun -np N origami run`: pipeline stages give the same tokens and logits
as one process, each rank keeps only its share of the model resident, and a rank that dies ends
the whole job with an error naming it (never a hang). Python standard library only."""
import json
import os
import sys
import time

import harness
from harness import check

ARGS = None
PROMPT = "Once upon a time"


def generate(model, ranks, tag, extra=(), ctx=256):
    """Greedy generation; returns (json, logits bytes, stderr)."""
    logits = os.path.join(ARGS.tmp, "logits_%s.bin" % tag)
    cmd = [ARGS.origami, "run", "-m", model, "-p", PROMPT, "-n", "24", "--temp", "0", "-t", "1", "-c", str(ctx),
           "--ignore-eos", "--json", "--logits-out", logits] + list(extra)
    if ranks > 0:
        cmd = harness.mpirun(ARGS.mpirun, ranks) + cmd
    rc, out, err = harness.run(cmd)
    if rc != 0:
        print("command failed (%s): %s\n%s\n%s" % (rc, " ".join(cmd), out[-2000:], err[-3000:]))
        return None, None, err
    j = json.loads(out.strip().splitlines()[-1])
    with open(logits, "rb") as f:
        return j, f.read(), err


def test_identical(model, name):
    ref, ref_logits, _ = generate(model, 0, name + "_single")
    check(ref is not None and len(ref["generated_ids"]) == 24, "%s: single-process run" % name)
    if ref is None:
        return
    for ranks, extra in [(2, []), (3, []), (2, ["--split", "1,%d" % (N_LAYER[name] - 1)]), (2, ["--split", "0.7,0.3"])]:
        label = "%s: %d ranks %s" % (name, ranks, " ".join(extra) or "(automatic split)")
        j, logits, err = generate(model, ranks, "%s_%d" % (name, ranks), extra)
        check(j is not None and j["generated_ids"] == ref["generated_ids"], label + ": same greedy tokens")
        check(logits == ref_logits, label + ": bit-identical logits after the prompt")
        check(j is not None and "dist" in j and j["dist"]["bytes_per_token"] > 0 and "bytes on the wire per token" in err,
              label + ": reports bytes on the wire per token")
    # A prompt longer than one engine step (Decoder::kMaxBatch = 512): each step's tokens are cut
    # into micro-batches that are in flight at once.
    long_ids = ["--prompt-ids", ",".join(str(1 + (i * 7) % 500) for i in range(700))]
    ref, ref_logits, _ = generate(model, 0, name + "_long_single", long_ids, ctx=1024)
    j, logits, _ = generate(model, 3, name + "_long_3", long_ids, ctx=1024)
    check(ref is not None and j is not None and j["generated_ids"] == ref["generated_ids"] and logits == ref_logits,
          name + ": 700-token prompt (micro-batches in flight), 3 ranks: same tokens and logits")
    # bf16 on the wire: half the activation bytes, same shape of output (tokens may differ).
    j, _, err = generate(model, 2, name + "_bf16", ["--wire", "bf16"])
    check(j is not None and len(j["generated_ids"]) == 24 and "(bf16)" in err, name + ": 2 ranks --wire bf16 runs")


def test_resident_share(model):
    """Each rank's resident model pages (RssFile) follow its planned share of the weights."""
    j, _, err = generate(model, 2, "rss", ["--split", "6,2"])
    check(j is not None, "rss model: 2 ranks run")
    if j is None:
        return
    ranks = j["dist"]["ranks"]
    size = os.path.getsize(model)
    for r, info in enumerate(ranks):
        w, rss = info["weight_bytes"], info["rss_file"]
        # RssFile also counts the binary and its shared libraries: allow 48 MiB for them.
        print("     rank %d: planned weights %.1f MiB, resident file pages %.1f MiB (model file %.1f MiB)"
              % (r, w / 2**20, rss / 2**20, size / 2**20))
        check(rss >= 0.8 * w and rss <= w + 48 * 2**20, "rss model: rank %d resident pages match its share" % r)
        check(rss < 0.8 * size, "rss model: rank %d does not map the whole model" % r)


def test_rank_death(model, ranks, victim, step):
    cmd = harness.mpirun(ARGS.mpirun, ranks) + [ARGS.origami, "run", "-m", model, "-p", PROMPT, "-n", "200", "--temp",
                                                "0", "-t", "1", "-c", "256", "--ignore-eos", "--json"]
    t0 = time.time()
    rc, out, err = harness.run(cmd, timeout=120, extra_env={"ORIGAMI_TEST_DIE_AT_STEP": "%d:%d" % (victim, step)})
    took = time.time() - t0
    label = "%d ranks, rank %d dies at micro-batch %d" % (ranks, victim, step)
    check(rc is not None, label + ": the job ends (no hang; took %.1f s)" % took)
    check(rc is not None and rc != 0, label + ": non-zero exit (%s)" % rc)
    text = (out or "") + (err or "")
    check(harness.named(text, victim), label + ": the error names rank %d" % victim)
    if not harness.named(text, victim):
        print(text[-3000:])


def test_rank_hang(model):
    """A rank that stops answering (a dropped network: the process lives) ends the job after --dist-timeout."""
    cmd = harness.mpirun(ARGS.mpirun, 3) + [ARGS.origami, "run", "-m", model, "-p", PROMPT, "-n", "200", "--temp", "0",
                                            "-t", "1", "-c", "256", "--ignore-eos", "--json", "--dist-timeout", "3"]
    t0 = time.time()
    rc, out, err = harness.run(cmd, timeout=120, extra_env={"ORIGAMI_TEST_HANG_AT_STEP": "1:5"})
    took = time.time() - t0
    label = "3 ranks, rank 1 stops answering at micro-batch 5"
    check(rc is not None and rc != 0, label + ": the job ends with an error (rc %s, %.1f s)" % (rc, took))
    text = (out or "") + (err or "")
    check("stuck in the pipeline of ranks 1..2" in text, label + ": the error names the stalled ranks")


def test_cli():
    m = ARGS.stories
    rc, out, err = harness.run([ARGS.origami, "info", m, "--split", "3,2"])
    check(rc == 0 and "rank 0: layers   0-2" in out and "rank 1: layers   3-4" in out and "KV" in out,
          "info --split 3,2 prints the plan")
    rc, out, err = harness.run([ARGS.origami, "info", m, "--split", "0.5,0.3,0.2", "--json"])
    ok = rc == 0 and len(json.loads(out)["ranks"]) == 3
    check(ok, "info --split fractions --json")
    rc, out, err = harness.run([ARGS.origami, "info", m, "--ranks", "5"])
    check(rc == 0 and "rank 4: layers   4-4" in out, "info --ranks 5 (automatic)")
    rc, out, err = harness.run([ARGS.origami, "info", m, "--split", "3,3"])
    check(rc == 1 and "add up to 6" in err, "info --split with the wrong layer count is an error")
    rc, out, err = harness.run([ARGS.origami, "run", "-m", m, "-p", "x", "-n", "1", "--split", "3,2"])
    check(rc == 1 and "mpirun" in err, "run --split without mpirun is an error")
    rc, out, err = harness.run(harness.mpirun(ARGS.mpirun, 2) + [ARGS.origami, "run", "-m", m, "-p", "x", "-n", "1",
                                                                 "--split", "4,4"], timeout=120)
    check(rc is not None and rc != 0 and "add up to 8" in (out + err), "mpirun with a bad --split ends the job")


N_LAYER = {"stories260K": 5, "synthetic": 4}


def main():
    global ARGS
    ARGS = harness.parse_args(__doc__, "identical|rss|death|cli")
    tiny = harness.synth(ARGS, os.path.join(ARGS.tmp, "synthetic_tiny.gguf"), *harness.TINY_SHAPE)
    only = ARGS.only
    if only in ("", "cli"):
        test_cli()
    if only in ("", "identical"):
        test_identical(ARGS.stories, "stories260K")
        test_identical(tiny, "synthetic")
    if only in ("", "rss"):
        big = harness.synth(ARGS, os.path.join(ARGS.tmp, "synthetic_rss.gguf"), "--n-layer", "8", "--n-embd", "512",
                            "--n-ff", "2048", "--n-head", "8", "--n-head-kv", "4")
        test_resident_share(big)
    if only in ("", "death"):
        test_rank_death(ARGS.stories, 2, 1, 5)
        test_rank_death(ARGS.stories, 3, 1, 5)
        test_rank_death(ARGS.stories, 3, 0, 5)
        test_rank_hang(ARGS.stories)
    return harness.finish("dist tests")


if __name__ == "__main__":
    sys.exit(main())
