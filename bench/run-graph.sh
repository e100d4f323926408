#!/usr/bin/env bash
# Graph-steps benchmark (neighbors -> UMAP -> Leiden on obsm['X_pca']):
# anndata-oom (dist/bench/graph.js), then scanpy in memory
# (bench/peers_graph.py, in the peers venv), then a side-by-side table.
#
#   bash bench/run-graph.sh                 # 100k and 1m
#   SIZES="100k" bash bench/run-graph.sh    # only these sizes
#   STEP_TIMEOUT=1500 bash bench/run-graph.sh   # scanpy's per-step limit (s)
#
# Inputs: bench/.data/pca_<size>.h5ad, written by bench/generate_pca.py when
# missing (seed 0; ~2 s each). Outputs in bench/.data/:
# ours_graph_<size>.json, peers_graph_<size>.json. Both tools run under the
# same `nice -n 10` (the machine may be shared); the JSONs record the load.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${SIZES:-100k 1m}"
step_timeout="${STEP_TIMEOUT:-1800}"
data=bench/.data
mkdir -p "$data"

PY="$(bash bench/setup-peers-venv.sh | tail -n1)"   # scanpy, anndata, ...

n_of() {
  case "$1" in
    100k) echo 100000 ;;
    1m) echo 1000000 ;;
    *[kK]) echo $(( ${1%[kK]} * 1000 )) ;;
    *[mM]) echo $(( ${1%[mM]} * 1000000 )) ;;
    *) echo "$1" ;;
  esac
}

for size in $sizes; do
  file="$data/pca_${size}.h5ad"
  if [ ! -f "$file" ]; then
    echo "== generating $file" >&2
    nice -n 10 "$PY" bench/generate_pca.py "$(n_of "$size")" "$file" --seed 0 >&2
  fi
done

for size in $sizes; do
  file="$data/pca_${size}.h5ad"
  ours="$data/ours_graph_${size}.json"
  peer="$data/peers_graph_${size}.json"
  if [ -f dist/bench/graph.js ]; then
    echo "== anndata-oom on $file" >&2
    nice -n 10 node dist/bench/graph.js "$file" --out "$ours" >&2 || echo "anndata-oom run failed (exit $?)" >&2
  else
    echo "== dist/bench/graph.js not built (npm run build): skipping anndata-oom" >&2
  fi
  echo "== scanpy on $file (per-step timeout ${step_timeout} s)" >&2
  nice -n 10 "$PY" bench/peers_graph.py "$file" --out "$peer" --step-timeout "$step_timeout" >&2 \
    || echo "scanpy: not every step finished (see $peer)" >&2
  echo
  python3 bench/compare_graph.py "$ours" "$peer"
  echo
done
