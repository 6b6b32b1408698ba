#!/usr/bin/python3
"""PyTorch decode-speed anchor for `slab bench-lm` (docs/peers.md: ~91 tokens/s for
a 60M LLaMA-like decoder, greedy, batch 1, KV cache, 2 threads).

Same shapes as slab's registry (lm_60m: vocab 32000, dim 512, 8 layers,
8 heads, SwiGLU 1376; lm_small: vocab 256, dim 384, 6 layers; llama_350m),
random weights, prompt 32 + 128 greedy tokens, norm = RMSNorm or folded
PRepBN (the BN affine folded into q/k/v, gate/up and lm_head, i.e. no norm
and biased Linears). Prints one JSON line per model and the ratio.

Run it the fair way (docs/peers.md):

    OPENBLAS_CORETYPE= LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \\
    /usr/bin/python3 tools/reference/llama_bench.py --model lm_60m --threads 2
"""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "lm_small": dict(vocab=256, dim=384, layers=6, heads=6, hidden=1024),
    # The trained SOTU model: GPT-2 BPE trimmed to 24254 types, lm_head tied
    # to the embedding (a folded model gets its own biased lm_head, as
    # slab's fold does, so both variants read the same bytes per token).
    "lm_small_bpe": dict(vocab=24254, dim=384, layers=6, heads=6, hidden=1024, tied=True),
    "lm_60m": dict(vocab=32000, dim=512, layers=8, heads=8, hidden=1376),
    "llama_350m": dict(vocab=32000, dim=1024, layers=18, heads=8, hidden=4096),
}


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Layer(nn.Module):
    def __init__(self, c, folded):
        super().__init__()
        D, H = c["dim"], c["heads"]
        self.H, self.d = H, D // H
        norm = (lambda: nn.Identity()) if folded else (lambda: RMSNorm(D))
        self.input_layernorm, self.post_attention_layernorm = norm(), norm()
        self.q_proj = nn.Linear(D, D, bias=folded)
        self.k_proj = nn.Linear(D, D, bias=folded)
        self.v_proj = nn.Linear(D, D, bias=folded)
        self.o_proj = nn.Linear(D, D, bias=False)
        self.gate_proj = nn.Linear(D, c["hidden"], bias=folded)
        self.up_proj = nn.Linear(D, c["hidden"], bias=folded)
        self.down_proj = nn.Linear(c["hidden"], D, bias=False)

    def forward(self, x, pos, cache, cos, sin):
        B, T, D = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.H, self.d)
        k = self.k_proj(h).view(B, T, self.H, self.d)
        v = self.v_proj(h).view(B, T, self.H, self.d)
        c, s = cos[pos:pos + T, None, :], sin[pos:pos + T, None, :]
        half = self.d // 2
        q = q * c + torch.cat([-q[..., half:], q[..., :half]], -1) * s
        k = k * c + torch.cat([-k[..., half:], k[..., :half]], -1) * s
        cache["k"][:, pos:pos + T] = k
        cache["v"][:, pos:pos + T] = v
        K = cache["k"][:, :pos + T].transpose(1, 2)
        V = cache["v"][:, :pos + T].transpose(1, 2)
        sc = q.transpose(1, 2) @ K.transpose(-1, -2) / math.sqrt(self.d)
        if T > 1:  # prompt: query t sees keys 0..pos+t
            mask = torch.ones(T, pos + T, dtype=torch.bool).triu(pos + 1)
            sc = sc.masked_fill(mask, float("-inf"))
        a = sc.softmax(-1) @ V
        x = x + self.o_proj(a.transpose(1, 2).reshape(B, T, D))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Decoder(nn.Module):
    def __init__(self, c, folded, max_t):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab"], c["dim"])
        self.layers = nn.ModuleList([Layer(c, folded) for _ in range(c["layers"])])
        self.norm = nn.Identity() if folded else RMSNorm(c["dim"])
        self.lm_head = nn.Linear(c["dim"], c["vocab"], bias=folded)
        d = c["dim"] // c["heads"]
        inv = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
        ang = torch.arange(max_t, dtype=torch.float32)[:, None] * inv[None]
        self.cos = torch.cat([ang.cos(), ang.cos()], -1)
        self.sin = torch.cat([ang.sin(), ang.sin()], -1)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
        if c.get("tied") and not folded:
            self.lm_head.weight = self.embed.weight

    @torch.no_grad()
    def generate(self, prompt, n, max_t):
        c = self.c
        d = c["dim"] // c["heads"]
        caches = [{"k": torch.zeros(1, max_t, c["heads"], d), "v": torch.zeros(1, max_t, c["heads"], d)}
                  for _ in self.layers]
        ids, pos, out = prompt, 0, []
        for _ in range(n):
            x = self.embed(ids)
            for l, cache in zip(self.layers, caches):
                x = l(x, pos, cache, self.cos, self.sin)
            pos += ids.shape[1]
            nxt = self.lm_head(self.norm(x[:, -1])).argmax(-1, keepdim=True)
            out.append(nxt)
            ids = nxt
        return torch.cat(out, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lm_60m", help="one of %s, or several comma-separated" % ", ".join(sorted(CONFIGS)))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--generate", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for name in a.model.split(","):
        bench(name, a)


def bench(name, a):
    torch.manual_seed(0)
    c = CONFIGS[name]
    max_t = a.prompt + a.generate
    models = {"rmsnorm": Decoder(c, False, max_t).eval(), "prepbn_folded": Decoder(c, True, max_t).eval()}
    prompt = torch.randint(0, c["vocab"], (1, a.prompt))
    times = {k: [] for k in models}
    cpu = {k: [] for k in models}
    for r in range(a.rounds + 1):  # round 0 warms up
        for k, m in models.items():
            c0, t0 = time.process_time(), time.perf_counter()
            m.generate(prompt, a.generate, max_t)
            if r:
                times[k].append(time.perf_counter() - t0)
                # CPU time of all threads / threads: the rate with the cores
                # to itself, as slab's per-CPU-time figure (OpenMP spinning
                # counts as CPU time, so this is a lower bound for torch).
                cpu[k].append((time.process_time() - c0) / a.threads)
    res, cres = {}, {}
    for k in times:
        res[k] = a.generate / sorted(times[k])[len(times[k]) // 2]
        cres[k] = a.generate / sorted(cpu[k])[len(cpu[k]) // 2]
    print(json.dumps({"model": name, "threads": a.threads, "torch": torch.__version__,
                      "tokens_per_s": res, "cpu_tokens_per_s": cres,
                      "ratio_prepbn_over_rms": res["prepbn_folded"] / res["rmsnorm"]}))


if __name__ == "__main__":
    main()
