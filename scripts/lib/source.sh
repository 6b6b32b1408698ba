# Sourced by the compare scripts: slab_source picks the tree a benchmark
# builds slab from and sets BUILD and COMMIT. By default that is HEAD,
# exported into $OUT/src, because the working tree of a shared checkout may
# hold half-edited files and a table must name the commit it measured;
# SRC=worktree builds the working tree as it is (COMMIT gains +worktree).
slab_source() {
	COMMIT=$(git rev-parse --short HEAD)
	if [ "${SRC:-head}" = head ]; then
		mkdir -p "$OUT/src"
		git archive HEAD | tar -x -C "$OUT/src"
		BUILD="$OUT/src"
	else
		BUILD=$(pwd)
		COMMIT="$COMMIT+worktree"
	fi
}
