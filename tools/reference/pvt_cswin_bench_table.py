#!/usr/bin/python3
"""Turns the raw results of scripts/compare-pvt-cswin.sh into markdown
tables (printed on stdout, for docs/pvt-cswin.md's "Against PyTorch" section
and BENCHMARKS.md).

Inputs in DIR: py_B<b>_<m>_R.json (tools/reference/pvt_cswin_bench.py),
go_B<b>_<m>_R.json (`slab bench --json`), py_train_<m>_R.json
(tools/reference/pvt_cswin_train_bench.py), go_train_<m>_R.json (`slab train
--json`) and info_<m>.json (`slab info --json`). Each figure is the median
over repetitions of the per-process medians; ratios are taken per
repetition (both sides of one repetition ran back to back) and their median
reported. The architecture check compares the parameter counts and configs
each side printed.
"""

import argparse
import glob
import json
import os
import re
import statistics

# The official code's own times on this machine type (2026-12-06, batch 1,
# 2 threads, unfolded, docs/peers.md), for the 15 % check of our reference;
# taken on another day, so only a sanity check, never a ratio of the table.
OFFICIAL_B1 = {"slab_pvt_tiny": 20.1, "pvt_tiny_prepbn": 18.3, "slab_cswin_tiny": 50.3}
ORDER = ["slab_pvt_tiny", "pvt_tiny_prepbn", "pvt_tiny", "slab_pvt_small", "pvt_small_prepbn", "pvt_small",
         "slab_cswin_tiny", "slab_cswin_small", "slab_pvt_medium", "pvt_medium_prepbn"]
TRAIN_ORDER = ["slab_pvt_mini_32", "pvt_mini_prepbn_32", "pvt_mini_32", "slab_cswin_mini_32"]
PAIRS = [("SLAB-PVT-T / PVT-T-PRepBN", "slab_pvt_tiny", "pvt_tiny_prepbn"),
         ("SLAB-PVT-S / PVT-S-PRepBN", "slab_pvt_small", "pvt_small_prepbn")]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def read_json(p):
    """The JSON in p, or None for an empty or cut-off file (a killed process)."""
    try:
        return json.load(open(p))
    except (ValueError, OSError):
        return None


def rep_of(p):
    return int(re.search(r"_(\d+)\.json$", p).group(1))


def load(d):
    """{rep: {(name, batch): ms}} per side, PyTorch's params and configs, and the training figures."""
    py, go, pyparams, pyconf = {}, {}, {}, {}
    for p in glob.glob(os.path.join(d, "py_B*_*.json")):
        j = read_json(p) or {"rows": []}
        for r in j["rows"]:
            py.setdefault(rep_of(p), {})[(r["name"], r["batch"])] = r["median_ms"]
            pyparams[r["name"]] = r.get("params")
        pyconf.update(j.get("configs", {}))
    for p in glob.glob(os.path.join(d, "go_B*_*.json")):
        for r in (read_json(p) or {"results": []})["results"]:
            go.setdefault(rep_of(p), {})[(r["model"], r["batch"])] = r["median_ms"]
    train = {}  # name -> rep -> {"go": images/s, "py": images/s, "pycpu": ms, "pyparams", "goparams"}
    for side in ("go", "py"):
        for p in glob.glob(os.path.join(d, f"{side}_train_*_*.json")):
            j = read_json(p)
            if not j:
                continue
            name = re.search(rf"{side}_train_(.+)_\d+\.json$", os.path.basename(p)).group(1)
            e = train.setdefault(name, {}).setdefault(rep_of(p), {})
            if side == "go":
                e["go"], e["goparams"], e["steps"] = j["train_images_per_s"], j["params"], j["steps"]
                e["gosteady"], e["goskip"] = steady_rate(p[:-len(".json")] + ".log", j["batch"])
            else:
                m = j["models"][name]
                e["py"], e["pycpu"], e["pyparams"] = m["images_per_s"], m["cpu_ms_per_step"], m["params"]
                pyconf.update(j.get("configs", {}))
    return py, go, pyparams, pyconf, train


def steady_rate(log, batch):
    """slab's images/s after the steps of its first progress line (step 3 of 30: the first
    step grows every buffer, and PyTorch's figure excludes its warm-up steps too), from the
    cumulative rates its progress lines print; (rate, steps left out)."""
    pts = []
    try:
        for line in open(log):
            m = re.search(r"step (\d+)/\d+ .* ([\d.]+) images/s$", line.strip())
            if m and float(m.group(2)) > 0:
                k = int(m.group(1))
                pts.append((k, k * batch / float(m.group(2))))
    except OSError:
        return None, None
    if len(pts) < 2 or pts[-1][1] <= pts[0][1]:
        return None, None
    return (pts[-1][0] - pts[0][0]) * batch / (pts[-1][1] - pts[0][1]), pts[0][0]


def across(side, key):
    return med([v[key] for v in side.values() if key in v])


def ratios(py, go, gkey, pkey):
    """Per-repetition slab/PyTorch ratios of one row."""
    return [go[r][gkey] / py[r][pkey] for r in go if r in py and gkey in go[r] and pkey in py[r]]


