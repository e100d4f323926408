#!/usr/bin/env bash
# The test command (`npm test`): builds what is missing, creates the
# reference venvs, generates the fixtures with Python anndata, builds and
# installs the JupyterLab extension, then runs every test with node's test
# runner — engine, kernel, the extension's jsdom tests and (tests/ui.test.ts)
# the galata tests in Debian Chromium — whose summary ends the output.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
[ -f native/dist/index.js ] || bash native/build.sh
npx tsc -p tsconfig.json
# The Rust core's unit tests (kernels against scalar references, the file
# driver's heap check, Leiden, eigensolvers); the Node summary comes last.
bash native/cargo.sh test --release -p anndata-oom-core
PY="$(bash tests/python/setup-venv.sh | tail -n1)"
fixtures="$root/tests/.fixtures"
rm -rf "$fixtures"
"$PY" tests/python/make_fixtures.py "$fixtures" > /dev/null
"$PY" tests/python/make_bad_fixtures.py "$fixtures/bad" > /dev/null
"$PY" tests/python/make_pp_oracle.py "$fixtures/pp" > /dev/null
"$PY" tests/python/make_graph_oracle.py "$fixtures/pp" "$fixtures/graph" > /dev/null
"$PY" tests/python/make_plot_oracle.py "$fixtures/plots" > /dev/null
# The JupyterLab extension: built and installed into the venv (for the galata
# tests in tests/ui.test.ts); its jsdom tests compiled to run with the rest.
bash src/extension/install.sh "$PY"
(cd src/extension && npx tsc -p tsconfig.test.json)
# Kernels started by the tests keep their input history in memory, not in ~/.local/share.
export AOOM_FIXTURES="$fixtures" AOOM_PYTHON="$PY" ANNDATA_OOM_HISTORY=off
node --test --test-reporter=spec --test-concurrency=1 dist/tests/*.test.js src/extension/lib-test/extension/test/*.test.js
