#!/bin/sh
# compare-ort.sh: DeiT-Tiny / DeiT-Small inference, slab vs ONNX Runtime vs
# PyTorch, the same models and weights on all three, interleaved in one run.
#
# 1. Installs what it lacks: Debian's python3-torch, python3-numpy and the
#    OpenMP OpenBLAS (apt-get), node and npm (apt-get), and npm's
#    onnxruntime-node@1.30.0 with --ignore-scripts into $ORTDIR
#    (default $HOME/.cache/slab/ort; the native library ships in the package).
# 2. Exports our PyTorch reference models (tools/reference/ort_export.py:
#    deit_SIZE and folded slab_deit_SIZE, seeded random weights) to ONNX
#    (opset 17, constant folding) at every batch, and writes their official
#    .pth, which slab imports (`slab import`, --fuse for slab_deit), so the
#    three engines run the same weights.
# 3. Checks the logits once: ORT (tools/reference/ort_bench.js --check) and
#    slab (`slab run`) against PyTorch on the same input.
# 4. REPS repetitions; in each, for every size and batch in turn: `slab bench`
#    (both models, --dtype $DTYPES, interleaved round by round), PyTorch
#    (tools/reference/ort_torch_bench.py, docs/peers.md's set-up), then ONNX
#    Runtime: ORTPROCS processes per model, each its own session and run
#    (10 warm-ups, blocks of 20 timed runs; docs/peers.md). ORT's "best mode"
#    is the fastest of those processes' medians.
# 5. Prints the table (tools/reference/ort_table.py; also $OUT/table.md):
#    per model and batch the median times and the ratios slab/ORT best and
#    slab/PyTorch, each taken inside one repetition.
#
#   scripts/compare-ort.sh                      # REPS=2 SIZES="tiny small" BATCHES="1 32"
#   REPS=1 SIZES=tiny BATCHES=1 ROUNDS=5 ORTPROCS=1 ORT_BLOCKS=1 DTYPES=f32 scripts/compare-ort.sh   # a quick try
#
# Knobs: ROUNDS (slab and PyTorch rounds at batch 1, default 20), ROUNDS_BIG
# (larger batches, default 5), ORT_WARMUP (10), ORT_BLOCK (20), ORT_BLOCKS
# (batch 1: 3; larger: ORT_BLOCKS_BIG, 1; ORT_WARMUP_BIG and ORT_BLOCK_BIG
# default to the batch-1 values), ORTPROCS (3 per mode), ORT_SPIN ("spin":
# docs/peers.md's set-up; "spin nospin" adds as many processes whose pool
# threads sleep between ops, ort_bench.js --no-spin, which a loaded machine
# needs; best mode is then the fastest of all), THREADS (2), DTYPES
# (slab's --dtype list at batch 1, default f32,bf16,int8; DTYPES_BIG at larger
# batches, default f32), PYOMP (OMP_WAIT_POLICY of
# PyTorch's pool; empty = libgomp's default spinning, docs/peers.md),
# KINDS ("deit slab_deit"), SEED (17), OUT (raw results; default a new temp
# dir), MODELS_DIR (reuse the exported models of an earlier run), SRC=tree
# (build the working tree instead of the committed HEAD).
set -eu
cd "$(dirname "$0")/.."
REPS=${REPS:-2}
ROUNDS=${ROUNDS:-20}
ROUNDS_BIG=${ROUNDS_BIG:-5}
SIZES=${SIZES:-"tiny small"}
BATCHES=${BATCHES:-"1 32"}
KINDS=${KINDS:-"deit slab_deit"}
THREADS=${THREADS:-2}
DTYPES=${DTYPES:-f32,bf16,int8}
# slab bench keeps one model per variant and sizes activations for each: at
# batch 32 three models x three dtypes ask ~18 GB, more than the machine has
# beside others' jobs, so larger batches run float32 only unless told.
DTYPES_BIG=${DTYPES_BIG:-f32}
ORT_WARMUP=${ORT_WARMUP:-10}
ORT_BLOCK=${ORT_BLOCK:-20}
ORT_BLOCKS=${ORT_BLOCKS:-3}
ORT_BLOCKS_BIG=${ORT_BLOCKS_BIG:-1}
ORT_WARMUP_BIG=${ORT_WARMUP_BIG:-$ORT_WARMUP}
ORT_BLOCK_BIG=${ORT_BLOCK_BIG:-$ORT_BLOCK}
ORT_SPIN=${ORT_SPIN:-spin}
ORTPROCS=${ORTPROCS:-3}
PYOMP=${PYOMP-}
SEED=${SEED:-17}
ORTDIR=${ORTDIR:-$HOME/.cache/slab/ort}
ORTVERSION=1.30.0
OUT=${OUT:-$(mktemp -d /tmp/compare-ort.XXXXXX)}
mkdir -p "$OUT"
echo "compare-ort: raw results in $OUT" >&2

