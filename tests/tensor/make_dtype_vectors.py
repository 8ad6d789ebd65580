#!/usr/bin/env python3
"""Independent numpy oracle for origami's dtype table (src/tensor).

Written from the ggml block-format descriptions, not from the C++ code. Writes
tests/data/dtype_vectors.bin, which dtype_test.cpp reads:

  * dequantization records: raw blocks of every type (random blocks with finite scales and
    hand-built blocks with known values) and the float32 values they decode to;
  * quantization records: float32 rows and the blocks ggml's simple reference quantizers
    (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) make of them, which the C++ must reproduce byte for byte.

All decoding arithmetic is done in float32, one IEEE operation at a time and in ggml's order
(e.g. Q4_K: dl = d * sc; ml = dmin * m; y = dl * q - ml), so the C++ output must match bit for bit.

  make_dtype_vectors.py            write the data file
  make_dtype_vectors.py --check    recompute and compare with the committed file (exit 1 if not equal)

File layout (little-endian): b"ODTV", u32 version, u32 record count, then per record:
u32 kind (0 = blocks -> floats, 1 = floats -> blocks), u32 ggml type id, u32 element count,
u32 byte count, u32 label length, label (utf-8), the block bytes, the float32 values.
"""
import argparse
import os
import struct
import sys

import numpy as np

F32 = np.float32
QK_K = 256

# ggml type id, elements per block, bytes per block.
TYPES = {
    "F32": (0, 1, 4),
    "F16": (1, 1, 2),
    "BF16": (30, 1, 2),
    "Q4_0": (2, 32, 18),
    "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22),
    "Q5_1": (7, 32, 24),
    "Q8_0": (8, 32, 34),
    "Q2_K": (10, 256, 84),
    "Q3_K": (11, 256, 110),
    "Q4_K": (12, 256, 144),
    "Q5_K": (13, 256, 176),
    "Q6_K": (14, 256, 210),
    "Q8_K": (15, 256, 292),
}

# ---- scalar formats ---------------------------------------------------------------------------


def half_to_f32(h):
    """IEEE binary16 bits -> float32, from the bit layout (1 sign, 5 exponent, 10 mantissa)."""
    h = np.asarray(h, dtype=np.uint32)
    sign = (h >> 15) << 31
    exp = (h >> 10) & 0x1F
    man = h & 0x3FF
    normal = sign | ((exp + 112) << 23) | (man << 13)  # rebias 15 -> 127
    special = sign | 0x7F800000 | (man << 13)  # inf, NaN (payload kept)
    bits = np.where(exp == 31, special, normal).astype(np.uint32)
    out = bits.view(F32).copy()
    # Subnormal and zero: man * 2^-24, exact in float32.
    sub = man.astype(F32) * F32(2.0**-24)
    sub = np.where(sign != 0, -sub, sub).astype(F32)
    return np.where(exp == 0, sub, out).astype(F32)


def f32_to_half(x):
    """float32 -> binary16 bits, round to nearest even (numpy's conversion is IEEE-correct)."""
    return np.asarray(x, dtype=F32).astype(np.float16).view(np.uint16)


def bf16_to_f32(h):
    return (np.asarray(h, dtype=np.uint32) << 16).astype(np.uint32).view(F32)


def u16(raw, off):
    """Little-endian uint16 field at byte offset off of every block (raw: [nblocks, size])."""
    return raw[:, off].astype(np.uint16) | (raw[:, off + 1].astype(np.uint16) << 8)


# ---- decoders: raw [nblocks, type_size] uint8 -> [nblocks, block_size] float32 -----------------


def dec_f32(raw):
    return raw.reshape(-1).view(F32).reshape(-1, 1)


def dec_f16(raw):
    return half_to_f32(u16(raw, 0)).reshape(-1, 1)


def dec_bf16(raw):
    return bf16_to_f32(u16(raw, 0)).reshape(-1, 1)


