#!/usr/bin/python3
"""Turns the raw results of scripts/compare-pytorch.sh into docs/bench-pytorch.md.

Inputs in DIR: py_*_R.json (tools/reference/bench.py), go_<size>_B<b>_R.json
(`slab bench --json`), go_attn_R.txt (go test -bench AttentionBlock). Each
figure is the median over repetitions of the per-process medians.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys


def median(xs):
    return statistics.median(xs) if xs else None


def load(d):
    py, go = {}, {}
    meta = {}
    for p in sorted(glob.glob(os.path.join(d, "py_*.json"))):
        j = json.load(open(p))
        meta["pytorch"] = j["pytorch"]
        for r in j["rows"]:
            py.setdefault((r["name"], r["batch"]), []).append(r["median_ms"])
    for p in sorted(glob.glob(os.path.join(d, "go_*_B*_*.json"))):
        j = json.load(open(p))
        meta["slab_threads"] = j.get("threads")
        for r in j["results"]:
            go.setdefault((r["model"], r["batch"]), []).append(r["median_ms"])
    pat = re.compile(r"^BenchmarkAttentionBlock/(softmax|sla)/(\d+)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op")
    for p in sorted(glob.glob(os.path.join(d, "go_attn_*.txt"))):
        for line in open(p):
            m = pat.match(line)
            if m:
                go.setdefault((f"attn/{m.group(1)}/{m.group(2)}", 1), []).append(float(m.group(3)) / 1e6)
    return ({k: median(v) for k, v in py.items()}, {k: median(v) for k, v in go.items()},
            {k: len(v) for k, v in py.items()}, {k: len(v) for k, v in go.items()}, meta)


VARIANT_ORDER = ["deit_{}", "deit_{}_prepbn/unfused", "deit_{}_prepbn", "slab_deit_{}/unfused", "slab_deit_{}"]


def row_order(k):
    """Models by size, batch, then LN / PRepBN unfused / folded / SLAB unfused / folded; attention last by N."""
    name, batch = k
    if name.startswith("attn/"):
        _, kind, n = name.split("/")
        return (1, int(n), 0, kind != "softmax")
    size = "small" if "small" in name else "tiny"
    idx = [v.format(size) for v in VARIANT_ORDER]
    return (0, size != "tiny", batch, idx.index(name) if name in idx else 99)


def fmt(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--command", default="scripts/compare-pytorch.sh")
    ap.add_argument("--commit", default="?")
    a = ap.parse_args()
    py, go, npy, ngo, meta = load(a.dir)
    keys = sorted(set(py) | set(go), key=row_order)
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gov = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    o = []
    w = o.append
    w("# slab vs PyTorch: inference speed side by side\n")
    w(f"Measured {now} at slab commit `{a.commit}` on {os.cpu_count()} vCPU ({cpu}), {platform.system()}; {gov}; "
      f"PyTorch {meta.get('pytorch', {}).get('torch')} (Debian python3-torch, OpenBLAS OpenMP build), "
      f"{meta.get('pytorch', {}).get('threads')} threads each side.\n")
    w("Command (from the repository root):\n")
    for line in a.command.splitlines():
        w(f"    {line}")
    w("")
    w("It alternates, per row group and repetition, PyTorch (`tools/reference/bench.py`: our own PyTorch "
      "SLAB models of `tools/reference/reference.py`, float32, eval, `torch.inference_mode`, "
      "`torch.set_num_threads(2)`, `LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp`, "
      "`OPENBLAS_CORETYPE` unset for that command only, `GLIBC_TUNABLES` as in docs/peers.md, "
      f"`OMP_WAIT_POLICY={meta.get('pytorch', {}).get('omp_wait_policy') or '(libgomp default)'}`; 3 warm-up calls, "
      "variants interleaved round by round) and slab (`slab bench --json`, same interleaving; attention rows: "
      "`BenchmarkAttentionBlock` in nn). Each figure is the median over repetitions of the per-process median "
      "of the timed rounds. Times in ms per forward (whole batch); random weights, non-trivial BN statistics; "
      "224x224 inputs. ratio = slab / PyTorch time (< 1: slab faster).\n")
    loadavg = ""
    try:
        loadavg = "; ".join(line.strip() for line in open(os.path.join(a.dir, "load.txt")))
    except OSError:
        pass
    w("The machine is shared with other engineers' builds and tests: absolute times vary by 10-40 % "
      "between runs (docs/peers.md); only ratios taken inside one run are meaningful. Load average (1, 5, 15 min) "
      f"at start and end of this run: {loadavg or 'not recorded'}. Under load, PyTorch's OpenMP pool (2 threads "
      "meeting at a barrier after every op) degrades far more than slab's: the ratios below are only fair "
      "when the load average stays near or below 2.\n")
    w("## Latency\n")
    w("| model | batch | PyTorch ms | slab ms | slab / PyTorch | reps (py/go) |")
    w("|---|---|---|---|---|---|")
    for k in keys:
        w(f"| `{k[0]}` | {k[1]} | {fmt(py.get(k))} | {fmt(go.get(k))} | **{fmt(ratio(go.get(k), py.get(k)), 3)}** | "
          f"{npy.get(k, 0)}/{ngo.get(k, 0)} |")
    w("")
    w("`deit_X`: LayerNorm + softmax, cls token. `deit_X_prepbn`: RepBN folded into the next Linear + softmax "
      "(`/unfused`: eval-mode RepBN kept). `slab_deit_X`: folded BN + SLA, mean pooling. "
      "`attn/{softmax,sla}/N`: one attention module (qkv, attention, proj), dim 192, 3 heads, one image of N tokens.\n")
    w("## Ratios inside each framework\n")
    w("| ratio | batch | PyTorch | slab |")
    w("|---|---|---|---|")
    batches = sorted({k[1] for k in keys if not k[0].startswith("attn")})
    sizes = sorted({k[0].split("/")[0].replace("slab_", "").replace("_prepbn", "").replace("deit_", "")
                    for k in keys if not k[0].startswith("attn")})
    for s in sizes:
        for b in batches:
            pairs = [
                (f"folded / unfused, BN + softmax (`deit_{s}_prepbn`)", f"deit_{s}_prepbn", f"deit_{s}_prepbn/unfused"),
                (f"folded / unfused, BN + SLA (`slab_deit_{s}`)", f"slab_deit_{s}", f"slab_deit_{s}/unfused"),
                (f"folded BN+softmax / LN+softmax (`deit_{s}_prepbn` / `deit_{s}`)", f"deit_{s}_prepbn", f"deit_{s}"),
                (f"SLA / softmax, both folded (`slab_deit_{s}` / `deit_{s}_prepbn`)", f"slab_deit_{s}", f"deit_{s}_prepbn"),
                (f"SLAB / DeiT (`slab_deit_{s}` / `deit_{s}`)", f"slab_deit_{s}", f"deit_{s}"),
            ]
            for label, x, y in pairs:
                w(f"| {label} | {b} | {fmt(ratio(py.get((x, b)), py.get((y, b))), 3)} | "
                  f"{fmt(ratio(go.get((x, b)), go.get((y, b))), 3)} |")
    for n in sorted({int(k[0].split("/")[2]) for k in keys if k[0].startswith("attn")}):
        x, y = (f"attn/sla/{n}", 1), (f"attn/softmax/{n}", 1)
        w(f"| SLA / softmax attention block, N = {n} | 1 | {fmt(ratio(py.get(x), py.get(y)), 3)} | "
          f"{fmt(ratio(go.get(x), go.get(y)), 3)} |")
    w("")
    print("\n".join(o))


if __name__ == "__main__":
    main()
