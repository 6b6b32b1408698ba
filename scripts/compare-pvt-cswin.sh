#!/bin/sh
# compare-pvt-cswin.sh: slab vs PyTorch on the PVT and CSwin families:
# inference at 224x224 (batch 1 and 32) and training throughput of the
# Fashion-MNIST minis (batch 64), in one go.
#
# Inference: alternates, REPS times per batch, PyTorch
# (tools/reference/pvt_cswin_bench.py: our re-implementation of the
# official module trees of slab_pvt.py and slab_cswin.py, unfolded as the
# official code, run with the fair set-up of docs/peers.md) and slab
# (`slab bench --json`: BN-based models folded, with their unfolded rows;
# models interleaved round by round on both sides). At batch 32 each model
# runs in a process pair of its own, as in compare-swin.sh.
# Training: per repetition and model, `slab train` (one epoch of
# TRAIN_IMAGES Fashion-MNIST images, its training images/s) then
# tools/reference/pvt_cswin_train_bench.py (the same model, batch and step
# on one in-memory batch: PYSTEPS timed after 3 untimed; the table also
# gives slab's rate after the steps of its first progress line, 3 of 30).
# PRepBN's schedule is made long on both sides
# (--schedule-t), so both of its branches run in every step of both.
# Then prints the tables (tools/reference/pvt_cswin_bench_table.py), with
# parameter counts and configs of both sides checked equal.
#
#   scripts/compare-pvt-cswin.sh             # REPS=2 ROUNDS=8 BATCHES="1 32" TRAIN=1
#   REPS=1 ROUNDS=3 BATCHES=1 TRAIN=0 OUT=/tmp/pc scripts/compare-pvt-cswin.sh
#     (runs into the same OUT add rows; REPSTART=N numbers repetitions from N;
#      INFER=0 TRAIN=1: the training comparison alone)
#
# Raw results stay in $OUT (default: a new temp dir, printed).
# slab is built from a snapshot of the committed HEAD (SRC=tree: working tree);
# a run into an OUT that holds a slab (and commit.txt) times that one again.
set -eu
cd "$(dirname "$0")/.."
REPS=${REPS:-2}
ROUNDS=${ROUNDS:-8}
BATCHES=${BATCHES:-"1 32"}
THREADS=${THREADS:-2}
INFER=${INFER:-1}
TRAIN=${TRAIN:-1}
MODELS=${MODELS:-slab_pvt_tiny,pvt_tiny_prepbn,pvt_tiny,slab_pvt_small,pvt_small_prepbn,pvt_small,slab_cswin_tiny}
TRAIN_MODELS=${TRAIN_MODELS:-slab_pvt_mini_32,pvt_mini_prepbn_32,pvt_mini_32,slab_cswin_mini_32}
TRAIN_BATCH=${TRAIN_BATCH:-64}
TRAIN_IMAGES=${TRAIN_IMAGES:-1920}
PYSTEPS=${PYSTEPS:-27}
OUT=${OUT:-$(mktemp -d /tmp/compare-pvt-cswin.XXXXXX)}
mkdir -p "$OUT"
echo "compare-pvt-cswin: raw results in $OUT" >&2
# PASSIVE: on a loaded shared machine libgomp's default spin policy
# collapses (scripts/compare-pytorch.sh); recorded in the table.
PYOMP=${PYOMP-PASSIVE}

py() {
	script=$1
	shift
	env -u OPENBLAS_CORETYPE ${PYOMP:+OMP_WAIT_POLICY=$PYOMP} \
		LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
		GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
		/usr/bin/python3 "tools/reference/$script" --threads "$THREADS" "$@"
}

if [ -x "$OUT/slab" ] && [ -s "$OUT/commit.txt" ]; then
	# runs into the same OUT time the same slab
	COMMIT=$(cat "$OUT/commit.txt")
else
	. scripts/lib/source.sh  # the cwd is the repository root (cd above)
	slab_source
	(cd "$BUILD" && go build -o "$OUT/slab" ./cmd/slab)
	echo "$COMMIT" >"$OUT/commit.txt"
