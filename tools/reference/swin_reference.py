#!/usr/bin/python3
"""slab's own PyTorch reference for the Swin layers (docs/method.md 3.3, 3.4, 4.3).

Written from the equations and the official module structure (parameter and
buffer names as in swin_transformer.py / flatten_swin.py, docs/method.md
4.6): window_partition / window_reverse, the cyclic shift (torch.roll by -s,
then +s), the shifted-window attention mask (-100 between regions, built
with the official slices), the relative position bias (table
[(2w-1)^2, heads], relative_position_index [w^2, w^2]), WindowAttention,
PatchMerging's 2x2 gather, FLatten's FocusedLinearAttention, and a pair of
SwinTransformerBlocks (shift 0, then shift s) with LayerNorm; and whole tiny
Swin classifiers with the official module tree and names (SwinRef:
patch_embed.proj/.norm, layers.i.blocks.j.{norm1,attn,norm2,mlp,attn_mask},
layers.i.downsample.{norm,reduction}, norm, head) in three layouts:
SLAB-Swin (LinearNorm, SLA stage, shifted softmax stages), FLatten-Swin
(LayerNorm, focused linear attention) and Swin-PRepBN (bare RepBN, softmax).

It writes testdata/reference/swin_*.safetensors (and swin_model_*.pth, the
official-layout state dicts torch.save writes), which nn/swin_reference_test.go
and models/swin/reference_test.go compare against:

    /usr/bin/python3 tools/reference/swin_reference.py

Same conventions as reference.py (whose writer and helpers it imports):
inputs and parameters drawn in float32, every computation in float64,
results rounded to float32 when written; gradients are those of
sum(y * dy) for the stored random dy.
"""

import argparse
import copy
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import SLA, Mlp, gen, make_norm, perturb, randn, write_safetensors  # noqa: E402  (also sets 1 thread, determinism)

# --------------------------------------------------------------------------
# layers


def window_partition(x, ws):
    """[B, H, W, C] -> [B*nW, ws, ws, C], windows row-major."""
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, C)


def window_reverse(windows, ws, H, W):
    """[B*nW, ws, ws, C] -> [B, H, W, C]."""
    B = int(windows.shape[0] / (H * W / ws / ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


def shift_windows(x, H, W, ws, s):
    """tokens [B, H*W, C] -> windows [B*nW, ws*ws, C] after torch.roll by -s."""
    B, L, C = x.shape
    x = x.view(B, H, W, C)
    if s > 0:
        x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
    return window_partition(x, ws).view(-1, ws * ws, C)


def unshift_windows(w, H, W, ws, s):
    """windows [B*nW, ws*ws, C] -> tokens [B, H*W, C], then torch.roll by +s."""
    C = w.shape[-1]
    x = window_reverse(w.view(-1, ws, ws, C), ws, H, W)
    if s > 0:
        x = torch.roll(x, shifts=(s, s), dims=(1, 2))
    return x.reshape(x.shape[0], H * W, C)


def shift_mask(H, W, ws, s):
    """The official attn_mask [nW, ws*ws, ws*ws] (0 / -100), or None for s = 0."""
    if s == 0:
        return None
    img_mask = torch.zeros((1, H, W, 1), dtype=torch.float64)
    slices = (slice(0, -ws), slice(-ws, -s), slice(-s, None))
    cnt = 0
    for h in slices:
        for w in slices:
            img_mask[:, h, w, :] = cnt
            cnt += 1
    mask_windows = window_partition(img_mask, ws).view(-1, ws * ws)
    attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
    return attn_mask.masked_fill(attn_mask != 0, float(-100.0)).masked_fill(attn_mask == 0, float(0.0))


def relative_position_index(ws):
    coords = torch.stack(torch.meshgrid([torch.arange(ws), torch.arange(ws)], indexing="ij"))
    flat = torch.flatten(coords, 1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += ws - 1
    rel[:, :, 1] += ws - 1
    rel[:, :, 0] *= 2 * ws - 1
    return rel.sum(-1)


class RelPosBias(nn.Module):
    """Adds table[index] (per head) to logits [B', heads, N, N]."""

    def __init__(self, ws, heads):
        super().__init__()
        self.ws, self.heads = ws, heads
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(ws))

    def bias(self):
        N = self.ws * self.ws
        b = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        return b.permute(2, 0, 1).contiguous()

    def forward(self, logits):
        return logits + self.bias().unsqueeze(0)


class WindowAttention(nn.Module):
    """Official Swin WindowAttention: scale d^-0.5, relative position bias, optional mask."""

    def __init__(self, dim, ws, heads, qkv_bias=True):
        super().__init__()
        self.dim, self.ws, self.num_heads = dim, ws, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(ws))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        rpb = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        attn = attn + rpb.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            nW = mask.shape[0]
            attn = attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, N, N)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj(x)


