#!/usr/bin/python3
"""slab's own PyTorch reference for the SLAB LLaMA decoder (docs/method.md 6.1).

Written from the equations, not from HF code: token embedding, pre-norm
blocks with RoPE ("rotate-half", base 10000) causal grouped-query softmax
attention and a SwiGLU MLP, final norm, untied lm_head; norms RMSNorm,
LayerNorm or PRepBN = LinearNorm(RMSNorm, RepBN) with the LLaMA counter rule
(num_step period 16, warm, iter/total_step, RepBN alpha/gamma/beta init).
Official parameter names (model.embed_tokens, model.layers.i.self_attn.q_proj,
..., lm_head).

For each norm it writes testdata/reference/llama_<norm>.safetensors with:
  param/<name>, buffer/<name>   the initial state (float32 values)
  ids, targets                  [B*T] int64
  pre_calls                     number of training-mode forwards run before
                                the recorded one (counters, BN statistics)
  train_logits, loss, grad/<name>   the recorded training call (float64 math)
  lambda                        lambda that call used
  eval_logits                   eval-mode logits after it
  buffer_after/<name>           buffers after the recorded call

    /usr/bin/python3 tools/reference/llama_ref.py
"""

import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import write_safetensors  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

CFG = dict(vocab=64, dim=32, layers=2, heads=4, kv_heads=2, head_dim=8, hidden=48,
           eps=1e-6, rope_base=10000.0, warm=1, step=2, B=2, T=8)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class RepBN(nn.Module):
    """BN over all B*T tokens (no pad mask: slab trains unpadded) + alpha*x."""

    def __init__(self, dim, eps, init):
        super().__init__()
        a = 0.0 if init == "official" else 1.0
        self.alpha = nn.Parameter(torch.full((1,), a))
        self.bn = nn.BatchNorm1d(dim, eps=eps, momentum=0.1)
        nn.init.constant_(self.bn.weight, a)

    def forward(self, x):
        s = x.shape
        return self.bn(x.reshape(-1, s[-1])).reshape(s) + self.alpha * x


class LinearNormLLaMA(nn.Module):
    """docs/method.md 6.1: counters move once every 16 training calls."""

    def __init__(self, dim, eps, warm, step, init):
        super().__init__()
        self.register_buffer("num_step", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("warm", torch.tensor(warm, dtype=torch.int64))
        self.register_buffer("iter", torch.tensor(step, dtype=torch.int64))
        self.register_buffer("total_step", torch.tensor(step, dtype=torch.int64))
        self.norm1 = RMSNorm(dim, eps)
        self.norm2 = RepBN(dim, eps, init)
        self.last_lambda = None

    def forward(self, x):
        if not self.training:
            return self.norm2(x)
        tick = int(self.num_step) % 16 == 0
        if int(self.warm) > 0:
            if tick:
                self.warm -= 1
            out = self.norm1(x)
            self.last_lambda = 1.0
        else:
            lam = int(self.iter) / int(self.total_step)
            if tick and int(self.iter) > 0:
                self.iter -= 1
            out = lam * self.norm1(x) + (1 - lam) * self.norm2(x)
            self.last_lambda = lam
        self.num_step.copy_((self.num_step + 1) % 16)
        return out


def make_norm(kind, c, init):
    if kind == "rmsnorm":
        return RMSNorm(c["dim"], c["eps"])
    if kind == "layernorm":
        return nn.LayerNorm(c["dim"], eps=c["eps"])
    return LinearNormLLaMA(c["dim"], c["eps"], c["warm"], c["step"], init)


def rope(x, base):
    """x [B, T, H, d], rotate-half: pair channel i with i + d/2."""
    B, T, H, d = x.shape
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)[None, :, None, :].to(x.dtype)
    sin = torch.cat([ang.sin(), ang.sin()], -1)[None, :, None, :].to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, H, G, d = c["dim"], c["heads"], c["kv_heads"], c["head_dim"]
        self.q_proj = nn.Linear(D, H * d, bias=False)
        self.k_proj = nn.Linear(D, G * d, bias=False)
        self.v_proj = nn.Linear(D, G * d, bias=False)
        self.o_proj = nn.Linear(H * d, D, bias=False)
        self.H, self.G, self.d, self.base = H, G, d, c["rope_base"]

    def forward(self, x):
        B, T, _ = x.shape
        q = rope(self.q_proj(x).view(B, T, self.H, self.d), self.base)
        k = rope(self.k_proj(x).view(B, T, self.G, self.d), self.base)
        v = self.v_proj(x).view(B, T, self.G, self.d)
        rep = self.H // self.G
        k = k.repeat_interleave(rep, dim=2)  # query head h uses kv head h // rep
        v = v.repeat_interleave(rep, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        s = q @ k.transpose(-1, -2) / math.sqrt(self.d)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        s = s.masked_fill(mask, float("-inf"))
        o = s.softmax(-1) @ v
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.H * self.d))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c["dim"], c["hidden"], bias=False)
        self.up_proj = nn.Linear(c["dim"], c["hidden"], bias=False)
        self.down_proj = nn.Linear(c["hidden"], c["dim"], bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c, kind, init):
        super().__init__()
        self.input_layernorm = make_norm(kind, c, init)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = make_norm(kind, c, init)
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, c, kind, init):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab"], c["dim"])
        self.layers = nn.ModuleList([Layer(c, kind, init) for _ in range(c["layers"])])
        self.norm = make_norm(kind, c, init)

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for l in self.layers:
            x = l(x)
        return self.norm(x)