def check_architectures(d, pyparams, pyconf, train):
    """Lines comparing each side's parameter count and config; 'MISMATCH' when they differ."""
    lines = []
    want = dict(pyparams)
    for name, reps in train.items():
        for e in reps.values():
            if "pyparams" in e:
                want[name] = e["pyparams"]
    for name in ORDER + TRAIN_ORDER:
        info = read_json(os.path.join(d, f"info_{name}.json"))
        if name not in want or not info:
            continue
        ok = info["params"] == want[name]
        conf = pyconf.get(name, {})
        # Step (PRepBN's T) is a schedule length, not architecture
        diff = [k for k, v in conf.items() if k != "Step" and k in info["config"] and info["config"][k] != v
                and not (isinstance(v, float) and abs(info["config"][k] - v) <= 1e-6 * abs(v))]
        missing = [k for k in conf if k not in info["config"]]
        ok = ok and not diff and not missing
        lines.append(f"| `{name}` | {info['params']:,} | {want[name]:,} | "
                     f"{'same' if not (diff or missing) else 'MISMATCH ' + ', '.join(diff + missing)}"
                     f"{'' if conf else ' (not printed)'} | {'ok' if ok else '**MISMATCH**'} |")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--commit", default="?")
    a = ap.parse_args()
    py, go, pyparams, pyconf, train = load(a.dir)
    batches = sorted({b for side in (py, go) for v in side.values() for (_, b) in v})
    print(f"slab commit {a.commit}; raw results in {a.dir}")
    for f in ("commands.txt", "load.txt"):
        p = os.path.join(a.dir, f)
        if os.path.exists(p):
            print("".join("    " + line for line in open(p)))
    if batches:
        print("| model | batch | PyTorch ms (official tree, unfolded) | slab ms (folded) | slab ms (unfolded) "
              "| slab / PyTorch | unfolded / PyTorch | reps |")
        print("|---|---|---|---|---|---|---|---|")
        for b in batches:
            for n in ORDER:
                k = (n, b)
                p, g, u = across(py, k), across(go, k), across(go, (n + "/unfused", b))
                if p is None and g is None:
                    continue
                r, ru = med(ratios(py, go, k, k)), med(ratios(py, go, (n + "/unfused", b), k))
                nrep = len(ratios(py, go, k, k))
                print(f"| `{n}` | {b} | {fmt(p)} | {fmt(g)} | {fmt(u)} | **{fmt(r, 3)}** | {fmt(ru, 3)} | {nrep} |")
        print()
        print("| time ratio | batch | PyTorch (unfolded) | slab folded | slab unfolded | official code, this CPU |")
        print("|---|---|---|---|---|---|")
        for b in batches:
            def rr(side, num, den):
                return med([v[(num, b)] / v[(den, b)] for v in side.values() if (num, b) in v and (den, b) in v])
            for label, num, den in PAIRS:
                off = f"{20.1 / 18.3:.3f}" if (b == 1 and num == "slab_pvt_tiny") else "–"
                print(f"| {label} | {b} | {fmt(rr(py, num, den), 3)} | {fmt(rr(go, num, den), 3)} "
                      f"| {fmt(rr(go, num + '/unfused', den + '/unfused'), 3)} | {off} |")
        print()
        print("| our PyTorch reference, batch 1 | ms here | official code (2026-12-06) | ref / official |")
        print("|---|---|---|---|")
        for n, o in OFFICIAL_B1.items():
            p = across(py, (n, 1))
            print(f"| `{n}` | {fmt(p)} | {o} | {fmt(None if p is None else p / o, 3)} |")
        print()
    if train:
        print("| training, batch 64 | slab images/s, whole epoch (per rep) | slab after its first steps | "
              "PyTorch images/s (after warm-up) | slab / PyTorch, whole epoch (per rep) | median "
              "| after the first steps: median | PyTorch CPU-ms per step | slab steps (first left out) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n in TRAIN_ORDER + sorted(set(train) - set(TRAIN_ORDER)):
            if n not in train:
                continue
            reps = [train[n][r] for r in sorted(train[n])]
            both = [e for e in reps if "go" in e and "py" in e]
            rs = [e["go"] / e["py"] for e in both]
            rss = [e["gosteady"] / e["py"] for e in both if e.get("gosteady")]
            print(f"| `{n}` | {' / '.join(fmt(e.get('go'), 0) for e in reps)} "
                  f"| {' / '.join(fmt(e.get('gosteady'), 0) for e in reps)} "
                  f"| {' / '.join(fmt(e.get('py'), 0) for e in reps)} "
                  f"| {' / '.join(fmt(x, 2) for x in rs)} | **{fmt(med(rs), 2)}** | {fmt(med(rss), 2)} "
                  f"| {fmt(med([e.get('pycpu') for e in reps]), 0)} | {med([e.get('steps') for e in reps])} "
                  f"({med([e.get('goskip') for e in reps])}) |")
        print()
    fails = []
    for p in sorted(glob.glob(os.path.join(a.dir, "*_B*_*.err"))):
        if read_json(p[:-4] + ".json") is None:
            lines = [x.strip() for x in open(p) if x.strip()]
            if lines:
                fails.append(f"- {os.path.basename(p)[:-4]}: {lines[-1]}")
    if fails:
        print("Failed (no figure):")
        print("\n".join(fails))
        print()
    print("| architecture check | slab params (`slab info`) | PyTorch params | config | |")
    print("|---|---|---|---|---|")
    for line in check_architectures(a.dir, pyparams, pyconf, train):
        print(line)


if __name__ == "__main__":
    main()
