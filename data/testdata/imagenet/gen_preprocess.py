#!/usr/bin/python3
"""Generates the preprocessing fixtures of data/imagenet_test.go with
torchvision 0.14 + PIL (Debian: apt-get install python3-torchvision
python3-pil). For each small synthetic source image it saves what
torchvision's eval transform produces before ToTensor (a PNG, lossless) and
summary figures of the normalised tensor (expected.json).

    cd data/testdata/imagenet && /usr/bin/python3 gen_preprocess.py
"""
import json

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

rng = np.random.default_rng(0)


def synthetic(w, h, alpha=False):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 120 * np.sin(x / 9.0) * np.cos(y / 13.0)
    g = 255 * ((x // 16 + y // 16) % 2)  # hard checkerboard edges stress the kernel
    b = 255 * x / w * (y / h)
    img = np.stack([r, g, b], -1) + rng.normal(0, 2, (h, w, 3))
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    if alpha:
        a = (255 * (x / w)).astype(np.uint8)[..., None]
        return Image.fromarray(np.concatenate([img, a], -1), "RGBA")
    return Image.fromarray(img, "RGB")


sources = {
    "land.png": synthetic(203, 151),  # landscape, downscale
    "tall.jpg": synthetic(141, 190),  # portrait JPEG
    "small_rgba.png": synthetic(70, 61, alpha=True),  # upscale, alpha dropped
}
sources["land.png"].save("land.png")
sources["tall.jpg"].save("tall.jpg", quality=92)  # 4:2:0 chroma
sources["tall.jpg"].save("tall422.jpg", quality=92, subsampling=1)
sources["small_rgba.png"].save("small_rgba.png")
Image.fromarray(np.asarray(sources["land.png"].convert("L"))).save("gray.png")

mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
cases = [
    ("land.png", 256, 224, False),
    ("tall.jpg", 256, 224, False),
    ("small_rgba.png", 256, 224, False),
    ("land.png", 64, 56, False),
    ("gray.png", 32, 28, True),
    ("tall422.jpg", 64, 56, False),
]
out = []
for i, (src, resize, crop, gray) in enumerate(cases):
    img = Image.open(src).convert("L" if gray else "RGB")
    cropped = T.Compose([T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(crop)])(img)
    name = "expected_%d.png" % i
    cropped.save(name)
    m, s = ((0.2860,), (0.3530,)) if gray else (mean, std)
    t = T.Normalize(m, s)(T.ToTensor()(cropped)).double()
    out.append({"source": src, "resize": resize, "crop": crop, "gray": gray, "expected": name,
                "shape": list(t.shape), "sum": t.sum().item(), "sumsq": (t * t).sum().item(),
                "first": t.flatten()[:8].tolist()})
with open("expected.json", "w") as f:
    json.dump({"torchvision": torchvision.__version__, "cases": out}, f, indent=1)
