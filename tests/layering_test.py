#!/usr/bin/env python3
"""The house rules that keep the layers apart, checked on the sources:

- the environment is read once, at the edge: getenv appears only in src/cli/environment.cpp;
- the model, runtime and server layers compute through the Backend interface: they include no
  kernels/ or backend/cpu/ header and name no cpu:: symbol;
- CUDA headers appear only under src/backend/cuda/ and src/kernels/cuda/.

usage: layering_test.py SRC_DIR. --self-test plants one violation of each rule in a temporary
tree and fails unless each is reported (so the checker itself can fail).
"""
import pathlib
import re
import sys
import tempfile

GETENV = re.compile(r"\b(secure_)?getenv\s*\(")
CPU_NAME = re.compile(r"\bcpu::|#\s*include\s*\"(kernels/|backend/cpu/)")
CUDA_HEADER = re.compile(r"#\s*include\s*[<\"](cuda|cublas|cuda_runtime|cuda_fp16|cuda_bf16)[\w.]*[>\"]")
SEAM_LAYERS = ("model", "runtime", "server")
CUDA_HOMES = ("backend/cuda", "kernels/cuda")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def violations(src):
    out = []
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh"):
            continue
        rel = path.relative_to(src).as_posix()
        code = strip_comments(path.read_text(errors="replace"))
        for n, line in enumerate(code.splitlines(), 1):
            if GETENV.search(line) and rel != "cli/environment.cpp":
                out.append(f"{rel}:{n}: reads the environment (only cli/environment.cpp may)")
            if rel.split("/")[0] in SEAM_LAYERS and CPU_NAME.search(line):
                out.append(f"{rel}:{n}: reaches past the Backend interface into the CPU kernels")
            if CUDA_HEADER.search(line) and not rel.startswith(CUDA_HOMES):
                out.append(f"{rel}:{n}: includes a CUDA header outside backend/cuda and kernels/cuda")
    return out


def self_test():
    with tempfile.TemporaryDirectory() as d:
        src = pathlib.Path(d)
        (src / "cli").mkdir()
        (src / "model").mkdir()
        (src / "cli/environment.cpp").write_text('auto v = std::getenv("X");\n')  # allowed
        (src / "model/a.cpp").write_text('// getenv( in a comment is fine\nauto v = getenv("Y");\n')
        (src / "model/b.cpp").write_text('#include "kernels/cpu/matmul.h"\nvoid f() { cpu::Run(); }\n')
        (src / "model/c.cu").write_text("#include <cuda_runtime.h>\n")
        got = violations(src)
        expected = ["model/a.cpp:2", "model/b.cpp:1", "model/b.cpp:2", "model/c.cu:1"]
        missing = [e for e in expected if not any(v.startswith(e + ":") for v in got)]
        if missing or len(got) != len(expected):
            print("self-test FAILED: expected", expected, "got", got)
            return 1
    print("self-test: every planted violation reported")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    found = violations(pathlib.Path(sys.argv[1]))
    for v in found:
        print(v)
    print(f"{len(found)} layering violation(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
