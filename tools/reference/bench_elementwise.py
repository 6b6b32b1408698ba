#!/usr/bin/python3
"""PyTorch's own elementwise, normalisation and depthwise-conv ops on the
shapes of kernels/peerops_test.go (BenchmarkPeerOps), for
docs/bench-elementwise.md.

Run it with the fair set-up of docs/peers.md, alternating with the Go
benchmark in the same session:

    env -u OPENBLAS_CORETYPE \\
      LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \\
      /usr/bin/python3 tools/reference/bench_elementwise.py --rounds 5

Ops, each into a preallocated output where PyTorch has an out= form, under
torch.no_grad (the forward kernels alone):
  softmax        torch.softmax(x, -1, out=y)        197x192
  layernorm      F.layer_norm(x, (192,), w, b, 1e-6) 197x192
  gelu           F.gelu(x) (exact erf)                197x192
  gelu_backward  torch.ops.aten.gelu_backward(dy, x)  197x192
  dwconvKxK      F.conv2d(x, w, b, padding=K//2, groups=C), batch 1, both
                 NCHW and channels_last input (the faster is reported; slab's
                 kernel is channels-last), 14x14x192 and 56x56x96, K = 3, 5
Bytes per call count each input and output element once (8 B per element, 12
for gelu_backward; conv: input and output), as the Go benchmark does. Every
round times every op for at least --min-time seconds; the median over rounds
is reported, by the wall clock and per CPU-second of the process times the
thread count ("cpu_gbps": OpenMP spin-waiting counts as CPU time, being
preempted by other tenants does not).
Output: one JSON object {"torch", "rows": [{"name", "threads", "us",
"gbps", "cpu_gbps", "gflops", "cpu_gflops"}]}.
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def timed(fn, min_time):
    for _ in range(20):
        fn()
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        for _ in range(50):
            fn()
        n += 50
        t, c = time.perf_counter() - t0, time.process_time() - c0
        if t >= min_time:
            return t / n, c / n


def ops():
    torch.manual_seed(0)
    rows, c = 197, 192
    x, dy = torch.randn(rows, c), torch.randn(rows, c)
    y = torch.empty(rows, c)
    w, b = torch.randn(c), torch.randn(c)
    out = [
        ("softmax/197x192", 8 * rows * c, 0, lambda: torch.softmax(x, -1, out=y)),
        ("layernorm/197x192", 8 * rows * c, 0, lambda: F.layer_norm(x, (c,), w, b, 1e-6)),
        ("gelu/197x192", 8 * rows * c, 0, lambda: F.gelu(x)),
        ("gelu_backward/197x192", 12 * rows * c, 0, lambda: torch.ops.aten.gelu_backward(dy, x)),
    ]
    for h, wd, ch in [(14, 14, 192), (56, 56, 96)]:
        for k in (3, 5):
            xi = torch.randn(1, ch, h, wd)
            xl = xi.contiguous(memory_format=torch.channels_last)
            wt, bias = torch.randn(ch, 1, k, k), torch.randn(ch)
            name = f"dwconv{k}x{k}/{h}x{wd}x{ch}"
            nbytes, flops = 8 * h * wd * ch, 2 * k * k * h * wd * ch
            out.append((name + "/nchw", nbytes, flops,
                        lambda xi=xi, wt=wt, bias=bias, k=k: F.conv2d(xi, wt, bias, padding=k // 2, groups=xi.shape[1])))
            out.append((name + "/nhwc", nbytes, flops,
                        lambda xl=xl, wt=wt, bias=bias, k=k: F.conv2d(xl, wt, bias, padding=k // 2, groups=xl.shape[1])))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    table = ops()
    res = {}
    with torch.no_grad():
        for _ in range(args.rounds):
            for th in [int(t) for t in args.threads.split(",")]:
                torch.set_num_threads(th)
                for name, nbytes, flops, fn in table:
                    wall, cpu = timed(fn, args.min_time)
                    res.setdefault((name, th), []).append((wall, cpu))
    rows = []
    for (name, th), runs in res.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs) / th
        nbytes, flops = next((b, f) for n, b, f, _ in table if n == name)
        row = {"name": name, "threads": th, "us": wall * 1e6, "gbps": nbytes / wall / 1e9,
               "cpu_gbps": nbytes / cpu / 1e9 if cpu > 0 else None}
        if flops:
            row["gflops"] = flops / wall / 1e9
            row["cpu_gflops"] = flops / cpu / 1e9 if cpu > 0 else None
        rows.append(row)
    print(json.dumps({"torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
