"""A small GGUF v2/v3 reader and numpy dequantizers, written from the ggml format specification.

This is an independent oracle for origami's C++ reader and dtype table: it shares no code with
them. Tensor data is mmap'd (numpy.memmap) and only dequantized on request. Every dequantizer is
vectorized over blocks (no per-element Python loops) and returns float32 values computed the way
ggml's reference dequantizers compute them (so they agree bit for bit with any exact port,
origami's included: check_dequant.py tests that).
"""
from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

import numpy as np

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# ggml type ids, as stored in GGUF tensor infos.
F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 = 0, 1, 2, 3, 6, 7, 8
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K = 10, 11, 12, 13, 14
BF16 = 30

QK_K = 256
# type id -> (name, elements per block, bytes per block)
TYPES = {
    F32: ("F32", 1, 4),
    F16: ("F16", 1, 2),
    BF16: ("BF16", 1, 2),
    Q4_0: ("Q4_0", 32, 18),
    Q4_1: ("Q4_1", 32, 20),
    Q5_0: ("Q5_0", 32, 22),
    Q5_1: ("Q5_1", 32, 24),
    Q8_0: ("Q8_0", 32, 34),
    Q2_K: ("Q2_K", QK_K, 84),
    Q3_K: ("Q3_K", QK_K, 110),
    Q4_K: ("Q4_K", QK_K, 144),
    Q5_K: ("Q5_K", QK_K, 176),
    Q6_K: ("Q6_K", QK_K, 210),
}
TYPE_BY_NAME = {v[0]: k for k, v in TYPES.items()}

# Metadata value types (GGUF spec numbering): struct format for the fixed-size scalars.
_SCALAR_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
               10: "<Q", 11: "<q", 12: "<d"}
_NP_SCALAR = {0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32,
              6: np.float32, 7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64}
T_STRING, T_ARRAY = 8, 9


class GGUFError(Exception):
    pass


@dataclass
class TensorInfo:
    name: str
    ne: tuple  # ne[0] is the contiguous dimension (the input size of a matrix)
    type: int
    offset: int  # relative to the data section
    n_bytes: int

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.ne, dtype=np.int64))

    @property
    def type_name(self) -> str:
        return TYPES[self.type][0] if self.type in TYPES else f"type{self.type}"