def nibbles32(qs):
    """16 bytes -> 32 values: element j is the low nibble of byte j, element j+16 the high one."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int32)


def fifth_bits(raw, off):
    """4 bytes of qh -> 32 bits, bit j (little-endian) belonging to element j."""
    qh = raw[:, off:off + 4]
    return np.unpackbits(qh, axis=1, bitorder="little").astype(np.int32)


def dec_q4_0(raw):
    d = half_to_f32(u16(raw, 0))[:, None]
    q = nibbles32(raw[:, 2:18]) - 8
    return q.astype(F32) * d


def dec_q4_1(raw):
    d = half_to_f32(u16(raw, 0))[:, None]
    m = half_to_f32(u16(raw, 2))[:, None]
    q = nibbles32(raw[:, 4:20])
    return q.astype(F32) * d + m


def dec_q5_0(raw):
    d = half_to_f32(u16(raw, 0))[:, None]
    q = nibbles32(raw[:, 6:22]) | (fifth_bits(raw, 2) << 4)
    return (q - 16).astype(F32) * d


def dec_q5_1(raw):
    d = half_to_f32(u16(raw, 0))[:, None]
    m = half_to_f32(u16(raw, 2))[:, None]
    q = nibbles32(raw[:, 8:24]) | (fifth_bits(raw, 4) << 4)
    return q.astype(F32) * d + m


def dec_q8_0(raw):
    d = half_to_f32(u16(raw, 0))[:, None]
    q = raw[:, 2:34].view(np.int8).astype(F32)
    return q * d


def crumbs(qs32):
    """32 bytes of 2-bit fields -> 128 values: value 32*k + l is bits 2k..2k+1 of byte l."""
    return np.concatenate([(qs32 >> (2 * k)) & 3 for k in range(4)], axis=1).astype(np.int32)


def dec_q2_k(raw):
    scales = raw[:, 0:16]
    qs = raw[:, 16:80]
    d = half_to_f32(u16(raw, 80))[:, None]
    dmin = half_to_f32(u16(raw, 82))[:, None]
    q = np.concatenate([crumbs(qs[:, 0:32]), crumbs(qs[:, 32:64])], axis=1)  # [nb, 256]
    dl = d * (scales & 0x0F).astype(F32)  # [nb, 16]
    ml = dmin * (scales >> 4).astype(F32)
    dl = np.repeat(dl, 16, axis=1)
    ml = np.repeat(ml, 16, axis=1)
    return dl * q.astype(F32) - ml


def q3k_scales(sc12):
    """12 bytes -> 16 six-bit scales minus 32. Scale s: low nibble of byte s (s < 8) or high
    nibble of byte s-8, plus bits 2*(s//4).. of byte 8 + s%4 as bits 4..5."""
    lo = np.concatenate([sc12[:, 0:8] & 0x0F, sc12[:, 0:8] >> 4], axis=1).astype(np.int32)
    hi = np.concatenate([(sc12[:, 8:12] >> (2 * g)) & 3 for g in range(4)], axis=1).astype(np.int32)
    return (lo | (hi << 4)) - 32


def dec_q3_k(raw):
    hmask = raw[:, 0:32]
    qs = raw[:, 32:96]
    sc = q3k_scales(raw[:, 96:108])
    d = half_to_f32(u16(raw, 108))[:, None]
    low = np.concatenate([crumbs(qs[:, 0:32]), crumbs(qs[:, 32:64])], axis=1)
    # hmask bit b of byte l is the high bit of element 32*b + l.
    hbit = np.concatenate([(hmask >> b) & 1 for b in range(8)], axis=1).astype(np.int32)
    q = low - 4 * (1 - hbit)
    dl = np.repeat(d * sc.astype(F32), 16, axis=1)
    return dl * q.astype(F32)


def k4_scales_mins(sc12):
    """Q4_K/Q5_K: 12 bytes -> 8 scales and 8 mins of 6 bits. Entries 0..3: low 6 bits of bytes
    0..3 (scales) and 4..7 (mins). Entries 4..7: low nibble (scale) / high nibble (min) of bytes
    8..11, with bits 4..5 taken from the top two bits of bytes 0..3 (scale) / 4..7 (min)."""
    b = sc12.astype(np.int32)
    sc = np.concatenate([b[:, 0:4] & 63, (b[:, 8:12] & 0x0F) | ((b[:, 0:4] >> 6) << 4)], axis=1)
    mn = np.concatenate([b[:, 4:8] & 63, (b[:, 8:12] >> 4) | ((b[:, 4:8] >> 6) << 4)], axis=1)
    return sc, mn


def dec_k4_like(d, dmin, sc12, q):
    sc, mn = k4_scales_mins(sc12)
    dl = np.repeat(d * sc.astype(F32), 32, axis=1)
    ml = np.repeat(dmin * mn.astype(F32), 32, axis=1)
    return dl * q.astype(F32) - ml


def k4_quants(qs128):
    """128 bytes -> 256 nibbles: sub-block 2g is the low nibbles of bytes 32g..32g+31, 2g+1 the
    high nibbles of the same bytes."""
    parts = []
    for g in range(4):
        chunk = qs128[:, 32 * g:32 * g + 32]
        parts += [chunk & 0x0F, chunk >> 4]
    return np.concatenate(parts, axis=1).astype(np.int32)


def dec_q4_k(raw):
    d = half_to_f32(u16(raw, 0))[:, None]
    dmin = half_to_f32(u16(raw, 2))[:, None]
    return dec_k4_like(d, dmin, raw[:, 4:16], k4_quants(raw[:, 16:144]))


def dec_q5_k(raw):
    d = half_to_f32(u16(raw, 0))[:, None]
    dmin = half_to_f32(u16(raw, 2))[:, None]
    qh = raw[:, 16:48]
    # Bit s of qh[l] is bit 4 of element 32*s + l.
    high = np.concatenate([(qh >> s) & 1 for s in range(8)], axis=1).astype(np.int32)
    q = k4_quants(raw[:, 48:176]) | (high << 4)
    return dec_k4_like(d, dmin, raw[:, 4:16], q)


def dec_q6_k(raw):
    ql = raw[:, 0:128]
    qh = raw[:, 128:192]
    sc = raw[:, 192:208].view(np.int8).astype(F32)
    d = half_to_f32(u16(raw, 208))[:, None]
    halves = []
    for h in range(2):
        l = ql[:, 64 * h:64 * h + 64]
        hb = qh[:, 32 * h:32 * h + 32]
        lows = [l[:, 0:32] & 0x0F, l[:, 32:64] & 0x0F, l[:, 0:32] >> 4, l[:, 32:64] >> 4]
        for k in range(4):
            halves.append(lows[k].astype(np.int32) | (((hb >> (2 * k)) & 3).astype(np.int32) << 4))
    q = np.concatenate(halves, axis=1) - 32
    dl = np.repeat(d * sc, 16, axis=1)
    return dl * q.astype(F32)


def dec_q8_k(raw):
    d = raw[:, 0:4].copy().view(F32)  # [nb, 1]
    q = raw[:, 4:260].view(np.int8).astype(F32)
    return q * d


DECODERS = {
    "F32": dec_f32, "F16": dec_f16, "BF16": dec_bf16, "Q4_0": dec_q4_0, "Q4_1": dec_q4_1,
    "Q5_0": dec_q5_0, "Q5_1": dec_q5_1, "Q8_0": dec_q8_0, "Q2_K": dec_q2_k, "Q3_K": dec_q3_k,
    "Q4_K": dec_q4_k, "Q5_K": dec_q5_k, "Q6_K": dec_q6_k, "Q8_K": dec_q8_k,
}

# ---- ggml's simple quantizers (row of float32 -> raw blocks) ----------------------------------


def round_half_away(v):
    """C roundf: nearest integer, ties away from zero (exact: float32 + 0.5 is exact in float64)."""
    v = v.astype(np.float64)
    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)