class MaskedWindowAttention(nn.Module):
    """WindowAttention with a fixed mask, so that vjp() can call it with x alone."""

    def __init__(self, attn, mask):
        super().__init__()
        self.attn = attn
        self.mask = mask

    def forward(self, x):
        return self.attn(x, self.mask)


def patch_merge_gather(x, H, W):
    """[B, H*W, C] -> [B, H/2*W/2, 4C], official order x0, x1, x2, x3."""
    B, L, C = x.shape
    x = x.view(B, H, W, C)
    x0 = x[:, 0::2, 0::2, :]
    x1 = x[:, 1::2, 0::2, :]
    x2 = x[:, 0::2, 1::2, :]
    x3 = x[:, 1::2, 1::2, :]
    return torch.cat([x0, x1, x2, x3], -1).view(B, -1, 4 * C)


class PatchMerging(nn.Module):
    """Official PatchMerging with LayerNorm: gather, norm over 4C, Linear(4C, 2C, bias=False)."""

    def __init__(self, H, W, dim):
        super().__init__()
        self.H, self.W = H, W
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        return self.reduction(self.norm(patch_merge_gather(x, self.H, self.W)))


class FocusedLinearAttention(nn.Module):
    """FLatten's focused linear attention (docs/method.md 3.4), official names."""

    def __init__(self, dim, H, W, heads, kernel=5, focusing_factor=3, qkv_bias=True):
        super().__init__()
        self.dim, self.H, self.W, self.num_heads = dim, H, W, heads
        self.focusing_factor = focusing_factor
        d = dim // heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.dwc = nn.Conv2d(d, d, kernel, padding=kernel // 2, groups=d)
        self.scale = nn.Parameter(torch.zeros(1, 1, dim))
        self.positional_encoding = nn.Parameter(torch.zeros(1, H * W, dim))

    def forward(self, x):
        B, N, C = x.shape
        h, d = self.num_heads, C // self.num_heads
        q, k, v = self.qkv(x).reshape(B, N, 3, C).permute(2, 0, 1, 3).unbind(0)
        k = k + self.positional_encoding
        scale = F.softplus(self.scale)
        q = F.relu(q) + 1e-6
        k = F.relu(k) + 1e-6
        q = q / scale
        k = k / scale
        q_norm = q.norm(dim=-1, keepdim=True)
        k_norm = k.norm(dim=-1, keepdim=True)
        q = q ** self.focusing_factor
        k = k ** self.focusing_factor
        q = (q / q.norm(dim=-1, keepdim=True)) * q_norm
        k = (k / k.norm(dim=-1, keepdim=True)) * k_norm
        q, k, v = (t.reshape(B, N, h, d).permute(0, 2, 1, 3).reshape(B * h, N, d) for t in (q, k, v))
        z = 1 / (torch.einsum("bic,bc->bi", q, k.sum(dim=1)) + 1e-6)
        kv = torch.einsum("bjc,bjd->bcd", k, v)
        o = torch.einsum("bic,bcd,bi->bid", q, kv, z)
        fm = v.transpose(-2, -1).reshape(B * h, d, self.H, self.W)
        o = o + self.dwc(fm).reshape(B * h, d, N).transpose(-2, -1)
        o = o.reshape(B, h, N, d).permute(0, 2, 1, 3).reshape(B, N, C)
        return self.proj(o)


