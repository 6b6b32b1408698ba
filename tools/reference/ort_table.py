#!/usr/bin/python3
"""Summarises a scripts/compare-ort.sh run: the logit check and the table of
slab vs ONNX Runtime vs PyTorch times (markdown on stdout).

    /usr/bin/python3 tools/reference/ort_table.py OUT [--command CMD] [--commit C]

OUT holds models/ (ort_export.py's files plus NAME_bB_ort.f32 from
ort_bench.js --check and NAME_bB_slab.safetensors from `slab run`) and the
raw timings of each repetition r:

  go_SIZE_BB_r.json        `slab bench --json` (rows MODEL[/unfused]/DTYPE)
  py_SIZE_BB_r.json        ort_torch_bench.py
  ort_MODEL_BB_r_P.json    ort_bench.js, process P of the repetition

Per repetition, ONNX Runtime's "best mode" is the fastest of its processes'
medians (over both modes when compare-ort.sh ran ORT_SPIN="spin nospin";
ort_MODEL_BB_r_MODEP.json), its "typical" the median of them; slab and PyTorch are their
process's median over rounds. Each ratio is taken inside one repetition and
the table shows the median over repetitions (times likewise).
"""

import argparse
import glob
import json
import os
import re
import statistics
import struct
import sys

import numpy as np


