#!/usr/bin/python3
"""slab's own PyTorch reference for whole PVT and CSwin classifiers.

Tiny models with the official module trees and state-dict names of
slab_pvt.py and slab_cswin.py (docs/method.md 4.2, 4.4, 4.6), written from the
equations with the layers of reference.py (LinearNorm, RepBN, Mlp) and
pvt_cswin_reference.py (LePEAttention stripe branches):

  * PVT: patch_embed{i}.{proj,norm} (conv kernel = stride, then the norm on the
    tokens), + pos_embed{i}, block{i}.j.{norm1, attn, norm2, mlp}, head on the
    token mean of stage 4 (no cls token, no final norm). 'L' attention is SLA
    over all tokens with separate q and kv Linears; 'S' attention is
    spatial-reduction softmax attention (sr conv + attn.norm when sr > 1).
  * CSwin: stage1_conv_embed.{0: conv, 1: to tokens, 2: norm},
    stage{i}.j.{qkv, norm1, proj, norm2, mlp, attns}, merge{i}.{conv, norm}
    (3x3 stride 2 pad 1), final norm, token mean, head. 'L' blocks: one branch
    attns.0 = SLA core + DWC + get_v (LePE over all C channels of V), with the
    unused scale [1,1,C]; 'S' blocks: LePE stripe branches (two on channel
    halves, or one global branch when the stripe covers the map).

For each model it writes testdata/reference/{pvt,cswin}_model_NAME.pth (the
state dict as {"model": sd}, float32, LinearNorm schedules half way) and
.safetensors (input, eval logits, the logits of one training forward with
lambda = 1/2 and batch statistics, dlogits and the gradients of
sum(logits * dlogits)), computed in float64. The fixture's metadata
"model_config" is the Go Config of the same model (JSON field names).

    /usr/bin/python3 tools/reference/pvt_cswin_models.py
"""

import copy
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import Mlp, gen, make_norm, perturb, randn, write_safetensors  # noqa: E402
from pvt_cswin_reference import LePEAttention  # noqa: E402


def sla_core(q, k, v, pe, heads, H, W, dwc):
    """SLA between q, k, v [B,N,C] (docs/method.md 3.1): merged-head output + DWC(V), before proj."""
    B, N, C = q.shape
    h, d = heads, C // heads
    k = k + pe
    q, k = F.relu(q), F.relu(k)
    q, k, vh = (t.reshape(B, N, h, d).transpose(1, 2) for t in (q, k, v))
    z = 1.0 / ((q * k.sum(dim=2, keepdim=True)).sum(-1, keepdim=True) + 1e-6)
    o = (q @ (k.transpose(-2, -1) @ vh)) * z
    vm = vh.reshape(B * h, N, d).transpose(1, 2).reshape(B * h, d, H, W)
    o = o + dwc(vm).reshape(B, h, d, N).transpose(-2, -1)
    return o.transpose(1, 2).reshape(B, N, C)


# --------------------------------------------------------------------------
# PVT (slab_pvt.py)