class SwinTransformerBlock(nn.Module):
    """Official SwinTransformerBlock (LayerNorm, window attention, MLP x4, no drop path)."""

    def __init__(self, dim, H, W, heads, ws, shift, mlp_ratio=4):
        super().__init__()
        self.H, self.W, self.ws, self.shift_size = H, W, ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        m = shift_mask(H, W, ws, shift)
        self.register_buffer("attn_mask", m)

    def forward(self, x):
        shortcut = x
        x = self.norm1(x)
        w = self.attn(shift_windows(x, self.H, self.W, self.ws, self.shift_size), self.attn_mask)
        x = shortcut + unshift_windows(w, self.H, self.W, self.ws, self.shift_size)
        return x + self.mlp(self.norm2(x))


class BlockPair(nn.Module):
    def __init__(self, dim, H, W, heads, ws, shift):
        super().__init__()
        self.blocks = nn.ModuleList([SwinTransformerBlock(dim, H, W, heads, ws, 0),
                                     SwinTransformerBlock(dim, H, W, heads, ws, shift)])

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


class Fn(nn.Module):
    """A parameterless function as a module (for vjp)."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)


class SwinBlockRef(nn.Module):
    """Official SwinTransformerBlock with any norm and attention ('S' window softmax, 'L' SLA or focused)."""

    def __init__(self, dim, res, heads, ws, shift, kind, linear, norm, cfg):
        super().__init__()
        self.res, self.ws, self.shift_size = res, ws, shift
        self.norm1 = make_norm(norm, dim, cfg["ln_eps"], cfg["step"], 0)
        if kind == "S":
            self.attn = WindowAttention(dim, ws, heads)
        elif linear == "sla":
            self.attn = SLA(dim, heads, ws, ws, cfg["kernel"])
        else:
            self.attn = FocusedLinearAttention(dim, ws, ws, heads, cfg["kernel"], cfg["focusing"])
        self.kind = kind
        self.norm2 = make_norm(norm, dim, cfg["ln_eps"], cfg["step"], 0)
        self.mlp = Mlp(dim, dim * cfg["mlp_ratio"])
        self.register_buffer("attn_mask", shift_mask(res, res, ws, shift) if kind == "S" else None)

    def forward(self, x):
        r = self.res
        w = shift_windows(self.norm1(x), r, r, self.ws, self.shift_size)
        w = self.attn(w, self.attn_mask) if self.kind == "S" else self.attn(w)
        x = x + unshift_windows(w, r, r, self.ws, self.shift_size)
        return x + self.mlp(self.norm2(x))


class PatchMergingRef(nn.Module):
    """Official PatchMerging with any norm (reduction registered first, as the official module)."""

    def __init__(self, res, dim, norm, cfg):
        super().__init__()
        self.res = res
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = make_norm(norm, 4 * dim, cfg["ln_eps"], cfg["step"], 0)

    def forward(self, x):
        return self.reduction(self.norm(patch_merge_gather(x, self.res, self.res)))


class BasicLayerRef(nn.Module):
    def __init__(self, i, cfg):
        super().__init__()
        res, dim = (cfg["img"] // cfg["patch"]) >> i, cfg["dim"] << i
        ws = min(cfg["windows"][i], res)
        kind = cfg["stages"][i]
        blocks = []
        for j in range(cfg["depths"][i]):
            shift = 0 if (j % 2 == 0 or cfg["windows"][i] >= res) else ws // 2
            blocks.append(SwinBlockRef(dim, res, cfg["heads"][i], ws, shift, kind, cfg.get("linear"), cfg["norm"], cfg))
        self.blocks = nn.ModuleList(blocks)
        last = i == len(cfg["depths"]) - 1
        self.downsample = None if last else PatchMergingRef(res, dim, cfg["norm"], cfg)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbedRef(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.proj = nn.Conv2d(cfg["in_chans"], cfg["dim"], cfg["patch"], stride=cfg["patch"])
        self.norm = make_norm(cfg["norm"], cfg["dim"], cfg["ln_eps"], cfg["step"], 0)

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class SwinRef(nn.Module):
    """A whole Swin classifier with the official module tree (slab_swin.py / swin_transformer.py /
    flatten_swin.py): patch embedding + norm, stages of blocks each ending in patch merging (the
    last excepted), final norm, token mean, head."""

    def __init__(self, cfg):
        super().__init__()
        self.patch_embed = PatchEmbedRef(cfg)
        self.layers = nn.ModuleList([BasicLayerRef(i, cfg) for i in range(len(cfg["depths"]))])
        last = cfg["dim"] << (len(cfg["depths"]) - 1)
        self.norm = make_norm(cfg["norm"], last, cfg["ln_eps"], cfg["step"], 0)
        self.head = nn.Linear(last, cfg["classes"])

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean(dim=1))


# tiny whole models: 16x16 images, patch 2 (maps 8, 4, 2), widths 4-8-16
TINY = {"img": 16, "patch": 2, "in_chans": 2, "classes": 5, "dim": 4, "depths": [2, 2, 2], "heads": [1, 2, 2],
        "mlp_ratio": 4, "ln_eps": 1e-5, "step": 40, "kernel": 5, "focusing": 3}
TINY_MODELS = {
    # SLAB-Swin: global SLA on the 8x8 map, shifted window-2 softmax (4 windows), one window; LinearNorm
    "slab": dict(TINY, norm="prepbn", stages="LSS", linear="sla", windows=[8, 2, 2]),
    # FLatten-Swin: the same layout with focused linear attention and LayerNorm
    "flatten": dict(TINY, norm="layernorm", stages="LSS", linear="focused", windows=[8, 2, 2]),
    # Swin-PRepBN: window-2 softmax everywhere (16 and 4 windows, odd blocks shifted), bare RepBN
    "prepbn": dict(TINY, norm="repbn", stages="SSS", linear="", windows=[2, 2, 2]),
}


def model_fixture(out, name, cfg, seed, batch=3):
    """swin_model_NAME.pth: the official-layout state dict ({"model": sd}, float32); LinearNorm
    schedules half way (iter = step/2) so that a training forward mixes both branches.
    swin_model_NAME.safetensors: input, eval logits (running statistics), then the logits of one
    training forward (batch statistics, lambda = 1/2) and the gradients of sum(logits * dlogits)."""
    torch.manual_seed(seed)
    m = SwinRef(cfg)
    g = gen(seed + 1)
    perturb(m, g)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("relative_position_bias_table"):
                p.copy_(torch.randn(p.shape, generator=g))
            elif n.endswith(".scale"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
        for n, b in m.named_buffers():
            if n.endswith(".iter"):
                b.fill_(cfg["step"] // 2)
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    torch.save({"model": sd, "epoch": 299}, os.path.join(out, f"swin_model_{name}.pth"))
    x = randn(gen(seed + 2), batch, cfg["in_chans"], cfg["img"], cfg["img"])
    dl = randn(gen(seed + 3), batch, cfg["classes"])
    md = copy.deepcopy(m).double()
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
    meta = dict(cfg, name=name, seed=seed)
    path = os.path.join(out, f"swin_model_{name}.safetensors")
    write_safetensors(path, t, {"config": json.dumps(meta, sort_keys=True)})
    print(f"swin_model_{name}: .pth {os.path.getsize(os.path.join(out, f'swin_model_{name}.pth'))} bytes, "
          f".safetensors {os.path.getsize(path)} bytes")


# --------------------------------------------------------------------------
# fixtures


@torch.no_grad()
def rand_params(module, g, std=0.3):
    for name, p in module.named_parameters():
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.endswith("norm.weight"):
            p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(std * torch.randn(p.shape, generator=g))


def vjp(module, x, dy):
    """y, dx and {param: grad} of sum(y * dy), float64."""
    x = x.clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    y = module(x)
    (y * dy).sum().backward()
    grads = {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in module.named_parameters()}
    return y.detach(), x.grad.detach(), grads


def fixture(path, module, x32, dy32, meta, extra=None):
    """x, dy, y, dx, param/NAME, buffer/NAME, grad/NAME (+ extra)."""
    module = module.double()
    pnames = {n for n, _ in module.named_parameters()}
    t = {}
    for k, v in module.state_dict().items():
        t[("param/" if k in pnames else "buffer/") + k] = v.detach().clone()
    y, dx, grads = vjp(module, x32.double(), dy32.double())
    t.update({"x": x32, "dy": dy32, "y": y, "dx": dx})
    for k, v in grads.items():
        t[f"grad/{k}"] = v
    if extra:
        t.update(extra)
    write_safetensors(path, t, {"config": json.dumps(meta, sort_keys=True)})
    print(f"{os.path.basename(path)}: {os.path.getsize(path)} bytes")


def self_check():
    """The layers against independent constructions, before writing anything."""
    g = gen(1)
    x = randn(g, 2, 8 * 8, 3).double()
    for s in (0, 1, 2):
        w = shift_windows(x, 8, 8, 4, s)
        assert torch.equal(unshift_windows(w, 8, 8, 4, s), x)
        # direct formula: windows[b*nW + w][r*ws + c] = x[b][((wy*ws+r+s)%H)*W + (wx*ws+c+s)%W]
        for b in range(2):
            for win in range(4):
                for t in range(16):
                    wy, wx, r, c = win // 2, win % 2, t // 4, t % 4
                    src = ((wy * 4 + r + s) % 8) * 8 + (wx * 4 + c + s) % 8
                    assert torch.equal(w[b * 4 + win, t], x[b, src])
    assert relative_position_index(2).view(-1).tolist() == [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]
    m = shift_mask(8, 8, 4, 2)
    assert m.shape == (4, 16, 16) and (m[0] == 0).all() and (m[3] != 0).any()
    # focused attention: KᵀV-first equals the quadratic form
    f = FocusedLinearAttention(8, 3, 3, 2, 3).double()
    rand_params(f, g)
    xx = randn(g, 2, 9, 8).double()
    with torch.no_grad():
        y = f(xx)
        q, k, v = f.qkv(xx).reshape(2, 9, 3, 8).permute(2, 0, 1, 3).unbind(0)
        sc = F.softplus(f.scale)

        def focus(t):
            t = (F.relu(t) + 1e-6) / sc
            n = t.norm(dim=-1, keepdim=True)
            t3 = t ** 3
            return t3 / t3.norm(dim=-1, keepdim=True) * n

        q, k = focus(q), focus(k + f.positional_encoding)
        out = torch.zeros(2, 9, 8, dtype=torch.float64)
        for hh in range(2):
            sl = slice(4 * hh, 4 * hh + 4)
            a = q[:, :, sl] @ k[:, :, sl].transpose(1, 2)
            o = (a @ v[:, :, sl]) / (a.sum(-1, keepdim=True) + 1e-6)
            fm = v[:, :, sl].transpose(1, 2).reshape(2, 4, 3, 3)
            out[:, :, sl] = o + f.dwc(fm).reshape(2, 4, 9).transpose(1, 2)
        assert (f.proj(out) - y).abs().max() < 1e-12


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--out", default=os.path.join(root, "testdata", "reference"))
    a = ap.parse_args()
    out = a.out
    self_check()
    os.makedirs(out, exist_ok=True)
    B, H, W = 2, 8, 8

    # windows: shift 0 and 2 with window 4, shift 1 with window 2, on an 8x8 map of 3 channels
    g = gen(201)
    x = randn(g, B, H * W, 3)
    t = {"x": x}
    for ws, s in ((4, 0), (4, 2), (2, 1)):
        key = f"w{ws}s{s}"
        dy = randn(g, B * (H // ws) * (W // ws), ws * ws, 3)
        y, dx, _ = vjp(Fn(lambda v, ws=ws, s=s: shift_windows(v, H, W, ws, s)), x.double(), dy.double())
        t[f"{key}/windows"], t[f"{key}/dy"], t[f"{key}/dx"] = y, dy, dx
        t[f"{key}/reverse"] = unshift_windows(y, H, W, ws, s)
        m = shift_mask(H, W, ws, s)
        if m is not None:
            t[f"{key}/mask"] = m
        t[f"{key}/relative_position_index"] = relative_position_index(ws)
    write_safetensors(f"{out}/swin_window.safetensors", t,
                      {"config": json.dumps({"B": B, "H": H, "W": W, "C": 3, "cases": ["w4s0", "w4s2", "w2s1"]})})
    print("swin_window.safetensors:", os.path.getsize(f"{out}/swin_window.safetensors"), "bytes")

    # relative position bias alone on logits [3, 2, 16, 16] (window 4, 2 heads)
    g = gen(202)
    m = RelPosBias(4, 2)
    rand_params(m, g, 1.0)
    fixture(f"{out}/swin_relpos.safetensors", m, randn(g, 3, 2, 16, 16), randn(g, 3, 2, 16, 16),
            {"layer": "relpos", "window": 4, "heads": 2})

    # window attention, dim 16, 2 heads, window 4 on 8x8 maps of 2 images (8 windows), without and with the shift-2 mask
    for s, seed in ((0, 203), (2, 204)):
        g = gen(seed)
        att = WindowAttention(16, 4, 2)
        rand_params(att, g)
        with torch.no_grad():
            att.relative_position_bias_table.mul_(3)  # the bias visibly moves the softmax
        mask = shift_mask(H, W, 4, s)
        mod = MaskedWindowAttention(att, mask)
        extra = {"mask": mask} if mask is not None else None
        fixture(f"{out}/swin_window_attention_s{s}.safetensors", mod, randn(g, 8, 16, 16), randn(g, 8, 16, 16),
                {"layer": "window_attention", "dim": 16, "heads": 2, "window": 4, "H": H, "W": W, "shift": s},
                extra)

    # patch merging: the gather alone, and the official module (LayerNorm over 4C, reduction without bias)
    g = gen(205)
    x = randn(g, B, H * W, 4)
    fixture(f"{out}/swin_patch_merge.safetensors", Fn(lambda v: patch_merge_gather(v, H, W)), x,
            randn(g, B, H * W // 4, 16), {"layer": "patch_merge", "H": H, "W": W, "C": 4})
    pm = PatchMerging(H, W, 4)
    rand_params(pm, g)
    with torch.no_grad():
        pm.norm.bias.copy_(0.1 * torch.randn(16, generator=g))
    fixture(f"{out}/swin_patch_merging.safetensors", pm, x, randn(g, B, H * W // 4, 8),
            {"layer": "patch_merging", "H": H, "W": W, "C": 4, "ln_eps": 1e-5})

    # focused linear attention, dim 16, 2 heads (d 8), 4x4 window, 5x5 DWC, p = 3, batch 3
    g = gen(206)
    f = FocusedLinearAttention(16, 4, 4, 2, 5, 3)
    rand_params(f, g)
    with torch.no_grad():
        f.qkv.bias.add_(0.2)
        f.scale.copy_(0.5 * torch.randn(1, 1, 16, generator=g))
        f.positional_encoding.mul_(0.5)
    fixture(f"{out}/swin_focused.safetensors", f, randn(g, 3, 16, 16), randn(g, 3, 16, 16),
            {"layer": "focused_linear_attention", "dim": 16, "heads": 2, "h": 4, "w": 4, "kernel": 5, "focusing": 3})

    # a Swin block pair on an 8x8 map: dim 8, 2 heads, window 4, shift 0 then 2, LayerNorm (eps 1e-5), MLP x4
    g = gen(207)
    bp = BlockPair(8, H, W, 2, 4, 2)
    rand_params(bp, g)
    with torch.no_grad():
        for b in bp.blocks:
            b.attn.relative_position_bias_table.mul_(3)
            b.norm1.bias.copy_(0.1 * torch.randn(8, generator=g))
            b.norm2.bias.copy_(0.1 * torch.randn(8, generator=g))
    fixture(f"{out}/swin_block_pair.safetensors", bp, randn(g, B, H * W, 8), randn(g, B, H * W, 8),
            {"layer": "swin_block_pair", "dim": 8, "heads": 2, "window": 4, "shift": [0, 2], "H": H, "W": W,
             "mlp_ratio": 4, "ln_eps": 1e-5})

    # whole tiny models in the official layouts
    for k, (name, cfg) in enumerate(TINY_MODELS.items()):
        model_fixture(out, name, cfg, 300 + 10 * k)


if __name__ == "__main__":
    main()
