#!/usr/bin/python3
"""Exports our PyTorch reference DeiTs to ONNX for the ONNX Runtime comparison
(scripts/compare-ort.sh, docs/bench-lowprec.md "Batch-1 latency vs ONNX Runtime").

For every model (slab registry names) it builds reference.py's DeiT with the
official parameter names, gives it realistic random weights (reference.perturb,
seeded), and writes into OUT:

  NAME.pth              {"model": state_dict}, float32, official layout: what
                        `slab import` reads, so slab runs the very same weights
  NAME_bB.onnx          torch.onnx.export(model, x, f, opset_version=17,
                        do_constant_folding=True) at the fixed batch B
                        (docs/peers.md), input "input", output "logits"
  NAME_bB_input.f32     the check input [B,3,224,224], raw little-endian float32
  NAME_bB_input.safetensors   the same as tensor "input" (for `slab run`)
  NAME_bB_torch.f32     PyTorch's float32 logits on it [B,1000], raw
  NAME_bB_torch64.f32   the float64 forward of the same weights on the first
                        F64ROWS (4) images, rounded to float32
  manifest.json         models, batches, seed, files, torch version

Models: deit_tiny / deit_small (LayerNorm + softmax, cls token) and
slab_deit_tiny / slab_deit_small (PRepBN + SLA, mean pooling). The SLAB models
are exported, timed and checked **folded** (reference.fuse, docs/method.md 2.1),
as slab runs them (`slab import --fuse`, `slab bench` rows without /unfused);
the .pth holds the unfolded official layout.

    /usr/bin/python3 tools/reference/ort_export.py --out DIR [--models deit_tiny,slab_deit_tiny] [--batches 1,32]

Needs Debian's python3-torch and python3-numpy (no onnx package: the exporter
serialises the protobuf itself).
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as R  # noqa: E402

BASE = dict(img=224, patch=16, in_chans=3, classes=1000, dim=192, depth=12, heads=3, mlp_ratio=4,
            ln_eps=1e-6, step=60000, warm=0, kernel=5)
WIDTHS = {"tiny": dict(dim=192, heads=3), "small": dict(dim=384, heads=6)}
# The float64 forward (what each engine's rounding is measured against) runs on
# the first images only: at batch 32 it would cost more than everything else.
F64ROWS = 4
KINDS = {"deit": dict(norm="layernorm", attn="softmax", cls=True),
         "slab_deit": dict(norm="prepbn", attn="sla", cls=False)}


def config(name):
    """reference.py config of a slab registry name (deit_tiny, slab_deit_small, ...)."""
    kind, _, size = name.rpartition("_")
    if kind not in KINDS or size not in WIDTHS:
        raise SystemExit(f"ort_export.py: --models: unknown model {name!r} (want deit_tiny, deit_small, "
                         "slab_deit_tiny or slab_deit_small)")
    return dict(BASE, **WIDTHS[size], **KINDS[kind])


def build(name, seed):
    """The unfolded model with seeded realistic weights, float32, eval mode."""
    cfg = config(name)
    torch.manual_seed(seed)
    m = R.DeiT(cfg)
    R.perturb(m, R.gen(seed + 1))
    with torch.no_grad():
        for n, b in m.named_buffers():
            if n.endswith(".iter"):
                b.fill_(0)  # as the official checkpoints are released
    return m.float().eval()


def deploy(name, m):
    """What is timed: the folded model for the BN-based SLAB DeiTs, the model itself otherwise."""
    return R.fuse(m).eval() if KINDS[name.rpartition("_")[0]]["norm"] != "layernorm" else m


def raw(path, t):
    np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4").tofile(path)


def main():
    ap = argparse.ArgumentParser(description="export the reference DeiTs to ONNX (compare-ort.sh)")
    ap.add_argument("--out", required=True, help="directory for the .pth, .onnx and check files")
    ap.add_argument("--models", default="deit_tiny,slab_deit_tiny,deit_small,slab_deit_small")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--seed", type=int, default=17)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(2)
    batches = [int(s) for s in a.batches.split(",")]
    manifest = {"torch": torch.__version__, "seed": a.seed, "opset": 17, "models": {}}
    for i, name in enumerate(a.models.split(",")):
        seed = a.seed + 100 * i
        m = build(name, seed)
        torch.save({"model": m.state_dict(), "epoch": 299}, os.path.join(a.out, f"{name}.pth"))
        d = deploy(name, m)
        d64 = deploy(name, build(name, seed).double())
        entry = {"pth": f"{name}.pth", "fused": d is not m, "config": config(name), "batches": {}}
        for b in batches:
            stem = os.path.join(a.out, f"{name}_b{b}")
            x = R.randn(R.gen(seed + 2 + b), b, 3, 224, 224)
            with torch.inference_mode():
                y = d(x)
                y64 = d64(x[:F64ROWS].double())
            raw(stem + "_input.f32", x)
            R.write_safetensors(stem + "_input.safetensors", {"input": x})
            raw(stem + "_torch.f32", y)
            raw(stem + "_torch64.f32", y64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about Python ints in shapes
                torch.onnx.export(d, x, stem + ".onnx", opset_version=17, do_constant_folding=True,
                                  input_names=["input"], output_names=["logits"])
            entry["batches"][str(b)] = {"onnx": os.path.basename(stem) + ".onnx", "float64_rows": len(y64),
                                        "torch_vs_float64_max_abs": float((y[:F64ROWS].double() - y64).abs().max()),
                                        "logit_max_abs": float(y64.abs().max())}
            print(f"ort_export.py: {name} B{b}: {stem}.onnx ({os.path.getsize(stem + '.onnx') / 1e6:.1f} MB)",
                  file=sys.stderr)
        manifest["models"][name] = entry
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
