#!/usr/bin/python3
"""PyTorch training throughput of the 28x28 models of the main job, for the
slab-vs-PyTorch training row of BENCHMARKS.md.

Same architecture as slab's slab_deit_mini_28 / deit_mini_28 (reference.py's
DeiT: dim 64, depth 4, 2 heads, patch 4 -> 7x7 tokens, mean pooling), the
same step as slab train (forward, label-smoothed cross-entropy, backward,
global-norm clipping at 5, AdamW lr 1e-3 wd 0.05), batch 128 of in-memory
images (no data loader: this flatters PyTorch slightly, slab's figure
includes its augmentation). Run it with docs/peers.md's set-up:

    env -u OPENBLAS_CORETYPE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
      /usr/bin/python3 tools/reference/train_bench.py --steps 50

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
import reference  # noqa: E402

MODELS = {
    "slab_deit_mini_28": ("prepbn", "sla"),
    "deit_mini_28": ("layernorm", "softmax"),
}


def config(norm, attn, step):
    return dict(img=28, patch=4, in_chans=1, classes=10, dim=64, depth=4, heads=2,
                mlp_ratio=4, cls=False, norm=norm, attn=attn, ln_eps=1e-6,
                step=step, warm=0, kernel=5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    out = {"threads": args.threads, "batch": args.batch, "steps": args.steps,
           "torch": torch.__version__, "models": {}}
    for name, (norm, attn) in MODELS.items():
        m = reference.DeiT(config(norm, attn, 10 * (args.steps + args.warmup)))
        m.train()
        decay = [p for n, p in m.named_parameters() if not reference.no_decay(n, p)]
        rest = [p for n, p in m.named_parameters() if reference.no_decay(n, p)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                                 {"params": rest, "weight_decay": 0.0}], lr=1e-3)

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
                               # CPU time of all threads per step (OpenMP spin
                               # included): on a loaded machine the wall
                               # clock measures the scheduler, this does not.
                               "cpu_ms_per_step": 1000 * dc / args.steps}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
