#!/bin/sh
# compare-swin.sh: slab vs PyTorch inference speed of the Swin family at
# 224x224 and of the SLA block at Swin's stage-1 shapes, in one go.
#
# Alternates, REPS times per batch, PyTorch (tools/reference/swin_bench.py:
# our re-implementation of the official module trees, unfolded as the
# official code, run with the fair set-up of docs/peers.md) and slab
# (`slab bench --json`: BN-based models folded, with their unfolded rows),
# then the SLA block (PyTorch's module vs nn's BenchmarkSLABlock, which
# also measures the FMA peak in the same process), and prints the table
# (tools/reference/swin_bench_table.py) with slab/PyTorch ratios.
#
#   scripts/compare-swin.sh                          # REPS=2 ROUNDS=8 BATCHES="1 32"
#   REPS=1 ROUNDS=3 BATCHES=32 ATTN=0 OUT=/tmp/sw scripts/compare-swin.sh
#     (runs into the same OUT add rows; REPSTART=N numbers repetitions from N)
#
# Raw results stay in $OUT (default: a new temp dir, printed).
# slab is built from a snapshot of the committed HEAD (SRC=tree: working tree).
set -eu
cd "$(dirname "$0")/.."
REPS=${REPS:-2}
ROUNDS=${ROUNDS:-8}
BATCHES=${BATCHES:-"1 32"}
THREADS=${THREADS:-2}
ATTN=${ATTN:-1}
MODELS=${MODELS:-slab_swin_tiny,swin_tiny,flatten_swin_tiny,swin_tiny_prepbn,slab_swin_small,swin_small,flatten_swin_small}
OUT=${OUT:-$(mktemp -d /tmp/compare-swin.XXXXXX)}
mkdir -p "$OUT"
echo "compare-swin: raw results in $OUT" >&2
# PASSIVE: on a loaded shared machine libgomp's default spin policy
# collapses (scripts/compare-pytorch.sh); recorded in the table.
PYOMP=${PYOMP-PASSIVE}

py() {
	env -u OPENBLAS_CORETYPE ${PYOMP:+OMP_WAIT_POLICY=$PYOMP} \
		LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
		GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
		/usr/bin/python3 tools/reference/swin_bench.py --threads "$THREADS" "$@"
}

. scripts/lib/source.sh  # the cwd is the repository root (cd above)
slab_source
(cd "$BUILD" && go build -o "$OUT/slab" ./cmd/slab && go test -c -o "$OUT/nn.test" ./nn/)

echo "start $(date -u +%H:%M) $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.txt"
for r in $(seq "${REPSTART:-1}" $((${REPSTART:-1} + REPS - 1))); do
	for b in $BATCHES; do
		if [ "$b" -eq 1 ]; then
			echo "compare-swin: rep $r B$b" >&2
			py --models "$MODELS" --batches "$b" --rounds "$ROUNDS" --warmup 1 --skip-attn >"$OUT/py_swin_B${b}_$r.json"
			"$OUT/slab" bench --models "$MODELS" --batch "$b" --rounds "$ROUNDS" --warmup 1 \
				--threads "$THREADS" --json >"$OUT/go_swin_B${b}_$r.json"
		else
			# One model per process pair: ten slab variants at batch 32 hold
			# ~25 GB of activation buffers between them (each layer owns its
			# buffers), more than the machine has.
			R=$(( (ROUNDS + 3) / 4 ))
			for m in $(echo "$MODELS" | tr , ' '); do
				echo "compare-swin: rep $r B$b $m ($R rounds)" >&2
				py --models "$m" --batches "$b" --rounds "$R" --warmup 1 --skip-attn >"$OUT/py_swin_B${b}_${m}_$r.json"
				"$OUT/slab" bench --models "$m" --batch "$b" --rounds "$R" --warmup 1 \
					--threads "$THREADS" --json >"$OUT/go_swin_B${b}_${m}_$r.json"
			done
		fi
		echo "  $(date -u +%H:%M) $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.txt"
	done
	[ "$ATTN" = 1 ] || continue
	echo "compare-swin: rep $r SLA block" >&2
	py --skip-models --rounds "$ROUNDS" >"$OUT/py_attn_$r.json"
	(cd "$BUILD/nn" && "$OUT/nn.test" -test.run '^$' -test.bench 'SLABlock' \
		-test.benchtime "$((ROUNDS * 5))x" -test.cpu "$THREADS") >"$OUT/go_attn_$r.txt"
done
echo "end $(date -u +%H:%M) $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.txt"
CMD="OUT=$OUT PYOMP=$PYOMP REPSTART=${REPSTART:-1} REPS=$REPS ROUNDS=$ROUNDS BATCHES=\"$BATCHES\" THREADS=$THREADS ATTN=$ATTN scripts/compare-swin.sh"
echo "$CMD  # slab $COMMIT" >>"$OUT/commands.txt"
/usr/bin/python3 tools/reference/swin_bench_table.py --commit "$COMMIT" "$OUT"
