#!/usr/bin/python3
"""PyTorch's answer for `slab classify` (cmd/slab/classify_test.go).

The model is reference.py's DeiT with slab_deit_tiny's official layout and
config (224px, patch 16, SLA, LinearNorm keys, iter 0 as released, 1000
classes) at width 24 (3 heads of 8) and depth 1, random weights with
realistic statistics (reference.perturb) and a head scaled by HEAD_GAIN so
that the logits spread over several units and the top-5 depends on the image.
Its state dict (official names, float32) goes to
testdata/reference/classify_w24.safetensors (~250 KB). The images are the
committed ones of data/testdata/imagenet; the transform is torchvision's DeiT
eval transform on the PIL image (Resize 256 bicubic, CenterCrop 224, ToTensor,
Normalize with the ImageNet mean and std); the model runs in float64 and the
top-5 of its softmax is written to testdata/reference/classify_w24.json with
the smallest gap between consecutive logits among the first six (what an
input or rounding difference must stay below for the indices to agree).

    /usr/bin/python3 tools/reference/classify_ref.py

Needs Debian's python3-torch, python3-torchvision and python3-pil.
"""
import importlib.util
import json
import os

import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
spec = importlib.util.spec_from_file_location("reference", os.path.join(root, "tools", "reference", "reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

NAME = "classify_w24"
CFG = dict(ref.OFFICIAL["slab_deit_tiny"], dim=24, depth=1)
SEED = 870
HEAD_GAIN = 25.0
PATCH_GAIN = 4.0
IMAGES = ["land.png", "tall.jpg", "tall422.jpg", "small_rgba.png", "gray.png"]
TOP = 5


def main():
    torch.set_num_threads(1)
    refdir = os.path.join(root, "testdata", "reference")
    torch.manual_seed(SEED)
    m = ref.DeiT(CFG)
    ref.perturb(m, ref.gen(SEED + 1))
    with torch.no_grad():
        m.head.weight.mul_(HEAD_GAIN)
        m.patch_embed.proj.weight.mul_(PATCH_GAIN)
        for n, b in m.named_buffers():
            if n.endswith(".iter"):
                b.fill_(0)
    ref.write_safetensors(os.path.join(refdir, NAME + ".safetensors"), m.state_dict(),
                          {"config": json.dumps(dict(CFG, name=NAME, seed=SEED, head_gain=HEAD_GAIN, patch_gain=PATCH_GAIN), sort_keys=True)})
    m = m.double().eval()
    tf = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                    T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    out = {"model": NAME, "config": CFG, "torchvision": torchvision.__version__, "top": TOP, "images": []}
    for name in IMAGES:
        img = Image.open(os.path.join(root, "data", "testdata", "imagenet", name)).convert("RGB")
        x = tf(img).unsqueeze(0).double()
        with torch.no_grad():
            logits = m(x)[0]
        p = torch.softmax(logits, -1)
        order = torch.argsort(logits, descending=True)
        top = order[:TOP].tolist()
        margin = min((logits[order[k]] - logits[order[k + 1]]).item() for k in range(TOP))
        spread = logits.std().item()
        out["images"].append({"image": name, "classes": top, "probs": [p[j].item() for j in top],
                              "logits": [logits[j].item() for j in top], "min_logit_gap": margin})
        print(f"{name:15s} top-{TOP} {top} p {[round(p[j].item(), 6) for j in top]} min gap {margin:.2e} (logit std {spread:.2f})")
    with open(os.path.join(refdir, NAME + ".json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
