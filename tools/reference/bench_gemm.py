#!/usr/bin/python3
"""PyTorch's own float32 matmul on the shapes of kernels/bench_test.go
(BenchmarkGEMM, BenchmarkGEMV), for docs/bench-gemm.md.

Run it with the fair set-up of docs/peers.md:

    env -u OPENBLAS_CORETYPE \
      LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
      /usr/bin/python3 tools/reference/bench_gemm.py --rounds 7

Each shape is computed the way a PyTorch model computes it, into a
preallocated output (out=) so that allocation is not timed:
  Linear layers (transB) torch.matmul(x, W.t())  (the addmm/linear path)
  dW = dy^T x   (transA) torch.matmul(dy.t(), x)
  dx = dy W              torch.matmul(dy, W)
  heads (batch 3)        torch.bmm
  GEMV                   torch.mv(W, x)  (W [N,K] row-major, as a Linear)
Every round times every shape once (after warm-up) for at least
--min-time seconds; the median over rounds is reported, by the wall clock
and per CPU-second of the process times the thread count ("cpu_gflops":
on a loaded shared machine the wall clock mostly measures the scheduler;
OpenMP spin-waiting counts as CPU time, being preempted does not), the
same two measures kernels/bench_test.go reports.
Output: one JSON object {"threads", "torch", "rows": [{"name", "m", "k",
"n", "batch", "gflops", "cpu_gflops", "gbps", "cpu_gbps", "rounds"}]}.
"""

import argparse
import json
import statistics
import time

import torch

# name, m, k, n, transA, transB, batch — the same table as gemmShapes.
SHAPES = [
    ("1024^3", 1024, 1024, 1024, False, False, 1),
    ("vit1/qkv", 197, 192, 576, False, True, 1),
    ("vit1/proj", 197, 192, 192, False, True, 1),
    ("vit1/fc1", 197, 192, 768, False, True, 1),
    ("vit1/fc2", 197, 768, 192, False, True, 1),
    ("vit1/qk", 197, 64, 197, False, True, 3),
    ("vit1/pv", 197, 197, 64, False, False, 3),
    ("vit32/qkv", 6304, 192, 576, False, True, 1),
    ("vit32/proj", 6304, 192, 192, False, True, 1),
    ("vit32/fc1", 6304, 192, 768, False, True, 1),
    ("vit32/fc2", 6304, 768, 192, False, True, 1),
    ("mini/qkv", 6272, 64, 192, False, True, 1),
    ("mini/proj", 6272, 64, 64, False, True, 1),
    ("mini/fc1", 6272, 64, 256, False, True, 1),
    ("mini/fc2", 6272, 256, 64, False, True, 1),
    ("mini/qkv.dx", 6272, 192, 64, False, False, 1),
    ("mini/proj.dx", 6272, 64, 64, False, False, 1),
    ("mini/fc1.dx", 6272, 256, 64, False, False, 1),
    ("mini/fc2.dx", 6272, 64, 256, False, False, 1),
    ("mini/qkv.dW", 192, 6272, 64, True, False, 1),
    ("mini/proj.dW", 64, 6272, 64, True, False, 1),
    ("mini/fc1.dW", 256, 6272, 64, True, False, 1),
    ("mini/fc2.dW", 64, 6272, 256, True, False, 1),
]
GEMV = [("gemv/1x512x1536", 512, 1536), ("gemv/1x2048x5632", 2048, 5632)]


def make(m, k, n, ta, tb, batch):
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.rand(*s, generator=g) * 2 - 1  # noqa: E731
    if batch > 1:
        a = r(batch, m, k)
        b = r(batch, n, k).transpose(1, 2) if tb else r(batch, k, n)
        out = torch.empty(batch, m, n)
        return lambda: torch.bmm(a, b, out=out)
    a = r(k, m).t() if ta else r(m, k)
    b = r(n, k).t() if tb else r(k, n)
    out = torch.empty(m, n)
    return lambda: torch.matmul(a, b, out=out)


def time_once(fn, min_time):
    """Wall and process-CPU seconds per call over at least min_time."""
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_time:
            return dt / n, (time.process_time() - c0) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=0.2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with torch.inference_mode():
        cases = []
        for name, m, k, n, ta, tb, batch in SHAPES:
            cases.append((name, m, k, n, batch, make(m, k, n, ta, tb, batch), 2.0 * m * k * n * batch, 0))
        g = torch.Generator().manual_seed(2)
        for name, k, n in GEMV:
            w = torch.rand(n, k, generator=g)
            x = torch.rand(k, generator=g)
            y = torch.empty(n)
            cases.append((name, 1, k, n, 1, (lambda w=w, x=x, y=y: torch.mv(w, x, out=y)), 2.0 * k * n, 4.0 * k * n))
        for c in cases:
            for _ in range(3):
                c[5]()
        times = {c[0]: [] for c in cases}
        cpus = {c[0]: [] for c in cases}
        for _ in range(args.rounds):
            for c in cases:
                w, cp = time_once(c[5], args.min_time)
                times[c[0]].append(w)
                cpus[c[0]].append(cp / args.threads)
        for name, m, k, n, batch, _, flop, nbytes in cases:
            med = statistics.median(times[name])
            cmed = statistics.median(cpus[name])
            rows.append({"name": name, "m": m, "k": k, "n": n, "batch": batch,
                         "gflops": flop / med / 1e9, "cpu_gflops": flop / cmed / 1e9,
                         "gbps": nbytes / med / 1e9 if nbytes else None,
                         "cpu_gbps": nbytes / cmed / 1e9 if nbytes else None,
                         "rounds": len(times[name])})
    print(json.dumps({"threads": args.threads, "torch": torch.__version__,
                      "blas": torch.__config__.show().count("openblas") > 0, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
