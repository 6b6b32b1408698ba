#!/usr/bin/python3
"""slab's PyTorch reference for the adaptive-input language model's two ends.

- Adaptive input (Baevski & Auli 2019): our own module written from the
  equations, with fairseq's structure and names (embeddings.{i}.0 an
  nn.Embedding of the band's local ids, embeddings.{i}.1 a bias-free
  nn.Linear to the model width; band i has initial_dim // factor**i
  dimensions). Checked against a token-by-token numpy loop first.
- Adaptive softmax: torch.nn.AdaptiveLogSoftmaxWithLoss itself. For the tied
  variants (fairseq's tie_adaptive_weights / tie_adaptive_proj) its head and
  tail modules are swapped for modules that use the adaptive input's
  tensors, as fairseq's TiedHeadModule and TiedLinear do, and the torch
  module's forward and log_prob run unchanged on them.

It writes testdata/reference/adaptive_*.safetensors (see the README there),
which nn/adaptive_reference_test.go compares against:

    /usr/bin/python3 tools/reference/adaptive_reference.py

Precision as in reference.py: inputs and parameters are drawn in float32,
everything is computed in float64, results are stored rounded to float32.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import gen, randn, write_safetensors  # noqa: E402


class AdaptiveInput(nn.Module):
    """Band i: ids [c_{i-1}, c_i) -> Embedding(size_i, d_i) -> Linear(d_i, dim, bias=False)."""

    def __init__(self, vocab, initial_dim, factor, dim, cutoffs):
        super().__init__()
        if vocab > cutoffs[-1]:
            cutoffs = cutoffs + [vocab]
        self.cutoffs = cutoffs
        self.dim = dim
        self.embeddings = nn.ModuleList()
        for i, hi in enumerate(cutoffs):
            lo = cutoffs[i - 1] if i > 0 else 0
            d = int(initial_dim // (factor**i))
            self.embeddings.append(nn.Sequential(nn.Embedding(hi - lo, d), nn.Linear(d, dim, bias=False)))

    def band(self, i):
        return self.embeddings[i][0].weight, self.embeddings[i][1].weight

    def forward(self, ids):
        out = torch.zeros(ids.shape + (self.dim,), dtype=self.embeddings[0][1].weight.dtype)
        lo = 0
        for i, hi in enumerate(self.cutoffs):
            mask = (ids >= lo) & (ids < hi)
            if mask.any():
                out[mask] = self.embeddings[i](ids[mask] - lo)
            lo = hi
        return out


class TiedLinear(nn.Module):
    """F.linear with a tensor owned elsewhere (fairseq's TiedLinear)."""

    def __init__(self, weight, transpose):
        super().__init__()
        self.weight = weight
        self.transpose = transpose

    def forward(self, x):
        return F.linear(x, self.weight.t() if self.transpose else self.weight)


class TiedHead(nn.Module):
    """fairseq's TiedHeadModule: shortlist scores through band 0's embedding
    (after word_proj.0 when the widths differ), cluster scores from class_proj."""

    def __init__(self, emb0, in_features, n_clusters):
        super().__init__()
        d0 = emb0.shape[1]
        self.word_proj = TiedLinear(emb0, transpose=False)
        if in_features != d0:
            self.word_proj = nn.Sequential(nn.Linear(in_features, d0, bias=False), self.word_proj)
        self.class_proj = nn.Linear(in_features, n_clusters, bias=False)

    def forward(self, x):
        return torch.cat([self.word_proj(x), self.class_proj(x)], dim=-1)


def tie(asm, ai, tie_proj):
    """Rewires asm (AdaptiveLogSoftmaxWithLoss) to ai's tensors as fairseq does."""
    asm.head = TiedHead(ai.band(0)[0], asm.in_features, asm.n_clusters)
    for k in range(asm.n_clusters):
        emb, proj = ai.band(k + 1)
        p = TiedLinear(proj, transpose=True) if tie_proj else nn.Linear(proj.shape[0], proj.shape[1], bias=False)
        asm.tail[k] = nn.Sequential(p, TiedLinear(emb, transpose=False))
    return asm


@torch.no_grad()
def draw(module, g, std=0.5):
    for p in module.parameters():
        p.copy_((std * torch.randn(p.shape, generator=g)).float())


def numpy_input(ai, ids):
    """Token-by-token loop: out[t] = W1_b @ E_b[id - lo_b]."""
    out = np.zeros(ids.shape + (ai.dim,))
    for idx in np.ndindex(*ids.shape):
        t = int(ids[idx])
        lo = 0
        for i, hi in enumerate(ai.cutoffs):
            if lo <= t < hi:
                e = ai.embeddings[i][0].weight.detach().numpy()[t - lo]
                out[idx] = ai.embeddings[i][1].weight.detach().numpy() @ e
            lo = hi
    return out


def numpy_full_log_prob(asm, x):
    """The log-distribution from the equations, row by row, for an untied asm."""
    head = x @ asm.head.weight.detach().numpy().T
    if asm.head.bias is not None:
        head = head + asm.head.bias.detach().numpy()

    def lsm(z):
        m = z.max(axis=1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))

    hl = lsm(head)
    parts = [hl[:, : asm.shortlist_size]]
    for k in range(asm.n_clusters):
        h = x @ asm.tail[k][0].weight.detach().numpy().T
        z = h @ asm.tail[k][1].weight.detach().numpy().T
        parts.append(lsm(z) + hl[:, asm.shortlist_size + k : asm.shortlist_size + k + 1])
    return np.concatenate(parts, axis=1)


