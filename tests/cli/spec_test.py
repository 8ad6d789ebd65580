#!/usr/bin/python3
"""Speculative decoding through `origami run`: at temperature 0 the generated ids with each drafter
(prompt lookup, a draft model) equal those of plain decoding, on stories260K and on synthetic
models of several families and weight types; bad flags and a foreign draft vocabulary are refused."""
import argparse
import json
import os
import subprocess
import sys
import unittest

ARGS = None
# A prompt that repeats itself, so prompt lookup finds matches from the start.
PROMPT_IDS = "1,20,30,40,50,60,20,30,40,50,60,20,30"


def origami(*args, check=True):
    p = subprocess.run([ARGS.origami, *args], capture_output=True, timeout=240)
    if check and p.returncode != 0:
        raise AssertionError(f"origami {' '.join(args)} exited {p.returncode}: {p.stderr.decode(errors='replace')}")
    return p


def tmp(name):
    return os.path.join(ARGS.tmp, name)


def synth(arch, wtype):
    path = tmp(f"spec-{arch}-{wtype}.gguf")
    if not os.path.exists(path):
        origami("synth", "--arch", arch, "--preset", "tiny", "--type", wtype, "--seed", "5", "-o", path)
    return path


def quantized(src, wtype):
    path = src.replace(".gguf", f"-{wtype}.gguf")
    if not os.path.exists(path):
        origami("quantize", src, path, wtype)
    return path


def generate(model, *extra, n=48, prompt_ids=PROMPT_IDS):
    out = json.loads(origami("run", "-m", model, "--prompt-ids", prompt_ids, "-n", str(n), "--temp", "0",
                             "--ignore-eos", "--json", *extra).stdout)
    return out


STORIES = None


class Exactness(unittest.TestCase):
    def check(self, model, spec_args, kv=(), name=""):
        plain = generate(model, *kv)["generated_ids"]
        self.assertEqual(len(plain), 48)
        out = generate(model, *kv, *spec_args)
        self.assertEqual(out["generated_ids"], plain, f"{name} {' '.join(spec_args)} {' '.join(kv)}")
        sp = out["speculative"]
        self.assertGreater(sp["target_steps"], 0)
        self.assertLessEqual(sp["accepted"], sp["drafted"])
        return sp

    def test_stories260k(self):
        model = os.path.join(ARGS.shared, "models", "stories260K.gguf")
        sp = self.check(model, ["--spec-type", "ngram"], name="stories")
        self.assertGreater(sp["drafted"], 0)
        # The same weights as their own draft (Q8_0 weights, BF16 cache): nearly every draft kept.
        draft = quantized(model, "Q8_0")
        sp = self.check(model, ["-md", draft, "-ctkd", "bf16", "-ctvd", "bf16", "--spec-draft-p-min", "0"],
                        name="stories")
        self.assertGreater(sp["acceptance_rate"], 0.5)
        self.assertGreater(sp["tokens_per_step"], 1.5)
        # Text prompt, default (natural) end of text.
        plain = json.loads(origami("run", "-m", model, "-p", "Once upon a time", "-n", "64", "--temp", "0",
                                   "--json").stdout)
        spec = json.loads(origami("run", "-m", model, "-p", "Once upon a time", "-n", "64", "--temp", "0",
                                  "--json", "--spec-type", "ngram", "--spec-ngram-n", "2").stdout)
        self.assertEqual(spec["generated_ids"], plain["generated_ids"])
        self.assertEqual(spec["text"], plain["text"])

    def test_synthetic_families(self):
        for arch in ("llama", "qwen3", "gemma3"):
            # Quantized KV rows need heads of a multiple of 32 values (llama's tiny heads are 16).
            qk, qv = ("bf16", "bf16") if arch == "llama" else ("q8_0", "q4_0")
            for wtype in ("F32", "Q8_0"):
                model = synth(arch, wtype)
                name = f"{arch} {wtype}"
                self.check(model, ["--spec-type", "ngram"], name=name)
                self.check(model, ["--spec-type", "ngram", "--spec-draft-n-max", "3"], kv=("-ctk", qk, "-ctv", qk),
                           name=name)
                self.check(model, ["--spec-type", "ngram"], kv=("-ctk", "f32", "-ctv", "f32"), name=name)
                # The model as its own draft: at temperature 0 every draft must be kept, which holds only
                # if the batched verification step gives each token a one-token step's logits.
                sp = self.check(model, ["-md", model, "--spec-draft-p-min", "0"], name=name)
                self.assertEqual(sp["acceptance_rate"], 1.0, name)
            # The F32 weights verify drafts from the same weights at Q4_0 (and another KV type).
            target = synth(arch, "F32")
            draft = quantized(target, "Q4_0")
            for kv in ((), ("-ctk", qk, "-ctv", qv)):
                sp = self.check(target, ["-md", draft, "--spec-draft-p-min", "0", "-td", "1"], kv=kv, name=arch)
                self.assertGreater(sp["drafted"], 0)

    def test_draft_with_fewer_layers(self):
        # Same seeded weights, 4 layers (target) and 2 layers (draft): each tensor has its own stream,
        # so the draft's layers are the target's first two.
        tool = os.path.join(ARGS.shared, "tools", "make_synthetic_gguf.py")
        vocab = os.path.join(ARGS.shared, "tokenizer", "ggml-vocab-llama-spm.gguf")
        paths = {}
        for n_layer in (4, 2):
            path = tmp(f"spec-layers-{n_layer}.gguf")
            if not os.path.exists(path):
                subprocess.run([sys.executable, tool, "--preset", "tiny", "--type", "F32", "--n-layer", str(n_layer),
                                "--n-embd", "64", "--n-ff", "128", "--n-head", "4", "--n-head-kv", "2",
                                "--vocab", vocab, "-q", "-o", path], check=True, timeout=240)
            paths[n_layer] = path
        self.check(paths[4], ["-md", paths[2], "--spec-draft-p-min", "0"], name="4 vs 2 layers")


