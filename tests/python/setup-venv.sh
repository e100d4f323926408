#!/usr/bin/env bash
# Creates (once) the Python venvs the tests use, keyed by the hash of their
# requirements file so a changed file gets a fresh venv. Prints the main
# venv's python path on stdout as the last line.
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

# `setup-venv.sh REQUIREMENTS NAME` makes one other venv (e.g. the bench peers).
if [ "$#" -eq 2 ]; then
  make_venv "$1" "$2"
  exit 0
fi
make_venv "$here/requirements-legacy.txt" legacy >/dev/null
make_venv "$here/requirements.txt" main