class Decoder(nn.Module):
    def __init__(self, c, kind, init="vision"):
        super().__init__()
        self.model = Inner(c, kind, init)
        self.lm_head = nn.Linear(c["dim"], c["vocab"], bias=False)

    def forward(self, ids):
        return self.lm_head(self.model(ids))


def fixture(out, kind, pre_calls, seed):
    c = CFG
    g = torch.Generator().manual_seed(seed)
    m = Decoder(c, kind)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if p.dim() == 2:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:  # norm weights, RepBN alpha/gamma/beta: away from the trivial init
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
    B, T = c["B"], c["T"]
    ids = torch.randint(0, c["vocab"], (B, T), generator=g)
    targets = torch.randint(0, c["vocab"], (B, T), generator=g)
    pnames = {n for n, _ in m.named_parameters()}
    t = {}
    for k, v in m.state_dict().items():
        t[("param/" if k in pnames else "buffer/") + k] = v.clone()
    m = m.double().train()
    with torch.no_grad():
        for _ in range(pre_calls):
            m(ids)
    m.zero_grad()
    logits = m(ids)
    loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), targets.reshape(-1))
    loss.backward()
    lam = m.model.norm.last_lambda if kind == "prepbn" else 1.0
    t.update({"ids": ids.reshape(-1), "targets": targets.reshape(-1), "pre_calls": torch.tensor([pre_calls]),
              "train_logits": logits.detach(), "loss": loss.detach().reshape(1), "lambda": torch.tensor([lam])})
    for n, p in m.named_parameters():
        t["grad/" + n] = p.grad if p.grad is not None else torch.zeros_like(p)
    for k, v in m.state_dict().items():
        if k not in pnames:
            t["buffer_after/" + k] = v.clone()
    m.eval()
    with torch.no_grad():
        t["eval_logits"] = m(ids)
    meta = dict(c, norm=kind)
    name = f"llama_{kind}" + ("" if pre_calls == 0 else f"_pre{pre_calls}")
    write_safetensors(os.path.join(out, name + ".safetensors"), t, {"config": json.dumps(meta, sort_keys=True)})
    print(f"{name}: loss {loss.item():.6f} lambda {lam}")


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "reference")
    os.makedirs(out, exist_ok=True)
    fixture(out, "rmsnorm", 0, 11)
    fixture(out, "layernorm", 0, 12)
    # 19 calls before the recorded one: warm (1 tick) is over after call 1,
    # iter ticks at call 17, so the recorded 20th call mixes with lambda 0.5.
    fixture(out, "prepbn", 19, 13)
    # 35 earlier calls: lambda has reached 0 (pure RepBN, RMS branch dead).
    fixture(out, "prepbn", 35, 14)


if __name__ == "__main__":
    main()
