"""Cross-checks the numpy dequantizers (gguf_np.py) against origami's C++ reference ones: MODEL is
a file of random quantized blocks from make_kquant_model, DUMP the F32 file it wrote with
origami's dequantization of the same blk.* tensors (--dump-f32). Both must agree exactly, up to
1 ulp of float32 (ggml rounds d * scale to float32 before multiplying by the quant; numpy
computes the product in float64 and rounds once)."""
import sys

import numpy as np

from gguf_np import GGUFFile


def main(model: str, dump: str) -> int:
    q, f = GGUFFile(model), GGUFFile(dump)
    worst, n_checked = 0.0, 0
    for name, info in f.tensors.items():
        if name not in q.tensors or q.tensors[name].type == info.type:
            continue
        a = q.tensor(name)
        b = f.tensor(name)
        ulp = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(np.float32))
        err = np.abs(a.astype(np.float64) - b.astype(np.float64)) / ulp
        if not np.all(np.isfinite(a)) or float(err.max()) > 1.0:
            i = np.unravel_index(int(np.argmax(err)), err.shape)
            print(f"FAIL {model}: {name} ({q.tensors[name].type_name}) element {i}: numpy {a[i]!r} "
                  f"origami {b[i]!r} ({err[i]:.1f} ulp)")
            return 1
        worst = max(worst, float(err.max()))
        n_checked += a.size
    if n_checked == 0:
        print(f"FAIL {model}: no quantized tensors to compare in {dump}")
        return 1
    print(f"ok {model}: {n_checked} elements, numpy and origami dequantization within {worst:.2g} ulp")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
