#!/usr/bin/env python3
"""Independent numpy oracle for origami's NVFP4 dtype (ggml type 40).

Written from the format description (ggml's block_nvfp4), not from the C++ code. Writes
tests/tensor/nvfp4_vectors.bin, which nvfp4_test.cpp reads:

  * dequantization: 128 blocks whose scale bytes run through all 256 UE4M3 values (0x00 and
    0x7F decode to 0, bit 7 is ignored otherwise) and then random ones, with random quant
    nibbles, and the float32 values they decode to (compared bit for bit);
  * quantization: float32 rows (sub-blocks spanning tiny, ordinary, huge and all-zero
    magnitudes) and the blocks ggml's reference quantizer makes of them (compared byte for byte).

Format: 64 elements per 36-byte block, d[4] (one UE4M3 scale per sub-block of 16) then qs[32];
sub-block s uses qs[8s + j], element j in the low nibble and element j + 8 in the high nibble.
value = kv[nibble] * ue4m3(d[s]) / 2 with kv the doubled E2M1 values. All quantizer arithmetic
is float32, one IEEE operation at a time, in the reference's order.

  make_nvfp4_vectors.py            write the data file
  make_nvfp4_vectors.py --check    recompute and compare with the committed file (exit 1 if not equal)

File layout (little-endian): b"ONV4", u32 version (1), u32 dequant block count B, B x 36 block
bytes, B x 64 float32 values, u32 quant element count N, N float32 inputs, N / 64 x 36 block bytes.
"""
import argparse
import os
import struct
import sys

import numpy as np

F32 = np.float32
KV = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.float32)


def ue4m3_half(b):
    """ue4m3(b) / 2 as float32 (exact: few significant bits)."""
    b = int(b)
    if b == 0 or b == 0x7F:
        return F32(0.0)
    e, m = (b >> 3) & 0xF, b & 7
    raw = m * 2.0 ** -9 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
    return F32(raw * 0.5)


def dequant(raw):
    blocks = raw.reshape(-1, 36)
    out = np.zeros((blocks.shape[0], 64), dtype=np.float32)
    for i, blk in enumerate(blocks):
        for s in range(4):
            d = ue4m3_half(blk[s])
            q = blk[4 + 8 * s: 4 + 8 * s + 8]
            out[i, 16 * s: 16 * s + 8] = KV[q & 0x0F] * d
            out[i, 16 * s + 8: 16 * s + 16] = KV[q >> 4] * d
    return out.reshape(-1)


def f32_bits(x):
    return int(np.array([x], dtype=np.float32).view(np.uint32)[0])


def fp32_to_ue4m3(x):
    """The UE4M3 byte for a (not halved) scale x: round to nearest on bit 19, saturate at 0x7E."""
    x = F32(x)
    if not x > 0:
        return 0
    if x > F32(448):
        x = F32(448)
    bits = f32_bits(x)
    e = ((bits >> 23) & 0xFF) - 127 + 7
    if e <= 0:  # subnormal m * 2^-9, m computed in float32 as the reference does
        m = int(x * F32(512) + F32(0.5))
        m = min(m, 7)
        return 0 if m < 1 else m
    if e >= 15:
        return 0x7E
    m = (bits >> 20) & 7
    if (bits >> 19) & 1:
        m += 1
        if m == 8:
            m = 0
            e += 1
            if e >= 15:
                return 0x7E
    return (e << 3) | m


def quant(x):
    x = x.astype(np.float32).reshape(-1, 64)
    out = bytearray()
    for row in x:
        d_bytes, qs = [], bytearray(32)
        for s in range(4):
            sub = row[16 * s: 16 * s + 16]
            amax = F32(np.max(np.abs(sub)))
            ue = fp32_to_ue4m3(amax / F32(6))
            d_bytes.append(ue)
            d = ue4m3_half(ue)
            idx = np.zeros(16, dtype=np.int64)
            if d != 0:
                for j in range(16):
                    v = sub[j] / d  # float32 / float32
                    idx[j] = int(np.argmin(np.abs(v - KV)))  # first index wins ties
            for j in range(8):
                qs[8 * s + j] = int(idx[j]) | (int(idx[j + 8]) << 4)
        out += bytes(d_bytes) + bytes(qs)
    return bytes(out)


def build():
    rng = np.random.default_rng(20260401)
    nb = 128
    raw = rng.integers(0, 256, size=(nb, 36), dtype=np.uint8)
    raw[:64, :4] = np.arange(256, dtype=np.uint8).reshape(64, 4)  # every scale byte once
    vals = dequant(raw.reshape(-1))
    # Quantizer inputs: per sub-block magnitudes from 1e-6 (subnormal or zero scale) to 1e4
    # (saturated scale), an all-zero sub-block, and values on a coarse grid that hit ties.
    subs = []
    for mag in [0.0, 1e-6, 3e-5, 1e-3, 0.02, 0.5, 1.0, 7.0, 100.0, 2000.0, 1e4]:
        for _ in range(4):
            subs.append(rng.standard_normal(16) * mag)
    for _ in range(8):
        subs.append(rng.integers(-12, 13, size=16) * 0.25)
    while len(subs) % 4:
        subs.append(rng.uniform(-1, 1, size=16))
    x = np.concatenate(subs).astype(np.float32)
    q = quant(x)
    out = [b"ONV4", struct.pack("<II", 1, nb), raw.tobytes(), vals.astype("<f4").tobytes(),
           struct.pack("<I", x.size), x.astype("<f4").tobytes(), q]
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed file")
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nvfp4_vectors.bin")
    ap.add_argument("--out", default=default)
    args = ap.parse_args()
    data = build()
    if args.check:
        with open(args.out, "rb") as f:
            old = f.read()
        if old != data:
            print(f"{args.out} differs from what the script computes "
                  f"({len(old)} vs {len(data)} bytes); rerun without --check", file=sys.stderr)
            return 1
        print(f"{args.out}: {len(data)} bytes, reproducible")
        return 0
    with open(args.out, "wb") as f:
        f.write(data)
    print(f"wrote {args.out}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
