#!/usr/bin/env python3
"""Writes a random LoRA adapter GGUF for a base model, in the format llama.cpp's
convert_lora_to_gguf.py produces, with its own GGUF writer (nothing shared with origami's).

The format (from the converter's source): metadata general.architecture (the base's),
general.type = "adapter", adapter.type = "lora", adapter.lora.alpha (float32); for each adapted
base tensor `<name>` (e.g. "blk.0.attn_q.weight") the pair `<name>.lora_a` with ne = [n_in, rank]
and `<name>.lora_b` with ne = [rank, n_out], where the base matrix has ne = [n_in, n_out]; the
delta of the base matrix is (alpha / rank) * B @ A in numpy shapes (B: (n_out, rank), A: (rank,
n_in)). GGUF v3, alignment 32, little-endian.

Base shapes are read with the tests' numpy GGUF reader (tests/model/reference/gguf_np.py).
Options with --bad write the malformed files origami must refuse with one clear line.
"""
from __future__ import annotations

import argparse
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from gguf_np import GGUFFile  # noqa: E402

ALIGN = 32
T_F32, T_F16, T_Q8_0, T_BF16 = 0, 1, 8, 30
TYPE_IDS = {"F32": T_F32, "F16": T_F16, "Q8_0": T_Q8_0, "BF16": T_BF16}
V_UINT32, V_FLOAT32, V_STRING = 4, 6, 8
ALL_TARGETS = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]


# --- encoding ------------------------------------------------------------------------------------
def gguf_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key: str, vtype: int, value) -> bytes:
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == V_STRING:
        return out + gguf_string(value)
    if vtype == V_FLOAT32:
        return out + struct.pack("<f", value)
    if vtype == V_UINT32:
        return out + struct.pack("<I", value)
    raise ValueError(vtype)


def to_bf16(x: np.ndarray) -> bytes:
    """float32 -> bf16 by round-to-nearest-even on the top 16 bits (finite inputs)."""
    u = np.ascontiguousarray(x, dtype="<f4").view("<u4").astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return r.astype("<u2").tobytes()


def to_q8_0(x: np.ndarray) -> bytes:
    """Q8_0: blocks of 32 along each row, d = max|x| / 127 stored as f16, q = round(x / d)."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    d = np.abs(blocks).max(axis=1) / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.clip(np.round(blocks * inv[:, None]), -127, 127).astype(np.int8)
    out = bytearray()
    for i in range(blocks.shape[0]):
        out += np.float16(d[i]).tobytes() + q[i].tobytes()
    return bytes(out)


def encode(x: np.ndarray, ttype: int) -> bytes:
    if ttype == T_F32:
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    if ttype == T_F16:
        return np.ascontiguousarray(x, dtype="<f2").tobytes()
    if ttype == T_BF16:
        return to_bf16(x)
    if ttype == T_Q8_0:
        return to_q8_0(x)
    raise ValueError(ttype)


def write_gguf(path: str, metadata: list[bytes], tensors: list[tuple[str, np.ndarray, int]]):
    """tensors: (name, array in numpy shape (rows, cols), ggml type); ne is the reversed shape."""
    infos, blobs, offset = b"", [], 0
    for name, arr, ttype in tensors:
        data = encode(arr, ttype)
        ne = list(reversed(arr.shape))
        infos += gguf_string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos += struct.pack("<IQ", ttype, offset)
        pad = (-len(data)) % ALIGN
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)) + b"".join(metadata) + infos
    head += b"\0" * ((-len(head)) % ALIGN)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# --- the adapter ---------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="base model GGUF (for the architecture and shapes)")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0, help="adapter.lora.alpha (omitted with --no-alpha)")
    ap.add_argument("--no-alpha", action="store_true")
    ap.add_argument("--type", default="F32", choices=sorted(TYPE_IDS),
                    help="tensor type (Q8_0 rows whose length is not a multiple of 32 fall back to F16, "
                         "as the converter does)")
    ap.add_argument("--targets", default=",".join(ALL_TARGETS), help="matrices to adapt (those the base has)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--std-b", type=float, default=0.1)
    ap.add_argument("--arch", help="general.architecture to write (default: the base's)")
    ap.add_argument("--general-type", default="adapter")
    ap.add_argument("--adapter-type", default="lora")
    ap.add_argument("--bad", default="none",
                    choices=["none", "shape", "rank", "name", "missing-b", "norm", "nan"],
                    help="write a malformed adapter: a wrong n_in, ranks that differ between A and B, a tensor "
                         "on a layer the base does not have, a lone lora_a, a norm vector, a NaN")
    args = ap.parse_args(argv)

    base = GGUFFile(args.base)
    arch = base.metadata["general.architecture"]
    rng = np.random.default_rng(args.seed)
    targets = args.targets.split(",")
    tensors = []
    for name, t in base.tensors.items():
        parts = name.split(".")
        if len(parts) != 4 or parts[0] != "blk" or parts[2] not in targets or parts[3] != "weight":
            continue
        n_in, n_out = t.ne[0], t.ne[1]
        r = args.rank
        a = (rng.standard_normal((r, n_in)) / np.sqrt(n_in)).astype(np.float32)
        b = (rng.standard_normal((n_out, r)) * args.std_b).astype(np.float32)
        ta = tb = TYPE_IDS[args.type]
        if ta == T_Q8_0 and n_in % 32:
            ta = T_F16
        if tb == T_Q8_0 and r % 32:
            tb = T_F16
        tensors += [(name + ".lora_a", a, ta), (name + ".lora_b", b, tb)]
    if not tensors:
        raise SystemExit(f"{args.base}: none of {targets} found")

    first = tensors[0][0][: -len(".lora_a")]
    if args.bad == "shape":  # A one column short of the base's n_in
        n, a, ta = tensors[0]
        tensors[0] = (n, a[:, :-1].copy(), T_F32)
    elif args.bad == "rank":  # B one rank wider than A
        n, b, tb = tensors[1]
        tensors[1] = (n, np.concatenate([b, b[:, :1]], axis=1), T_F32)
    elif args.bad == "name":  # a layer the base does not have
        n_layer = int(base.metadata[f"{arch}.block_count"])
        a, b = tensors[0][1], tensors[1][1]
        bogus = f"blk.{n_layer}.attn_q.weight"
        tensors += [(bogus + ".lora_a", a, T_F32), (bogus + ".lora_b", b, T_F32)]
    elif args.bad == "missing-b":
        del tensors[1]
    elif args.bad == "norm":  # mergekit-extract-lora's norm vectors
        tensors.append(("blk.0.attn_norm.weight", np.ones((1, 8), np.float32)[0], T_F32))
    elif args.bad == "nan":
        n, a, ta = tensors[0]
        a = a.copy()
        a[0, 3] = np.nan
        tensors[0] = (n, a, T_F32)

    md = [kv("general.architecture", V_STRING, args.arch or arch),
          kv("general.type", V_STRING, args.general_type),
          kv("adapter.type", V_STRING, args.adapter_type),
          kv("general.name", V_STRING, f"random LoRA for {os.path.basename(args.base)} (first pair {first})")]
    if not args.no_alpha:
        md.append(kv("adapter.lora.alpha", V_FLOAT32, args.alpha))
    md.append(kv("general.alignment", V_UINT32, ALIGN))
    write_gguf(args.out, md, tensors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
