#!/usr/bin/python3
"""PyTorch speed anchor for the adaptive-input language model (docs/adaptive-lm.md, "Speed").

The decoder of docs/adaptive-lm.md written again from its equations, in fairseq's
transformer_lm shape:

    x  = sqrt(D) * embed(ids) + sinusoidal(positions 0..T-1)
    x += Attn(N1(x))                 causal softmax attention, q/k/v/out without biases
    x += FC2(ReLU(FC1(N2(x))))       fc1/fc2 with biases, no final norm
    log p(next) = softmax output tied to the embedding

with four rows, named as slab's registry names them:

    adaptive_lm_small              adaptive input + tied adaptive softmax, LayerNorm
    adaptive_lm_small_prepbn       the same, folded PRepBN: no norms, biases on q/k/v and fc1
    adaptive_lm_small_full         plain embedding + tied full softmax, LayerNorm
    adaptive_lm_small_full_prepbn  the same, folded

The adaptive input is tools/reference/adaptive_reference.py's module (fairseq's structure:
band i an Embedding of width D/4^i and a bias-free projection to D); the adaptive softmax is
torch.nn.AdaptiveLogSoftmaxWithLoss tied to it as fairseq's tie_adaptive_weights and
tie_adaptive_proj do (adaptive_reference.tie). Weights are random (a speed measurement): what
is timed does not depend on their values.

Per round, every row in turn (the order slab bench-lm uses):
- generation: batch 1, a random prompt of --prompt ids, then --generate tokens, one token per
  call with cached keys/values (as slab's Session), greedy over the whole distribution
  (AdaptiveLogSoftmaxWithLoss.log_prob / full logits); tokens/s counts the prompt call, as
  slab bench-lm's tokens_per_s does;
- evaluation: the mean next-token loss of a batch --eval-batch x --eval-seq window under
  no_grad (AdaptiveLogSoftmaxWithLoss.forward scores the head and only each target's
  cluster; the full rows take cross-entropy of full logits), as slab eval-lm does; then the
  same with the output layer run --eval-chunk rows at a time (eval_chunked_tok_per_s): a
  [2048, 15666] float32 tensor is 128 MB, above glibc's largest mmap threshold (32 MB), so
  each whole-window call maps and faults in fresh pages for its logits and log-softmax
  (slab reuses its buffers), which costs more than the matrix product on this machine.
The evaluation window's ids and targets follow a Zipf-like profile (floor(V^u) - 1, u
uniform) on both sides, since an adaptive softmax's cost depends on how many targets fall in
its tails; prompts are uniform. Medians over --rounds rounds after a warm-up round; one JSON
line per model size on stdout.

Run it with docs/peers.md's set-up (the OpenMP OpenBLAS, OPENBLAS_CORETYPE unset, glibc's
malloc thresholds raised, threads set explicitly):

    env -u OPENBLAS_CORETYPE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \\
    /usr/bin/python3 tools/reference/adaptive_bench.py --model adaptive_lm_small --threads 2

scripts/compare-adaptive.sh runs it interleaved with slab bench-lm.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adaptive_reference import AdaptiveInput, tie  # noqa: E402

# models/adaptive/config.go; vocab is the SOTU word vocabulary (min count 3) unless --vocab.
CONFIGS = {
    "adaptive_lm_tiny": dict(dim=32, layers=2, heads=4, hidden=128, context=32, cutoffs=None),
    "adaptive_lm_small": dict(dim=256, layers=4, heads=4, hidden=1024, context=128, cutoffs=[2000, 8000]),
}
FACTOR = 4.0
SOTU_WORDS = 15666


def sinusoidal(n, dim):
    """fairseq's table [n, dim]: sin(p f_i) | cos(p f_i), f_i = 10000^(-i/(dim/2-1))."""
    half = dim // 2
    f = torch.exp(torch.arange(half, dtype=torch.float64) * -(math.log(10000.0) / (half - 1)))
    a = torch.arange(n, dtype=torch.float64)[:, None] * f[None]
    return torch.cat([a.sin(), a.cos()], 1).float()