class GGUFFile:
    """Parses a GGUF file: .metadata (dict, file order kept), .tensors (dict name -> TensorInfo)."""

    def __init__(self, path: str):
        self.path = path
        self._mm = np.memmap(path, dtype=np.uint8, mode="r")
        self._buf = memoryview(self._mm)
        self._pos = 0
        if bytes(self._take(4)) != GGUF_MAGIC:
            raise GGUFError(f"{path}: not a GGUF file (bad magic)")
        self.version = self._scalar(4)
        if self.version not in (2, 3):
            raise GGUFError(f"{path}: unsupported GGUF version {self.version}")
        n_tensors = self._scalar(10)
        n_kv = self._scalar(10)
        self.metadata: dict = {}
        for _ in range(n_kv):
            key = self._string()
            vtype = self._scalar(4)
            self.metadata[key] = self._value(vtype)
        self.tensors: dict[str, TensorInfo] = {}
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            n_dims = self._scalar(4)
            if not 1 <= n_dims <= 4:
                raise GGUFError(f"{path}: tensor {name}: n_dims {n_dims}")
            ne = tuple(self._scalar(10) for _ in range(n_dims))
            ttype = self._scalar(4)
            offset = self._scalar(10)
            infos.append((name, ne, ttype, offset))
        self.alignment = int(self.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        self.data_offset = -(-self._pos // self.alignment) * self.alignment
        for name, ne, ttype, offset in infos:
            if ttype not in TYPES:
                n_bytes = 0  # unknown to this reader; only an error if someone asks for it
            else:
                _, bs, ts = TYPES[ttype]
                n = int(np.prod(ne, dtype=np.int64))
                if n % bs:
                    raise GGUFError(f"{path}: tensor {name}: {n} elements not a multiple of {bs}")
                n_bytes = n // bs * ts
            if self.data_offset + offset + n_bytes > len(self._mm):
                raise GGUFError(f"{path}: tensor {name} runs past the end of the file")
            self.tensors[name] = TensorInfo(name, ne, ttype, offset, n_bytes)

    # --- low-level parsing -------------------------------------------------------------------
    def _take(self, n: int) -> memoryview:
        if self._pos + n > len(self._buf):
            raise GGUFError(f"{self.path}: truncated at byte {self._pos}")
        b = self._buf[self._pos:self._pos + n]
        self._pos += n
        return b

    def _scalar(self, vtype: int):
        fmt = _SCALAR_FMT[vtype]
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    def _string(self) -> str:
        n = self._scalar(10)
        return bytes(self._take(n)).decode("utf-8", errors="surrogateescape")

    def _value(self, vtype: int):
        if vtype in _SCALAR_FMT:
            return self._scalar(vtype)
        if vtype == T_STRING:
            return self._string()
        if vtype == T_ARRAY:
            etype = self._scalar(4)
            count = self._scalar(10)
            if etype in _NP_SCALAR:
                dt = np.dtype(_NP_SCALAR[etype]).newbyteorder("<")
                raw = self._take(count * dt.itemsize)
                return np.frombuffer(raw, dtype=dt).copy()
            return [self._value(etype) for _ in range(count)]
        raise GGUFError(f"{self.path}: unknown metadata type {vtype} at byte {self._pos}")

    # --- tensors -----------------------------------------------------------------------------
    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes as a uint8 view of the mapping (zero copy)."""
        t = self.tensors[name]
        start = self.data_offset + t.offset
        return self._mm[start:start + t.n_bytes]

    def tensor(self, name: str, dtype=np.float32) -> np.ndarray:
        """Dequantized tensor in numpy (row-major) shape: reversed ne, e.g. a matrix [out, in]."""
        t = self.tensors[name]
        x = dequantize(self.raw(name), t.type, t.n_elements)
        return x.reshape(tuple(reversed(t.ne))).astype(dtype, copy=False)


# --- dequantizers ----------------------------------------------------------------------------
# Arithmetic follows ggml's reference dequantizers: the block scale d (fp16, widened exactly) times
# the integer sub-block scale is rounded to float32 first, then multiplied by the small integer
# quant (and the min term subtracted) in float32. Quants stay in narrow integer arrays until then.
_U8 = np.uint8


def _f16(b: np.ndarray) -> np.ndarray:
    """fp16 values from a [..., 2] uint8 array (little-endian), widened exactly to float32."""
    return np.ascontiguousarray(b).view("<f2")[..., 0].astype(np.float32)


def _blocks(raw: np.ndarray, ttype: int, n: int) -> np.ndarray:
    _, bs, ts = TYPES[ttype]
    if n % bs or raw.size != n // bs * ts:
        raise GGUFError(f"{TYPES[ttype][0]}: {raw.size} bytes do not hold {n} elements")
    return np.asarray(raw, dtype=np.uint8).reshape(n // bs, ts)


def _k_scale_min(sc: np.ndarray):
    """The 8 six-bit (scale, min) pairs of a Q4_K/Q5_K super-block from its 12 packed bytes.

    Sub-block j < 4: scale = b[j] & 63, min = b[j+4] & 63. Sub-block j >= 4: the low 4 bits
    come from b[j+4] (low nibble for the scale, high nibble for the min) and the top 2 bits
    from the spare top bits of b[j-4] (scale) and b[j] (min).
    """
    s = np.empty((sc.shape[0], 8), _U8)
    m = np.empty((sc.shape[0], 8), _U8)
    s[:, :4] = sc[:, 0:4] & 63
    m[:, :4] = sc[:, 4:8] & 63
    s[:, 4:] = (sc[:, 8:12] & 0xF) | ((sc[:, 0:4] >> 6) << 4)
    m[:, 4:] = (sc[:, 8:12] >> 4) | ((sc[:, 4:8] >> 6) << 4)
    return s, m


def _nibbles_32(qs: np.ndarray) -> np.ndarray:
    """[nb, 16] bytes -> [nb, 32] quants: element j low nibble of byte j, element j+16 high."""
    return np.concatenate([qs & 0xF, qs >> 4], axis=1)


def _high_bits_32(qh: np.ndarray) -> np.ndarray:
    """[nb, 4] bytes (a little-endian uint32) -> [nb, 32] bits, bit j for element j."""
    return np.unpackbits(qh, axis=1, bitorder="little")


def _scaled(dl: np.ndarray, q: np.ndarray, ml: np.ndarray | None = None) -> np.ndarray:
    """dl * q (- ml) in float32, dl/ml broadcast over the last axis of the integer quants q."""
    y = dl.astype(np.float32)[..., None] * q.astype(np.float32)
    if ml is not None:
        y -= ml.astype(np.float32)[..., None]
    return y


def dequantize(raw: np.ndarray, ttype: int, n: int) -> np.ndarray:
    """n elements of ggml type `ttype` from their bytes, as a flat float32 array."""
    raw = np.asarray(raw, dtype=np.uint8)
    if ttype == F32:
        return np.ascontiguousarray(raw).view("<f4")[:n].astype(np.float32)
    if ttype == F16:
        return np.ascontiguousarray(raw).view("<f2")[:n].astype(np.float32)
    if ttype == BF16:  # the top 16 bits of a float32
        return (np.ascontiguousarray(raw).view("<u2")[:n].astype(np.uint32) << 16).view(np.float32)
    if ttype not in TYPES:
        raise GGUFError(f"no dequantizer for ggml type {ttype}")
    b = _blocks(raw, ttype, n)
    if ttype == Q8_0:  # d f16, qs[32] int8: x = d * q
        y = _scaled(_f16(b[:, 0:2]), b[:, 2:34].view(np.int8))
    elif ttype == Q4_0:  # d, qs[16]: x = d * (q - 8)
        y = _scaled(_f16(b[:, 0:2]), _nibbles_32(b[:, 2:18]).astype(np.int8) - 8)
    elif ttype == Q4_1:  # d, m, qs[16]: x = d * q + m
        y = _scaled(_f16(b[:, 0:2]), _nibbles_32(b[:, 4:20]), -_f16(b[:, 2:4]))
    elif ttype == Q5_0:  # d, qh[4], qs[16]: q = nibble | bit << 4, x = d * (q - 16)
        q = _nibbles_32(b[:, 6:22]) | (_high_bits_32(b[:, 2:6]) << 4)
        y = _scaled(_f16(b[:, 0:2]), q.astype(np.int8) - 16)
    elif ttype == Q5_1:  # d, m, qh[4], qs[16]: x = d * q + m
        q = _nibbles_32(b[:, 8:24]) | (_high_bits_32(b[:, 4:8]) << 4)
        y = _scaled(_f16(b[:, 0:2]), q, -_f16(b[:, 2:4]))
    elif ttype == Q2_K:
        y = _dequant_q2_k(b)
    elif ttype == Q3_K:
        y = _dequant_q3_k(b)
    elif ttype == Q4_K:
        y = _dequant_q4_k(b)
    elif ttype == Q5_K:
        y = _dequant_q5_k(b)
    elif ttype == Q6_K:
        y = _dequant_q6_k(b)
    else:
        raise GGUFError(f"no dequantizer for {TYPES[ttype][0]}")
    return y.reshape(-1)


_SHIFT_2BIT = (2 * np.arange(4, dtype=_U8)).reshape(1, 1, 4, 1)  # bits 2j..2j+1, j = 0..3
_SHIFT_NIBBLE = np.array([0, 4], dtype=_U8).reshape(1, 1, 2, 1)


def _dequant_q2_k(b: np.ndarray) -> np.ndarray:
    # Block: scales[16] (low nibble: scale, high nibble: min, per sub-block of 16), qs[64], d, dmin.
    # Element e = h*128 + j*32 + l (h half, j 0..3, l 0..31) is bits 2j..2j+1 of qs[h*32 + l];
    # its sub-block is e // 16. x = (d * (sc & 15)) * q - (dmin * (sc >> 4)).
    nb = b.shape[0]
    scales = b[:, 0:16]
    q = ((b[:, 16:80].reshape(nb, 2, 1, 32) >> _SHIFT_2BIT) & 3).reshape(nb, 16, 16)
    d, dmin = _f16(b[:, 80:82]), _f16(b[:, 82:84])
    return _scaled(d[:, None] * (scales & 15), q, dmin[:, None] * (scales >> 4))


def _dequant_q3_k(b: np.ndarray) -> np.ndarray:
    # Block: hmask[32], qs[64], scales[12], d. Element e = h*128 + j*32 + l: low 2 bits are bits
    # 2j..2j+1 of qs[h*32 + l], the high bit is bit (4h + j) of hmask[l]; q = low - 4 when the
    # high bit is clear. 16 six-bit scales, stored biased by 32: scale i has its low 4 bits in
    # b[i] & 15 (i < 8) or b[i-8] >> 4 (i >= 8), and its top 2 bits at bits 2*(i//4) of b[8 + i%4].
    # x = (d * (scale - 32)) * q, sub-block e // 16.
    nb = b.shape[0]
    hmask = b[:, 0:32]
    sb = b[:, 96:108]
    d = _f16(b[:, 108:110])
    i = np.arange(16)
    low = np.where(i < 8, sb[:, i % 8] & 15, sb[:, i % 8] >> 4)
    high = (sb[:, 8 + i % 4] >> (2 * (i // 4)).astype(_U8)) & 3
    scale = (low | (high << 4)).astype(np.int8) - 32  # [nb, 16]
    lo = (b[:, 32:96].reshape(nb, 2, 1, 32) >> _SHIFT_2BIT) & 3  # [nb, 2, 4, 32]
    bit = (4 * np.arange(2)[:, None] + np.arange(4)[None, :]).astype(_U8).reshape(1, 2, 4, 1)
    hb = (hmask[:, None, None, :] >> bit) & 1
    q = (lo.astype(np.int8) - 4 * (1 - hb).astype(np.int8)).reshape(nb, 16, 16)
    return _scaled(d[:, None] * scale, q)


def _dequant_q4_k(b: np.ndarray) -> np.ndarray:
    # Block: d, dmin, scales[12] (8 six-bit scale/min pairs), qs[128]. Element e = g*64 + h*32 + l
    # is nibble h (0 low, 1 high) of qs[g*32 + l]; sub-block e // 32. x = (d*sc)*q - (dmin*m).
    nb = b.shape[0]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    s, m = _k_scale_min(b[:, 4:16])
    q = ((b[:, 16:144].reshape(nb, 4, 1, 32) >> _SHIFT_NIBBLE) & 0xF).reshape(nb, 8, 32)
    return _scaled(d[:, None] * s, q, dmin[:, None] * m)


def _dequant_q5_k(b: np.ndarray) -> np.ndarray:
    # As Q4_K plus qh[32]: the 5th bit of element e = g*64 + h*32 + l is bit (2g + h) of qh[l].
    nb = b.shape[0]
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])
    s, m = _k_scale_min(b[:, 4:16])
    lo = ((b[:, 48:176].reshape(nb, 4, 1, 32) >> _SHIFT_NIBBLE) & 0xF).reshape(nb, 8, 32)
    hb = (b[:, None, 16:48] >> np.arange(8, dtype=_U8).reshape(1, 8, 1)) & 1  # [nb, 8, 32]
    return _scaled(d[:, None] * s, lo | (hb << 4), dmin[:, None] * m)


def _dequant_q6_k(b: np.ndarray) -> np.ndarray:
    # Block: ql[128], qh[64], scales[16] int8, d. Element e = h*128 + k*32 + l (k 0..3):
    # low 4 bits = nibble (k >> 1) of ql[h*64 + (k & 1)*32 + l], high 2 bits = bits 2k..2k+1 of
    # qh[h*32 + l]; q = that 6-bit value - 32; x = (d * scales[e // 16]) * q.
    nb = b.shape[0]
    ql = b[:, 0:128].reshape(nb, 2, 2, 32)  # [block, half, k & 1, l]
    qh = b[:, 128:192].reshape(nb, 2, 1, 32)
    sc = b[:, 192:208].view(np.int8)
    d = _f16(b[:, 208:210])
    k = np.arange(4)
    lo = (ql[:, :, k & 1, :] >> (4 * (k >> 1)).astype(_U8).reshape(1, 1, 4, 1)) & 0xF
    hi = (qh >> _SHIFT_2BIT) & 3
    q = ((lo | (hi << 4)).astype(np.int8) - 32).reshape(nb, 16, 16)
    return _scaled(d[:, None] * sc, q)


def main(argv: list[str]) -> int:
    """`gguf_np.py FILE`: print the metadata (arrays abbreviated) and tensor infos."""
    g = GGUFFile(argv[1])
    print(f"GGUF v{g.version}, {len(g.metadata)} keys, {len(g.tensors)} tensors, "
          f"alignment {g.alignment}, data at {g.data_offset}")
    for k, v in g.metadata.items():
        s = " ".join(repr(v).split())
        print(f"  {k} = {s[:100]}{'...' if len(s) > 100 else ''}")
    for t in g.tensors.values():
        print(f"  {t.name:32s} {t.type_name:5s} ne={list(t.ne)} offset={t.offset}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
