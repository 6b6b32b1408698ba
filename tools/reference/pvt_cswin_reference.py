#!/usr/bin/python3
"""slab's own PyTorch reference for the layers of the PVT and CSwin families.

Written from the equations (docs/method.md 3.3, 4.2, 4.4) with the official
module structure and parameter names, so the fixtures check both the maths and
the names slab's importer will map:

  * Conv2d: nn.Conv2d(in, out, k, stride, padding) on images [B,C,H,W] (CSwin's
    stem) or on token maps [B,H*W,C] (CSwin's merges, PVT's spatial reduction),
    output tokens [B,OH*OW,out];
  * SRA: PVT's spatial-reduction attention (`slab_pvt.py` Attention: q, kv, proj,
    sr, norm), here with LayerNorm(eps 1e-6) as the norm;
  * LePE: a 3x3 depthwise conv with bias (CSwin's `get_v`) on a token map;
  * Stripe: CSwin's cross-shaped attention (`slab_cswin.py` CSWinBlock's qkv,
    attns = LePEAttention branches, proj): two branches (branch 0 vertical
    stripes H x sw, branch 1 horizontal sw x W, each on half the channels and
    heads) or one global branch when the stripe equals the resolution.

    /usr/bin/python3 tools/reference/pvt_cswin_reference.py   # writes testdata/reference/{conv2d,sra,lepe,stripe}_*.safetensors

Same conventions as reference.py (whose writer and helpers it imports): inputs
and parameters drawn in float32, every computation in float64, results stored
rounded to float32; gradients are the VJP of sum(y * dy) with the stored dy.
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import gen, randn, vjp, write_safetensors  # noqa: E402


class TokenConv2d(nn.Conv2d):
    """nn.Conv2d on images [B,C,H,W] or token maps [B,H*W,C]; tokens out."""

    def __init__(self, cin, cout, k, stride, pad, tokens, H, W):
        super().__init__(cin, cout, k, stride=stride, padding=pad)
        self.tokens, self.H, self.W = tokens, H, W

    def forward(self, x):
        if self.tokens:
            B, N, C = x.shape
            x = x.transpose(1, 2).reshape(B, C, self.H, self.W)
        return super().forward(x).flatten(2).transpose(1, 2)


class SRA(nn.Module):
    """PVT 'S' attention, as slab_pvt.py's Attention (sr_ratio, norm_layer)."""

    def __init__(self, dim, heads, sr, H, W):
        super().__init__()
        self.heads, self.sr_ratio, self.H, self.W = heads, sr, H, W
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr, stride=sr)
            self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        B, N, C = x.shape
        h = self.heads
        q = self.q(x).reshape(B, N, h, C // h).permute(0, 2, 1, 3)
        if self.sr_ratio > 1:
            x_ = x.permute(0, 2, 1).reshape(B, C, self.H, self.W)
            x_ = self.norm(self.sr(x_).reshape(B, C, -1).permute(0, 2, 1))
        else:
            x_ = x
        kv = self.kv(x_).reshape(B, -1, 2, h, C // h).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        a = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, N, C))


class LePE(nn.Module):
    """get_v: 3x3 depthwise conv with bias on a token map [B,H*W,C]."""

    def __init__(self, dim, H, W):
        super().__init__()
        self.H, self.W = H, W
        self.get_v = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x):
        B, N, C = x.shape
        return self.get_v(x.transpose(1, 2).reshape(B, C, self.H, self.W)).flatten(2).transpose(1, 2)


def img2windows(img, H_sp, W_sp):
    B, C, H, W = img.shape
    x = img.view(B, C, H // H_sp, H_sp, W // W_sp, W_sp)
    return x.permute(0, 2, 4, 3, 5, 1).contiguous().reshape(-1, H_sp * W_sp, C)


def windows2img(x, H_sp, W_sp, H, W):
    B = int(x.shape[0] / (H * W / H_sp / W_sp))
    x = x.view(B, H // H_sp, W // W_sp, H_sp, W_sp, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


class LePEAttention(nn.Module):
    """One CSwin branch: idx -1 global, 0 vertical (H_sp = reso), 1 horizontal."""

    def __init__(self, dim, reso, idx, split, heads):
        super().__init__()
        self.reso, self.heads = reso, heads
        self.scale = (dim // heads) ** -0.5
        self.H_sp, self.W_sp = {-1: (reso, reso), 0: (reso, split), 1: (split, reso)}[idx]
        self.get_v = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def im2cswin(self, x):
        B, N, C = x.shape
        x = x.transpose(-2, -1).reshape(B, C, self.reso, self.reso)
        x = img2windows(x, self.H_sp, self.W_sp)
        return x.reshape(-1, self.H_sp * self.W_sp, self.heads, C // self.heads).permute(0, 2, 1, 3)

    def get_lepe(self, x):
        B, N, C = x.shape
        H_sp, W_sp = self.H_sp, self.W_sp
        x = x.transpose(-2, -1).reshape(B, C, self.reso, self.reso)
        x = x.view(B, C, self.reso // H_sp, H_sp, self.reso // W_sp, W_sp)
        x = x.permute(0, 2, 4, 1, 3, 5).reshape(-1, C, H_sp, W_sp)  # each stripe its own map
        lepe = self.get_v(x).reshape(-1, self.heads, C // self.heads, H_sp * W_sp).permute(0, 1, 3, 2)
        x = x.reshape(-1, self.heads, C // self.heads, H_sp * W_sp).permute(0, 1, 3, 2)
        return x, lepe

    def forward(self, qkv):
        q, k, v = qkv[0], qkv[1], qkv[2]
        B, L, C = q.shape
        q, k = self.im2cswin(q), self.im2cswin(k)
        v, lepe = self.get_lepe(v)
        a = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (a @ v + lepe).transpose(1, 2).reshape(-1, self.H_sp * self.W_sp, C)
        return windows2img(x, self.H_sp, self.W_sp, self.reso, self.reso).view(B, -1, C)


class StripeAttention(nn.Module):
    """The attention half of CSWinBlock: qkv, branches on channel halves, proj."""

    def __init__(self, dim, reso, heads, split):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        if reso == split:
            self.attns = nn.ModuleList([LePEAttention(dim, reso, -1, split, heads)])
        else:
            self.attns = nn.ModuleList([LePEAttention(dim // 2, reso, i, split, heads // 2) for i in range(2)])

    def forward(self, x):
        B, L, C = x.shape
        qkv = self.qkv(x).reshape(B, -1, 3, C).permute(2, 0, 1, 3)
        if len(self.attns) == 2:
            o = torch.cat([self.attns[0](qkv[:, :, :, : C // 2]), self.attns[1](qkv[:, :, :, C // 2:])], dim=2)
        else:
            o = self.attns[0](qkv)
        return self.proj(o)


@torch.no_grad()
def init_params(module, g):
    """Random float32 values: weights and biases N(0, 0.3^2), norm gains 1 + N(0, 0.2^2)."""
    for m in module.modules():
        for n, p in m.named_parameters(recurse=False):
            if isinstance(m, nn.LayerNorm) and n == "weight":
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def fixture(out, name, module, x32, g, meta):
    """x, dy, y, dx, param/NAME, grad/NAME of sum(y*dy), all float64 -> float32."""
    init_params(module, g)
    module = module.double()
    with torch.no_grad():
        y0 = module(x32.double())
    dy = randn(g, *y0.shape)
    y, dx, grads = vjp(module, x32.double(), dy.double())
    t = {"x": x32, "dy": dy, "y": y, "dx": dx}
    t.update({f"param/{k}": v.detach().clone() for k, v in module.state_dict().items()})
    t.update({f"grad/{k}": v for k, v in grads.items()})
    path = os.path.join(out, name + ".safetensors")
    write_safetensors(path, t, {"config": json.dumps(meta, sort_keys=True)})
    print(f"{path}: {os.path.getsize(path)} bytes")
    return module


def self_check():
    """The structured modules against plainer formulations, in float64."""
    g = gen(7)
    # Token-map conv = unfold (im2col) + matmul.
    m = TokenConv2d(5, 6, 3, 2, 1, True, 7, 6).double()
    x = torch.randn(2, 42, 5, generator=g, dtype=torch.float64)
    cols = F.unfold(x.transpose(1, 2).reshape(2, 5, 7, 6), 3, padding=1, stride=2)  # [B, 45, L]
    ref = (m.weight.reshape(6, -1) @ cols + m.bias[:, None]).transpose(1, 2)
    assert torch.allclose(m(x), ref, atol=1e-12), "conv"
    # A global-branch stripe block is attention + LePE over the whole map.
    s = StripeAttention(8, 4, 2, 4).double()
    x = torch.randn(2, 16, 8, generator=g, dtype=torch.float64)
    q, k, v = s.qkv(x).chunk(3, dim=-1)
    hd = lambda t: t.reshape(2, 16, 2, 4).transpose(1, 2)  # noqa: E731
    a = (hd(q) @ hd(k).transpose(-2, -1) * 0.5).softmax(-1)
    o = (a @ hd(v)).transpose(1, 2).reshape(2, 16, 8)
    o = o + s.attns[0].get_v(v.transpose(1, 2).reshape(2, 8, 4, 4)).flatten(2).transpose(1, 2)
    assert torch.allclose(s(x), s.proj(o), atol=1e-12), "global stripe"
    # Two branches: branch 0's vertical stripe (all rows, columns [0, sw)) is
    # an attention of its own, with LePE zero-padded at the stripe border.
    s = StripeAttention(8, 4, 2, 2).double()
    x = torch.randn(1, 16, 8, generator=g, dtype=torch.float64)
    qkv = s.qkv(x)
    idx = torch.tensor([r * 4 + c for r in range(4) for c in range(2)])
    q, k, v = (qkv[0, idx, i * 8: i * 8 + 4] for i in range(3))
    a = (q @ k.T * 0.5).softmax(-1)
    lepe = s.attns[0].get_v(v.T.reshape(1, 4, 4, 2)).reshape(4, 8).T
    got = s.attns[0](s.qkv(x).reshape(1, 16, 3, 8).permute(2, 0, 1, 3)[:, :, :, :4])[0, idx]
    assert torch.allclose(got, a @ v + lepe, atol=1e-12), "vertical stripe"
    print("self-check ok")


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    out = os.path.join(root, "testdata", "reference")
    self_check()
    os.makedirs(out, exist_ok=True)

    # Conv2d: the CSwin stem's geometry on images, a merge's and PVT's reduction on token maps.
    for name, (B, cin, cout, k, s, p, H, W, tokens), seed in (
        ("conv2d_stem", (2, 3, 8, 7, 4, 2, 15, 13, False), 201),
        ("conv2d_merge", (2, 6, 12, 3, 2, 1, 7, 6, True), 202),
        ("conv2d_sr", (2, 8, 8, 2, 2, 0, 8, 8, True), 203),
    ):
        g = gen(seed)
        x = randn(g, B, H * W, cin) if tokens else randn(g, B, cin, H, W)
        fixture(out, name, TokenConv2d(cin, cout, k, s, p, tokens, H, W), x, g,
                {"layer": "conv2d", "in": cin, "out": cout, "kernel": k, "stride": s, "pad": p,
                 "h": H, "w": W, "tokens": tokens})

    # SRA: ratio 2 (conv + LayerNorm) and ratio 1 (K, V from the tokens).
    for name, (B, H, W, C, heads, sr), seed in (
        ("sra_sr2", (2, 6, 6, 16, 2, 2), 211),
        ("sra_sr1", (2, 4, 5, 16, 2, 1), 212),
    ):
        g = gen(seed)
        fixture(out, name, SRA(C, heads, sr, H, W), randn(g, B, H * W, C), g,
                {"layer": "sra", "dim": C, "heads": heads, "sr": sr, "h": H, "w": W, "ln_eps": 1e-6})

    # LePE alone on a whole map and on a stripe-shaped map.
    for name, (B, H, W, C), seed in (("lepe_4x6", (2, 4, 6, 16), 221), ("lepe_14x7", (1, 14, 7, 8), 222)):
        g = gen(seed)
        fixture(out, name, LePE(C, H, W), randn(g, B, H * W, C), g, {"layer": "lepe", "dim": C, "h": H, "w": W})

    # Stripes: two branches (8x8 map, stripe 2) and one global branch (stripe = resolution).
    for name, (B, R, C, heads, split), seed in (
        ("stripe_2branch", (2, 8, 16, 4, 2), 231),
        ("stripe_global", (2, 4, 16, 2, 4), 232),
    ):
        g = gen(seed)
        fixture(out, name, StripeAttention(C, R, heads, split), randn(g, B, R * R, C), g,
                {"layer": "stripe", "dim": C, "heads": heads, "split": split, "h": R, "w": R})


if __name__ == "__main__":
    main()