def signed_extreme(x):
    """Per block, the value of largest magnitude with its sign (the first one on ties)."""
    idx = np.argmax(np.abs(x), axis=1)
    return x[np.arange(x.shape[0]), idx]


def pack_nibbles(q):
    return (q[:, 0:16] | (q[:, 16:32] << 4)).astype(np.uint8)


def pack_qh(q):
    bits = ((q >> 4) & 1).astype(np.uint8)
    return np.packbits(bits, axis=1, bitorder="little")


def le16(h):
    return np.stack([h & 0xFF, h >> 8], axis=1).astype(np.uint8)


def quant_q8_0(x):
    x = x.reshape(-1, 32).astype(F32)
    amax = np.max(np.abs(x), axis=1)
    d = (amax / F32(127)).astype(F32)
    idv = np.where(d != 0, F32(1) / np.where(d != 0, d, F32(1)), F32(0)).astype(F32)
    q = round_half_away(x * idv[:, None]).astype(np.int8)
    return np.concatenate([le16(f32_to_half(d)), q.view(np.uint8)], axis=1)


def quant_q4_0(x):
    x = x.reshape(-1, 32).astype(F32)
    mx = signed_extreme(x)
    d = (mx / F32(-8)).astype(F32)
    idv = np.where(d != 0, F32(1) / np.where(d != 0, d, F32(1)), F32(0)).astype(F32)
    v = x * idv[:, None] + F32(8.5)  # two float32 operations, as in C
    q = np.minimum(15, np.trunc(v).astype(np.int64))
    return np.concatenate([le16(f32_to_half(d)), pack_nibbles(q)], axis=1)