@unittest.skipUnless(os.environ.get("ORIGAMI_LLAMA1B_DIR"), "set ORIGAMI_LLAMA1B_DIR to a folder with "
                     "llama-1b-Q4_0.gguf and llama-1b-Q8_0.gguf (make_synthetic_gguf.py --preset llama-1b)")
class Llama1b(unittest.TestCase):
    def test_llama_1b(self):
        d = os.environ["ORIGAMI_LLAMA1B_DIR"]
        for t in ("Q4_0", "Q8_0"):
            model = os.path.join(d, f"llama-1b-{t}.gguf")
            plain = generate(model, "-t", "2", n=24)["generated_ids"]
            for spec in (["--spec-type", "ngram"], ["-md", model, "--spec-draft-p-min", "0"]):
                out = generate(model, "-t", "2", *spec, n=24)
                self.assertEqual(out["generated_ids"], plain, f"{t} {spec}")
                if "-md" in spec:
                    self.assertEqual(out["speculative"]["acceptance_rate"], 1.0, t)
        q4 = os.path.join(d, "llama-1b-Q4_0.gguf")
        q8 = os.path.join(d, "llama-1b-Q8_0.gguf")
        out = generate(q8, "-t", "2", "-md", q4, "--spec-draft-p-min", "0", n=24)
        self.assertEqual(out["generated_ids"], generate(q8, "-t", "2", n=24)["generated_ids"])


class Sampled(unittest.TestCase):
    def test_sampled_run_reports_acceptance(self):
        model = os.path.join(ARGS.shared, "models", "stories260K.gguf")
        out = json.loads(origami("run", "-m", model, "-p", "Once upon a time", "-n", "40", "--temp", "1", "-s", "3",
                                 "--ignore-eos", "--json", "-md", model, "--spec-draft-p-min", "0").stdout)
        self.assertEqual(len(out["generated_ids"]), 40)
        self.assertGreater(out["speculative"]["accepted"], 0)
        err = origami("run", "-m", model, "-p", "Once", "-n", "20", "--temp", "0", "--spec-type", "ngram").stderr.decode()
        self.assertIn("speculative: ngram", err)
        self.assertIn("tokens per target step", err)


def plan(*args):
    return json.loads(origami("info", "--plan", "--json", *args).stdout)


