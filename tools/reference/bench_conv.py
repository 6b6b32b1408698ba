#!/usr/bin/python3
"""PyTorch's conv2d on the shapes of nn's BenchmarkConv2d, for docs/bench-conv.md.

Run it with the fair set-up of docs/peers.md, right after the Go benchmark:

    env -u OPENBLAS_CORETYPE \\
      LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \\
      /usr/bin/python3 tools/reference/bench_conv.py --rounds 7 --threads 2

(and --threads 1: the Go benchmark runs both thread counts).

Shapes (batch 1, float32): CSwin-T's stem, images [1,3,224,224],
Conv2d(3, 64, 7, stride 4, padding 2); its first merge, [1,64,56,56],
Conv2d(64, 128, 3, stride 2, padding 1). forward = F.conv2d under no_grad;
backward = autograd of conv2d from a fixed output gradient: weight and bias
gradients for the stem (the image needs none), input, weight and bias for
the merge, as the Go benchmark. Flops as Go counts them: forward
2*OH*OW*out*in*k*k, backward twice that (the stem's once).
Every round times every case call by call for at least --min-time seconds
after warm-up. Reported: the median call over all rounds by the wall clock (on
a loaded shared machine a few calls wait tens of milliseconds for a
descheduled OpenMP thread, so the mean says more about the scheduler than
about the kernel; the Go benchmark reports its median too), and the mean per
CPU-second of the process times the thread count ("cpu_gflops"; OpenMP
spin-waiting counts as CPU time, being preempted does not). Backward is
timed as forward-with-graph plus backward, minus the forward-with-graph
timed alone. Output: one JSON object.
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = [  # name, in, out, k, stride, pad, size, input gradient
    ("stem", 3, 64, 7, 4, 2, 224, False),
    ("merge", 64, 128, 3, 2, 1, 56, True),
]


def cases():
    g = torch.Generator().manual_seed(5)
    for name, cin, cout, k, s, p, n, dx in SHAPES:
        x = torch.randn(1, cin, n, n, generator=g)
        w = torch.randn(cout, cin, k, k, generator=g) * 0.05
        b = torch.zeros(cout)
        o = (n + 2 * p - k) // s + 1
        flop = 2.0 * o * o * cout * cin * k * k

        def fwd(x=x, w=w, b=b, s=s, p=p):
            with torch.no_grad():
                F.conv2d(x, w, b, stride=s, padding=p)

        xg = x.clone().requires_grad_(dx)
        wg, bg = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        y = F.conv2d(xg, wg, bg, stride=s, padding=p)
        dy = torch.randn(y.shape, generator=g)

        def bwd(xg=xg, wg=wg, bg=bg, s=s, p=p, dy=dy):
            # The forward is needed to build the graph; time it apart and subtract.
            y = F.conv2d(xg, wg, bg, stride=s, padding=p)
            y.backward(dy)
            xg.grad = wg.grad = bg.grad = None

        def graph_fwd(xg=xg, wg=wg, bg=bg, s=s, p=p):
            F.conv2d(xg, wg, bg, stride=s, padding=p)

        yield f"{name}/forward", flop, fwd, None
        yield f"{name}/backward", flop * (2 if dx else 1), bwd, graph_fwd


def calls(f, min_time):
    """Per-call wall times of f for at least min_time seconds, and the CPU time of all."""
    ts, t0, c0 = [], time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < min_time:
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return ts, time.process_time() - c0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cs = list(cases())
    for _, _, f, g in cs:  # warm-up
        for _ in range(10):
            f()
            if g:
                g()
    res = {name: ([], [], 0.0) for name, *_ in cs}
    for _ in range(a.rounds):
        for name, flop, f, g in cs:
            ts, cpu = calls(f, a.min_time)
            ws, cs_ = res[name][0], res[name][1]
            ws.extend(ts)
            if g:  # the forward that builds the graph, timed apart and subtracted
                gs, gcpu = calls(g, a.min_time)
                cs_.extend(gs)
                cpu -= gcpu * len(ts) / len(gs)
            res[name] = (ws, cs_, res[name][2] + cpu / len(ts))
    rows = []
    for name, flop, _, g in cs:
        ws, gs, cpu = res[name]
        med = statistics.median(ws) - (statistics.median(gs) if g else 0)
        cpu = cpu / a.rounds / a.threads  # per call, per thread
        rows.append({"name": name, "median_ms": 1e3 * med, "gflops": flop / med / 1e9,
                     "cpu_gflops": flop / cpu / 1e9, "calls": len(ws), "rounds": a.rounds})
    print(json.dumps({"threads": a.threads, "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