die() {
	echo "compare-ort: $*" >&2
	exit 1
}

# --- 1. prerequisites ------------------------------------------------------
apt_install() {
	[ "$(id -u)" = 0 ] || die "missing $*; install as root: apt-get install -y --no-install-recommends $*"
	echo "compare-ort: installing $* (apt-get)" >&2
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >&2 ||
		die "apt-get install $* failed"
}
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || apt_install python3-torch python3-numpy
[ -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 ] || apt_install libopenblas0-openmp
/usr/bin/python3 -c 'import torch, numpy' || die "/usr/bin/python3 cannot import torch and numpy after installing python3-torch"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
ortok() {
	NODE_PATH="$ORTDIR/node_modules" node -e \
		"process.exit(require('onnxruntime-node').env.versions.node === '$ORTVERSION' ? 0 : 1)" 2>/dev/null
}
if ! ortok; then
	echo "compare-ort: installing onnxruntime-node@$ORTVERSION into $ORTDIR (npm install --ignore-scripts)" >&2
	mkdir -p "$ORTDIR" || die "cannot create $ORTDIR (set ORTDIR)"
	[ -f "$ORTDIR/package.json" ] || echo '{"name": "slab-ort-cache", "private": true}' >"$ORTDIR/package.json"
	(cd "$ORTDIR" && npm install --ignore-scripts --no-audit --no-fund "onnxruntime-node@$ORTVERSION" >&2) ||
		die "npm install --ignore-scripts onnxruntime-node@$ORTVERSION in $ORTDIR failed"
	ortok || die "onnxruntime-node@$ORTVERSION in $ORTDIR/node_modules does not load in node $(node --version)"
fi
export NODE_PATH="$ORTDIR/node_modules"

# --- build slab --------------------------------------------------------------
. scripts/lib/source.sh  # the cwd is the repository root (cd above)
slab_source
(cd "$BUILD" && go build -o "$OUT/slab" ./cmd/slab) || die "go build ./cmd/slab failed"
SLAB="$OUT/slab"

# --- 2. export ---------------------------------------------------------------
names=""
for size in $SIZES; do for k in $KINDS; do names="$names${names:+,}${k}_$size"; done; done
blist=$(echo "$BATCHES" | tr ' ' ',')
if [ -n "${MODELS_DIR:-}" ]; then
	[ -f "$MODELS_DIR/manifest.json" ] || die "MODELS_DIR=$MODELS_DIR holds no manifest.json (ort_export.py's output)"
	ln -sfn "$(cd "$MODELS_DIR" && pwd)" "$OUT/models"
else
	echo "compare-ort: exporting $names at batch $blist to ONNX" >&2
	/usr/bin/python3 tools/reference/ort_export.py --out "$OUT/models" --models "$names" --batches "$blist" --seed "$SEED" ||
		die "tools/reference/ort_export.py failed"
fi
M="$OUT/models"

# --- 3. logit check ----------------------------------------------------------
for n in $(echo "$names" | tr ',' ' '); do
	fuse=""
	case $n in slab_*) fuse=--fuse ;; esac
	"$SLAB" import "$M/$n.pth" "$M/$n.safetensors" --model "$n" $fuse --force >/dev/null ||
		die "slab import $M/$n.pth failed"
	for b in $BATCHES; do
		if [ -n "${MODELS_DIR:-}" ] && [ -s "$M/${n}_b${b}_slab.safetensors" ] && [ -s "$M/${n}_b${b}_ort.f32" ]; then
			continue # checked by the run that used these models before
		fi
		"$SLAB" run --weights "$M/$n.safetensors" --input "$M/${n}_b${b}_input.safetensors" \
			--output "$M/${n}_b${b}_slab.safetensors" --batch "$b" --threads "$THREADS" --force >/dev/null ||
			die "slab run on $M/${n}_b${b}_input.safetensors failed"
		node tools/reference/ort_bench.js --model "$M/${n}_b${b}.onnx" --warmup 0 --block 1 --blocks 1 \
			--threads "$THREADS" --check >/dev/null || die "ort_bench.js --check on $M/${n}_b${b}.onnx failed"
	done
