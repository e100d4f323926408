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
exec bash "$here/../tests/python/setup-venv.sh" "$here/requirements-peers.txt" peers
