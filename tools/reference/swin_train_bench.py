#!/usr/bin/python3
"""PyTorch training throughput of the Swin Fashion-MNIST minis, for the
slab-vs-PyTorch training row of docs/swin.md and BENCHMARKS.md.

The models are swin_reference.py's re-implementation of the official module
tree (SwinRef) with the minis' configurations (models/swin/config.go:
32x32 input, patch 2, widths 16-32-64-128, depths 2-2-2-2, heads 1-2-4-8,
SLA / focused / window softmax as each name says); the step is slab
train's: forward, label-smoothed cross-entropy, backward, global-norm
clipping at 5, AdamW (weight decay 0.05 on weights only), on one in-memory
batch (no data loader, no augmentation: this flatters PyTorch slightly; slab's
figure includes both). The PRepBN models run with lambda in (0, 1), as
during the first 80 % of a run. Run it with docs/peers.md's set-up:

    env -u OPENBLAS_CORETYPE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
      /usr/bin/python3 tools/reference/swin_train_bench.py --steps 30

Prints one JSON object: images/s, ms and CPU-ms (all threads) per step per
model.
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swin_reference  # noqa: E402

MINI = {"img": 32, "patch": 2, "in_chans": 1, "classes": 10, "depths": [2, 2, 2, 2], "heads": [1, 2, 4, 8],
        "mlp_ratio": 4, "ln_eps": 1e-5, "kernel": 5, "focusing": 3}
GLOBAL, LOCAL = [16, 8, 2, 2], [4, 4, 2, 2]
MODELS = {
    "slab_swin_mini_32": dict(norm="prepbn", stages="LLSS", linear="sla", windows=GLOBAL),
    "swin_mini_32": dict(norm="layernorm", stages="SSSS", linear="", windows=LOCAL),
    "flatten_swin_mini_32": dict(norm="layernorm", stages="LLSS", linear="focused", windows=GLOBAL),
    "swin_mini_prepbn_32": dict(norm="prepbn", stages="SSSS", linear="", windows=LOCAL),
}


def no_decay(name, p):
    return p.ndim <= 1 or name.endswith(".bias") or "norm" in name or name.endswith("alpha")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dim", type=int, default=16, help="stage-1 width (the minis' Dim)")
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # swin_reference (through reference.py) asks for deterministic kernels,
    # which fixture generation needs and a timing must not pay for
    torch.use_deterministic_algorithms(False)
    torch.manual_seed(0)
    # the minis zero-pad 28x28 images to 32x32 inside Forward
    x = F.pad(torch.randn(args.batch, 1, 28, 28), (2, 2, 2, 2))
    y = torch.randint(0, 10, (args.batch,))
    out = {"threads": args.threads, "batch": args.batch, "steps": args.steps, "dim": args.dim,
           "torch": torch.__version__, "models": {}}
    for name in args.models.split(","):
        # a long schedule: lambda stays in (0, 1), both PRepBN branches run
        cfg = dict(MINI, dim=args.dim, step=1 << 30, **MODELS[name])
        m = swin_reference.SwinRef(cfg).float()
        m.train()
        named = list(m.named_parameters())
        opt = torch.optim.AdamW([{"params": [p for n, p in named if not no_decay(n, p)], "weight_decay": 0.05},
                                 {"params": [p for n, p in named if no_decay(n, p)], "weight_decay": 0.0}], lr=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(m(x), y, label_smoothing=0.1)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 5.0)
            opt.step()

        for _ in range(args.warmup):
            step()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        out["models"][name] = {"images_per_s": args.steps * args.batch / dt,
                               "ms_per_step": 1000 * dt / args.steps,
                               "cpu_ms_per_step": 1000 * dc / args.steps}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
