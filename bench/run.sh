#!/usr/bin/env bash
# Foundation benchmark: generate the synthetic files (once) and measure them.
#
#   bash bench/run.sh            # 100k x 30k only (~1.5 GB, a few minutes)
#   bash bench/run.sh 1m         # 1M x 30k only (~14.5 GB, ~4 min to generate)
#   bash bench/run.sh all        # both
#
# Extra arguments after the size go to foundation.js (e.g. --repeats 5 --no-cold).
# Results: bench/.data/foundation_<size>.{json,md}. Env: BENCH_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${BENCH_PYTHON:-$HOME/.cache/anndata-oom/venv-main/bin/python}"
which="${1:-100k}"
shift || true
mkdir -p bench/.data

gen() { # name n_obs
  local f="bench/.data/synth_$1.h5ad"
  if [ ! -f "$f" ]; then
    nice -n 10 "$PY" bench/generate.py "$f" --n-obs "$2" --n-vars 30000 --seed 0
  fi
}

run() { # name [foundation.js options]
  local name="$1"
  shift
  nice -n 10 node bench/foundation.js "bench/.data/synth_$name.h5ad" \
    --json "bench/.data/foundation_$name.json" --md "bench/.data/foundation_$name.md" "$@"
}

case "$which" in
  100k) gen 100k 100000; run 100k "$@" ;;
  1m) gen 1m 1000000; run 1m "$@" ;;
  all) gen 100k 100000; gen 1m 1000000; run 100k "$@"; run 1m "$@" ;;
  *) echo "usage: bash bench/run.sh [100k|1m|all] [foundation.js options]" >&2; exit 2 ;;
esac