class PVTLinearAttention(nn.Module):
    def __init__(self, dim, heads, H, W, kernel):
        super().__init__()
        self.heads, self.H, self.W = heads, H, W
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.positional_encoding = nn.Parameter(torch.zeros(1, H * W, dim))
        d = dim // heads
        self.dwc = nn.Conv2d(d, d, kernel, padding=kernel // 2, groups=d)

    def forward(self, x):
        B, N, C = x.shape
        k, v = self.kv(x).reshape(B, N, 2, C).unbind(2)
        return self.proj(sla_core(self.q(x), k, v, self.positional_encoding, self.heads, self.H, self.W, self.dwc))


class PVTAttention(nn.Module):
    def __init__(self, dim, heads, sr, H, W, norm):
        super().__init__()
        self.heads, self.sr_ratio, self.H, self.W = heads, sr, H, W
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr, stride=sr)
            self.norm = norm()

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
        a = ((q @ kv[0].transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((a @ kv[1]).transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, dim, attn, hidden, norm):
        super().__init__()
        self.norm1, self.attn, self.norm2, self.mlp = norm(), attn, norm(), Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PVTPatchEmbed(nn.Module):
    def __init__(self, cin, dim, patch, norm):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, patch, stride=patch)
        self.norm = norm()

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class PVTRef(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        g, prev = c["ImgSize"], c["InChans"]
        for i in range(4):
            C, p = c["Dims"][i], c["Patches"][i]
            g //= p
            nm = lambda C=C: make_norm(c["Norm"], C, c["LNEps"], c["Step"], 0)  # noqa: E731
            setattr(self, f"patch_embed{i + 1}", PVTPatchEmbed(prev, C, p, nm))
            setattr(self, f"pos_embed{i + 1}", nn.Parameter(torch.zeros(1, g * g, C)))
            blocks = []
            for _ in range(c["Depths"][i]):
                if c["Stages"][i] == "L":
                    attn = PVTLinearAttention(C, c["Heads"][i], g, g, c["DWCKernel"])
                else:
                    attn = PVTAttention(C, c["Heads"][i], c["SRRatios"][i], g, g, nm)
                blocks.append(Block(C, attn, C * c["MLPRatios"][i], nm))
            setattr(self, f"block{i + 1}", nn.ModuleList(blocks))
            prev = C
        self.head = nn.Linear(prev, c["Classes"])

    def forward(self, x):
        B = x.shape[0]
        for i in range(4):
            x = getattr(self, f"patch_embed{i + 1}")(x) + getattr(self, f"pos_embed{i + 1}")
            for blk in getattr(self, f"block{i + 1}"):
                x = blk(x)
            if i < 3:
                g = int(round(x.shape[1] ** 0.5))
                x = x.reshape(B, g, g, -1).permute(0, 3, 1, 2)
        return self.head(x.mean(dim=1))


# --------------------------------------------------------------------------
# CSwin (slab_cswin.py)


class LABranch(nn.Module):
    """attns.0 of an 'L' block: SLA over the whole map with DWC, plus get_v, plus the unused scale."""

    def __init__(self, dim, heads, reso, kernel):
        super().__init__()
        self.heads, self.reso = heads, reso
        d = dim // heads
        self.get_v = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)
        self.dwc = nn.Conv2d(d, d, kernel, padding=kernel // 2, groups=d)
        self.scale = nn.Parameter(torch.zeros(1, 1, dim))
        self.positional_encoding = nn.Parameter(torch.zeros(1, reso * reso, dim))

    def forward(self, qkv):
        q, k, v = qkv[0], qkv[1], qkv[2]
        B, N, C = q.shape
        o = sla_core(q, k, v, self.positional_encoding, self.heads, self.reso, self.reso, self.dwc)
        lepe = self.get_v(v.transpose(1, 2).reshape(B, C, self.reso, self.reso)).flatten(2).transpose(1, 2)
        return o + lepe


class CSWinBlock(nn.Module):
    def __init__(self, dim, reso, heads, split, linear, kernel, hidden, norm):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.norm1 = norm()
        self.proj = nn.Linear(dim, dim)
        if linear:
            self.attns = nn.ModuleList([LABranch(dim, heads, reso, kernel)])
        elif split >= reso:
            self.attns = nn.ModuleList([LePEAttention(dim, reso, -1, split, heads)])
        else:
            self.attns = nn.ModuleList([LePEAttention(dim // 2, reso, i, split, heads // 2) for i in range(2)])
        self.mlp = Mlp(dim, hidden)
        self.norm2 = norm()

    def forward(self, x):
        B, L, C = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(B, -1, 3, C).permute(2, 0, 1, 3)
        if len(self.attns) == 2:
            o = torch.cat([self.attns[0](qkv[:, :, :, : C // 2]), self.attns[1](qkv[:, :, :, C // 2:])], dim=2)
        else:
            o = self.attns[0](qkv)
        x = x + self.proj(o)
        return x + self.mlp(self.norm2(x))


class ToTokens(nn.Module):
    def forward(self, x):
        return x.flatten(2).transpose(1, 2)


class Merge(nn.Module):
    def __init__(self, cin, cout, norm):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 2, 1)
        self.norm = norm()

    def forward(self, x):
        B, N, C = x.shape
        g = int(round(N ** 0.5))
        return self.norm(self.conv(x.transpose(1, 2).reshape(B, C, g, g)).flatten(2).transpose(1, 2))


class CSwinRef(nn.Module):
    def __init__(self, c):
        super().__init__()
        nm = lambda C: (lambda: make_norm(c["Norm"], C, c["LNEps"], c["Step"], 0))  # noqa: E731
        C = c["Dim"]
        self.stage1_conv_embed = nn.Sequential(
            nn.Conv2d(c["InChans"], C, c["StemKernel"], c["StemStride"], c["StemPad"]), ToTokens(), nm(C)())
        reso = (c["ImgSize"] + 2 * c["StemPad"] - c["StemKernel"]) // c["StemStride"] + 1
        for i in range(4):
            d = C << i
            if i > 0:
                setattr(self, f"merge{i}", Merge(d // 2, d, nm(d)))
                reso = (reso + 2 - 3) // 2 + 1
            setattr(self, f"stage{i + 1}", nn.ModuleList([
                CSWinBlock(d, reso, c["Heads"][i], c["Splits"][i], c["Stages"][i] == "L", c["DWCKernel"],
                           d * c["MLPRatio"], nm(d)) for _ in range(c["Depths"][i])]))
        self.norm = nm(C << 3)()
        self.head = nn.Linear(C << 3, c["Classes"])

    def forward(self, x):
        x = self.stage1_conv_embed(x)
        for i in range(4):
            if i > 0:
                x = getattr(self, f"merge{i}")(x)
            for blk in getattr(self, f"stage{i + 1}"):
                x = blk(x)
        return self.head(self.norm(x).mean(dim=1))


# --------------------------------------------------------------------------


def model_fixture(out, stem, model, c, seed, batch=3):
    g = gen(seed + 1)
    perturb(model, g)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.startswith("pos_embed") or n.endswith(".scale"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
        for n, b in model.named_buffers():
            if n.endswith(".iter"):
                b.fill_(c["Step"] // 2)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"model": sd, "epoch": 299}, os.path.join(out, stem + ".pth"))
    x = randn(gen(seed + 2), batch, c["InChans"], c["ImgSize"], c["ImgSize"])
    dl = randn(gen(seed + 3), batch, c["Classes"])
    md = copy.deepcopy(model).double()
    md.eval()
    with torch.no_grad():
        le = md(x.double())
    md.train()
    md.zero_grad(set_to_none=True)
    lt = md(x.double())
    (lt * dl.double()).sum().backward()
    t = {"input": x, "logits_eval": le.detach(), "logits_train": lt.detach(), "dlogits": dl}
    for n, p in md.named_parameters():
        t[f"grad/{n}"] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
    path = os.path.join(out, stem + ".safetensors")
    write_safetensors(path, t, {"model_config": json.dumps(c, sort_keys=True)})
    print(f"{stem}: .pth {os.path.getsize(os.path.join(out, stem + '.pth'))} bytes, "
          f".safetensors {os.path.getsize(path)} bytes, {sum(p.numel() for p in model.parameters())} parameters")


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    out = os.path.join(root, "testdata", "reference")
    os.makedirs(out, exist_ok=True)
    pvt = {"Name": "pvt_ref", "ImgSize": 32, "InChans": 2, "Classes": 5, "Patches": [2, 2, 2, 2],
           "Dims": [8, 8, 16, 16], "Heads": [1, 1, 2, 2], "MLPRatios": [2, 2, 2, 2], "Depths": [1, 2, 1, 1],
           "SRRatios": [4, 2, 1, 1], "Norm": "prepbn", "LNEps": 1e-6, "Step": 10, "DWCKernel": 5}
    for name, stages, seed in (("slab", "LLLL", 301), ("prepbn", "SSSS", 302)):
        c = dict(pvt, Stages=stages)
        torch.manual_seed(seed)
        model_fixture(out, "pvt_model_" + name, PVTRef(c), c, seed)
    cs = {"Name": "cswin_ref", "ImgSize": 32, "InChans": 2, "Classes": 5, "StemKernel": 3, "StemStride": 2,
          "StemPad": 1, "Dim": 4, "Depths": [1, 1, 1, 1], "Heads": [1, 2, 2, 4], "Splits": [1, 2, 2, 2],
          "Stages": "LLSS", "MLPRatio": 2, "Norm": "prepbn", "LNEps": 1e-5, "Step": 10, "DWCKernel": 5}
    torch.manual_seed(303)
    model_fixture(out, "cswin_model_slab", CSwinRef(cs), cs, 303)


if __name__ == "__main__":
    main()
