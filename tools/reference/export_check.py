#!/usr/bin/python3
"""PyTorch's check of `slab export` (cmd/slab/export_test.go, docs/export.md).

For every case that the Go test wrote into DIR (cases.json: the exported
.pth, the wrap key, the slab config, slab's eval logits on reference.py's
formula input), build reference.py's DeiT with the official parameter names
from the config, torch.load the exported file, load_state_dict(strict=True)
(any missing, unexpected or mis-shaped key raises), run it in float64 in
eval mode on the same formula input and compare with slab's logits. The
result -- per-key dtype, shape and sums of what PyTorch loaded, PyTorch's
logits, slab's logits and their largest difference -- goes to OUT
(default testdata/export/expected.json), which the Go test then checks
without Python.

    cd cmd/slab && SLAB_EXPORT_DIR=/tmp/export go test -run TestExportPyTorch .
    /usr/bin/python3 tools/reference/export_check.py /tmp/export

The 224px pair of docs/export.md goes through the same script (--out
elsewhere, --tol to fail above a tolerance).

Needs Debian's python3-torch and python3-numpy.
"""

import argparse
import importlib.util
import json
import os
import sys

import torch

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
spec = importlib.util.spec_from_file_location("reference", os.path.join(root, "tools", "reference", "reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}


def ref_config(c):
    """reference.py's config dict from slab's vit.Config JSON."""
    return dict(img=c["ImgSize"], patch=c["Patch"], in_chans=c["InChans"], classes=c["Classes"], dim=c["Dim"],
                depth=c["Depth"], heads=c["Heads"], mlp_ratio=c["MLPRatio"], ln_eps=c["LNEps"], step=c["Step"],
                warm=c["Warm"], kernel=c["DWCKernel"], norm=c["Norm"], attn=c["Attn"], cls=c["ClsToken"])


def check(dirname, case, batch):
    cfg = ref_config(case["config"])
    m = ref.DeiT(cfg)
    obj = torch.load(os.path.join(dirname, case["pth"]))
    sd = obj[case["wrap"]] if case["wrap"] else obj
    # The record first (strict=False reports instead of raising), then the
    # proof: strict=True raises on any missing, unexpected or mis-shaped key.
    probe = ref.DeiT(cfg)
    r = probe.load_state_dict(sd, strict=False)
    missing = [f"missing {k}" for k in r.missing_keys] + [f"unexpected {k}" for k in r.unexpected_keys]
    m.load_state_dict(sd, strict=True)
    m = m.double().eval()
    x = ref.formula_input(batch, cfg["in_chans"], cfg["img"], cfg["img"]).double()
    with torch.no_grad():
        logits = m(x)
    slab = torch.tensor(case["slab_logits"], dtype=torch.float64)
    diff = (logits - slab).abs().max().item()
    keys = {k: {"dtype": DTYPES[v.dtype], "shape": list(v.shape), "sum": v.double().sum().item(),
                "abs_sum": v.double().abs().sum().item()} for k, v in sd.items()}
    print(f"{case['name']:20s} {len(sd):4d} keys, strict load ok, norm {cfg['norm']:9s} attn {cfg['attn']:7s} "
          f"logits max |slab - torch| = {diff:.3g} (max |logit| {logits.abs().max().item():.3g})")
    return {"name": case["name"], "wrap": case["wrap"], "config": cfg, "keys": keys, "missing_or_unexpected": missing,
            "torch_logits": logits.tolist(), "slab_logits": case["slab_logits"], "max_abs_diff": diff,
            "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="directory the Go test wrote (cases.json and the exported .pth files)")
    ap.add_argument("--out", default=os.path.join(root, "testdata", "export", "expected.json"))
    ap.add_argument("--tol", type=float, default=1e-4, help="fail when a logit differs by more")
    a = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(a.dir, "cases.json")) as f:
        spec_ = json.load(f)
    out = {"batch": spec_["batch"], "cases": [check(a.dir, c, spec_["batch"]) for c in spec_["cases"]]}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    worst = max(c["max_abs_diff"] for c in out["cases"])
    print(f"wrote {a.out}; worst logit difference {worst:.3g} (tolerance {a.tol:g})")
    if worst > a.tol:
        sys.exit(1)


if __name__ == "__main__":
    main()