fi
for m in $(echo "$MODELS,$TRAIN_MODELS" | tr , ' '); do
	"$OUT/slab" info "$m" --json >"$OUT/info_$m.json"
done

load() { echo "$1 $(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.txt"; }
load start
for r in $(seq "${REPSTART:-1}" $((${REPSTART:-1} + REPS - 1))); do
	if [ "$INFER" = 1 ]; then
		for b in $BATCHES; do
			if [ "$b" -eq 1 ]; then
				echo "compare-pvt-cswin: rep $r B$b" >&2
				py pvt_cswin_bench.py --models "$MODELS" --batches "$b" --rounds "$ROUNDS" --warmup 1 \
					>"$OUT/py_B${b}_all_$r.json"
				"$OUT/slab" bench --models "$MODELS" --batch "$b" --rounds "$ROUNDS" --warmup 1 \
					--threads "$THREADS" --json >"$OUT/go_B${b}_all_$r.json"
			else
				# One model per process pair: every slab layer owns its
				# activation buffers, and seven models' at batch 32 need
				# more memory than the machine has (compare-swin.sh).
				R=$(((ROUNDS + 3) / 4))
				for m in $(echo "$MODELS" | tr , ' '); do
					echo "compare-pvt-cswin: rep $r B$b $m ($R rounds)" >&2
					# a side that fails (slab refuses a batch its buffers
					# would not fit) leaves its error for the table and the
					# run goes on
					py pvt_cswin_bench.py --models "$m" --batches "$b" --rounds "$R" --warmup 1 \
						>"$OUT/py_B${b}_${m}_$r.json" 2>"$OUT/py_B${b}_${m}_$r.err" ||
						echo "compare-pvt-cswin: PyTorch $m B$b failed: $(tail -n1 "$OUT/py_B${b}_${m}_$r.err")" >&2
					"$OUT/slab" bench --models "$m" --batch "$b" --rounds "$R" --warmup 1 \
						--threads "$THREADS" --json >"$OUT/go_B${b}_${m}_$r.json" 2>"$OUT/go_B${b}_${m}_$r.err" ||
						echo "compare-pvt-cswin: slab $m B$b failed: $(tail -n1 "$OUT/go_B${b}_${m}_$r.err")" >&2
				done
			fi
			load "rep $r B$b"
		done
	fi
	if [ "$TRAIN" = 1 ]; then
		for m in $(echo "$TRAIN_MODELS" | tr , ' '); do
			echo "compare-pvt-cswin: rep $r training $m" >&2
			"$OUT/slab" train --model "$m" --data fashion-mnist --epochs 1 --limit-train "$TRAIN_IMAGES" \
				--limit-test 256 --recalibrate 0 --warmup-epochs 0 --schedule-t 1000000000 \
				--batch "$TRAIN_BATCH" --threads "$THREADS" --out "$OUT/train_$m" --force --json \
				>"$OUT/go_train_${m}_$r.json" 2>"$OUT/go_train_${m}_$r.log"
			py pvt_cswin_train_bench.py --models "$m" --batch "$TRAIN_BATCH" --steps "$PYSTEPS" --warmup 3 \
				>"$OUT/py_train_${m}_$r.json"
		done
		load "rep $r training"
	fi
done
load end
CMD="OUT=$OUT PYOMP=$PYOMP REPSTART=${REPSTART:-1} REPS=$REPS ROUNDS=$ROUNDS BATCHES=\"$BATCHES\" THREADS=$THREADS INFER=$INFER TRAIN=$TRAIN TRAIN_IMAGES=$TRAIN_IMAGES PYSTEPS=$PYSTEPS scripts/compare-pvt-cswin.sh"
echo "$CMD  # slab $COMMIT" >>"$OUT/commands.txt"
/usr/bin/python3 tools/reference/pvt_cswin_bench_table.py --commit "$COMMIT" "$OUT"
