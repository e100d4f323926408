#!/usr/bin/env bash
# Preprocessing chain benchmark: anndata-oom, then scanpy (in memory) and
# anndataoom (PyPI) on the same file, then a side-by-side table.
#
#   bash bench/run-chain.sh [100k|1m]      (default 100k; files from bench/run.sh)
#
# Peers run in a separate venv (bench/setup-peers-venv.sh) with a memory
# limit (scanpy cannot hold the 1M file: it is stopped and reported as such).
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-100k}"
file="bench/.data/synth_${size}.h5ad"
out="bench/.data/chain_${size}"
mkdir -p "$out"
[ -f "$file" ] || bash bench/run.sh "$size" --no-cold
node dist/bench/chain.js "$file" --json "$out/anndata-oom.json" > /dev/null
PY="$(bash bench/setup-peers-venv.sh | tail -n1)"
for peer in scanpy anndataoom; do
  nice -n 10 "$PY" bench/peers_chain.py "$file" --peer "$peer" --json "$out/$peer.json" --max-rss-gb 20 > /dev/null || true
done
python3 bench/compare_chain.py "$out/anndata-oom.json" "$out/scanpy.json" "$out/anndataoom.json"
