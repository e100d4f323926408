#!/usr/bin/env bash
# Installs the "AnnData OOM (TypeScript)" kernelspec (name anndata-oom) into
# the project's Python venv (or the Python given as $1), building the
# launcher first if needed. `jupyter lab` from that venv then offers it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
[ -f dist/src/kernel/main.js ] || node node_modules/typescript/bin/tsc -p tsconfig.json
PY="${1:-$(bash tests/python/setup-venv.sh | tail -n1)}"
node dist/src/kernel/install.js --python "$PY" --sys-prefix