def read_safetensors(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        e = h[name]
        if e["dtype"] != "F32":
            raise SystemExit(f"ort_table.py: {path}: tensor {name} is {e['dtype']}, want F32")
        f.seek(8 + n + e["data_offsets"][0])
        return np.frombuffer(f.read(e["data_offsets"][1] - e["data_offsets"][0]), dtype="<f4").reshape(e["shape"])


def load_json(path):
    with open(path) as f:
        return json.load(f)


def timing_json(path, key):
    """The rows of one timing file; an empty file (a step that failed) is skipped with a warning."""
    if os.path.getsize(path) == 0:
        print(f"ort_table.py: {path} is empty (a failed step), skipped", file=sys.stderr)
        return []
    return load_json(path)[key]


def check_rows(models_dir):
    """Largest |difference| between the logits of each pair of engines, per exported model."""
    man = load_json(os.path.join(models_dir, "manifest.json"))
    rows = []
    for name, e in man["models"].items():
        for b in e["batches"]:
            stem = os.path.join(models_dir, f"{name}_b{b}")
            t64 = np.fromfile(stem + "_torch64.f32", dtype="<f4").astype(np.float64)
            t32 = np.fromfile(stem + "_torch.f32", dtype="<f4").astype(np.float64)
            ort = np.fromfile(stem + "_ort.f32", dtype="<f4").astype(np.float64) if os.path.exists(stem + "_ort.f32") else None
            slab = (read_safetensors(stem + "_slab.safetensors", "logits").astype(np.float64).ravel()
                    if os.path.exists(stem + "_slab.safetensors") else None)

            def d(x, y):
                if x is None or y is None:
                    return "–"
                n = min(len(x), len(y))  # the float64 logits cover the first images only
                return f"{np.abs(x[:n] - y[:n]).max():.2e}"
            top = "–"
            if ort is not None and slab is not None:
                k = int(e["config"]["classes"])
                a1, a2, a3 = (v.reshape(-1, k).argmax(1) for v in (t32, ort, slab))
                top = f"{int((a1 == a2).sum())} / {int((a1 == a3).sum())} of {len(a1)}"
            rows.append(f"| {name}{' (folded)' if e['fused'] else ''} | {b} | {np.abs(t64).max():.3f} | "
                        f"{d(ort, t32)} | {d(slab, t32)} | {d(ort, slab)} | {d(t32, t64)} | {d(ort, t64)} | {d(slab, t64)} | {top} |")
    return rows


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def timings(out):
    """{(model, batch): {rep: {"slab": {dtype: ms}, "torch": ms, "ort": [ms per process]}}}."""
    t = {}

    def cell(model, b, r):
        return t.setdefault((model, b), {}).setdefault(r, {"slab": {}, "torch": None, "ort": []})
    for p in glob.glob(os.path.join(out, "go_*_B*_*.json")):
        b, r = re.search(r"_B(\d+)_(\d+)\.json$", p).groups()
        for row in timing_json(p, "results"):
            name = row["model"]
            dt = row.get("dtype", "f32")
            if name.endswith("/" + dt):
                name = name[: -len(dt) - 1]
            if name.endswith("/unfused"):
                continue
            cell(name, int(b), int(r))["slab"][dt] = row["median_ms"]
    for p in glob.glob(os.path.join(out, "py_*_B*_*.json")):
        b, r = re.search(r"_B(\d+)_(\d+)\.json$", p).groups()
        for row in timing_json(p, "rows"):
            cell(row["name"], int(b), int(r))["torch"] = row["median_ms"]
    for p in sorted(glob.glob(os.path.join(out, "ort_*_B*_*_*.json"))):
        model, b, r, mode = re.search(r"ort_(.+)_B(\d+)_(\d+)_(\D*)\d+\.json$", p).groups()
        with open(p) as f:
            for line in f:
                if line.strip():
                    c = cell(model, int(b), int(r))
                    c["ort"].append(json.loads(line)["median_ms"])
                    c.setdefault("modes", {}).setdefault(mode or "spin", []).append(json.loads(line)["median_ms"])
    return t


def table(t):
    dtypes = sorted({dt for reps in t.values() for c in reps.values() for dt in c["slab"] if dt != "f32"},
                    key=["bf16", "int8"].index)
    modes = sorted({m for reps in t.values() for c in reps.values() for m in c.get("modes", {})}, reverse=True)
    head = (["model", "batch", "slab f32 ms"] + [f"slab {dt} ms" for dt in dtypes] +
            ["PyTorch ms", "ORT best ms"] + ([f"ORT best {m} ms" for m in modes] if len(modes) > 1 else []) +
            ["ORT processes (ms)", "**slab / ORT best**", "slab / ORT typical",
             "**slab / PyTorch**"] + [f"{dt} / ORT best" for dt in dtypes] + ["target met (0.8x ORT, 0.6x PyTorch)"])
    head.insert(2, "reps")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = {"deit_tiny": 0, "slab_deit_tiny": 1, "deit_small": 2, "slab_deit_small": 3}
    for (model, b) in sorted(t, key=lambda k: (k[1], order.get(k[0], 9), k[0])):
        # only repetitions in which all three engines ran (an interrupted run leaves partial ones)
        reps = {r: c for r, c in t[(model, b)].items() if c["slab"].get("f32") is not None and c["torch"] and c["ort"]}
        if not reps:
            continue
        slab = {dt: med(c["slab"].get(dt) for c in reps.values()) for dt in ["f32"] + dtypes}
        torch_ms = med(c["torch"] for c in reps.values())
        best = med(min(c["ort"]) if c["ort"] else None for c in reps.values())
        permode = [med(min(c["modes"][m]) if m in c.get("modes", {}) else None for c in reps.values()) for m in modes]
        procs = "; ".join(" / ".join(fmt(x, 1) for x in c["ort"]) for _, c in sorted(reps.items()))

        def ratio(num, den):
            return med(num(c) / den(c) if num(c) is not None and den(c) else None for c in reps.values())
        r_best = ratio(lambda c: c["slab"].get("f32"), lambda c: min(c["ort"]) if c["ort"] else None)
        r_typ = ratio(lambda c: c["slab"].get("f32"), lambda c: statistics.median(c["ort"]) if c["ort"] else None)
        r_pt = ratio(lambda c: c["slab"].get("f32"), lambda c: c["torch"])
        r_dt = [ratio(lambda c, dt=dt: c["slab"].get(dt), lambda c: min(c["ort"]) if c["ort"] else None) for dt in dtypes]
        met = "–"
        if r_best is not None and r_pt is not None:
            met = f"{'yes' if r_best <= 0.8 else 'no'}, {'yes' if r_pt <= 0.6 else 'no'}"
        label = model + (" (folded)" if model.startswith("slab_") else "")
        cells = ([label, str(b), str(len(reps)), fmt(slab["f32"])] + [fmt(slab[dt]) for dt in dtypes] +
                 [fmt(torch_ms), fmt(best)] + ([fmt(x) for x in permode] if len(modes) > 1 else []) + [procs, f"**{fmt(r_best, 3)}**", fmt(r_typ, 3), f"**{fmt(r_pt, 3)}**"] +
                 [fmt(x, 3) for x in r_dt] + [met])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main():
    ap = argparse.ArgumentParser(description="compare-ort.sh's table")
    ap.add_argument("out")
    ap.add_argument("--command", default="")
    ap.add_argument("--commit", default="")
    a = ap.parse_args()
    t = timings(a.out)
    if not t:
        raise SystemExit(f"ort_table.py: {a.out}: no timings (go_*, py_*, ort_* JSON files)")
    print(f"slab commit {a.commit}; {a.command}\n" if a.command else "", end="")
    if os.path.exists(os.path.join(a.out, "session.txt")):
        print("```\n" + open(os.path.join(a.out, "session.txt")).read().rstrip() + "\n```\n")
    print("\n".join(table(t)))
    print("\nLogit check (largest |difference| over all logits; PyTorch float32 is the exported model, "
          "float64 the same weights in double on the first 4 images; top-1 agreement of ORT / slab with PyTorch):\n")
    print("| model | batch | max \\|logit\\| | ORT vs PyTorch | slab vs PyTorch | ORT vs slab | PyTorch f32 vs f64 | "
          "ORT vs f64 | slab vs f64 | top-1 same (ORT / slab) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(check_rows(os.path.join(a.out, "models"))))
    ort = sorted(glob.glob(os.path.join(a.out, "ort_*.json")))
    py = sorted(glob.glob(os.path.join(a.out, "py_*.json")))
    if ort:
        with open(ort[0]) as f:
            o = json.loads(f.readline())
        print(f"\nONNX Runtime {o['ort']['node']} (onnxruntime-node), session options {json.dumps(o['session_options'])}, "
              f"{o['warmup']} warm-up runs, blocks of {o['block']}, {o['runs']} timed runs per process.")
    if py:
        p = load_json(py[0])["pytorch"]
        print(f"PyTorch {p['torch']}, {p['threads']} threads, OMP_WAIT_POLICY={p['omp_wait_policy'] or '(default)'}, "
              f"BLAS {', '.join(os.path.basename(x) for x in p['blas'])}, OPENBLAS_CORETYPE={p['openblas_coretype'] or '(unset)'}.")


if __name__ == "__main__":
    sys.exit(main())
