#!/usr/bin/python3
"""Times the official SLAB model code itself (github.com/xinghaochen/SLAB,
classification/models) at batch 1, 224x224, eval mode, random weights,
unfolded as that code runs, so that slab can be compared with it in the same
session (docs/swin.md, docs/pvt-cswin.md).

The official modules import timm (DropPath, to_2tuple, trunc_normal_,
register_model, _cfg, two constants) and einops (six `rearrange` patterns);
neither is packaged for Debian's python3 here, so this folder carries
stand-ins for exactly those names (timm/, einops/: identity DropPath, as in
eval; the patterns as reshape/permute). Point --official at a checkout's
classification/ folder:

    env -u OPENBLAS_CORETYPE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \\
      /usr/bin/python3 tools/reference/official/time_official.py --official SLAB/classification --rounds 8

--flatten PATH adds FLatten-Swin-T/S from FLatten-Transformer's
models/flatten_swin.py (config flatten_swin_t/s.yaml: window 56, LLSS);
--batch B and --models a,b,... select the batch and the models.

Prints one JSON line of median ms per model and one of parameter counts. The
Swin models are built with the arguments of the official configs (cfgs/*.yaml);
PVT and CSwin are built as the official build.py builds them, with config.py's
defaults and the attention types of cfgs/*.yaml (LLLL / SSSS, LLSS).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True, help="the official repository's classification/ folder")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--flatten", default="", help="FLatten-Transformer's models/flatten_swin.py: also time FLatten-Swin-T/S")
    ap.add_argument("--models", default="", help="comma list: time only these")
    a = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the timm/einops stand-ins
    sys.path.insert(1, a.official)
    from models.slab_pvt import slab_pvt_tiny, slab_pvt_small, PyramidVisionTransformer
    from functools import partial
    from models.slab_cswin import SLAB_CSWin_64_24181_tiny_224
    from models.slab_swin import SlabSwinTransformer
    from models.swin_transformer import SwinTransformer
    torch.set_num_threads(a.threads)
    heads = [3, 6, 12, 24]
    ms = {
        # build.py's arguments with config.py's defaults and cfgs/*.yaml's attention types
        "slab_pvt_tiny": slab_pvt_tiny(attn_type="LLLL", la_sr_ratios="1111"),
        "pvt_tiny_prepbn": slab_pvt_tiny(attn_type="SSSS", la_sr_ratios="1111"),
        "slab_pvt_small": slab_pvt_small(attn_type="LLLL", la_sr_ratios="1111"),
        "pvt_small_prepbn": slab_pvt_small(attn_type="SSSS", la_sr_ratios="1111"),
        "slab_cswin_tiny": SLAB_CSWin_64_24181_tiny_224(attn_type="LLSS", la_split_size="56-28-14-7"),
        # the LayerNorm twins: slab_pvt.py's SSSS model with nn.LayerNorm (no official factory)
        "pvt_tiny": PyramidVisionTransformer(patch_size=4, embed_dims=[64, 128, 320, 512], num_heads=[1, 2, 5, 8], mlp_ratios=[8, 8, 4, 4],
                                             qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), depths=[2, 2, 2, 2], sr_ratios=[8, 4, 2, 1],
                                             attn_type="SSSS", la_sr_ratios="1111"),
        "pvt_small": PyramidVisionTransformer(patch_size=4, embed_dims=[64, 128, 320, 512], num_heads=[1, 2, 5, 8], mlp_ratios=[8, 8, 4, 4],
                                              qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6), depths=[3, 4, 6, 3], sr_ratios=[8, 4, 2, 1],
                                              attn_type="SSSS", la_sr_ratios="1111"),
        "slab_swin_tiny": SlabSwinTransformer(embed_dim=96, depths=[2, 2, 6, 2], num_heads=heads, window_size=56, attn_type="LLSS"),
        "swin_tiny_prepbn": SwinTransformer(embed_dim=96, depths=[2, 2, 6, 2], num_heads=heads, window_size=7),
        "swin_tiny": SwinTransformer(embed_dim=96, depths=[2, 2, 6, 2], num_heads=heads, window_size=7, norm_layer=nn.LayerNorm),
        "slab_swin_small": SlabSwinTransformer(embed_dim=96, depths=[2, 2, 18, 2], num_heads=heads, window_size=56, attn_type="LLSS"),
        "swin_small": SwinTransformer(embed_dim=96, depths=[2, 2, 18, 2], num_heads=heads, window_size=7, norm_layer=nn.LayerNorm),
    }
    if a.flatten:
        import importlib.util
        spec = importlib.util.spec_from_file_location("flatten_swin", a.flatten)
        fl = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fl)
        for name, depths in (("flatten_swin_tiny", [2, 2, 6, 2]), ("flatten_swin_small", [2, 2, 18, 2])):
            ms[name] = fl.FLattenSwinTransformer(embed_dim=96, depths=depths, num_heads=heads, window_size=56, attn_type="LLSS")
    if a.models:
        ms = {k: m for k, m in ms.items() if k in a.models.split(",")}
    x = torch.randn(a.batch, 3, 224, 224)
    t = {k: [] for k in ms}
    with torch.inference_mode():
        for m in ms.values():
            m.eval()
            m(x)
            m(x)
        for _ in range(a.rounds):
            for k, m in ms.items():
                t0 = time.perf_counter()
                m(x)
                t[k].append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({k: sorted(v)[len(v) // 2] for k, v in t.items()}))
    print(json.dumps({k: sum(p.numel() for p in m.parameters()) for k, m in ms.items()}))


if __name__ == "__main__":
    main()