def quant_q4_1(x):
    x = x.reshape(-1, 32).astype(F32)
    mn, mx = np.min(x, axis=1), np.max(x, axis=1)
    d = ((mx - mn) / F32(15)).astype(F32)
    idv = np.where(d != 0, F32(1) / np.where(d != 0, d, F32(1)), F32(0)).astype(F32)
    v = (x - mn[:, None]) * idv[:, None] + F32(0.5)
    q = np.minimum(15, np.trunc(v).astype(np.int64))
    return np.concatenate([le16(f32_to_half(d)), le16(f32_to_half(mn)), pack_nibbles(q)], axis=1)


def quant_q5_0(x):
    x = x.reshape(-1, 32).astype(F32)
    mx = signed_extreme(x)
    d = (mx / F32(-16)).astype(F32)
    idv = np.where(d != 0, F32(1) / np.where(d != 0, d, F32(1)), F32(0)).astype(F32)
    v = x * idv[:, None] + F32(16.5)
    q = np.minimum(31, np.trunc(v).astype(np.int64))
    return np.concatenate([le16(f32_to_half(d)), pack_qh(q), pack_nibbles(q & 15)], axis=1)


def quant_q5_1(x):
    x = x.reshape(-1, 32).astype(F32)
    mn, mx = np.min(x, axis=1), np.max(x, axis=1)
    d = ((mx - mn) / F32(31)).astype(F32)
    idv = np.where(d != 0, F32(1) / np.where(d != 0, d, F32(1)), F32(0)).astype(F32)
    v = (x - mn[:, None]) * idv[:, None] + F32(0.5)
    q = np.trunc(v).astype(np.int64)
    return np.concatenate(
        [le16(f32_to_half(d)), le16(f32_to_half(mn)), pack_qh(q), pack_nibbles(q & 15)], axis=1)


QUANTIZERS = {"Q8_0": quant_q8_0, "Q4_0": quant_q4_0, "Q4_1": quant_q4_1, "Q5_0": quant_q5_0,
              "Q5_1": quant_q5_1}

# ---- test blocks -------------------------------------------------------------------------------


def finite_half(rng, n, lo_exp=1, hi_exp=30):
    """Random fp16 bit patterns with exponent field in [lo_exp, hi_exp] (finite, normal)."""
    sign = rng.integers(0, 2, n) << 15
    exp = rng.integers(lo_exp, hi_exp + 1, n) << 10
    man = rng.integers(0, 1024, n)
    return (sign | exp | man).astype(np.uint16)


def set16(raw, off, vals):
    vals = np.broadcast_to(np.asarray(vals, dtype=np.uint16), (raw.shape[0],))
    raw[:, off] = vals & 0xFF
    raw[:, off + 1] = vals >> 8


# Byte offsets of the fp16 scale fields of each block type.
HALF_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
}


def random_blocks(rng, name, nblocks):
    _, bs, size = TYPES[name]
    raw = rng.integers(0, 256, (nblocks, size), dtype=np.uint8)
    if name == "F32":
        v = (rng.standard_normal(nblocks) * np.exp(rng.uniform(-20, 20, nblocks))).astype(F32)
        raw = v.view(np.uint8).reshape(nblocks, 4)
    elif name == "F16":
        # Every finite pattern class: normals, subnormals (exp 0), signed zeros come from exp 0.
        raw = le16(finite_half(rng, nblocks, 0, 30))
    elif name == "BF16":
        bits = rng.integers(0, 1 << 16, nblocks).astype(np.uint16)
        bits = np.where((bits & 0x7F80) == 0x7F80, bits & 0xBFFF, bits).astype(np.uint16)
        raw = le16(bits)
    elif name == "Q8_K":
        d = (rng.standard_normal(nblocks) * F32(0.01)).astype(F32)
        raw[:, 0:4] = d.view(np.uint8).reshape(nblocks, 4)
    else:
        # Scales of moderate size so that products stay well inside float32.
        for off in HALF_FIELDS[name]:
            set16(raw, off, finite_half(rng, nblocks, 5, 20))
    return raw


