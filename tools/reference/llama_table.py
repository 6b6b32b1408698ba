#!/usr/bin/python3
"""Summarise a scripts/compare-lm.sh session (OUT directory) as Markdown.

For each size: slab's decode tokens/s (rmsnorm, folded prepbn; wall clock and
per CPU-time), the folded/rmsnorm ratio, PyTorch's tokens/s and ratio, slab
over PyTorch, and slab against the memory-bandwidth floor: bytes read per
token (weights and key/value cache) over the DRAM read rate that `slab bench-lm` probes between its rounds
(the faster of a plain read and a GEMV over 256 MiB; JSON dram_read_*), and
over the run's single fastest probe (strict). BenchmarkBandwidth of the same
repetition is printed for reference. Medians over repetitions.

    /usr/bin/python3 tools/reference/llama_table.py /tmp/compare-lm.XXXXXX
"""

import glob
import json
import os
import re
import statistics
import sys


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    out = sys.argv[1]
    reps = sorted(int(re.search(r"go_(\d+)\.json", p).group(1)) for p in glob.glob(os.path.join(out, "go_*.json")))
    go, py, bw, probe = {}, {}, {}, {}
    for r in reps:
        with open(os.path.join(out, "go_%d.json" % r)) as f:
            g = json.load(f)
        for k in ("dram_read_gb_per_s", "dram_read_gb_per_cpu_s", "dram_read_best_gb_per_s"):
            if k in g:
                probe.setdefault(k, []).append(g[k])
        for m in g["models"]:
            go.setdefault(m["name"], []).append(m)
        pp = os.path.join(out, "py_%d.json" % r)
        if os.path.exists(pp):
            with open(pp) as f:
                for line in f:
                    if line.strip():
                        j = json.loads(line)
                        py.setdefault(j["model"], []).append(j)
        bp = os.path.join(out, "bw_%d.txt" % r)
        if os.path.exists(bp):
            with open(bp) as f:
                for line in f:
                    m = re.search(r"([\d.]+) GB/s\s+([\d.]+) cpuGB/s", line)
                    if m:
                        bw.setdefault("wall", []).append(float(m.group(1)))
                        bw.setdefault("cpu", []).append(float(m.group(2)))
    bwall, bcpu = med(bw.get("wall", [])), med(bw.get("cpu", []))
    print("BenchmarkBandwidth (512 MiB, median of %d): %.1f GB/s wall, %.1f GB/s per CPU-time" % (len(bw.get("wall", [])), bwall, bcpu))
    pw, pc, pb = (med(probe.get(k, [])) for k in ("dram_read_gb_per_s", "dram_read_gb_per_cpu_s", "dram_read_best_gb_per_s"))
    print("bench-lm probe (256 MiB between rounds, per repetition %s): median %.1f GB/s wall, %.1f per CPU-time; best probe %.1f GB/s\n" % (
        " / ".join("%.1f" % x for x in probe.get("dram_read_gb_per_s", [])), pw, pc, pb))
    print("| model | norm | slab tok/s | per CPU-time | folded/rms | PyTorch tok/s | per CPU-time | folded/rms | slab/PyTorch (wall / CPU) | MB read/token (weights + cache) | floor tok/s | decode of floor (wall / CPU / strict) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    bases = []
    for name in go:
        b = re.sub(r"_(rmsnorm|prepbn)$", "", name)
        if b not in bases:
            bases.append(b)
    for b in bases:
        rms = go.get(b + "_rmsnorm", [])
        for norm, key in (("rmsnorm", "rmsnorm"), ("prepbn", "prepbn_folded")):
            ms = go.get(b + "_" + norm, [])
            if not ms:
                continue
            tok = med([m["tokens_per_s"] for m in ms])
            cpu = med([m["cpu_tokens_per_s"] for m in ms])
            ratio = med([m["tokens_per_s"] / r["tokens_per_s"] for m, r in zip(ms, rms)])
            pt = med([p["tokens_per_s"][key] for p in py.get(b, [])])
            pcpu = med([p["cpu_tokens_per_s"][key] for p in py.get(b, []) if "cpu_tokens_per_s" in p])
            pratio = med([p["ratio_prepbn_over_rms"] for p in py.get(b, [])])
            # Bytes a step reads: weights plus the key/value cache (older
            # JSON has no cache field: weights alone).
            wb = ms[0]["weight_bytes_per_token"] + ms[0].get("cache_bytes_per_token", 0)
            floor = pw * 1e9 / wb
            # Against the floor: the decode step alone (prefill excluded),
            # each repetition against its own probe.
            of = med([m["fraction_of_floor"] for m in ms])
            ofc = med([m["cpu_fraction_of_floor"] for m in ms])
            ofs = med([m["strict_fraction_of_floor"] for m in ms])
            print("| %s | %s | %.1f | %.1f | %.3f | %.1f | %.1f | %.3f | %.2f / %.2f | %.1f | %.1f | %.0f %% / %.0f %% / %.0f %% |" % (
                b, norm + (" (folded)" if norm == "prepbn" else ""), tok, cpu, ratio, pt, pcpu, pratio, tok / pt, cpu / pcpu,
                wb / 1e6, floor, 100 * of, 100 * ofc, 100 * ofs))
    with open(os.path.join(out, "session.txt")) as f:
        print("\n```\n" + f.read().strip() + "\n```")


if __name__ == "__main__":
    main()
