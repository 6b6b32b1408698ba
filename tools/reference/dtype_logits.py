#!/usr/bin/python3
"""Logit error of slab's low-precision weights on imported DeiTs (issue 17's
"imported DeiT logits' relative error per dtype").

For every model ort_export.py wrote into DIR (NAME.pth: our PyTorch reference's
seeded random weights in the official layout, and PyTorch's float32 logits on a
batch of B images), runs `slab run --weights NAME.pth --model NAME --dtype D`
for each dtype on the same images and compares the logits with PyTorch's:
relative L2 error over the batch, the largest error relative to the largest
logit, and how many images keep PyTorch's top-1 class. float32 shows what the
engine itself adds; bf16 and int8 what the stored weights (and, in batched
GEMMs, the bf16-rounded or 8-bit activations) add on top.

    /usr/bin/python3 tools/reference/dtype_logits.py --dir DIR --slab ./slab [--batch 32] [--dtypes f32,bf16,int8]

Needs python3-numpy only (the safetensors output is parsed here).
"""
import argparse
import json
import os
import struct
import subprocess
import tempfile

import numpy as np


def read_tensor(path, name):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    t = head[name]
    lo, hi = t["data_offsets"]
    assert t["dtype"] == "F32", t["dtype"]
    return np.frombuffer(raw[8 + n + lo:8 + n + hi], dtype=np.float32).reshape(t["shape"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="ort_export.py's output directory")
    ap.add_argument("--slab", default="./slab")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dtypes", default="f32,bf16,int8")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    with open(os.path.join(a.dir, "manifest.json")) as f:
        manifest = json.load(f)
    dtypes = a.dtypes.split(",")
    print("| model | " + " | ".join(f"{d}: rel. L2 / max rel. / same top-1" for d in dtypes) + " |")
    print("|---|" + "---|" * len(dtypes))
    with tempfile.TemporaryDirectory() as tmp:
        for name in manifest["models"]:
            x = os.path.join(a.dir, f"{name}_b{a.batch}_input.safetensors")
            ref = np.fromfile(os.path.join(a.dir, f"{name}_b{a.batch}_torch.f32"), dtype=np.float32).reshape(a.batch, -1)
            cells = []
            for d in dtypes:
                out = os.path.join(tmp, f"{name}.{d}.safetensors")
                subprocess.run([a.slab, "run", "--weights", os.path.join(a.dir, f"{name}.pth"), "--model", name,
                                "--dtype", d, "--input", x, "--output", out, "--threads", str(a.threads), "--force"],
                               check=True, stdout=subprocess.DEVNULL)
                y = read_tensor(out, "logits")
                rel = np.linalg.norm(y - ref) / np.linalg.norm(ref)
                mx = np.abs(y - ref).max() / np.abs(ref).max()
                same = int((y.argmax(1) == ref.argmax(1)).sum())
                cells.append(f"{rel:.1e} / {mx:.1e} / {same}/{a.batch}")
            print(f"| `{name}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
