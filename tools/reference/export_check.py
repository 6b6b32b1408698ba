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
elsewhere, --tol to fail above a tolerance). --pair checks a CLI round
trip instead: an official checkpoint written by reference.py --pth-full,
`slab import`-ed and `slab export`-ed, must hold exactly the original's
tensors, load with strict=True and give reference.py's stored logits:

    /usr/bin/python3 tools/reference/export_check.py --pair slab_deit_tiny EXPORTED.pth DIR

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
sys.path.insert(0, os.path.join(root, "tools", "reference"))
import llama_ref  # noqa: E402

DTYPES = {torch.float32: "F32", torch.int64: "I64", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}


def ref_config(c):
    """reference.py's config dict from slab's vit.Config JSON."""
    return dict(img=c["ImgSize"], patch=c["Patch"], in_chans=c["InChans"], classes=c["Classes"], dim=c["Dim"],
                depth=c["Depth"], heads=c["Heads"], mlp_ratio=c["MLPRatio"], ln_eps=c["LNEps"], step=c["Step"],
                warm=c["Warm"], kernel=c["DWCKernel"], norm=c["Norm"], attn=c["Attn"], cls=c["ClsToken"])


def build(case):
    """Our PyTorch reference with official names for a case, and its input."""
    c = case["config"]
    if case.get("family") == "llama":
        assert c["Attn"] == "softmax" and not c["Tied"], "llama_ref.py has softmax attention and an untied head"
        cfg = dict(vocab=c["Vocab"], dim=c["Dim"], layers=c["Layers"], heads=c["Heads"], kv_heads=c["KVHeads"],
                   head_dim=c["HeadDim"], hidden=c["Hidden"], eps=c["Eps"], rope_base=c["RopeBase"], warm=c["Warm"],
                   step=c["Step"], norm=c["Norm"])
        n = case["batch"] * case["seq"]
        ids = torch.tensor([(i * 7919) % cfg["vocab"] for i in range(n)]).reshape(case["batch"], case["seq"])
        make = lambda: llama_ref.Decoder(cfg, c["Norm"], c["RepBNInit"])  # noqa: E731
        return cfg, make, ids, lambda logits: logits.reshape(n, -1)
    cfg = ref_config(c)
    x = ref.formula_input(case["batch"], cfg["in_chans"], cfg["img"], cfg["img"]).double()
    return cfg, lambda: ref.DeiT(cfg), x, lambda logits: logits


def check(dirname, case):
    cfg, make, x, rows = build(case)
    m = make()
    obj = torch.load(os.path.join(dirname, case["pth"]))
    sd = obj[case["wrap"]] if case["wrap"] else obj
    # The record first (strict=False reports instead of raising), then the
    # proof: strict=True raises on any missing, unexpected or mis-shaped key.
    r = make().load_state_dict(sd, strict=False)
    missing = [f"missing {k}" for k in r.missing_keys] + [f"unexpected {k}" for k in r.unexpected_keys]
    m.load_state_dict(sd, strict=True)
    m = m.double().eval()
    with torch.no_grad():
        logits = rows(m(x))
    slab = torch.tensor(case["slab_logits"], dtype=torch.float64)
    diff = (logits - slab).abs().max().item()
    keys = {k: {"dtype": DTYPES[v.dtype], "shape": list(v.shape), "sum": v.double().sum().item(),
                "abs_sum": v.double().abs().sum().item()} for k, v in sd.items()}
    print(f"{case['name']:20s} {len(sd):4d} keys, strict load ok, norm {cfg['norm']:9s} "
          f"logits max |slab - torch| = {diff:.3g} (max |logit| {logits.abs().max().item():.3g})")
    return {"name": case["name"], "wrap": case["wrap"], "config": cfg, "keys": keys, "missing_or_unexpected": missing,
            "torch_logits": logits.tolist(), "slab_logits": case["slab_logits"], "max_abs_diff": diff,
            "torch": torch.__version__}


def read_safetensors(path):
    """{name: tensor} of a safetensors file (F32/I64 only, as reference.py writes)."""
    import struct
    import numpy as np
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    out = {}
    for k, v in h.items():
        lo, hi = v["data_offsets"]
        dt = {"F32": "<f4", "I64": "<i8"}[v["dtype"]]
        out[k] = torch.from_numpy(np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=dt).reshape(v["shape"]).copy())
    return out


def pair(name, exported, refdir, tol):
    """A CLI round trip of reference.py's official NAME.pth (see the doc)."""
    cfg = ref.OFFICIAL[name]
    orig = torch.load(os.path.join(refdir, name + ".pth"))["model"]
    obj = torch.load(exported)
    sd = obj["model"] if "model" in obj else obj
    assert sorted(sd) == sorted(orig), (set(sd) ^ set(orig))
    for k in orig:
        assert sd[k].dtype == orig[k].dtype and sd[k].shape == orig[k].shape and torch.equal(sd[k], orig[k]), k
    m = ref.DeiT(cfg)
    m.load_state_dict(sd, strict=True)
    m = m.double().eval()
    want = read_safetensors(os.path.join(refdir, name + "_logits.safetensors"))
    with torch.no_grad():
        got = m(want["input"].double())
    diff = (got - want["logits"].double()).abs().max().item()
    print(f"{name}: {len(sd)} tensors identical to the original (dtype, shape, values), strict load ok, "
          f"logits max |export - original| = {diff:.3g} (max |logit| {got.abs().max().item():.3g})")
    if diff > tol:
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", nargs="+", help="directory the Go test wrote (cases.json and the exported .pth files); with --pair: EXPORTED.pth DIR")
    ap.add_argument("--pair", metavar="NAME", help="check a CLI round trip of reference.py's official NAME.pth")
    ap.add_argument("--out", default=os.path.join(root, "testdata", "export", "expected.json"))
    ap.add_argument("--tol", type=float, default=1e-4, help="fail when a logit differs by more")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.pair:
        if len(a.dir) != 2:
            ap.error("--pair takes EXPORTED.pth and the directory of the original")
        pair(a.pair, a.dir[0], a.dir[1], a.tol)
        return
    a.dir = a.dir[0]
    with open(os.path.join(a.dir, "cases.json")) as f:
        spec_ = json.load(f)
    out = {"batch": spec_["batch"], "cases": [check(a.dir, c) for c in spec_["cases"]]}
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
