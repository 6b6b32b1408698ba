#!/usr/bin/python3
"""PyTorch inference timings of the PVT and CSwin families at 224x224, for
docs/pvt-cswin.md's "Against PyTorch" section (scripts/compare-pvt-cswin.sh
runs it interleaved with `slab bench`).

Run it with the fair set-up of docs/peers.md:

    env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=PASSIVE \
      LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
      /usr/bin/python3 tools/reference/pvt_cswin_bench.py --rounds 10 --batches 1

The models are pvt_cswin_models.py's PVTRef and CSwinRef: our PyTorch
re-implementation of the official module trees (slab_pvt.py: patch
embeddings with their norm, pos_embed, q + kv SLA with positional encoding
and DWC, or spatial-reduction softmax attention; slab_cswin.py: conv stem,
SLA + LePE stages, cross-shaped stripes, global softmax, merges; the
official LinearNorm in eval = its RepBN branch, BatchNorm1d between two
transposes), with the configurations of slab's registry (models/pvt and
models/cswin config.go; CONFIGS below uses the Go Config's field names, so
`slab info NAME --json` prints the same dict), float32, eval mode,
torch.inference_mode, torch.set_num_threads(THREADS), random weights with
non-trivial BN statistics. As the official code they are not folded (it
has no fold). Models are interleaved round by round (each round times
every model once, after WARMUP untimed calls each); the median over rounds
is reported. Output: one JSON object {"rows": [{"group", "name", "batch",
"median_ms", "p90_ms", "runs", "params"}], "configs": {name: config},
"pytorch": {...}}.

    --export-pth DIR   writes DIR/NAME.pth (the state dict as {"model": sd})
                       and DIR/NAME.safetensors (one input, float32 eval
                       logits of this float32 model) instead of timing, for
                       `slab import` + `slab run` on the same weights.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402
import pvt_cswin_models as PC  # noqa: E402
import swin_bench  # noqa: E402

# reference.py asks for deterministic kernels and one thread, which fixture
# generation needs and a timing must not pay for
torch.use_deterministic_algorithms(False)


def pvt224(stages, norm, depths):
    return {"ImgSize": 224, "InChans": 3, "Classes": 1000, "Patches": [4, 2, 2, 2], "Dims": [64, 128, 320, 512],
            "Heads": [1, 2, 5, 8], "MLPRatios": [8, 8, 4, 4], "Depths": depths, "SRRatios": [8, 4, 2, 1],
            "Stages": stages, "Norm": norm, "LNEps": 1e-6, "Step": 300000, "DWCKernel": 5}


def cswin224(depths):
    return {"ImgSize": 224, "InChans": 3, "Classes": 1000, "StemKernel": 7, "StemStride": 4, "StemPad": 2,
            "Dim": 64, "Depths": depths, "Heads": [2, 4, 8, 16], "Splits": [1, 2, 7, 7], "Stages": "LLSS",
            "MLPRatio": 4, "Norm": "prepbn", "LNEps": 1e-5, "Step": 120000, "DWCKernel": 5}


T, S = [2, 2, 2, 2], [3, 4, 6, 3]
# name: (module class, config); names follow slab's registry
CONFIGS = {
    "slab_pvt_tiny": (PC.PVTRef, pvt224("LLLL", "prepbn", T)),
    "pvt_tiny_prepbn": (PC.PVTRef, pvt224("SSSS", "prepbn", T)),
    "pvt_tiny": (PC.PVTRef, pvt224("SSSS", "layernorm", T)),
    "slab_pvt_small": (PC.PVTRef, pvt224("LLLL", "prepbn", S)),
    "pvt_small_prepbn": (PC.PVTRef, pvt224("SSSS", "prepbn", S)),
    "pvt_small": (PC.PVTRef, pvt224("SSSS", "layernorm", S)),
    "slab_cswin_tiny": (PC.CSwinRef, cswin224([2, 4, 18, 1])),
}


def build(name, seed=0):
    cls, c = CONFIGS[name]
    torch.manual_seed(seed)
    m = cls(c)
    R.perturb(m, R.gen(seed + 5))
    return m.float().eval()


def params(m):
    return sum(p.numel() for p in m.parameters())


def time_group(group, variants, x, rounds, warmup):
    """swin_bench's interleaved timing, each row with its module's parameter count."""
    rows = swin_bench.time_group(group, variants, x, rounds, warmup)
    for row, (_, m) in zip(rows, variants):
        row["params"] = params(m)
    return rows


def export_pth(out, names):
    """NAME.pth + NAME.safetensors (input, logits) per model, for slab import / run."""
    os.makedirs(out, exist_ok=True)
    for n in names:
        m = build(n)
        g = R.gen(11)
        with torch.no_grad():
            # pos_embed and positional_encoding non-zero, so a mix-up of the
            # two cannot hide; the random Linears are scaled down so that the
            # residual stream stays O(1) under random BN statistics and a
            # float32 comparison at 1e-4 means something
            for pn, p in m.named_parameters():
                if pn.startswith("pos_embed"):
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
                elif p.dim() == 2 and (pn.endswith("q.weight") or pn.endswith("kv.weight") or pn.endswith("qkv.weight")):
                    p.mul_(0.25)
        x = R.randn(R.gen(12), 1, 3, 224, 224)
        with torch.inference_mode():
            y = m(x)
        torch.save({"model": m.state_dict()}, os.path.join(out, n + ".pth"))
        R.write_safetensors(os.path.join(out, n + ".safetensors"), {"input": x, "logits": y})
        print(f"{n}: {params(m)} parameters, logits max |.| {y.abs().max().item():.3g}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description="PyTorch PVT / CSwin timings for docs/pvt-cswin.md")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--models", default=",".join(CONFIGS))
    ap.add_argument("--export-pth", metavar="DIR", help="write NAME.pth + NAME.safetensors instead of timing")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = a.models.split(",")
    for n in names:
        if n not in CONFIGS:
            sys.exit(f"pvt_cswin_bench.py: --models: no model {n!r} (have {', '.join(CONFIGS)})")
    if a.export_pth:
        export_pth(a.export_pth, names)
        return
    variants = [(n, build(n)) for n in names]
    rows = []
    for b in (int(s) for s in a.batches.split(",")):
        torch.manual_seed(1)
        x = torch.randn(b, 3, 224, 224)
        for r in time_group(f"pvt_cswin/B{b}", variants, x, a.rounds, a.warmup):
            rows.append(dict(r, batch=b))
        print(f"pvt_cswin_bench.py: B{b} done", file=sys.stderr)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
            "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "rounds": a.rounds}
    json.dump({"pytorch": info, "configs": {n: CONFIGS[n][1] for n in names}, "rows": rows}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