def self_check():
    g = gen(7)
    ai = AdaptiveInput(20, 8, 2, 16, [6, 12]).double()
    draw(ai, g)
    ids = torch.randint(0, 20, (3, 9), generator=g)
    err = np.abs(ai(ids).detach().numpy() - numpy_input(ai, ids.numpy())).max()
    assert err < 1e-12, f"adaptive input vs loop: {err}"
    asm = nn.AdaptiveLogSoftmaxWithLoss(16, 20, [6, 12], div_value=4.0, head_bias=True).double()
    draw(asm, g)
    x = torch.randn(11, 16, generator=g, dtype=torch.float64)
    full = asm.log_prob(x).detach().numpy()
    err = np.abs(full - numpy_full_log_prob(asm, x.numpy())).max()
    assert err < 1e-12, f"log_prob vs equations: {err}"
    err = np.abs(np.exp(full).sum(axis=1) - 1).max()
    assert err < 1e-12, f"log_prob does not normalise: {err}"
    t = torch.randint(0, 20, (11,), generator=g)
    out = asm(x, t)
    err = (out.output - asm.log_prob(x).gather(1, t[:, None])[:, 0]).abs().max().item()
    assert err < 1e-12, f"forward output vs log_prob: {err}"
    print("self-check passed", file=sys.stderr)


def targets_covering(g, n, cutoffs, vocab):
    """n targets with at least two in the shortlist and in every cluster
    (torch's forward squeezes a single row index to a scalar)."""
    bands = [0] + cutoffs + [vocab]
    t = []
    for lo, hi in zip(bands, bands[1:]):
        t += torch.randint(lo, hi, (2,), generator=g).tolist()
    t += torch.randint(0, vocab, (n - len(t),), generator=g).tolist()
    perm = torch.randperm(n, generator=g).tolist()
    return torch.tensor([t[i] for i in perm], dtype=torch.int64)


def params_and_grads(prefix, named, skip=()):
    out = {}
    for n, p in named:
        if any(p is s for s in skip):
            continue
        out[f"param/{prefix}{n}"] = p.detach().clone()
        out[f"grad/{prefix}{n}"] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
    return out


def input_fixture(path, seed):
    g = gen(seed)
    cfg = {"vocab": 20, "initial_dim": 8, "factor": 2.0, "dim": 16, "cutoffs": [6, 12]}
    ai = AdaptiveInput(cfg["vocab"], cfg["initial_dim"], cfg["factor"], cfg["dim"], cfg["cutoffs"])
    draw(ai, g)
    ai = ai.double()
    ids = torch.tensor([[0, 5, 19, 7, 12, 5, 3], [18, 6, 11, 0, 13, 2, 2]], dtype=torch.int64)
    dy = randn(g, 2, 7, cfg["dim"])
    y = ai(ids)
    (y * dy.double()).sum().backward()
    t = {"ids": ids, "dy": dy, "y": y.detach()}
    t.update(params_and_grads("", ai.named_parameters()))
    write_safetensors(path, t, {"config": json.dumps(cfg, sort_keys=True)})


