#!/usr/bin/python3
"""PyTorch inference timings of the DeiT / SLAB-DeiT variants and one
attention block, for docs/bench-pytorch.md (scripts/compare-pytorch.sh).

Run it with the fair set-up of docs/peers.md:

    env -u OPENBLAS_CORETYPE \
      LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
      /usr/bin/python3 tools/reference/bench.py --rounds 20

The models are those of reference.py (our own PyTorch SLAB), float32,
eval mode, under torch.inference_mode, torch.set_num_threads(THREADS).
Variants of one group are interleaved round by round (each round times
every variant once, after 3 warm-up calls each) so that machine noise hits
them alike; the median over rounds is reported. Output: one JSON object
{"rows": [{"group", "name", "batch", "median_ms", "p90_ms", "runs"}], ...}.

Rows (names follow slab's registry; "/unfused" = eval-mode RepBN kept):
  deit_tiny                  LayerNorm + softmax, cls token
  deit_tiny_prepbn/unfused   RepBN (eval) + softmax, cls token
  deit_tiny_prepbn           folded BN + softmax (docs/method.md 2.1)
  slab_deit_tiny/unfused     RepBN (eval) + SLA, mean pooling
  slab_deit_tiny             folded BN + SLA
  and the same for deit_small*, slab_deit_small*
  attn/{softmax,sla}/N       one attention module (qkv, attention, proj),
                             dim 192, 3 heads, batch 1, N = 196, 784, 3136
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402

torch.use_deterministic_algorithms(False)

TINY = dict(img=224, patch=16, in_chans=3, classes=1000, dim=192, depth=12, heads=3, mlp_ratio=4,
            ln_eps=1e-6, step=60000, warm=0, kernel=5)
SMALL = dict(TINY, dim=384, heads=6)


def model_variants(base, size):
    """(name, model) pairs of one size: LN softmax, PRepBN softmax unfused/fused, SLAB unfused/fused."""
    out = []
    ln = R.DeiT(dict(base, norm="layernorm", attn="softmax", cls=True))
    out.append((f"deit_{size}", ln))
    rb = R.DeiT(dict(base, norm="repbn", attn="softmax", cls=True))
    perturb(rb)
    out.append((f"deit_{size}_prepbn/unfused", rb))
    out.append((f"deit_{size}_prepbn", R.fuse(rb)))
    sl = R.DeiT(dict(base, norm="prepbn", attn="sla", cls=False))
    perturb(sl)
    out.append((f"slab_deit_{size}/unfused", sl))
    out.append((f"slab_deit_{size}", R.fuse(sl)))
    return [(n, m.eval().float()) for n, m in out]


def perturb(m):
    R.perturb(m, R.gen(5))


def time_group(group, variants, make_input, rounds, warmup=3):
    """Interleaved timing; returns rows."""
    times = {n: [] for n, _ in variants}
    with torch.inference_mode():
        x = make_input()
        for n, m in variants:
            for _ in range(warmup):
                m(x)
        for _ in range(rounds):
            for n, m in variants:
                t0 = time.perf_counter()
                m(x)
                times[n].append((time.perf_counter() - t0) * 1e3)
    rows = []
    for n, _ in variants:
        ts = sorted(times[n])
        rows.append({"group": group, "name": n, "median_ms": statistics.median(ts),
                     "p90_ms": ts[min(len(ts) - 1, int(0.9 * len(ts)))], "runs": len(ts)})
    return rows


def loaded_blas():
    """Path of the BLAS library actually mapped (the OpenMP OpenBLAS build is the fair one)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.split()[-1]}
        return sorted(libs)
    except OSError:
        return []


def main():
    ap = argparse.ArgumentParser(description="PyTorch timings for docs/bench-pytorch.md")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--sizes", default="tiny,small")
    ap.add_argument("--tokens", default="196,784,3136")
    ap.add_argument("--skip-models", action="store_true")
    ap.add_argument("--skip-attn", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = []
    if not a.skip_models:
        for size in a.sizes.split(","):
            variants = model_variants(TINY if size == "tiny" else SMALL, size)
            for b in (int(s) for s in a.batches.split(",")):
                for r in time_group(f"deit_{size}/B{b}", variants, lambda b=b: torch.randn(b, 3, 224, 224), a.rounds):
                    rows.append(dict(r, batch=b))
                print(f"bench.py: {size} B{b} done", file=sys.stderr)
    if not a.skip_attn:
        for n in (int(s) for s in a.tokens.split(",")):
            g = int(round(n ** 0.5))
            variants = [(f"attn/softmax/{n}", R.Attention(192, 3).eval()),
                        (f"attn/sla/{n}", R.SLA(192, 3, g, g, 5).eval())]
            for r in time_group(f"attn/{n}", variants, lambda n=n: torch.randn(1, n, 192), a.rounds):
                rows.append(dict(r, batch=1))
            print(f"bench.py: attention N={n} done", file=sys.stderr)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
            "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "blas": loaded_blas(),
            "rounds": a.rounds}
    json.dump({"pytorch": info, "rows": rows}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
