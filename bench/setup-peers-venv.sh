#!/usr/bin/env bash
# Creates (once) the venv of the benchmark's Python peers (scanpy and
# anndataoom), keyed by the hash of bench/requirements-peers.txt so a changed
# file gets a fresh venv. Prints the venv's python path on stdout as the last
# line.
#
#   PY="$(bash bench/setup-peers-venv.sh | tail -n1)"
#   nice -n 10 "$PY" bench/peers_chain.py bench/.data/synth_100k.h5ad --peer scanpy --json out.json
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ANNDATA_OOM_CACHE:-$HOME/.cache/anndata-oom}"
mkdir -p "$cache"

make_venv() { # $1 = requirements file, $2 = name
  local req="$1" name="$2" hash dir
  hash="$(sha256sum "$req" | cut -c1-12)"
  dir="$cache/venv-$name-$hash"
  if [ ! -x "$dir/bin/python" ] || [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    touch "$dir/.complete"
  fi
  ln -sfn "$dir" "$cache/venv-$name"
  echo "$dir/bin/python"
}

make_venv "$here/requirements-peers.txt" peers