done

py() {
	env -u OPENBLAS_CORETYPE ${PYOMP:+OMP_WAIT_POLICY=$PYOMP} \
		LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
		GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
		/usr/bin/python3 tools/reference/ort_torch_bench.py --dir "$M" --threads "$THREADS" "$@"
}

# --- 4. interleaved repetitions ---------------------------------------------
# Batch is the outer loop, so that the batch-1 rows of every repetition are
# complete before the (long) larger batches start.
stamp() { echo "$* $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/session.txt"; }
stamp "commit $COMMIT start"
for b in $BATCHES; do
	rounds=$ROUNDS blocks=$ORT_BLOCKS dtypes=$DTYPES warm=$ORT_WARMUP block=$ORT_BLOCK
	[ "$b" = 1 ] || rounds=$ROUNDS_BIG blocks=$ORT_BLOCKS_BIG dtypes=$DTYPES_BIG warm=$ORT_WARMUP_BIG block=$ORT_BLOCK_BIG
	for r in $(seq 1 "$REPS"); do
		for size in $SIZES; do
			list=""
			for k in $KINDS; do list="$list${list:+,}${k}_$size"; done
			stamp "rep $r $size B$b slab"
			"$SLAB" bench --models "$list" --dtype "$dtypes" --batch "$b" --rounds "$rounds" \
				--threads "$THREADS" --json >"$OUT/go_${size}_B${b}_$r.json" || die "slab bench failed"
			stamp "rep $r $size B$b pytorch"
			py --models "$list" --batch "$b" --rounds "$rounds" >"$OUT/py_${size}_B${b}_$r.json" ||
				die "ort_torch_bench.py failed"
			for p in $(seq 1 "$ORTPROCS"); do
				for mode in $ORT_SPIN; do
					flag=""
					[ "$mode" = spin ] || flag=--no-spin
					for n in $(echo "$list" | tr ',' ' '); do
						stamp "rep $r $size B$b ORT $n $mode process $p"
						node tools/reference/ort_bench.js --model "$M/${n}_b${b}.onnx" --warmup "$warm" \
							--block "$block" --blocks "$blocks" --threads "$THREADS" $flag \
							>"$OUT/ort_${n}_B${b}_${r}_$mode$p.json" || die "ort_bench.js on $M/${n}_b${b}.onnx failed"
					done
				done
			done
		done
	done
done
stamp "end"

# --- 5. table ----------------------------------------------------------------
CMD="REPS=$REPS ROUNDS=$ROUNDS ROUNDS_BIG=$ROUNDS_BIG SIZES=\"$SIZES\" BATCHES=\"$BATCHES\" KINDS=\"$KINDS\" THREADS=$THREADS DTYPES=$DTYPES DTYPES_BIG=$DTYPES_BIG ORT_WARMUP=$ORT_WARMUP ORT_BLOCK=$ORT_BLOCK ORT_BLOCKS=$ORT_BLOCKS ORT_BLOCKS_BIG=$ORT_BLOCKS_BIG ORT_WARMUP_BIG=$ORT_WARMUP_BIG ORT_BLOCK_BIG=$ORT_BLOCK_BIG ORT_SPIN=\"$ORT_SPIN\" ORTPROCS=$ORTPROCS PYOMP=$PYOMP SEED=$SEED${MODELS_DIR:+ MODELS_DIR=$MODELS_DIR} scripts/compare-ort.sh"
echo "$CMD" >>"$OUT/session.txt"
/usr/bin/python3 tools/reference/ort_table.py --command "$CMD" --commit "$COMMIT" "$OUT" >"$OUT/table.md" ||
	die "tools/reference/ort_table.py $OUT failed"
cat "$OUT/table.md"
echo "compare-ort: done; table in $OUT/table.md" >&2