def pack_q3k_scales(s):
    """16 raw 6-bit scales (0..63, i.e. value + 32) -> 12 bytes, the inverse of q3k_scales."""
    out = np.zeros(12, dtype=np.uint8)
    for i, v in enumerate(s):
        out[i % 8] |= (v & 15) << (0 if i < 8 else 4)
        out[8 + i % 4] |= (v >> 4) << (2 * (i // 4))
    return out


def pack_k4_scales(sc, mn):
    """8 scales and 8 mins (0..63) -> 12 bytes, the inverse of k4_scales_mins."""
    out = np.zeros(12, dtype=np.uint8)
    for i in range(4):
        out[i] = sc[i] | ((sc[i + 4] >> 4) << 6)
        out[i + 4] = mn[i] | ((mn[i + 4] >> 4) << 6)
        out[i + 8] = (sc[i + 4] & 15) | ((mn[i + 4] & 15) << 4)
    return out


H_ONE, H_NEG_HALF, H_MIN_SUB, H_MAX_SUB, H_MAX = 0x3C00, 0xB800, 0x0001, 0x03FF, 0x7BFF


def handmade_blocks(rng, name):
    """(label, raw) pairs of blocks with known meaning."""
    _, bs, size = TYPES[name]
    out = []

    def block(fill=0):
        return np.full((1, size), fill, dtype=np.uint8)

    if name in ("F32", "F16", "BF16"):
        if name == "F32":
            vals = np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, 1e-45, -1.17549435e-38,
                             3.4028235e38], dtype=F32)
            raw = vals.view(np.uint8).reshape(-1, 4)
            out.append(("specials", raw))
            nan = np.array([0x7FC00000, 0xFFC00001, 0x7F800001], dtype=np.uint32)
            out.append(("nans", nan.view(np.uint8).reshape(-1, 4)))
        else:
            bits = [0x0000, 0x8000, 0x3C00, 0xBC00, 0x7C00, 0xFC00, 0x0001, 0x83FF, 0x0400, 0x7BFF,
                    0x7E00, 0xFE01, 0x7C01, 0x3555, 0x7F7F, 0x0080]
            out.append(("specials", le16(np.array(bits, dtype=np.uint16))))
        return out

    fields = HALF_FIELDS.get(name, [])
    for label, fill in (("zero_quants", 0x00), ("max_quants", 0xFF), ("alt_quants", 0x5A)):
        for dlabel, dbits in (("one", H_ONE), ("neg", H_NEG_HALF), ("min_subnormal", H_MIN_SUB),
                              ("max_subnormal", H_MAX_SUB), ("max", H_MAX), ("zero", 0)):
            raw = block(fill)
            if name == "Q8_K":
                d = {"one": 1.0, "neg": -0.5, "min_subnormal": 1e-45, "max_subnormal": 1.1754942e-38,
                     "max": 1e30, "zero": 0.0}[dlabel]
                raw[0, 0:4] = np.array([d], dtype=F32).view(np.uint8)
            else:
                for i, off in enumerate(fields):
                    # A second scale field (min / dmin) gets a different value so swaps show.
                    set16(raw, off, dbits if i == 0 else (dbits ^ 0x8000 if dbits else H_ONE))
            out.append((f"{label}/d_{dlabel}", raw))

    if name == "Q3_K":
        # Each 6-bit scale field alone at each extreme, the others at the opposite one.
        for s in range(16):
            for hi in (0, 63):
                raw = block(0)
                raw[0, 0:32] = rng.integers(0, 256, 32)
                raw[0, 32:96] = rng.integers(0, 256, 64)
                sc = [63 - hi] * 16
                sc[s] = hi
                raw[0, 96:108] = pack_q3k_scales(sc)
                set16(raw, 108, H_ONE)
                out.append((f"scale{s}={hi - 32}", raw))
        raw = block(0)
        raw[0, 96:108] = pack_q3k_scales(list(range(0, 64, 4)))
        raw[0, 0:96] = rng.integers(0, 256, 96)
        set16(raw, 108, H_NEG_HALF)
        out.append(("scales_ramp", raw))
    if name in ("Q4_K", "Q5_K"):
        qoff = 16 if name == "Q4_K" else 48
        for s in range(8):
            for what in ("scale", "min"):
                for v in (0, 63):
                    raw = block(0)
                    raw[0, 16:size] = rng.integers(0, 256, size - 16)
                    sc, mn = [63 - v] * 8, [63 - v] * 8
                    (sc if what == "scale" else mn)[s] = v
                    if what == "scale":
                        mn = [0] * 8
                    raw[0, 4:16] = pack_k4_scales(sc, mn)
                    set16(raw, 0, H_ONE)
                    set16(raw, 2, 0x3800)  # dmin 0.5
                    out.append((f"{what}{s}={v}", raw))
        raw = block(0)
        raw[0, qoff:size] = 0xFF
        raw[0, 4:16] = pack_k4_scales([1, 2, 4, 8, 16, 32, 63, 33], [62, 31, 15, 7, 3, 1, 0, 48])
        set16(raw, 0, H_ONE)
        set16(raw, 2, H_ONE)
        out.append(("distinct_scales_max_quants", raw))
    if name == "Q2_K":
        for s in range(16):
            raw = block(0)
            raw[0, 16:80] = rng.integers(0, 256, 64)
            raw[0, 0:16] = 0x11
            raw[0, s] = 0xF0 if s % 2 else 0x0F
            set16(raw, 80, H_ONE)
            set16(raw, 82, 0x3800)
            out.append((f"scale{s}_extreme", raw))
    if name == "Q6_K":
        for s in range(16):
            for v in (-128, 127):
                raw = block(0)
                raw[0, 0:192] = rng.integers(0, 256, 192)
                sc = np.full(16, 1, dtype=np.int8)
                sc[s] = v
                raw[0, 192:208] = sc.view(np.uint8)
                set16(raw, 208, H_ONE)
                out.append((f"scale{s}={v}", raw))
    if name in ("Q5_0", "Q5_1"):
        qh = 2 if name == "Q5_0" else 4
        for pat in (0x00000001, 0x80000000, 0x0000FFFF, 0xFFFF0000, 0xAAAAAAAA):
            raw = block(0x0F)
            raw[0, qh:qh + 4] = np.array([pat], dtype="<u4").view(np.uint8)
            for i, off in enumerate(fields):
                set16(raw, off, H_ONE if i == 0 else H_NEG_HALF)
            out.append((f"qh_{pat:08x}", raw))
    return out


