#!/usr/bin/env bash
# A/B of two slab binaries on one benchmark: runs OLD and NEW alternately
# (ROUNDS times each, order swapped every round so neither always runs on a
# warmer or quieter machine) with the same bench arguments and --json, then
# prints, per row, the median over rounds of each binary's median time and
# their ratio new/old (< 1: the new binary is faster).
#
#   scripts/ab-bench.sh OLD NEW bench --models slab_deit_tiny,deit_tiny --batch 1 --rounds 30
#   scripts/ab-bench.sh OLD NEW bench-lm --models lm_60m_rmsnorm,lm_60m_prepbn --rounds 3
set -euo pipefail
old=$1 new=$2
shift 2
ROUNDS=${ROUNDS:-5}
dir=$(mktemp -d)
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then order="old new"; else order="new old"; fi
  for which in $order; do
    bin=$old; [ "$which" = new ] && bin=$new
    "$bin" "$@" --json > "$dir/$which.$r.json" 2>/dev/null
  done
done
python3 - "$dir" "$ROUNDS" <<'PY'
import json, statistics, sys, glob
d, rounds = sys.argv[1], int(sys.argv[2])
def rows(which):
    out = {}
    for r in range(1, rounds + 1):
        j = json.load(open(f"{d}/{which}.{r}.json"))
        if "results" in j:   # slab bench: median ms per model row
            for x in j["results"]:
                out.setdefault(x["model"], []).append(x["median_ms"])
        else:                # slab bench-lm: decode ms per token per model
            for x in j["models"]:
                out.setdefault(x["name"], []).append(x["decode_ms_per_token"])
    return out
o, n = rows("old"), rows("new")
print(f"{'row':34s} {'old ms':>10s} {'new ms':>10s} {'new/old':>8s}   (medians over {rounds} alternating rounds)")
worst = 0
for k in o:
    a, b = statistics.median(o[k]), statistics.median(n[k])
    worst = max(worst, b / a)
    print(f"{k:34s} {a:10.3f} {b:10.3f} {b / a:8.3f}")
print(f"worst new/old: {worst:.3f}")
PY
rm -rf "$dir"
