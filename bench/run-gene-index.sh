#!/usr/bin/env bash
# Gene-index benchmark (dist/bench/gene-index.js) on the synthetic 100k and
# 1M files (read from $DATA). The sidecar is built in a temporary folder
# ($TMPDIR) and removed afterwards (the 1M one is ~5 GB, plus ~8 GB of
# buckets while it builds). Results: bench/.data/gene_index_<size>.json.
#
#   DATA=/work/main/bench/.data bash bench/run-gene-index.sh
#   SIZES="100k" bash bench/run-gene-index.sh
set -euo pipefail
cd "$(dirname "$0")/.."
data="${DATA:-bench/.data}"
sizes="${SIZES:-100k 1m}"
out=bench/.data
mkdir -p "$out"
npx tsc -p tsconfig.json
for s in $sizes; do
  f="$data/synth_$s.h5ad"
  [ -f "$f" ] || { echo "missing $f (bench/generate.py writes it)" >&2; exit 1; }
  nice -n 10 node dist/bench/gene-index.js "$f" --genes 50 > "$out/gene_index_$s.json"
  cat "$out/gene_index_$s.json"
done