class DraftInPlan(unittest.TestCase):
    """The memory plan counts a draft model: its weights, its own KV cache of the target's context in
    its own KV types, and its workspaces; run refuses under a budget that fits the target alone."""

    def test_plan_counts_the_draft(self):
        model = os.path.join(ARGS.shared, "models", "stories260K.gguf")
        target = plan(model, "-c", "256")
        alone = plan(model, "-c", "256")
        both = plan(model, "-c", "256", "-md", model)
        self.assertEqual(target["draft"], 0)
        self.assertGreater(both["draft"], alone["weights"] + alone["kv"])
        self.assertLess(both["draft"], alone["total"])  # the process's fixed overhead is not counted twice
        self.assertEqual(both["total"], target["total"] + both["draft"])
        # -ctkd/-ctvd change the draft's KV bytes and nothing else.
        # (stories260K's 8-value heads take no block types: f32 against the default f16.)
        f32 = plan(model, "-c", "256", "-md", model, "-ctkd", "f32", "-ctvd", "f32")
        alone_f32 = plan(model, "-c", "256", "-ctk", "f32", "-ctv", "f32")
        self.assertEqual(f32["draft"] - both["draft"], alone_f32["kv"] - alone["kv"])
        self.assertGreater(alone_f32["kv"], alone["kv"])

    def test_run_refuses_when_the_draft_does_not_fit(self):
        model = os.path.join(ARGS.shared, "models", "stories260K.gguf")
        both = plan(model, "-c", "256", "-md", model)
        budget = str(both["total"] - both["draft"] // 2)  # the target fits, target and draft do not
        base = ("run", "-m", model, "-c", "256", "-p", "Once", "-n", "4", "--temp", "0", "--mem-budget", budget)
        origami(*base)  # fits without the draft
        p = origami(*base, "-md", model, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        err = p.stderr.decode()
        self.assertIn("not enough memory", err)
        self.assertIn("draft model", err)
        p = origami(*base, "-md", model, "--fit")
        self.assertIn("--fit: context", p.stderr.decode())


class BadInput(unittest.TestCase):
    def refused(self, *args, want):
        p = origami(*args, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        # The memory plan's one-line summary may come first; the error is then the only other line.
        err = "\n".join(l for l in p.stderr.decode().strip().splitlines() if not l.startswith("memory:"))
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn(want, err)
        return err

    def test_bad_flags(self):
        model = os.path.join(ARGS.shared, "models", "stories260K.gguf")
        base = ("run", "-m", model, "-p", "Hi", "-n", "4")
        self.refused(*base, "--spec-type", "mtp", want="this model has no MTP heads")
        self.refused(*base, "--spec-type", "eagle", want="--spec-type must be")
        self.refused(*base, "--spec-type", "draft", want="needs a draft model")
        self.refused(*base, "--spec-type", "ngram", "--spec-draft-n-max", "-2", want="--spec-draft-n-max")
        self.refused(*base, "--spec-type", "ngram", "--spec-draft-n-min", "9", "--spec-draft-n-max", "4",
                     want="--spec-draft-n-min")
        self.refused(*base, "-md", model, "--spec-draft-p-min", "1.5", want="--spec-draft-p-min")
        self.refused(*base, "--spec-type", "ngram", "--spec-ngram-n", "0", want="--spec-ngram-n")
        self.refused(*base, "-md", model, "-ctkd", "q7", want="-ctkd")
        # stories260K's 8-value heads cannot be stored in blocks of 32: the draft's flag is named.
        self.refused(*base, "-md", model, "-ctkd", "q8_0", want="-ctkd/--cache-type-k-draft q8_0 stores heads")
        self.refused("bench", "-m", model, "-p", "0", "-n", "8", "--spec-type", "mtp", want="no MTP heads")

    def test_draft_with_another_vocabulary(self):
        model = os.path.join(ARGS.shared, "models", "stories260K.gguf")
        other = synth("llama", "F32")  # byte vocabulary
        err = self.refused("run", "-m", model, "-p", "Hi", "-n", "4", "-md", other, want="another vocabulary")
        self.assertIn("stories260K.gguf", err)
        self.assertIn(os.path.basename(other), err)
        self.assertIn("512", err)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--tmp", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v", *rest])
