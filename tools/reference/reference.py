#!/usr/bin/python3
"""slab's own PyTorch reference for SLAB (PRepBN + simplified linear attention).

Written from the equations of docs/method.md (sections 1-4), with the
official parameter names (docs/method.md 4.6) and module structure (RepBN.alpha/.bn,
LinearNorm.norm1/.norm2 + warm/iter/total_step buffers, Attention and SLA with
qkv/proj, SLA positional_encoding/dwc, Mlp fc1/fc2, PatchEmbed.proj, DeiT-style
blocks.i, norm, head, cls_token, pos_embed), so that its state dicts load into
both slab and the official code.

It writes the fixtures under testdata/reference/ that slab's Go tests compare
against (see testdata/reference/README.md):

    /usr/bin/python3 tools/reference/reference.py            # fixtures
    /usr/bin/python3 tools/reference/reference.py --pth-full DIR   # full-width 224px .pth (~25 MB each), not committed

Precision: every input and parameter is first drawn in float32 (so the Go side
sees exactly the same values), then the computation runs in float64 and the
results are rounded to float32 when written. The fixtures therefore hold the
exact answer to within float32 rounding, and a Go float32 implementation is
compared against the truth, not against another float32 rounding pattern.

Safetensors are written by hand (8-byte little-endian header length, JSON
header sorted by key and padded with spaces to a multiple of 8, raw
little-endian data): Debian's python3-torch ships no safetensors module.
"""

import argparse
import copy
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)  # deterministic reductions
torch.use_deterministic_algorithms(True)