class Block(nn.Module):
    def __init__(self, c, folded):
        super().__init__()
        D = c["dim"]
        self.H, self.d = c["heads"], D // c["heads"]
        norm = (lambda: nn.Identity()) if folded else (lambda: nn.LayerNorm(D, eps=1e-5))
        self.self_attn_layer_norm, self.final_layer_norm = norm(), norm()
        # A fold leaves the norm's shift as biases of the layers that read it.
        self.q_proj = nn.Linear(D, D, bias=folded)
        self.k_proj = nn.Linear(D, D, bias=folded)
        self.v_proj = nn.Linear(D, D, bias=folded)
        self.out_proj = nn.Linear(D, D, bias=False)
        self.fc1 = nn.Linear(D, c["hidden"])
        self.fc2 = nn.Linear(c["hidden"], D)

    def forward(self, x, pos, cache):
        """x [B,T,D] at positions pos..pos+T-1; cache None (a whole window, causal)
        or {"k","v"} [B,maxT,H,d] holding positions 0..pos-1."""
        B, T, D = x.shape
        h = self.self_attn_layer_norm(x)
        q = self.q_proj(h).view(B, T, self.H, self.d)
        k = self.k_proj(h).view(B, T, self.H, self.d)
        v = self.v_proj(h).view(B, T, self.H, self.d)
        if cache is not None:
            cache["k"][:, pos:pos + T] = k
            cache["v"][:, pos:pos + T] = v
            k, v = cache["k"][:, :pos + T], cache["v"][:, :pos + T]
        s = q.transpose(1, 2) @ k.permute(0, 2, 3, 1) / math.sqrt(self.d)
        if T > 1:  # query t sees keys 0..pos+t
            s = s.masked_fill(torch.ones(T, pos + T, dtype=torch.bool).triu(pos + 1), float("-inf"))
        a = (s.softmax(-1) @ v.transpose(1, 2)).transpose(1, 2).reshape(B, T, D)
        x = x + self.out_proj(a)
        return x + self.fc2(F.relu(self.fc1(self.final_layer_norm(x))))


