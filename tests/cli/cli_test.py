#!/usr/bin/python3
"""End-to-end checks of `origami run|info|convert|bench` as a user (or a script) calls them."""
import argparse
import json
import os
import struct
import subprocess
import sys
import unittest

ARGS = None


def origami(*args, check=True, env=None):
    p = subprocess.run([ARGS.origami, *args], capture_output=True, timeout=240,
                       env=None if env is None else dict(os.environ, **env))
    if check and p.returncode != 0:
        raise AssertionError(f"origami {' '.join(args)} exited {p.returncode}: {p.stderr.decode(errors='replace')}")
    return p


def golden(name):
    with open(os.path.join(ARGS.shared, "golden", f"stories260K_{name}.json")) as f:
        return json.load(f)


class Run(unittest.TestCase):
    def model(self):
        return os.path.join(ARGS.shared, "models", "stories260K.gguf")

    def test_greedy_ids_match_golden(self):
        for case in ("once_upon_a_time", "the_little_dog", "empty_prompt"):
            g = golden(case)
            out = json.loads(origami("run", "-m", self.model(), "-p", g["prompt"], "-n", "64", "--temp", "0",
                                     "--json").stdout)
            self.assertEqual(out["prompt_ids"], g["prompt_token_ids"], case)
            self.assertEqual(out["generated_ids"], g["generated_token_ids"], case)
            self.assertEqual(out["text"], g["generated_text"], case)

    def test_streams_prompt_and_text_then_speeds_on_stderr(self):
        g = golden("once_upon_a_time")
        p = origami("run", "-m", self.model(), "-p", "Once upon a time", "-n", "64", "--temp", "0")
        self.assertEqual(p.stdout.decode().rstrip("\n"), g["run_c_stdout"])
        err = p.stderr.decode()
        self.assertIn("prompt:", err)
        self.assertIn("generation:", err)
        self.assertIn("tokens/s", err)

    def test_n_counts_new_tokens(self):
        out = json.loads(origami("run", "-m", self.model(), "-p", "Hello", "-n", "5", "--temp", "0", "--json").stdout)
        self.assertEqual(len(out["generated_ids"]), 5)

    def test_same_seed_same_output(self):
        def sample(seed):
            return json.loads(origami("run", "-m", self.model(), "-p", "The little dog", "-n", "40", "--temp", "1.0",
                                      "--seed", str(seed), "--json").stdout)["generated_ids"]
        self.assertEqual(sample(11), sample(11))
        self.assertNotEqual(sample(11), sample(12))

    def test_prompt_ids_and_logits_out(self):
        g = golden("once_upon_a_time")
        path = os.path.join(ARGS.tmp, "logits.f32")
        ids = ",".join(map(str, g["prompt_token_ids"]))
        # llama.cpp's spelling (-ctk/-ctv) of the float32 cache, whose logits are llama2.c's to 1e-4.
        out = json.loads(origami("run", "-m", self.model(), "--prompt-ids", ids, "-n", "3", "--temp", "0", "--json",
                                 "--logits-out", path, "-ctk", "f32", "-ctv", "f32").stdout)
        self.assertEqual(out["generated_ids"], g["generated_token_ids"][:3])
        with open(path, "rb") as f:
            data = f.read()
        logits = struct.unpack(f"<{len(data) // 4}f", data)
        self.assertEqual(len(logits), 512)
        self.assertLess(max(abs(a - b) for a, b in zip(logits, g["logits_after_prompt"])), 1e-4)

    def test_kv_cache_types(self):
        # The default F16 cache and BF16 keep the golden greedy ids; a quantized type that cannot
        # hold this model's heads (size 8) and an unknown type are one clear line and exit 1.
        g = golden("once_upon_a_time")
        ids = ",".join(map(str, g["prompt_token_ids"]))
        for extra in ([], ["-ctk", "bf16", "-ctv", "bf16"], ["--cache-type-k", "f16", "--cache-type-v", "f32"]):
            out = json.loads(origami("run", "-m", self.model(), "--prompt-ids", ids, "-n", "16", "--temp", "0",
                                     "--json", *extra).stdout)
            self.assertEqual(out["generated_ids"], g["generated_token_ids"][:16], extra)
        p = origami("run", "-m", self.model(), "-p", "x", "-ctk", "q8_0", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("-ctk/--cache-type-k q8_0", p.stderr.decode())
        self.assertIn("head size of 8", p.stderr.decode())
        p = origami("run", "-m", self.model(), "-p", "x", "-ctv", "q4_k", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("unknown KV cache type 'q4_k'", p.stderr.decode())
        self.assertEqual(len(p.stderr.decode().strip().splitlines()), 1, p.stderr)
        info = json.loads(origami("info", self.model(), "--json").stdout)
        kv = info["hparams"]["kv_bytes_per_token"]
        # 5 layers x 4 KV heads x 8 x (K + V): 320 values per position.
        self.assertEqual(kv, {"f32": 1280, "f16": 640, "bf16": 640})

    def test_environment_switches_and_device(self):
        # ORIGAMI_ISA and ORIGAMI_REPACK are read once by the CLI and reach the backend as options:
        # a forced scalar table is the one `info` reports, and repacking off leaves a Q4_0 file's
        # layout alone. --device names the backend; one this build lacks is one line and exit 1.
        info = json.loads(origami("info", self.model(), "--json", env={"ORIGAMI_ISA": "scalar"}).stdout)
        self.assertEqual(info["kernel_layout"]["isa"], "scalar")
        q4 = os.path.join(ARGS.tmp, "stories260K-q4_0-env.gguf")
        origami("quantize", self.model(), q4, "Q4_0")
        planned = json.loads(origami("info", q4, "--json").stdout)["kernel_layout"]
        kept = json.loads(origami("info", q4, "--json", env={"ORIGAMI_REPACK": "0"}).stdout)["kernel_layout"]
        self.assertEqual(kept["repacked_tensors"], 0)
        if planned["isa"] != "scalar":
            self.assertGreater(planned["repacked_tensors"], 0)
        ids = ",".join(map(str, golden("once_upon_a_time")["prompt_token_ids"]))
        base = json.loads(origami("run", "-m", q4, "--prompt-ids", ids, "-n", "8", "--temp", "0", "--json").stdout)
        flat = json.loads(origami("run", "-m", q4, "--prompt-ids", ids, "-n", "8", "--temp", "0", "--json",
                                  env={"ORIGAMI_REPACK": "0", "ORIGAMI_ISA": "scalar"}).stdout)
        self.assertEqual(len(flat["generated_ids"]), 8)
        self.assertEqual(len(base["generated_ids"]), 8)
        p = origami("run", "-m", self.model(), "-p", "x", "--device", "cuda", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--device cuda", p.stderr.decode())
        self.assertEqual(len(p.stderr.decode().strip().splitlines()), 1, p.stderr)
        # A malformed switch is named, whichever command meets it first.
        p = origami("run", "-m", self.model(), "-p", "x", check=False, env={"ORIGAMI_MICRO_BATCHES": "zero"})
        self.assertEqual(p.returncode, 1)
        self.assertIn("ORIGAMI_MICRO_BATCHES must be 1 to 512, got 'zero'", p.stderr.decode())
        p = origami("serve", "-m", self.model(), "--port", "1", check=False, env={"ORIGAMI_DIST_TIMEOUT": "-3"})
        self.assertEqual(p.returncode, 1)
        self.assertIn("ORIGAMI_DIST_TIMEOUT", p.stderr.decode())

    def test_bad_input_is_a_clear_error(self):
        p = origami("run", "-m", "/nonexistent.gguf", "-p", "x", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"cannot open", p.stderr)
        p = origami("run", "-m", self.model(), "--no-such-flag", check=False)
        self.assertEqual(p.returncode, 1)
        p = origami("run", "-m", self.model(), "--prompt-ids", "1,99999", "--json", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"out of range", p.stderr)
        p = origami("run", "-m", self.model(), "-p", "x", "--temp", "-3", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"temperature", p.stderr)
        bad = os.path.join(ARGS.tmp, "truncated.gguf")
        with open(self.model(), "rb") as f, open(bad, "wb") as g:
            g.write(f.read(1000))
        p = origami("run", "-m", bad, "-p", "x", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"byte offset", p.stderr)
        p = origami("info", bad, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"truncated", p.stderr)


class Info(unittest.TestCase):
    def test_json(self):
        j = json.loads(origami("info", os.path.join(ARGS.shared, "models", "stories260K.gguf"), "--json").stdout)
        self.assertEqual(j["version"], 3)
        self.assertEqual(len(j["tensors"]), 48)
        self.assertEqual(j["metadata"]["general.architecture"], "llama")
        self.assertEqual(j["hparams"]["n_embd"], 64)
        self.assertEqual(j["hparams"]["n_head_kv"], 4)
        t = {x["name"]: x for x in j["tensors"]}
        self.assertEqual(t["blk.0.ffn_gate.weight"]["shape"], [64, 172])
        self.assertEqual(t["blk.0.ffn_gate.weight"]["bytes"], 64 * 172 * 4)

    def test_text(self):
        out = origami("info", os.path.join(ARGS.shared, "models", "llama-2-tiny-random.gguf")).stdout.decode()
        for s in ("GGUF v3", "tensors:", "F16", "hyper-parameters (llama)", "token_embd.weight", "general.architecture"):
            self.assertIn(s, out)

    def test_vocab_only(self):
        out = origami("info", os.path.join(ARGS.shared, "tokenizer", "ggml-vocab-llama-bpe.gguf")).stdout.decode()
        self.assertIn("0 tensors", out)


class Memory(unittest.TestCase):
    """The memory plan (issue 16): info --plan, the memory: line, refusal and --fit by --mem-budget."""

    def model(self):
        return os.path.join(ARGS.shared, "models", "stories260K.gguf")

    def plan(self, *args):
        return json.loads(origami("info", self.model(), "--plan", "--json", "-t", "1", *args).stdout)

    def test_plan_json_adds_up(self):
        j = self.plan("-c", "512", "--mem-budget", "8G")
        self.assertEqual(j["mode"], "run")
        self.assertEqual(j["kv"], j["kv_bytes_per_token"] * 512)
        parts = ("weights", "kv", "workspace", "logits", "requests", "overhead")
        self.assertEqual(j["total"], sum(j[k] for k in parts))
        self.assertTrue(j["fits"])
        q8 = self.plan("-c", "512", "-ctk", "q8_0", "-ctv", "q8_0", "--parallel", "4")
        self.assertEqual(q8["mode"], "serve")
        self.assertEqual(q8["kv_tokens"], 2048)
        self.assertGreater(q8["requests"], 0)
        small = self.plan("-c", "512", "--mem-budget", "1M")
        self.assertFalse(small["fits"])
        self.assertIn("not enough memory", small["refusal"])
        text = origami("info", self.model(), "--plan", "-c", "256").stdout.decode()
        for s in ("memory plan for", "KV cache", "workspaces", "total", "budget:"):
            self.assertIn(s, text)

    def test_run_prints_refuses_and_fits(self):
        p = origami("run", "-m", self.model(), "-p", "Once", "-n", "4", "-t", "1")
        self.assertIn(b"memory:     ", p.stderr)
        budget = self.plan("-c", "128")["total"] + 1024
        p = origami("run", "-m", self.model(), "-p", "Once", "-n", "4", "-t", "1", "-c", "4096",
                    "--mem-budget", str(budget), check=False)
        self.assertEqual(p.returncode, 1)
        err = p.stderr.decode().strip()
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith("error: not enough memory"), err)
        self.assertIn("would fit: -c ", err)
        p = origami("run", "-m", self.model(), "-p", "Once", "-n", "4", "-t", "1", "-c", "4096",
                    "--mem-budget", str(budget), "--fit", "--json")
        self.assertIn(b"--fit: context 1", p.stderr)  # 128 to 192 positions fit
        self.assertEqual(json.loads(p.stdout)["n_generated"], 4)
        for bad in ("lots", "-1G", "8X"):
            p = origami("run", "-m", self.model(), "-p", "x", "--mem-budget", bad, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"--mem-budget", p.stderr)


class Convert(unittest.TestCase):
    def test_llama2c_runs_like_golden(self):
        out_path = os.path.join(ARGS.tmp, "stories260K-converted.gguf")
        origami("convert", "--llama2c", os.path.join(ARGS.shared, "models", "stories260K.bin"), "--tokenizer",
                os.path.join(ARGS.shared, "models", "tok512.bin"), "-o", out_path)
        g = golden("the_little_dog")
        out = json.loads(origami("run", "-m", out_path, "-p", g["prompt"], "-n", "64", "--temp", "0", "--json").stdout)
        self.assertEqual(out["generated_ids"], g["generated_token_ids"])

    def test_missing_tokenizer_is_an_error(self):
        p = origami("convert", "--llama2c", os.path.join(ARGS.shared, "models", "stories260K.bin"), "-o",
                    os.path.join(ARGS.tmp, "x.gguf"), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"--tokenizer", p.stderr)


class Tokenize(unittest.TestCase):
    def vocab(self, name):
        return os.path.join(ARGS.shared, "tokenizer", f"ggml-vocab-{name}.gguf")

    def test_ids_json_and_round_trip(self):
        j = json.loads(origami("tokenize", "-m", self.vocab("llama-bpe"), "--json", "Hello world").stdout)
        self.assertEqual(j["ids"], [128000, 9906, 1917])  # BOS, Hello, Ġworld
        self.assertEqual(j["pieces"][1:], ["Hello", "\u0120world"])
        j = json.loads(origami("tokenize", "-m", self.vocab("llama-bpe"), "--json", "--no-special", "Hello world").stdout)
        self.assertEqual(j["ids"], [9906, 1917])
        out = origami("detokenize", "-m", self.vocab("llama-bpe"), "9906", "1917").stdout.decode()
        self.assertEqual(out, "Hello world\n")

    def test_parse_special_only_when_asked(self):
        plain = json.loads(origami("tokenize", "-m", self.vocab("qwen2"), "--json", "<|im_start|>").stdout)["ids"]
        special = json.loads(origami("tokenize", "-m", self.vocab("qwen2"), "--json", "--parse-special",
                                     "<|im_start|>").stdout)["ids"]
        self.assertEqual(special, [151644])
        self.assertGreater(len(plain), 1)

    def test_detokenize_rejects_bad_ids(self):
        p = origami("detokenize", "-m", self.vocab("gpt-2"), "12", "99999999", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"not a token id", p.stderr)

    def test_hf_tokenizer_conversion(self):
        out = os.path.join(ARGS.tmp, "qwen3-vocab.gguf")
        d = os.path.join(ARGS.shared, "hf-tokenizers", "qwen3")
        origami("convert", "--hf-tokenizer", os.path.join(d, "tokenizer.json"), "--tokenizer-config",
                os.path.join(d, "tokenizer_config.json"), "-o", out)
        j = json.loads(origami("info", out, "--json").stdout)
        self.assertEqual(j["metadata"]["tokenizer.ggml.model"], "gpt2")
        self.assertIn("tokenizer.chat_template", j["metadata"])
        ids = json.loads(origami("tokenize", "-m", out, "--json", "--parse-special",
                                 "<|im_start|>user").stdout)["ids"]
        self.assertEqual(ids, [151644, 872])


class Chat(unittest.TestCase):
    def test_turns_from_stdin(self):
        p = subprocess.run([ARGS.origami, "chat", "-m", os.path.join(ARGS.shared, "models", "stories260K.gguf"),
                            "-n", "8", "--temp", "0", "--system", "Be brief."],
                           input=b"Hello\nOnce upon a time\n", capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.decode().count("tokens/s"), 2)

    def test_broken_template_is_an_error(self):
        p = subprocess.run([ARGS.origami, "chat", "-m", os.path.join(ARGS.shared, "models", "stories260K.gguf"),
                            "--chat-template", "{% for %}"], input=b"hi\n", capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"error:", p.stderr)


class Bench(unittest.TestCase):
    def test_tokenize_throughput(self):
        out = origami("bench", "-m", os.path.join(ARGS.shared, "tokenizer", "ggml-vocab-gpt-2.gguf"), "--tokenize",
                      "-r", "1", "--json", "--text-dir", os.path.join(ARGS.shared, "tokenizer")).stdout
        j = json.loads(out)
        self.assertGreaterEqual(j["bytes"], 10 << 20)
        self.assertGreater(j["mb_per_second"], 0)

    def test_json_lines(self):
        out = origami("bench", "-m", os.path.join(ARGS.shared, "models", "stories260K.gguf"), "-p", "32", "-n", "8",
                      "-r", "1", "-t", "1", "--json").stdout.decode().strip().splitlines()
        rows = [json.loads(x) for x in out]
        self.assertEqual([r["test"] for r in rows], ["pp32", "tg8"])
        self.assertGreater(rows[0]["tokens_per_second"], 0)
        self.assertGreater(rows[0]["gflops"], 0)
        self.assertGreater(rows[1]["roofline_share"], 0)
        self.assertEqual(rows[1]["threads"], 1)

    def test_depth(self):
        # -d fills the context first (untimed); the tests are named as llama-bench names them, and the
        # prompt's flop count includes the attention over the cached positions.
        model = os.path.join(ARGS.shared, "models", "stories260K.gguf")
        def run(depth):
            out = origami("bench", "-m", model, "-p", "16", "-n", "4", "-r", "1", "-t", "1", "-d", str(depth),
                          "--json").stdout.decode().strip().splitlines()
            return [json.loads(x) for x in out]
        rows = run(64)
        self.assertEqual([r["test"] for r in rows], ["pp16@d64", "tg4@d64"])
        self.assertEqual(rows[0]["n_depth"], 64)
        for r in rows:
            self.assertGreater(r["tokens_per_second"], 0)
        bad = origami("bench", "-m", model, "-d", "-1", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn(b"-d", bad.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--origami", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--tmp", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v", *rest])
