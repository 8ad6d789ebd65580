"""MXFP4 from the OCP Microscaling Formats (MX) v1.0 specification, in GGUF's block layout.

Per the spec an MXFP4 block is 32 FP4 E2M1 elements sharing one E8M0 scale X = 2^(e - 127).
E2M1: 1 sign bit, 2 exponent bits (bias 1), 1 mantissa bit; the eight magnitudes are
0, 0.5, 1, 1.5, 2, 3, 4, 6. ggml stores a block as 17 bytes: the E8M0 byte, then 16 bytes where
byte j holds element j in its low nibble and element j + 16 in its high nibble. ggml keeps the
E2M1 values doubled as integers (0, 1, 2, 3, 4, 6, 8, 12) and halves the scale instead, which is
the same number: value = e2m1 * 2^(e - 127).
"""
import numpy as np

MXFP4 = 39
E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def dequant_mxfp4(raw: np.ndarray, n: int) -> np.ndarray:
    b = np.asarray(raw, dtype=np.uint8).reshape(-1, 17)[: n // 32]
    scale = np.ldexp(1.0, b[:, 0].astype(np.int64) - 127)  # E8M0 (0xFF would be NaN; unused here)
    qs = b[:, 1:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1)  # [blocks, 32]: elements 0..15, 16..31
    return (E2M1[q] * scale[:, None]).reshape(-1)