class Decoder(nn.Module):
    def __init__(self, c, vocab, adaptive, folded):
        super().__init__()
        self.c, self.vocab, self.adaptive = c, vocab, adaptive
        D = c["dim"]
        cut = c["cutoffs"] or [max(1, vocab // 10), max(2, vocab // 3)]
        if adaptive:
            self.embed_tokens = AdaptiveInput(vocab, D, FACTOR, D, list(cut))
            self.adaptive_softmax = tie(nn.AdaptiveLogSoftmaxWithLoss(D, vocab, list(cut), div_value=FACTOR), self.embed_tokens, True)
        else:
            self.embed_tokens = nn.Embedding(vocab, D)
        self.layers = nn.ModuleList([Block(c, folded) for _ in range(c["layers"])])
        self.register_buffer("pos", sinusoidal(c["context"], D))
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for n, p in self.named_parameters():
                if "norm" in n:
                    continue  # LayerNorm: 1 and 0
                if p.dim() == 1:
                    p.copy_(0.02 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))

    def trunk(self, ids, pos=0, caches=None):
        x = math.sqrt(self.c["dim"]) * self.embed_tokens(ids) + self.pos[pos:pos + ids.shape[1]]
        for i, l in enumerate(self.layers):
            x = l(x, pos, None if caches is None else caches[i])
        return x

    def scores(self, h):
        """Scores of the whole vocabulary for rows h [N, D], as slab's Session.Step returns
        them: the adaptive softmax's exact log-probabilities, or full logits."""
        if self.adaptive:
            return self.adaptive_softmax.log_prob(h)
        return F.linear(h, self.embed_tokens.weight)

    def log_prob(self, h):
        """The whole distribution of rows h [N, D] (log-probabilities)."""
        return F.log_softmax(self.scores(h), -1)

    @torch.no_grad()
    def loss(self, ids, targets, chunk=0):
        """Mean next-token loss of a window, as slab eval-lm scores it. chunk > 0 scores the
        output layer chunk rows at a time (the trunk still runs on the whole window)."""
        h, t = self.trunk(ids).reshape(-1, self.c["dim"]), targets.reshape(-1)
        n = h.shape[0]
        chunk = chunk or n
        tot = 0.0
        for i in range(0, n, chunk):
            hc, tc = h[i:i + chunk], t[i:i + chunk]
            if self.adaptive:
                tot += self.adaptive_softmax(hc, tc).loss * hc.shape[0]
            else:
                tot += F.cross_entropy(F.linear(hc, self.embed_tokens.weight), tc, reduction="sum")
        return tot / n

    @torch.no_grad()
    def generate(self, prompt, n):
        c = self.c
        maxT = prompt.shape[1] + n
        caches = [{"k": torch.zeros(1, maxT, c["heads"], c["dim"] // c["heads"]),
                   "v": torch.zeros(1, maxT, c["heads"], c["dim"] // c["heads"])} for _ in self.layers]
        ids, pos, out = prompt, 0, []
        for _ in range(n):
            h = self.trunk(ids, pos, caches)
            pos += ids.shape[1]
            ids = self.scores(h[:, -1]).argmax(-1, keepdim=True)
            out.append(ids)
        return torch.cat(out, 1)


def check(m):
    """The cached decode path equals the window path, and an adaptive model's loss is the
    NLL read off its full distribution (both to float32 rounding)."""
    g = torch.Generator().manual_seed(2)
    T = min(12, m.c["context"])
    ids = torch.randint(0, m.vocab, (1, T), generator=g)
    with torch.no_grad():
        full = m.log_prob(m.trunk(ids)[0])
        caches = [{"k": torch.zeros(1, T, m.c["heads"], m.c["dim"] // m.c["heads"]),
                   "v": torch.zeros(1, T, m.c["heads"], m.c["dim"] // m.c["heads"])} for _ in m.layers]
        step = torch.cat([m.log_prob(m.trunk(ids[:, t:t + 1], t, caches)[:, -1]) for t in range(T)])
        err = ((full - step).abs().max() / full.abs().max()).item()
        assert err < 1e-5, f"cached decode differs from the window by {err} of the largest score"
        nsum = (full.exp().sum(-1) - 1).abs().max().item()
        assert nsum < 1e-4, f"distribution sums off 1 by {nsum}"
        t = torch.randint(0, m.vocab, (1, T), generator=g)
        nll = -full.gather(1, t.reshape(-1, 1)).mean().item()
        assert abs(m.loss(ids, t).item() - nll) < 1e-4 * max(1, abs(nll)), "loss differs from the distribution's NLL"
        assert abs(m.loss(ids, t, 5).item() - nll) < 1e-4 * max(1, abs(nll)), "chunked loss differs from the NLL"
    return err


def zipf(vocab, shape, g):
    """floor(V^u) - 1 for u uniform: a word-frequency-like profile, as slab bench-lm draws
    its evaluation window (79 % of the ids below 2000 at V = 15,666)."""
    u = torch.rand(shape, generator=g, dtype=torch.float64)
    return ((u * math.log(vocab)).exp().long() - 1).clamp(0, vocab - 1)


ROWS = [("", True, False), ("_prepbn", True, True), ("_full", False, False), ("_full_prepbn", False, True)]


def bench(name, a):
    c = CONFIGS[name]
    vocab = a.vocab or SOTU_WORDS
    T = a.eval_seq or c["context"]
    if a.prompt + a.generate > c["context"] or T > c["context"]:
        sys.exit(f"{name}: prompt+generate {a.prompt + a.generate} and eval-seq {T} must be at most its {c['context']} positions")
    models = {name + suf: Decoder(c, vocab, ad, fo).eval() for suf, ad, fo in ROWS}
    checks = {k: check(m) for k, m in models.items()}
    g = torch.Generator().manual_seed(3)
    ids, targets = zipf(vocab, (a.eval_batch, T), g), zipf(vocab, (a.eval_batch, T), g)
    gen = {k: [] for k in models}
    gcpu = {k: [] for k in models}
    ev = {k: [] for k in models}
    ecpu = {k: [] for k in models}
    evc = {k: [] for k in models}
    for r in range(a.rounds + 1):  # round 0 warms up
        for k, m in models.items():
            prompt = torch.randint(0, vocab, (1, a.prompt), generator=g)
            c0, t0 = time.process_time(), time.perf_counter()
            m.generate(prompt, a.generate)
            t1, c1 = time.perf_counter(), time.process_time()
            m.loss(ids, targets)
            t2, c2 = time.perf_counter(), time.process_time()
            m.loss(ids, targets, a.eval_chunk)
            t3, c3 = time.perf_counter(), time.process_time()
            if r:
                gen[k].append(a.generate / (t1 - t0))
                # CPU time of all threads / threads: the rate with the cores to
                # itself, as slab's per-CPU-time figures (OpenMP spinning counts
                # as CPU time, so a lower bound for torch).
                gcpu[k].append(a.generate / ((c1 - c0) / a.threads))
                ev[k].append(ids.numel() / (t2 - t1))
                ecpu[k].append(ids.numel() / ((c2 - c1) / a.threads))
                evc[k].append(ids.numel() / (t3 - t2))

    rows = {k: {"params": sum(p.numel() for p in models[k].parameters()),
                "tokens_per_s": med(gen[k]), "cpu_tokens_per_s": med(gcpu[k]),
                "eval_tok_per_s": med(ev[k]), "eval_cpu_tok_per_s": med(ecpu[k]), "eval_chunked_tok_per_s": med(evc[k]),
                "round_tokens_per_s": gen[k], "eval_round_tok_per_s": ev[k], "eval_chunked_round_tok_per_s": evc[k],
                "decode_check_max_rel": checks[k]} for k in models}
    print(json.dumps({"model": name, "vocab": vocab, "threads": a.threads, "torch": torch.__version__,
                      "prompt_tokens": a.prompt, "generated_tokens": a.generate, "eval_batch": a.eval_batch,
                      "eval_seq": T, "eval_chunk": a.eval_chunk, "rounds": a.rounds, "loadavg": " ".join(open("/proc/loadavg").read().split()[:3]),
                      "models": rows}), flush=True)


def med(x):
    s = sorted(x)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2 if s else float("nan")


def table(out):
    """Prints compare-adaptive.sh's table from the go_*.json (slab bench-lm) and py_*.json
    (this script) of directory out. Rates pool every timed round of every repetition;
    ratios inside an engine are medians of per-round ratios (models timed side by side)."""
    import glob

    def reps(prefix):
        rs = []
        for f in sorted(glob.glob(os.path.join(out, prefix + "_*.json"))):
            with open(f) as fh:
                txt = fh.read().strip()
            if not txt:
                continue
            rs.append(json.loads(txt.splitlines()[-1]) if prefix == "py" else json.loads(txt))
        return rs

    go, py = reps("go"), reps("py")
    if not go or not py:
        sys.exit(f"{out}: no go_*.json or py_*.json")
    # engine -> model name -> list of per-rep dicts with the same keys
    eng = {"slab": {}, "PyTorch": {}}
    for r in go:
        for m in r["models"]:
            eng["slab"].setdefault(m["name"], []).append(m)
    for r in py:
        for k, m in r["models"].items():
            eng["PyTorch"].setdefault(k, []).append(m)
    name = py[0]["model"]
    rows = [(name, "adaptive, LayerNorm"), (name + "_prepbn", "adaptive, folded PRepBN"),
            (name + "_full", "full softmax, LayerNorm"), (name + "_full_prepbn", "full softmax, folded PRepBN")]
    rk = {"eval": "eval_round_tok_per_s", "gen": "round_tokens_per_s", "chunk": "eval_chunked_round_tok_per_s"}
    ck = {"eval": "eval_cpu_tok_per_s", "gen": "cpu_tokens_per_s"}

    def rate(e, k, what):
        return med([v for m in eng[e][k] for v in m[rk[what]]])

    def cpu(e, k, what):
        return med([m[ck[what]] for m in eng[e][k]])

    def ratio(e, a, b, what):
        return med([x / y for ma, mb in zip(eng[e][a], eng[e][b]) for x, y in zip(ma[rk[what]], mb[rk[what]])])

    session = ""
    sp = os.path.join(out, "session.txt")
    if os.path.exists(sp):
        with open(sp) as fh:
            session = fh.read()
    g0, p0 = go[0], py[0]
    print(f"{name}, vocab {p0['vocab']}, {p0['threads']} threads; slab {len(go)} x {g0['rounds']} rounds, "
          f"PyTorch {p0['torch']} {len(py)} x {p0['rounds']} rounds; evaluation {p0['eval_batch']} x {p0['eval_seq']} tokens "
          f"(mean loss, no grad), generation batch 1: prompt {p0['prompt_tokens']} + {p0['generated_tokens']} tokens "
          f"(greedy over the full distribution, KV cache; tok/s = generated / time, the prompt call included)")
    for line in session.splitlines():
        print("    " + line)
    print()
    ch = p0.get("eval_chunk", 0)
    print(f"| row | params slab / PyTorch | eval tok/s slab | eval tok/s PyTorch | slab / PyTorch | PyTorch, output {ch} rows at a time | slab / that "
          "| generation tok/s slab | generation tok/s PyTorch | slab / PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k, label in rows:
        ps, pp = eng["slab"][k][0]["params"], eng["PyTorch"][k][0]["params"]
        es, ep, gs, gp = rate("slab", k, "eval"), rate("PyTorch", k, "eval"), rate("slab", k, "gen"), rate("PyTorch", k, "gen")
        ec = rate("PyTorch", k, "chunk")
        print(f"| {label} (`{k}`) | {ps / 1e6:.3f} M / {pp / 1e6:.3f} M | {es:.0f} | {ep:.0f} | **{es / ep:.2f}x** | {ec:.0f} | {es / ec:.2f}x "
              f"| {gs:.0f} | {gp:.0f} | **{gs / gp:.2f}x** |")
    print()
    print("Ratios inside each engine (tok/s over tok/s; median of per-round ratios):")
    print()
    print("| ratio | eval slab | eval PyTorch | generation slab | generation PyTorch |")
    print("|---|---|---|---|---|")
    for a, b, label in [(rows[1][0], rows[0][0], "folded PRepBN / LayerNorm, adaptive"),
                        (rows[3][0], rows[2][0], "folded PRepBN / LayerNorm, full softmax"),
                        (rows[0][0], rows[2][0], "adaptive / full softmax, LayerNorm"),
                        (rows[1][0], rows[3][0], "adaptive / full softmax, folded PRepBN")]:
        print(f"| {label} | {ratio('slab', a, b, 'eval'):.3f} | {ratio('PyTorch', a, b, 'eval'):.3f} | "
              f"{ratio('slab', a, b, 'gen'):.3f} | {ratio('PyTorch', a, b, 'gen'):.3f} |")
    print()
    print("By CPU time (tok/s if the threads had the cores to themselves; median of each process's medians):")
    print()
    print("| row | eval slab | eval PyTorch | slab / PyTorch | generation slab | generation PyTorch | slab / PyTorch |")
    print("|---|---|---|---|---|---|---|")
    for k, label in rows:
        es, ep, gs, gp = cpu("slab", k, "eval"), cpu("PyTorch", k, "eval"), cpu("slab", k, "gen"), cpu("PyTorch", k, "gen")
        print(f"| {label} | {es:.0f} | {ep:.0f} | {es / ep:.2f}x | {gs:.0f} | {gp:.0f} | {gs / gp:.2f}x |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", metavar="DIR", help="print compare-adaptive.sh's table from DIR's results instead of timing")
    ap.add_argument("--model", default="adaptive_lm_small", help="comma-separated: " + ", ".join(sorted(CONFIGS)))
    ap.add_argument("--vocab", type=int, default=0, help="vocabulary size (0: SOTU's word vocabulary, %d)" % SOTU_WORDS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--generate", type=int, default=96)
    ap.add_argument("--eval-batch", type=int, default=16)
    ap.add_argument("--eval-seq", type=int, default=0, help="0: the model's context")
    ap.add_argument("--eval-chunk", type=int, default=256,
                    help="also time the evaluation with the output layer run this many rows at a time: "
                         "full logits of 2048 x 15,666 are 128 MB, beyond glibc's largest mmap threshold (32 MB), "
                         "so every call maps fresh pages; chunks of 256 rows stay below it")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    if a.table:
        return table(a.table)
    torch.set_num_threads(a.threads)
    for name in a.model.split(","):
        bench(name, a)


if __name__ == "__main__":
    main()
