#!/bin/sh
# compare-adaptive.sh: evaluation and generation speed of the adaptive-input
# LM (docs/adaptive-lm.md, "Speed"), slab vs PyTorch, in one session.
#
# Four rows per engine: adaptive input + adaptive softmax and plain
# embedding + full softmax, each with LayerNorm and with folded PRepBN
# (slab bench-lm folds the _prepbn models itself; PyTorch's folded rows
# have no norms and biased q/k/v). Each repetition runs `slab bench-lm`
# (generation at batch 1 and --eval-batch evaluation, the models
# interleaved round by round inside the process) and
# tools/reference/adaptive_bench.py (the same, with docs/peers.md's PyTorch
# set-up), the engine that goes first alternating between repetitions, so
# that both see the same machine state. The vocabulary is SOTU's word
# vocabulary (run scripts/fetch-sotu.sh first). Raw output stays in $OUT
# (go_N.txt: bench-lm's own report); the table is printed at the end (again with
# tools/reference/adaptive_bench.py --table $OUT).
#
#   scripts/compare-adaptive.sh                  # REPS=4 ROUNDS=3 MODEL=adaptive_lm_small THREADS=2
#   REPS=2 ROUNDS=2 MODEL=adaptive_lm_tiny PROMPT=8 GENERATE=16 scripts/compare-adaptive.sh
#
# PYOMP sets OMP_WAIT_POLICY for PyTorch's OpenMP pool: empty (default) is
# docs/peers.md exactly (libgomp spins); PASSIVE survives a loaded machine.
set -eu
cd "$(dirname "$0")/.."
REPS=${REPS:-4}
ROUNDS=${ROUNDS:-3}
MODEL=${MODEL:-adaptive_lm_small}
THREADS=${THREADS:-2}
PROMPT=${PROMPT:-32}
# adaptive_lm_small has 128 positions: prompt + generated <= 128.
GENERATE=${GENERATE:-96}
EVAL_BATCH=${EVAL_BATCH:-16}
PYOMP=${PYOMP-}
OUT=${OUT:-$(mktemp -d /tmp/compare-adaptive.XXXXXX)}
mkdir -p "$OUT"
echo "compare-adaptive: raw results in $OUT" >&2

. scripts/lib/source.sh  # the cwd is the repository root (cd above)
slab_source
(cd "$BUILD" && go build -o "$OUT/slab" ./cmd/slab)

list="${MODEL},${MODEL}_prepbn,${MODEL}_full,${MODEL}_full_prepbn"

slab_rep() {
	echo "compare-adaptive: rep $1 slab" >&2
	"$OUT/slab" bench-lm --models "$list" --tokenizer word --prompt "$PROMPT" --generate "$GENERATE" \
		--eval-batch "$EVAL_BATCH" --rounds "$ROUNDS" --threads "$THREADS" --json >"$OUT/go_$1.json" 2>"$OUT/go_$1.txt"
}
py_rep() {
	echo "compare-adaptive: rep $1 pytorch" >&2
	# The word vocabulary slab built from SOTU (the bands depend on it);
	# rep 1 runs slab first.
	vocab=$(grep -o '"vocab":[0-9]*' "$OUT/go_1.json" | head -1 | cut -d: -f2)
	env -u OPENBLAS_CORETYPE ${PYOMP:+OMP_WAIT_POLICY=$PYOMP} \
		LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
		GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
		/usr/bin/python3 "$OUT/src/tools/reference/adaptive_bench.py" --model "$MODEL" --vocab "$vocab" --threads "$THREADS" \
		--prompt "$PROMPT" --generate "$GENERATE" --eval-batch "$EVAL_BATCH" --rounds "$ROUNDS" >"$OUT/py_$1.json"
}

echo "commit $COMMIT start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/session.txt"
for r in $(seq 1 "$REPS"); do
	if [ $((r % 2)) -eq 1 ]; then
		slab_rep "$r"
		py_rep "$r"
	else
		py_rep "$r"
		slab_rep "$r"
	fi
	echo "rep $r done $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/session.txt"
done
echo "REPS=$REPS ROUNDS=$ROUNDS MODEL=$MODEL THREADS=$THREADS PROMPT=$PROMPT GENERATE=$GENERATE EVAL_BATCH=$EVAL_BATCH PYOMP=$PYOMP scripts/compare-adaptive.sh  # slab $COMMIT" >>"$OUT/session.txt"
/usr/bin/python3 "$OUT/src/tools/reference/adaptive_bench.py" --table "$OUT"
