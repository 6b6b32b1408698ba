#!/usr/bin/python3
"""Compares `slab classify` with PyTorch on a full-size official-layout
checkpoint: the reference DeiT of tools/reference/reference.py loaded from
the same .pth, torchvision's DeiT eval transform, softmax top-5.

    /usr/bin/python3 tools/reference/reference.py --pth-full /tmp/pth
    slab import /tmp/pth/slab_deit_tiny.pth /tmp/pth/slab_deit_tiny.safetensors
    slab classify --weights /tmp/pth/slab_deit_tiny.safetensors --json IMAGES... > /tmp/slab.json
    /usr/bin/python3 data/testdata/imagenet/compare_classify.py /tmp/pth/slab_deit_tiny.pth slab_deit_tiny /tmp/slab.json
"""
import importlib.util
import json
import os
import sys

import torch
import torchvision.transforms as T
from PIL import Image

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
spec = importlib.util.spec_from_file_location("reference", os.path.join(root, "tools", "reference", "reference.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

pth, name, slab_json = sys.argv[1:4]
m = ref.DeiT(ref.OFFICIAL[name])
m.load_state_dict(torch.load(pth)["model"])
m.eval()
tf = T.Compose([T.Resize(256, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
                T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
got = json.load(open(slab_json))
worst_p, same = 0.0, True
for im in got["images"]:
    x = tf(Image.open(im["path"]).convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        p = torch.softmax(m(x).double(), -1)[0]
    top = torch.topk(p, len(im["top"]))
    classes = top.indices.tolist()
    mine = [t["class"] for t in im["top"]]
    dp = max(abs(t["prob"] - p[t["class"]].item()) for t in im["top"])
    worst_p, same = max(worst_p, dp), same and classes == mine
    print(f"{os.path.basename(im['path']):16s} torch top-{len(classes)} {classes} slab {mine} max |dprob| {dp:.2e}")
print(f"same top-k order: {same}; max prob diff {worst_p:.2e}")
