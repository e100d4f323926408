#!/usr/bin/env bash
# Builds the JupyterLab extension (tsc + @jupyter/builder) and pip-installs
# its Python wrapper `anndata_oom_lab` into the project venv
# (tests/python/setup-venv.sh) or the Python given as $1. `jupyter lab` from
# that Python then loads it (check: `jupyter labextension list`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PY="${1:-$(bash "$root/tests/python/setup-venv.sh" | tail -n1)}"
cd "$here"
# npm install, not npm ci: npm 11 leaves other platforms' optional rspack bindings out of the lockfile, which npm ci rejects.
if [ ! -d node_modules/@jupyter/builder ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund --loglevel=error >&2
fi
npm run --silent build >&2
"$PY" -m pip install --quiet --disable-pip-version-check "hatchling==1.33.0" >&2
# --no-build-isolation: build with the venv's hatchling (no isolated env per install).
"$PY" -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall "$here" >&2
rm -rf "$here/build"
