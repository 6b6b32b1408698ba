#!/bin/sh
# compare-lm.sh: decode speed of slab vs PyTorch at batch 1, in one session.
#
# Per repetition, in this order: the DRAM read bandwidth
# (kernels BenchmarkBandwidth), `slab bench-lm` on every size (rmsnorm and
# folded prepbn interleaved round by round inside the process), then
# tools/reference/llama_bench.py on the same sizes with docs/peers.md's PyTorch
# set-up. Repetitions alternate the two frameworks so that both see the same
# machine state. Raw output stays in $OUT; summarise with
# tools/reference/llama_table.py $OUT.
#
#   scripts/compare-lm.sh                        # REPS=2 ROUNDS=3 MODELS="lm_small_bpe lm_60m llama_350m"
#   REPS=1 MODELS=lm_small_bpe scripts/compare-lm.sh
#
# PYOMP sets OMP_WAIT_POLICY for PyTorch's OpenMP pool: empty (default) is
# docs/peers.md exactly (libgomp spins); PASSIVE survives a loaded machine (see
# compare-pytorch.sh).
set -eu
cd "$(dirname "$0")/.."
REPS=${REPS:-2}
ROUNDS=${ROUNDS:-3}
MODELS=${MODELS:-"lm_small_bpe lm_60m llama_350m"}
THREADS=${THREADS:-2}
PYOMP=${PYOMP-}
OUT=${OUT:-$(mktemp -d /tmp/compare-lm.XXXXXX)}
mkdir -p "$OUT"
echo "compare-lm: raw results in $OUT" >&2

. scripts/lib/source.sh  # the cwd is the repository root (cd above)
slab_source
(cd "$BUILD" && go build -o "$OUT/slab" ./cmd/slab && go test -c -o "$OUT/kernels.test" ./kernels/)

list=""
for m in $MODELS; do list="$list${list:+,}${m}_rmsnorm,${m}_prepbn"; done
pylist=$(echo "$MODELS" | tr ' ' ',')

echo "commit $COMMIT start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/session.txt"
for r in $(seq 1 "$REPS"); do
	echo "compare-lm: rep $r bandwidth" >&2
	(cd "$OUT/src/kernels" && "$OUT/kernels.test" -test.run '^$' -test.bench 'Bandwidth' -test.benchtime 5x -test.cpu "$THREADS") >"$OUT/bw_$r.txt"
	echo "compare-lm: rep $r slab" >&2
	"$OUT/slab" bench-lm --models "$list" --rounds "$ROUNDS" --threads "$THREADS" --json >"$OUT/go_$r.json"
	echo "compare-lm: rep $r pytorch" >&2
	env -u OPENBLAS_CORETYPE ${PYOMP:+OMP_WAIT_POLICY=$PYOMP} \
		LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
		GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
		/usr/bin/python3 tools/reference/llama_bench.py --model "$pylist" --threads "$THREADS" --rounds "$ROUNDS" >"$OUT/py_$r.json"
	echo "rep $r done $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/session.txt"
done
echo "REPS=$REPS ROUNDS=$ROUNDS MODELS=\"$MODELS\" THREADS=$THREADS PYOMP=$PYOMP scripts/compare-lm.sh  # slab $COMMIT" >>"$OUT/session.txt"
echo "compare-lm: done; $OUT/session.txt" >&2
