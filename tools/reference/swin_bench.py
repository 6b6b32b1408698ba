#!/usr/bin/python3
"""PyTorch inference timings of the Swin family at 224x224 and of the SLA
block at Swin's stage-1 shapes, for docs/swin.md's Speed section
(scripts/compare-swin.sh runs it interleaved with slab).

Run it with the fair set-up of docs/peers.md:

    env -u OPENBLAS_CORETYPE \
      LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
      /usr/bin/python3 tools/reference/swin_bench.py --rounds 10 --batches 1

The models are swin_reference.py's SwinRef: our PyTorch re-implementation
of the official module tree (slab_swin.py, swin_transformer.py,
flatten_swin.py: roll + window_partition, relative position bias table,
the -100 shift mask, BatchNorm1d between two transposes for RepBN, the
official LinearNorm in eval = its RepBN branch, FLatten's focused linear
attention), float32, eval mode, torch.inference_mode,
torch.set_num_threads(THREADS), random weights with non-trivial BN
statistics. As the official code they are not folded (it has no fold).
Variants of one group are interleaved round by round (each round times
every variant once, after WARMUP untimed calls each); the median over
rounds is reported. Output: one JSON object {"rows": [{"group", "name",
"batch", "median_ms", "p90_ms", "runs"}], "pytorch": {...}}.

Rows (names follow slab's registry):
  slab_swin_tiny, slab_swin_small      PRepBN (LinearNorm), SLA stages 1-2 (LLSS)
  swin_tiny, swin_small                LayerNorm, shifted window-7 softmax
  flatten_swin_tiny, flatten_swin_small  LayerNorm, focused linear attention (LLSS)
  swin_tiny_prepbn                     bare RepBN, window-7 softmax
  attn/sla/3136                        one SLA module (qkv, SLA, 5x5 DWC, proj),
                                       dim 192, 3 heads, 56x56 tokens, batch 1
                                       (nn's BenchmarkAttentionBlock)
  attn/sla96/3136                      the same at Swin-T's stage 1: dim 96, 3 heads of 32
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
import swin_reference as S  # noqa: E402

torch.use_deterministic_algorithms(False)

SMALL = dict(S.FULL, depths=[2, 2, 18, 2])
MODELS = {
    "slab_swin_tiny": dict(S.FULL, norm="prepbn", stages="LLSS", linear="sla", windows=[56, 56, 7, 7]),
    "swin_tiny": dict(S.FULL, norm="layernorm", stages="SSSS", linear="", windows=[7, 7, 7, 7]),
    "flatten_swin_tiny": dict(S.FULL, norm="layernorm", stages="LLSS", linear="focused", windows=[56, 56, 7, 7]),
    "swin_tiny_prepbn": dict(S.FULL, norm="repbn", stages="SSSS", linear="", windows=[7, 7, 7, 7]),
    "slab_swin_small": dict(SMALL, norm="prepbn", stages="LLSS", linear="sla", windows=[56, 56, 7, 7]),
    "swin_small": dict(SMALL, norm="layernorm", stages="SSSS", linear="", windows=[7, 7, 7, 7]),
    "flatten_swin_small": dict(SMALL, norm="layernorm", stages="LLSS", linear="focused", windows=[56, 56, 7, 7]),
}


def build(name, seed=0):
    torch.manual_seed(seed)
    m = S.SwinRef(MODELS[name])
    R.perturb(m, R.gen(seed + 5))
    return m.float().eval()


def time_group(group, variants, x, rounds, warmup):
    """Interleaved timing of (name, module) pairs on input x; returns rows."""
    times = {n: [] for n, _ in variants}
    with torch.inference_mode():
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


def main():
    ap = argparse.ArgumentParser(description="PyTorch Swin timings for docs/swin.md")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--skip-models", action="store_true")
    ap.add_argument("--skip-attn", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    if not a.skip_models:
        variants = [(n, build(n)) for n in a.models.split(",")]
        for b in (int(s) for s in a.batches.split(",")):
            torch.manual_seed(1)
            x = torch.randn(b, 3, 224, 224)
            for r in time_group(f"swin/B{b}", variants, x, a.rounds, a.warmup):
                rows.append(dict(r, batch=b))
            print(f"swin_bench.py: B{b} done", file=sys.stderr)
    if not a.skip_attn:
        variants = []
        for name, dim in (("attn/sla/3136", 192), ("attn/sla96/3136", 96)):
            torch.manual_seed(2)
            m = R.SLA(dim, 3, 56, 56, 5)
            R.perturb(m, R.gen(7))
            variants.append((name, m.eval(), dim))
        for name, m, dim in variants:
            torch.manual_seed(3)
            for r in time_group("attn", [(name, m)], torch.randn(1, 3136, dim), a.rounds * 5, 3):
                rows.append(dict(r, batch=1))
        print("swin_bench.py: attention done", file=sys.stderr)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
            "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "rounds": a.rounds}
    json.dump({"pytorch": info, "rows": rows}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
