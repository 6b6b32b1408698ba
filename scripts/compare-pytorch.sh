#!/bin/sh
# compare-pytorch.sh: slab vs PyTorch inference speed, side by side, in one go.
#
# Alternates PyTorch (tools/reference/bench.py, run with the fair set-up of
# docs/peers.md) and slab (`slab bench --json`, BenchmarkAttentionBlock in nn)
# REPS times per row group, so that both see the same machine state, then
# writes the table with slab/PyTorch ratios to docs/bench-pytorch.md.
#
#   scripts/compare-pytorch.sh                 # REPS=2 ROUNDS=20 SIZES="tiny small" BATCHES="1 32"
#   REPS=1 SIZES=tiny scripts/compare-pytorch.sh
#   OUT=/tmp/cmp SIZES=tiny scripts/compare-pytorch.sh; OUT=/tmp/cmp SIZES=small ATTN=0 scripts/compare-pytorch.sh
#     (a second run into the same OUT adds rows, REPSTART=N numbers its repetitions
#     from N so that it adds repetitions instead of replacing them; the table covers all of OUT)
#
# Raw JSON/bench output stays in $OUT (default: a new temp dir, printed).
# slab is built from a snapshot of the committed HEAD (SRC=tree: working tree).
set -eu
cd "$(dirname "$0")/.."
REPS=${REPS:-2}
ROUNDS=${ROUNDS:-20}
SIZES=${SIZES:-"tiny small"}
BATCHES=${BATCHES:-"1 32"}
THREADS=${THREADS:-2}
ATTN=${ATTN:-1} # 0: skip the attention-block rows
OUT=${OUT:-$(mktemp -d /tmp/compare-pytorch.XXXXXX)}
mkdir -p "$OUT"
echo "compare-pytorch: raw results in $OUT" >&2

# PYOMP: OMP_WAIT_POLICY for PyTorch's OpenMP pool; empty = libgomp's
# default (spin), as docs/peers.md. On a loaded shared machine the default spin
# policy collapses (measured at load average ~10: DeiT-Tiny B1 2574 ms
# spinning vs 57.6 ms PASSIVE vs 52.5 ms on 1 thread), so PASSIVE is the
# default here and recorded in the table.
PYOMP=${PYOMP-PASSIVE}

py() {
	env -u OPENBLAS_CORETYPE ${PYOMP:+OMP_WAIT_POLICY=$PYOMP} \
		LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
		GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
		/usr/bin/python3 tools/reference/bench.py --threads "$THREADS" --rounds "$ROUNDS" "$@"
}

# Build from a clean snapshot of the committed HEAD (SRC=tree builds the
# working tree instead): the shared tree may hold half-edited files, and the
# table should name the commit it measured.
. scripts/lib/source.sh  # the cwd is the repository root (cd above)
slab_source
(cd "$BUILD" && go build -o "$OUT/slab" ./cmd/slab && go test -c -o "$OUT/nn.test" ./nn/)
NNDIR=$BUILD/nn

echo "start $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.txt"
for r in $(seq "${REPSTART:-1}" $((${REPSTART:-1} + REPS - 1))); do
	for size in $SIZES; do
		for b in $BATCHES; do
			echo "compare-pytorch: rep $r deit_$size B$b" >&2
			py --sizes "$size" --batches "$b" --skip-attn >"$OUT/py_${size}_B${b}_$r.json"
			"$OUT/slab" bench --models "deit_$size,deit_${size}_prepbn,slab_deit_$size" \
				--batch "$b" --rounds "$ROUNDS" --threads "$THREADS" --json >"$OUT/go_${size}_B${b}_$r.json"
		done
	done
	[ "$ATTN" = 1 ] || continue
	echo "compare-pytorch: rep $r attention" >&2
	py --skip-models >"$OUT/py_attn_$r.json"
	(cd "$NNDIR" && "$OUT/nn.test" -test.run '^$' -test.bench 'AttentionBlock/(softmax|sla)/' \
		-test.benchtime "${ROUNDS}x" -test.cpu "$THREADS") >"$OUT/go_attn_$r.txt"
done

echo "end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.txt"
CMD="OUT=$OUT PYOMP=$PYOMP REPSTART=${REPSTART:-1} REPS=$REPS ROUNDS=$ROUNDS SIZES=\"$SIZES\" BATCHES=\"$BATCHES\" THREADS=$THREADS ATTN=$ATTN scripts/compare-pytorch.sh"
echo "$CMD  # slab $COMMIT" >>"$OUT/commands.txt"
CMD=$(cat "$OUT/commands.txt")
/usr/bin/python3 tools/reference/bench_table.py --command "$CMD" --commit "$COMMIT" "$OUT" >docs/bench-pytorch.md.tmp
mv docs/bench-pytorch.md.tmp docs/bench-pytorch.md
echo "compare-pytorch: wrote docs/bench-pytorch.md" >&2