def quant_inputs(rng):
    """(label, float32 row of 128) for the byte-identical quantizer records."""
    rows = []
    for i in range(4):
        rows.append((f"normal{i}", (rng.standard_normal(128) * 10.0 ** rng.uniform(-3, 3)).astype(F32)))
    rows.append(("uniform", rng.uniform(-1, 1, 128).astype(F32)))
    rows.append(("positive", rng.uniform(0.5, 3, 128).astype(F32)))
    rows.append(("zeros", np.zeros(128, F32)))
    rows.append(("constant", np.full(128, -0.75, F32)))
    outlier = (rng.standard_normal(128) * F32(0.01)).astype(F32)
    outlier[37] = 1000.0
    outlier[100] = -3000.0
    rows.append(("outlier", outlier))
    rows.append(("tiny", (rng.standard_normal(128) * F32(1e-6)).astype(F32)))
    # Ties: with amax 127 (d = 1) and amax 8 (Q4_0 d = -1), x*id lands exactly on k + 0.5.
    ties = np.tile(np.array([127, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 126.5], F32), 16)
    rows.append(("ties", ties))
    ties4 = np.tile(np.array([-8, 0.5, -0.5, 2.5, -2.5, 7.5, -7.5, 3.5], F32), 16)
    rows.append(("ties_q4", ties4))
    signs = np.tile(np.array([1, -1], F32), 64) * np.linspace(0.1, 5, 128, dtype=F32)
    rows.append(("alternating_signs", signs.astype(F32)))
    return rows


# ---- the file ----------------------------------------------------------------------------------


def build():
    rng = np.random.default_rng(20240917)
    records = []  # (kind, type name, label, raw bytes, float32 values)
    for name in TYPES:
        bs = TYPES[name][1]
        nrand = {1: 64, 32: 8, 256: 3}[bs]
        raw = random_blocks(rng, name, nrand)
        records.append((0, name, "random", raw, DECODERS[name](raw)))
        for label, raw in handmade_blocks(rng, name):
            records.append((0, name, label, raw, DECODERS[name](raw)))
    for label, row in quant_inputs(rng):
        for name, quant in QUANTIZERS.items():
            raw = quant(row)
            records.append((1, name, label, raw, row.reshape(-1, TYPES[name][1])))
    return serialize(records)


def serialize(records):
    out = [b"ODTV", struct.pack("<II", 1, len(records))]
    for kind, name, label, raw, vals in records:
        raw = np.ascontiguousarray(raw, dtype=np.uint8)
        vals = np.ascontiguousarray(vals, dtype=F32)
        lab = f"{name}/{label}".encode()
        out.append(struct.pack("<IIIII", kind, TYPES[name][0], vals.size, raw.size, len(lab)))
        out += [lab, raw.tobytes(), vals.tobytes()]
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed file")
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                           "dtype_vectors.bin")
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
