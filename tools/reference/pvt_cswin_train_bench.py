#!/usr/bin/python3
"""PyTorch training throughput of the PVT and CSwin Fashion-MNIST minis, for
the slab-vs-PyTorch training rows of docs/pvt-cswin.md and BENCHMARKS.md
(scripts/compare-pvt-cswin.sh runs it interleaved with `slab train`).

The models are pvt_cswin_models.py's re-implementation of the official
module trees (PVTRef, CSwinRef) with the minis' configurations
(models/pvt/config.go mini32, models/cswin/config.go slab_cswin_mini_32:
28x28 images zero-padded to 32x32, widths 16-32-64-128); the step is slab
train's: forward, label-smoothed cross-entropy, backward, global-norm
clipping at 5, AdamW (weight decay 0.05 on weights only), on one in-memory
batch (no data loader, no augmentation: this flatters PyTorch slightly;
slab's figure includes both). The PRepBN models run with lambda in (0, 1),
as during the first 80 % of a run (both branches computed). Run it with
docs/peers.md's set-up:

    env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=PASSIVE \
      LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
      /usr/bin/python3 tools/reference/pvt_cswin_train_bench.py --steps 20

Prints one JSON object: images/s, ms and CPU-ms (all threads) per step and
the parameter count per model.
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pvt_cswin_models as PC  # noqa: E402


def pvt_mini(stages, norm):
    return {"ImgSize": 32, "InChans": 1, "Classes": 10, "Patches": [2, 2, 2, 2], "Dims": [16, 32, 64, 128],
            "Heads": [1, 2, 4, 8], "MLPRatios": [4, 4, 4, 4], "Depths": [2, 2, 2, 2], "SRRatios": [4, 2, 2, 1],
            "Stages": stages, "Norm": norm, "LNEps": 1e-6, "DWCKernel": 5}


# name: (module class, config without Step); names follow slab's registry
MODELS = {
    "slab_pvt_mini_32": (PC.PVTRef, pvt_mini("LLLL", "prepbn")),
    "pvt_mini_prepbn_32": (PC.PVTRef, pvt_mini("SSSS", "prepbn")),
    "pvt_mini_32": (PC.PVTRef, pvt_mini("SSSS", "layernorm")),
    "slab_cswin_mini_32": (PC.CSwinRef, {
        "ImgSize": 32, "InChans": 1, "Classes": 10, "StemKernel": 3, "StemStride": 2, "StemPad": 1, "Dim": 16,
        "Depths": [1, 2, 2, 1], "Heads": [1, 2, 4, 8], "Splits": [1, 2, 2, 2], "Stages": "LLSS", "MLPRatio": 4,
        "Norm": "prepbn", "LNEps": 1e-5, "DWCKernel": 5}),
}


def no_decay(name, p):
    return (p.ndim <= 1 or name.endswith(".bias") or "norm" in name or name.endswith("alpha")
            or name.startswith("pos_embed"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # reference.py (imported by pvt_cswin_models) asks for deterministic
    # kernels, which fixture generation needs and a timing must not pay for
    torch.use_deterministic_algorithms(False)
    torch.manual_seed(0)
    # the minis zero-pad 28x28 images to 32x32 inside Forward
    x = F.pad(torch.randn(args.batch, 1, 28, 28), (2, 2, 2, 2))
    y = torch.randint(0, 10, (args.batch,))
    out = {"threads": args.threads, "batch": args.batch, "steps": args.steps, "torch": torch.__version__,
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""), "models": {}, "configs": {}}
    for name in args.models.split(","):
        if name not in MODELS:
            sys.exit(f"pvt_cswin_train_bench.py: --models: no model {name!r} (have {', '.join(MODELS)})")
        cls, c = MODELS[name]
        out["configs"][name] = c
        # a long schedule: lambda stays in (0, 1), both PRepBN branches run
        m = cls(dict(c, Step=1 << 30)).float()
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
                               "cpu_ms_per_step": 1000 * dc / args.steps,
                               "params": sum(p.numel() for p in m.parameters())}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
