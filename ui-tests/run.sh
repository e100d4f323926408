#!/usr/bin/env bash
# The galata tests: a JupyterLab (the project venv's, with our extension and
# kernel) in Debian Chromium. All state stays under ui-tests/.jupyter.
# Needs: npm run build (engine + native), Debian chromium, `npm install` here (run.sh does it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export AOOM_PYTHON="${AOOM_PYTHON:-$(bash "$root/tests/python/setup-venv.sh" | tail -n1)}"
[ -x /usr/bin/chromium ] || { echo "ui-tests: /usr/bin/chromium missing (apt-get install -y chromium)" >&2; exit 1; }
[ -f "$root/native/dist/index.js" ] && [ -f "$root/dist/src/kernel/main.js" ] || { echo "ui-tests: run npm run build first" >&2; exit 1; }

state="$here/.jupyter"
rm -rf "$state"
mkdir -p "$state"/{config,data,runtime,tmp,xdg-config,xdg-cache,root,prefix}
export JUPYTER_CONFIG_DIR="$state/config" JUPYTER_DATA_DIR="$state/data" JUPYTER_RUNTIME_DIR="$state/runtime"
export TMPDIR="$state/tmp" XDG_CONFIG_HOME="$state/xdg-config" XDG_CACHE_HOME="$state/xdg-cache"
export AOOM_UI_ROOT="$state/root" JUPYTERLAB_GALATA_ROOT_DIR="$state/root"

# Our kernelspec into a private prefix; the extension into the venv (where `pip install` puts it).
node "$root/dist/src/kernel/install.js" --python "$AOOM_PYTHON" --prefix "$state/prefix" >&2
export JUPYTER_PATH="$state/prefix/share/jupyter"
# This checkout's extension build goes first on JUPYTER_PATH (the first one found wins), so the
# tests see it rather than whatever another checkout pip-installed into the shared venv.
ext_build="$root/src/extension/anndata_oom_lab/labextension"
if [ -f "$ext_build/package.json" ]; then
  mkdir -p "$JUPYTER_PATH/labextensions"
  cp -r "$ext_build" "$JUPYTER_PATH/labextensions/anndata-oom-lab"
  cp "$root/install.json" "$JUPYTER_PATH/labextensions/anndata-oom-lab/install.json"
fi
if ! "$AOOM_PYTHON" -m jupyter labextension list 2>&1 | grep -q "anndata-oom-lab.*enabled.*OK"; then
  bash "$root/src/extension/install.sh" "$AOOM_PYTHON"
fi

# A free loopback port unless one is given.
export AOOM_UI_PORT="${AOOM_UI_PORT:-$("$AOOM_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
export AOOM_UI_FIXTURE="$state/root/tiny.h5ad" AOOM_UI_BIG="$state/root/big.h5ad" AOOM_UI_CLUSTERS="$state/root/clusters.h5ad" AOOM_UI_MILLION="$state/root/million.h5ad"
"$AOOM_PYTHON" "$here/make_fixture.py" "$AOOM_UI_FIXTURE" "$AOOM_UI_BIG" "$AOOM_UI_CLUSTERS" "$AOOM_UI_MILLION"
# Small read blocks: thousands of chunks per pass over big.h5ad (the progress test).
export ANNDATA_OOM_BLOCK_BYTES=65536

cd "$here"
[ -d node_modules/@jupyterlab/galata ] || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error
npx playwright test "$@"