def softmax_fixture(path, seed, cfg, rows):
    g = gen(seed)
    asm = nn.AdaptiveLogSoftmaxWithLoss(cfg["in"], cfg["vocab"], cfg["cutoffs"], div_value=cfg["factor"], head_bias=cfg["head_bias"])
    draw(asm, g)
    asm = asm.double()
    x32 = randn(g, rows, cfg["in"])
    x = x32.double().requires_grad_(True)
    targets = targets_covering(g, rows, cfg["cutoffs"], cfg["vocab"])
    res = asm(x, targets)
    res.loss.backward()
    t = {"x": x32, "targets": targets, "output": res.output.detach(), "loss": res.loss.detach().reshape(1),
         "dx": x.grad.detach(), "log_prob": asm.log_prob(x.detach()).detach()}
    t.update(params_and_grads("", asm.named_parameters()))
    write_safetensors(path, t, {"config": json.dumps(cfg, sort_keys=True)})


def tied_fixture(path, seed, cfg):
    g = gen(seed)
    ai = AdaptiveInput(cfg["vocab"], cfg["initial_dim"], cfg["factor"], cfg["dim"], cfg["cutoffs"])
    asm = nn.AdaptiveLogSoftmaxWithLoss(cfg["dim"], cfg["vocab"], cfg["cutoffs"], div_value=cfg["factor"])
    tie(asm, ai, cfg["tie_proj"])
    draw(ai, g)
    shared = list(ai.parameters())
    with torch.no_grad():
        for p in asm.parameters():
            if not any(p is s for s in shared):
                p.copy_((0.5 * torch.randn(p.shape, generator=g)).float())
    ai, asm = ai.double(), asm.double()  # .double() keeps the sharing: same Parameter objects
    assert all(any(asm.tail[k][1].weight is s for s in ai.parameters()) for k in range(asm.n_clusters)), "tying lost"
    ids = torch.tensor([[0, 5, 19, 7, 12, 5, 3], [18, 6, 11, 0, 13, 2, 2]], dtype=torch.int64)
    targets = targets_covering(g, ids.numel(), cfg["cutoffs"], cfg["vocab"])
    x = ai(ids).reshape(-1, cfg["dim"])
    res = asm(x, targets)
    res.loss.backward()
    t = {"ids": ids, "targets": targets, "output": res.output.detach(), "loss": res.loss.detach().reshape(1),
         "log_prob": asm.log_prob(x.detach()).detach()}
    t.update(params_and_grads("input.", ai.named_parameters()))
    t.update(params_and_grads("softmax.", asm.named_parameters(), skip=list(ai.parameters())))
    write_safetensors(path, t, {"config": json.dumps(cfg, sort_keys=True)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--out", default=os.path.join(root, "testdata", "reference"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    self_check()
    os.makedirs(a.out, exist_ok=True)
    input_fixture(os.path.join(a.out, "adaptive_input.safetensors"), 2001)
    softmax_fixture(os.path.join(a.out, "adaptive_softmax.safetensors"), 2002,
                    {"in": 16, "vocab": 20, "cutoffs": [6, 12], "factor": 4.0, "head_bias": True}, 24)
    softmax_fixture(os.path.join(a.out, "adaptive_softmax_nobias.safetensors"), 2003,
                    {"in": 8, "vocab": 13, "cutoffs": [5], "factor": 2.0, "head_bias": False}, 9)
    # fairseq transformer_lm_wiki103's arrangement: band 0 as wide as the model, projections tied.
    tied_fixture(os.path.join(a.out, "adaptive_tied.safetensors"), 2004,
                 {"vocab": 20, "initial_dim": 16, "factor": 4.0, "dim": 16, "cutoffs": [6, 12], "tie_proj": True})
    # band 0 narrower than the model (head.word_proj.0) and the clusters' own projections.
    tied_fixture(os.path.join(a.out, "adaptive_tied_wordproj.safetensors"), 2005,
                 {"vocab": 20, "initial_dim": 8, "factor": 2.0, "dim": 16, "cutoffs": [6, 12], "tie_proj": False})


if __name__ == "__main__":
    main()