# --------------------------------------------------------------------------
# safetensors writer


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor/ndarray} as safetensors; float -> F32, int -> I64."""
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name]
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        t = np.asarray(t)
        if t.dtype.kind == "f":
            a, dt = np.ascontiguousarray(t, dtype="<f4"), "F32"
        elif t.dtype.kind in "iub":
            a, dt = np.ascontiguousarray(t, dtype="<i8"), "I64"
        else:
            raise TypeError(f"{name}: dtype {t.dtype}")
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in sorted(metadata.items())}
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# layers (docs/method.md 1, 3, 4)


class RepBN(nn.Module):
    """RepBN(x) = BN(x) + alpha*x over the channel axis of [B, N, C] (docs/method.md 1.1)."""

    def __init__(self, dim, eps=1e-5, alpha=1.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.full((1,), float(alpha)))
        self.bn = nn.BatchNorm1d(dim, eps=eps, momentum=0.1)

    def forward(self, x):
        return self.bn(x.transpose(1, 2)).transpose(1, 2) + self.alpha * x


class TokenBN(nn.BatchNorm1d):
    """Plain BatchNorm over the channels of [B, N, C] tokens (no alpha)."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class LinearNorm(nn.Module):
    """lambda*norm1(x) + (1-lambda)*norm2(x) with the vision schedule of docs/method.md 1.2."""

    def __init__(self, dim, norm1, norm2, warm=0, step=300000, r0=1.0):
        super().__init__()
        self.register_buffer("warm", torch.tensor(warm, dtype=torch.int64))
        self.register_buffer("iter", torch.tensor(step, dtype=torch.int64))
        self.register_buffer("total_step", torch.tensor(step, dtype=torch.int64))
        self.r0 = r0
        self.norm1 = norm1
        self.norm2 = norm2
        self.last_lambda = None

    def forward(self, x):
        if not self.training:
            return self.norm2(x)
        if self.warm.item() > 0:
            self.warm -= 1
            self.last_lambda = 1.0
            return self.norm1(x)
        lam = self.r0 * self.iter.item() / self.total_step.item()  # before the decrement
        if self.iter.item() > 0:
            self.iter -= 1
        self.last_lambda = lam
        return lam * self.norm1(x) + (1.0 - lam) * self.norm2(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact erf GELU


class Attention(nn.Module):
    """Standard ViT softmax attention, scale d^-0.5 (docs/method.md 3.3)."""

    def __init__(self, dim, heads, qkv_bias=True):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        h, d = self.heads, C // self.heads
        qkv = self.qkv(x).reshape(B, N, 3, h, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = torch.softmax((q @ k.transpose(-2, -1)) * d ** -0.5, dim=-1)
        o = (a @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(o)


class SLA(nn.Module):
    """Simplified linear attention, docs/method.md 3.1, on an H x W token grid (row-major)."""

    def __init__(self, dim, heads, H, W, kernel=5, qkv_bias=True):
        super().__init__()
        self.heads, self.H, self.W = heads, H, W
        d = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.positional_encoding = nn.Parameter(torch.zeros(1, H * W, dim))
        self.dwc = nn.Conv2d(d, d, kernel, padding=kernel // 2, groups=d)

    def forward(self, x):
        B, N, C = x.shape
        h, d = self.heads, C // self.heads
        q, k, v = self.qkv(x).reshape(B, N, 3, C).unbind(2)
        k = k + self.positional_encoding
        q, k = F.relu(q), F.relu(k)
        q, k, v = (t.reshape(B, N, h, d).transpose(1, 2) for t in (q, k, v))  # [B,h,N,d]
        ksum = k.sum(dim=2, keepdim=True)  # [B,h,1,d]
        z = 1.0 / ((q * ksum).sum(-1, keepdim=True) + 1e-6)  # [B,h,N,1]
        o = (q @ (k.transpose(-2, -1) @ v)) * z  # the d x d state first: same result
        vm = v.reshape(B * h, N, d).transpose(1, 2).reshape(B * h, d, self.H, self.W)
        o = o + self.dwc(vm).reshape(B, h, d, N).transpose(-2, -1)
        return self.proj(o.transpose(1, 2).reshape(B, N, C))


class PatchEmbed(nn.Module):
    def __init__(self, img, patch, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


def make_norm(kind, dim, ln_eps, step, warm):
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=ln_eps)
    if kind == "repbn":
        return RepBN(dim)
    if kind == "prepbn":
        return LinearNorm(dim, nn.LayerNorm(dim, eps=ln_eps), RepBN(dim), warm=warm, step=step)
    if kind == "batchnorm":
        return TokenBN(dim, eps=1e-5, momentum=0.1)
    if kind == "none":
        return nn.Identity()
    raise ValueError(kind)


class Block(nn.Module):
    def __init__(self, cfg, grid):
        super().__init__()
        dim = cfg["dim"]
        self.norm1 = make_norm(cfg["norm"], dim, cfg["ln_eps"], cfg["step"], cfg["warm"])
        if cfg["attn"] == "sla":
            self.attn = SLA(dim, cfg["heads"], grid[0], grid[1], cfg["kernel"])
        else:
            self.attn = Attention(dim, cfg["heads"])
        self.norm2 = make_norm(cfg["norm"], dim, cfg["ln_eps"], cfg["step"], cfg["warm"])
        self.mlp = Mlp(dim, dim * cfg["mlp_ratio"])

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DeiT(nn.Module):
    """DeiT-style model: deit.py (cls token, softmax) and slab_deit.py (mean pool, SLA) layouts."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        g = cfg["img"] // cfg["patch"]
        n = g * g + (1 if cfg["cls"] else 0)
        dim = cfg["dim"]
        self.patch_embed = PatchEmbed(cfg["img"], cfg["patch"], cfg["in_chans"], dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))  # unused by mean-pool models
        self.pos_embed = nn.Parameter(torch.zeros(1, n, dim))
        self.blocks = nn.ModuleList([Block(cfg, (g, g)) for _ in range(cfg["depth"])])
        self.norm = make_norm(cfg["norm"], dim, cfg["ln_eps"], cfg["step"], cfg["warm"])
        self.head = nn.Linear(dim, cfg["classes"])
        self._init()

    def _init(self):
        # docs/method.md 4.1; conv keeps PyTorch's default init.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x):
        x = self.patch_embed(x)
        if self.cfg["cls"]:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        for b in self.blocks:
            x = b(x)
        x = self.norm(x)
        x = x[:, 0] if self.cfg["cls"] else x.mean(dim=1)
        return self.head(x)


# --------------------------------------------------------------------------
# fold (docs/method.md 2.1, exact form) -- our own, on an eval-mode model


def norm_affine(m):
    """Eval-mode per-channel map y = a*x + b of a BN-based norm."""
    if isinstance(m, LinearNorm):
        m = m.norm2
    if isinstance(m, RepBN):
        bn, alpha = m.bn, m.alpha
    elif isinstance(m, nn.BatchNorm1d):
        bn, alpha = m, torch.zeros(1, dtype=m.weight.dtype)
    else:
        raise TypeError(f"only BatchNorm-based norms fold, not {type(m).__name__}")
    s = torch.sqrt(bn.running_var + bn.eps)
    a = bn.weight / s + alpha
    b = bn.bias - bn.weight * bn.running_mean / s
    return a, b


@torch.no_grad()
def fold_into(lin, a, b):
    """Linear y = W z + c after z = a*x + b:  W' = W diag(a), c' = W b + c."""
    c = lin.bias if lin.bias is not None else torch.zeros(lin.out_features, dtype=lin.weight.dtype)
    newc = lin.weight @ b + c
    lin.weight.mul_(a[None, :])
    lin.bias = nn.Parameter(newc)


@torch.no_grad()
def fuse(model):
    m = copy.deepcopy(model).eval()
    for blk in m.blocks:
        fold_into(blk.attn.qkv, *norm_affine(blk.norm1))
        fold_into(blk.mlp.fc1, *norm_affine(blk.norm2))
        blk.norm1, blk.norm2 = nn.Identity(), nn.Identity()
    # final norm -> head: pooling (mean or cls pick) is linear per channel
    fold_into(m.head, *norm_affine(m.norm))
    m.norm = nn.Identity()
    m.cfg["norm"] = "none"
    return m


# --------------------------------------------------------------------------
# helpers


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(g, *shape, std=1.0):
    return (torch.randn(*shape, generator=g) * std).float()


@torch.no_grad()
def perturb(model, g):
    """Replaces zero/one inits by realistic random values (float32) so that
    a mix-up of gamma/alpha/beta, a forgotten bias or positional encoding
    cannot hide behind an init of 0 or 1; running stats look trained."""
    for name, p in model.named_parameters():
        if name.endswith(".alpha"):
            p.copy_(0.5 + torch.rand(p.shape, generator=g))
        elif p.dim() == 1 and name.endswith("weight"):  # LN / BN gamma
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
        elif name.endswith("positional_encoding"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    for name, b in model.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(0.3 * torch.randn(b.shape, generator=g))
        elif name.endswith("running_var"):
            b.copy_(0.5 + 1.5 * torch.rand(b.shape, generator=g))
        elif name.endswith("num_batches_tracked"):
            b.fill_(7)
    for p in model.parameters():  # exactly float32-representable
        p.data = p.data.float()


def f32(model):
    """float32 copy of parameters and float buffers (what the fixture stores)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def no_decay(name, p):
    # docs/method.md 5: every 1-D parameter, every *.bias, DeiT's no_weight_decay() names
    return p.dim() <= 1 or name.endswith(".bias") or name in ("pos_embed", "cls_token")


def state_tensors(prefix, model):
    out = {}
    pnames = {n for n, _ in model.named_parameters()}
    for k, v in model.state_dict().items():
        kind = "param" if k in pnames else "buffer"
        out[f"{prefix}{kind}/{k}"] = v.detach().clone()
    return out


def grad_tensors(prefix, model):
    out = {}
    for n, p in model.named_parameters():
        out[f"{prefix}grad/{n}"] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
    return out


# --------------------------------------------------------------------------
# layer fixtures (nn/reference_test.go)


def vjp(module, x, dy, params=True):
    """Returns y, dx and {name: grad} of sum(y*dy), all in float64."""
    x = x.clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    y = module(x)
    (y * dy).sum().backward()
    grads = {}
    if params:
        for n, p in module.named_parameters():
            grads[n] = p.grad.clone() if p.grad is not None else torch.zeros_like(p)
    return y.detach(), x.grad.detach(), grads


def layer_fixture(path, module, x32, g, meta, extra=None):
    """Common shape: x, dy, params, y, dx, grad/<name> (+ buffers after)."""
    module = module.double()
    params0 = {f"param/{k}": v.detach().clone() for k, v in module.state_dict().items()}
    x = x32.double()
    dy = randn(g, *x32.shape[:-1], meta["out_dim"]) if "out_dim" in meta else randn(g, *x32.shape)
    y, dx, grads = vjp(module, x, dy.double())
    t = {"x": x32, "dy": dy, "y": y, "dx": dx}
    t.update(params0)
    for k, v in grads.items():
        t[f"grad/{k}"] = v
    if extra:
        t.update(extra(module))
    write_safetensors(path, t, {"config": json.dumps(meta, sort_keys=True)})
    return module


@torch.no_grad()
def rand_params(module, g, std=0.3):
    for _, p in module.named_parameters():
        p.copy_(std * torch.randn(p.shape, generator=g))


def layer_fixtures(out):
    B, N, C = 3, 5, 16

    # LayerNorm eps 1e-6 (DeiT)
    g = gen(101)
    m = nn.LayerNorm(C, eps=1e-6)
    with torch.no_grad():
        m.weight.copy_(1 + 0.2 * torch.randn(C, generator=g))
        m.bias.copy_(0.1 * torch.randn(C, generator=g))
    x = randn(g, B, N, C) * 2 + 0.5
    layer_fixture(f"{out}/layernorm.safetensors", m, x, g, {"layer": "layernorm", "dim": C, "eps": 1e-6})

    # RepBN: train (output, grads, updated running stats), then eval on new x
    for kind, seed in (("repbn", 102), ("batchnorm", 103)):
        g = gen(seed)
        m = RepBN(C) if kind == "repbn" else TokenBN(C)
        perturb(m, g)
        m.train()
        x = randn(g, B, N, C) * 1.5 + 0.3
        xe = randn(g, B, N, C)

        def after(mod, xe=xe):
            mod.eval()
            with torch.no_grad():
                ye = mod(xe.double())
            return {f"after/buffer/{k}": v.clone() for k, v in mod.state_dict().items()
                    if "running" in k or "num_batches" in k} | {"x_eval": xe, "y_eval": ye}

        layer_fixture(f"{out}/{kind}.safetensors", m, x, g,
                      {"layer": kind, "dim": C, "eps": 1e-5, "momentum": 0.1}, after)

    # LinearNorm(LN 1e-6, RepBN), T = 4: training calls 1..6 -> lambda 1, .75, .5, .25, 0 (T+1), 0;
    # then one eval call. Gradients are zeroed before each call (Go: ZeroGrads).
    g = gen(104)
    T = 4
    m = LinearNorm(C, nn.LayerNorm(C, eps=1e-6), RepBN(C), warm=0, step=T)
    perturb(m, g)
    m = m.double().train()
    t = {f"param/{k}": v.clone() for k, v in m.state_dict().items()}
    lams = []
    calls = 6
    for i in range(calls):
        x = randn(g, B, N, C) * 1.5 + 0.2
        dy = randn(g, B, N, C)
        y, dx, grads = vjp(m, x.double(), dy.double())
        lams.append(m.last_lambda)
        t[f"call{i}/x"], t[f"call{i}/dy"], t[f"call{i}/y"], t[f"call{i}/dx"] = x, dy, y, dx
        for k, v in grads.items():
            t[f"call{i}/grad/{k}"] = v
        for k, v in m.state_dict().items():
            if k not in dict(m.named_parameters()):
                t[f"call{i}/buffer/{k}"] = v.clone()
    m.eval()
    xe = randn(g, B, N, C)
    with torch.no_grad():
        t["eval/x"], t["eval/y"] = xe, m(xe.double())
    t["lambdas"] = torch.tensor(lams, dtype=torch.float64)
    write_safetensors(f"{out}/linearnorm.safetensors", t,
                      {"config": json.dumps({"layer": "linearnorm", "dim": C, "ln_eps": 1e-6, "bn_eps": 1e-5,
                                             "warm": 0, "step": T, "calls": calls, "lambdas": lams})})

    # MLP (exact GELU), hidden 4C
    g = gen(105)
    m = Mlp(C, 4 * C)
    rand_params(m, g)
    layer_fixture(f"{out}/mlp.safetensors", m, randn(g, B, N, C), g, {"layer": "mlp", "dim": C, "hidden": 4 * C})

    # softmax attention, 2 heads, 7 tokens
    g = gen(106)
    m = Attention(C, 2)
    rand_params(m, g)
    layer_fixture(f"{out}/attention.safetensors", m, randn(g, B, 7, C), g,
                  {"layer": "attention", "dim": C, "heads": 2, "tokens": 7})

    # SLA on odd grids, 2 heads (d = 8), kernel 5
    for H, W, seed in ((3, 5, 107), (7, 7, 108)):
        g = gen(seed)
        m = SLA(C, 2, H, W, 5)
        rand_params(m, g)
        with torch.no_grad():
            m.qkv.bias.add_(0.2)  # keep ReLU(Q), ReLU(K) mostly alive, so z is well conditioned
        layer_fixture(f"{out}/sla_{H}x{W}.safetensors", m, randn(g, B, H * W, C), g,
                      {"layer": "sla", "dim": C, "heads": 2, "h": H, "w": W, "kernel": 5})

    # patch embedding: 3 channels, 12x12 image, patch 4 -> 9 tokens of 16
    g = gen(109)
    m = PatchEmbed(12, 4, 3, C)
    rand_params(m, g, 0.2)
    x = randn(g, 2, 3, 12, 12)
    mm = m.double()
    y = mm(x.double()).detach()
    dy = randn(g, *y.shape)
    xx = x.double()
    mm.zero_grad()
    (mm(xx) * dy.double()).sum().backward()
    t = {"x": x, "dy": dy, "y": y, "param/proj.weight": mm.proj.weight.detach(), "param/proj.bias": mm.proj.bias.detach(),
         "grad/proj.weight": mm.proj.weight.grad, "grad/proj.bias": mm.proj.bias.grad}
    write_safetensors(f"{out}/patchembed.safetensors", t,
                      {"config": json.dumps({"layer": "patchembed", "in_chans": 3, "dim": C, "patch": 4, "img": 12})})

    # cross-entropy with label smoothing 0.1, mean over rows
    g = gen(110)
    logits = randn(g, 4, 10) * 2
    labels = torch.tensor([3, 0, 9, 3])
    lg = logits.double().requires_grad_(True)
    loss = F.cross_entropy(lg, labels, label_smoothing=0.1)
    loss.backward()
    write_safetensors(f"{out}/crossentropy.safetensors",
                      {"logits": logits, "labels": labels, "loss": loss.detach().reshape(1), "dlogits": lg.grad},
                      {"config": json.dumps({"layer": "crossentropy", "smoothing": 0.1})})

    # AdamW alone on fixed gradients (torch.optim.AdamW, see ADAMW_SEMANTICS)
    g = gen(111)
    w = randn(g, 6, 5)
    bvec = randn(g, 5)
    pw, pb = nn.Parameter(w.double().clone()), nn.Parameter(bvec.double().clone())
    opt = torch.optim.AdamW([{"params": [pw], "weight_decay": 0.05}, {"params": [pb], "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    t = {"w0": w, "b0": bvec}
    for k in range(5):
        gw, gb = randn(g, 6, 5) * 10 ** (-k), randn(g, 5)
        t[f"step{k}/gw"], t[f"step{k}/gb"] = gw, gb
        pw.grad, pb.grad = gw.double(), gb.double()
        opt.step()
        t[f"step{k}/w"], t[f"step{k}/b"] = pw.detach().clone(), pb.detach().clone()
    write_safetensors(f"{out}/adamw.safetensors", t,
                      {"config": json.dumps({"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                             "weight_decay_w": 0.05, "weight_decay_b": 0.0,
                                             "semantics": ADAMW_SEMANTICS})})


ADAMW_SEMANTICS = ("torch.optim.AdamW (1.13, single-tensor path): t += 1; p *= 1 - lr*wd; "
                   "m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; "
                   "p -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps). "
                   "Parameters without a gradient (None) are skipped entirely.")

# --------------------------------------------------------------------------
# whole-model fixtures (models/vit/reference_test.go)

TINY = dict(img=14, patch=2, in_chans=3, classes=10, dim=16, depth=2, heads=2, mlp_ratio=4,
            ln_eps=1e-6, step=4, warm=0, kernel=5)

# (file stem, norm, attn, cls token)
VARIANTS = [
    ("layernorm_sla", "layernorm", "sla", False),
    ("repbn_sla", "repbn", "sla", False),
    ("prepbn_sla", "prepbn", "sla", False),
    ("batchnorm_sla", "batchnorm", "sla", False),
    ("layernorm_softmax_cls", "layernorm", "softmax", True),
    ("repbn_softmax_cls", "repbn", "softmax", True),
    ("prepbn_softmax_cls", "prepbn", "softmax", True),
    ("batchnorm_softmax_cls", "batchnorm", "softmax", True),
    ("layernorm_softmax_mean", "layernorm", "softmax", False),
    ("prepbn_softmax_mean", "prepbn", "softmax", False),
]

ITER0 = 2  # LinearNorm iter at the start: lambda 0.5, 0.25, 0, 0, 0 over the 5 training forwards


def build(cfg, seed):
    torch.manual_seed(seed)
    m = DeiT(cfg)
    perturb(m, gen(seed + 1))
    with torch.no_grad():
        for name, b in m.named_buffers():
            if name.endswith(".iter"):
                b.fill_(ITER0)
    return m


def loss_fn(logits, labels):
    return F.cross_entropy(logits, labels, label_smoothing=0.1)


def model_fixture(out, stem, norm, attn, cls, seed):
    cfg = dict(TINY, norm=norm, attn=attn, cls=cls)
    m32 = build(cfg, seed)
    g = gen(seed + 2)
    B = 4
    x = randn(g, B, cfg["in_chans"], cfg["img"], cfg["img"])
    labels = torch.randint(0, cfg["classes"], (B,), generator=g)
    t = {"input": x, "labels": labels}
    t.update(state_tensors("init/", m32))

    m = copy.deepcopy(m32).double()
    # eval logits (running stats; LinearNorm = RepBN)
    m.eval()
    with torch.no_grad():
        t["eval/logits"] = m(x.double())
    # fused (deploy) model's logits, BN-based norms only
    if norm in ("repbn", "prepbn", "batchnorm"):
        fm = fuse(m)
        with torch.no_grad():
            fl = fm(x.double())
        diff = (fl - t["eval/logits"]).abs().max().item()
        assert diff < 1e-10, f"{stem}: fold mismatch {diff}"
        t["fused/logits"] = fl
        t.update(state_tensors("fused/", fm))

    # BN re-calibration pass (docs/method.md 1.4, official update_model): eval mode,
    # every BatchNorm in train mode (normalises with batch statistics and
    # updates running stats), no grad; then eval logits with the new stats
    if norm != "layernorm":
        rm = copy.deepcopy(m32).double().eval()
        for mod in rm.modules():
            if isinstance(mod, nn.BatchNorm1d):
                mod.train()
        with torch.no_grad():
            rm(x.double())
            rm.eval()
            t["recal/eval_logits"] = rm(x.double())
        for k, v in rm.state_dict().items():
            if k not in dict(rm.named_parameters()):
                t[f"recal/buffer/{k}"] = v.clone()

    # one training forward/backward: logits, loss, every parameter's gradient, buffers after
    m.train()
    m.zero_grad(set_to_none=True)
    logits = m(x.double())
    loss = loss_fn(logits, labels)
    loss.backward()
    t["train/logits"] = logits.detach()
    t["train/loss"] = loss.detach().reshape(1)
    t.update(grad_tensors("train/", m))
    # Parameters whose exact gradient is zero although they are used: in a
    # plain-BatchNorm model every bias that only shifts the residual stream per
    # channel (patch_embed.proj.bias, attn.proj.bias, mlp.fc2.bias) is removed
    # by the next BN. float64 leaves ~1e-17 here, far below Adam's eps, so
    # PyTorch does not move them; a float32 gradient carries ~1e-8..1e-7 of
    # rounding noise, above eps, and Adam turns it into lr-sized steps of
    # random sign. Tests project these gradients to their exact value, zero.
    null_space = sorted(n for n, p in m.named_parameters()
                        if p.grad is not None and p.grad.abs().max().item() < 1e-12)
    for k, v in m.state_dict().items():
        if k not in dict(m.named_parameters()):
            t[f"train/buffer/{k}"] = v.clone()

    # 5 AdamW steps from the initial state on the same batch
    m = copy.deepcopy(m32).double().train()
    decay = [p for n, p in m.named_parameters() if not no_decay(n, p)]
    nod = [p for n, p in m.named_parameters() if no_decay(n, p)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": nod, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    losses, lams = [], []
    for _ in range(5):
        opt.zero_grad(set_to_none=False)
        lam = lambda_of(m)
        loss = loss_fn(m(x.double()), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        lams.append(lam)
    t["adamw/losses"] = torch.tensor(losses, dtype=torch.float64)
    t.update(state_tensors("adamw/", m))
    meta = dict(cfg, name=stem, seed=seed, batch=B, iter0=ITER0, smoothing=0.1, lr=1e-3, weight_decay=0.05,
                adamw_steps=5, adamw_lambdas=lams, adamw=ADAMW_SEMANTICS, zero_grad_params=null_space,
                no_decay="1-D params, *.bias, pos_embed, cls_token",
                precision="float32 inputs/params, float64 compute, float32 results")
    write_safetensors(f"{out}/vit_{stem}.safetensors", t, {"config": json.dumps(meta, sort_keys=True)})


def lambda_of(m):
    for mod in m.modules():
        if isinstance(mod, LinearNorm):
            return mod.r0 * mod.iter.item() / mod.total_step.item()
    return 1.0 if m.cfg["norm"] == "layernorm" else 0.0


# --------------------------------------------------------------------------
# self-checks: the torch modules above against plain numpy loops written from
# the docs/method.md equations (run before writing fixtures)


def self_check():
    g = gen(7)
    # SLA (docs/method.md 3.1) token by token, with the quadratic form (Q K^T) V and an
    # explicit zero-padded depth-wise conv whose d kernels are shared by all heads
    B, H, W, C, h, k = 2, 3, 5, 8, 2, 5
    N, d = H * W, C // h
    m = SLA(C, h, H, W, k).double()
    rand_params(m, g)
    x = randn(g, B, N, C).double()
    with torch.no_grad():
        y = m(x).numpy()
        qkv = m.qkv(x).numpy()
    P = m.positional_encoding.detach().numpy()[0]
    Wd, bd = m.dwc.weight.detach().numpy()[:, 0], m.dwc.bias.detach().numpy()
    out = np.zeros((B, N, C))
    for b in range(B):
        Q = np.maximum(qkv[b, :, :C], 0)
        K = np.maximum(qkv[b, :, C:2 * C] + P, 0)
        V = qkv[b, :, 2 * C:]
        for hh in range(h):
            s = slice(hh * d, hh * d + d)
            q, kk, v = Q[:, s], K[:, s], V[:, s]
            A = q @ kk.T
            o = (A @ v) / (A.sum(1, keepdims=True) + 1e-6)
            vm = v.T.reshape(d, H, W)
            conv = np.zeros((d, H, W))
            for c in range(d):
                for r in range(H):
                    for cc in range(W):
                        acc = bd[c]
                        for i in range(k):
                            for j in range(k):
                                rr, c2 = r + i - k // 2, cc + j - k // 2
                                if 0 <= rr < H and 0 <= c2 < W:
                                    acc += Wd[c, i, j] * vm[c, rr, c2]
                        conv[c, r, cc] = acc
            out[b, :, s] = o + conv.reshape(d, N).T
    ref = out @ m.proj.weight.detach().numpy().T + m.proj.bias.detach().numpy()
    assert np.abs(ref - y).max() < 1e-10, np.abs(ref - y).max()

    # RepBN train step (docs/method.md 1.1): biased variance to normalise, unbiased into running_var
    m = RepBN(4).double()
    perturb(m, g)
    m = m.double().train()
    x = randn(g, 3, 5, 4).double()
    rm0, rv0 = m.bn.running_mean.clone().numpy(), m.bn.running_var.clone().numpy()
    with torch.no_grad():
        y = m(x).numpy()
    xs = x.numpy().reshape(-1, 4)
    mu, var = xs.mean(0), xs.var(0)
    gam, bet, al = m.bn.weight.detach().numpy(), m.bn.bias.detach().numpy(), m.alpha.item()
    ref = gam * (xs - mu) / np.sqrt(var + 1e-5) + bet + al * xs
    assert np.abs(ref - y.reshape(-1, 4)).max() < 1e-12
    M = xs.shape[0]
    assert np.abs(m.bn.running_mean.numpy() - (0.9 * rm0 + 0.1 * mu)).max() < 1e-12
    assert np.abs(m.bn.running_var.numpy() - (0.9 * rv0 + 0.1 * var * M / (M - 1))).max() < 1e-12

    # LinearNorm schedule (docs/method.md 1.2): lambda_n = (T-(n-1))/T, then 0; eval = RepBN
    ln = LinearNorm(4, nn.LayerNorm(4), RepBN(4), warm=0, step=3).double().train()
    lams = []
    for _ in range(5):
        ln(x)
        lams.append(ln.last_lambda)
    assert lams == [1.0, 2 / 3, 1 / 3, 0.0, 0.0], lams
    assert ln.iter.item() == 0

    # label smoothing 0.1 = soft targets (1-e) one-hot + e/K
    z = randn(g, 4, 10).double()
    lab = torch.tensor([1, 2, 3, 9])
    p = torch.log_softmax(z, 1)
    tgt = torch.full((4, 10), 0.1 / 10, dtype=torch.float64)
    tgt[torch.arange(4), lab] += 0.9
    assert abs(F.cross_entropy(z, lab, label_smoothing=0.1).item() + (tgt * p).sum(1).mean().item()) < 1e-12


# --------------------------------------------------------------------------
# official-layout .pth checkpoints (models/vit/import_reference_test.go,
# tools/reference/reftest/official224_test.go)

OFFICIAL = {
    # SLAB-DeiT (slab_deit.py): LinearNorm keys, unused cls_token, 196-token pos_embed, SLA, mean pool
    "slab_deit_tiny": dict(img=224, patch=16, in_chans=3, classes=1000, dim=192, depth=12, heads=3, mlp_ratio=4,
                           ln_eps=1e-6, step=60000, warm=0, kernel=5, norm="prepbn", attn="sla", cls=False),
    # DeiT-T-PRepBN (deit.py): bare RepBN keys, cls token, 197 positions, softmax
    "deit_tiny_prepbn": dict(img=224, patch=16, in_chans=3, classes=1000, dim=192, depth=12, heads=3, mlp_ratio=4,
                             ln_eps=1e-6, step=300000, warm=0, kernel=5, norm="repbn", attn="softmax", cls=True),
}
OFFICIAL_TINY = {
    "tiny_slab_deit": dict(OFFICIAL["slab_deit_tiny"], img=32, patch=8, dim=24, depth=2, heads=2, classes=10),
    "tiny_deit_prepbn": dict(OFFICIAL["deit_tiny_prepbn"], img=32, patch=8, dim=24, depth=2, heads=2, classes=10),
}
# The 224px models at width 6 (2 channels per head): every key of the
# full-size layout (12 blocks, 14x14 tokens, 196/197 positions, 16x16 patches,
# 1000 classes) with each tensor's width cut, ~80 KB each. Their input is
# formula_input, so the logits file stays small.
OFFICIAL_W6 = {
    "slab_deit_tiny_w6": dict(OFFICIAL["slab_deit_tiny"], dim=6),
    "deit_tiny_prepbn_w6": dict(OFFICIAL["deit_tiny_prepbn"], dim=6),
}


def formula_input(*shape):
    """A deterministic input that Go recomputes instead of reading a stored
    one: element i (row-major) is float32(((i*7919) % 2001)/1000 - 1), every
    operation exact or correctly rounded in float64 on both sides."""
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    x = (((i * 7919) % 2001).astype(np.float64) / 1000.0 - 1.0).astype(np.float32)
    return torch.from_numpy(x.reshape(shape))


def official_pth(outdir, name, cfg, seed, batch=2, formula=False):
    """Writes NAME.pth ({"model": state_dict}, float32, iter = 0 as released) and
    NAME_logits.safetensors (input and float64-computed logits, eval mode;
    formula: the input is formula_input and not stored)."""
    torch.manual_seed(seed)
    m = DeiT(cfg)
    perturb(m, gen(seed + 1))
    with torch.no_grad():
        for n, b in m.named_buffers():
            if n.endswith(".iter"):
                b.fill_(0)
    m.eval()
    sd = m.state_dict()
    torch.save({"model": sd, "epoch": 299}, os.path.join(outdir, f"{name}.pth"))
    if formula:
        x = formula_input(batch, cfg["in_chans"], cfg["img"], cfg["img"])
    else:
        x = randn(gen(seed + 2), batch, cfg["in_chans"], cfg["img"], cfg["img"])
    md = copy.deepcopy(m).double().eval()
    with torch.no_grad():
        logits = md(x.double())
        fl = fuse(md)(x.double())
    assert (fl - logits).abs().max().item() < 1e-9
    out = {"logits": logits} if formula else {"input": x, "logits": logits}
    meta = dict(cfg, name=name, seed=seed, **({"input": "formula"} if formula else {}))
    write_safetensors(os.path.join(outdir, f"{name}_logits.safetensors"), out, {"config": json.dumps(meta, sort_keys=True)})


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--out", default=os.path.join(root, "testdata", "reference"))
    ap.add_argument("--pth-full", metavar="DIR", help="write the full-size 224px official-layout .pth files into DIR")
    a = ap.parse_args()
    if a.pth_full:
        os.makedirs(a.pth_full, exist_ok=True)
        for i, (name, cfg) in enumerate(OFFICIAL.items()):
            official_pth(a.pth_full, name, cfg, 900 + 10 * i)
        return
    self_check()
    os.makedirs(a.out, exist_ok=True)
    layer_fixtures(a.out)
    for i, (stem, norm, attn, cls) in enumerate(VARIANTS):
        model_fixture(a.out, stem, norm, attn, cls, 1000 + 10 * i)
    for i, (name, cfg) in enumerate(OFFICIAL_TINY.items()):
        official_pth(a.out, name, cfg, 800 + 10 * i)
    for i, (name, cfg) in enumerate(OFFICIAL_W6.items()):
        official_pth(a.out, name, cfg, 850 + 10 * i, formula=True)


if __name__ == "__main__":
    main()
